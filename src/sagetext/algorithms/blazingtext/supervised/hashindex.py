"""A hash table from 64-bit keys to numbers, looked up and filled a whole array at a time.

Numbering the tokens of a corpus is a lookup per token; a Python dict costs one interpreter
round trip and a few cache misses per token, and sorting (``np.unique``) costs a comparison
sort per block. This open-addressing table (linear probing, load at most one half) is probed
for all keys of a block in a few vectorised rounds instead.
"""

from __future__ import annotations

import numpy as np

_EMPTY = np.uint64(0)
_SPREAD = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: spreads any key over the slots


class HashIndex:
    def __init__(self, bits: int = 16) -> None:
        self.bits = bits
        self.keys = np.zeros(1 << bits, dtype=np.uint64)
        self.values = np.full(1 << bits, -1, dtype=np.int64)
        self.size = 0

    def lookup_or_add(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The number of each key, and the positions in ``keys`` of first sightings of new keys.

        New keys are numbered ``size, size + 1, ...`` in the order of the returned positions.
        """
        keys = np.where(keys == _EMPTY, np.uint64(1), keys)  # 0 marks an empty slot
        numbers, slots = self._lookup(keys)
        missing = np.flatnonzero(numbers < 0)
        if not len(missing):
            return numbers, missing
        distinct, first, inverse = np.unique(keys[missing], return_index=True, return_inverse=True)
        order = np.argsort(first, kind="stable")  # number new keys in order of appearance
        fresh = np.empty(len(distinct), dtype=np.int64)
        fresh[order] = np.arange(self.size, self.size + len(distinct))
        if 2 * (self.size + len(distinct)) > len(self.keys):
            self._grow(self.size + len(distinct))
        self._insert(distinct, fresh)
        self.size += len(distinct)
        numbers[missing] = fresh[inverse]
        return numbers, missing[first[order]]

    def _slots(self, keys: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):
            return ((keys * _SPREAD) >> np.uint64(64 - self.bits)).astype(np.int64)

    def _lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        numbers = np.full(len(keys), -1, dtype=np.int64)
        slots = self._slots(keys)
        pending = np.arange(len(keys))
        mask = len(self.keys) - 1
        while len(pending):
            at = slots[pending]
            found = self.keys[at]
            hit = found == keys[pending]
            numbers[pending[hit]] = self.values[at[hit]]
            going = ~hit & (found != _EMPTY)  # another key sits here: probe the next slot
            pending = pending[going]
            slots[pending] = (slots[pending] + 1) & mask
        return numbers, slots

    def _insert(self, keys: np.ndarray, values: np.ndarray) -> None:
        """Insert distinct keys known to be absent."""
        slots = self._slots(keys)
        pending = np.arange(len(keys))
        mask = len(self.keys) - 1
        while len(pending):
            at = slots[pending]
            free = self.keys[at] == _EMPTY
            self.keys[at[free]] = keys[pending[free]]  # where two keys want one slot, one wins
            won = self.keys[at] == keys[pending]
            self.values[at[won]] = values[pending[won]]
            pending = pending[~won]
            slots[pending] = (slots[pending] + 1) & mask

    def _grow(self, needed: int) -> None:
        used = self.keys != _EMPTY
        keys, values = self.keys[used], self.values[used]
        while (1 << self.bits) < 2 * needed:
            self.bits += 1
        self.keys = np.zeros(1 << self.bits, dtype=np.uint64)
        self.values = np.full(1 << self.bits, -1, dtype=np.int64)
        self._insert(keys, values)
