"""Cost of the NTM's corpus word embeddings (``word_embeddings.from_corpus``) at the cap,
20,000 words: 20,000 synthetic documents of 150 Zipf-distributed word draws each, one worker,
torch 1 thread. Prints the seconds of each stage and the peak RSS.

Run:  python bench/ntm_embedding_cost.py
"""

from __future__ import annotations

import resource
import time

import numpy as np
import torch

from sagetext.algorithms.ntm import word_embeddings as we


def main() -> None:
    torch.set_num_threads(1)
    words, count = we.MAX_WORDS, 20_000
    rng = np.random.default_rng(0)
    p = 1.0 / np.arange(1, words + 1)
    p /= p.sum()
    docs = [np.unique(rng.choice(words, 150, p=p)) for _ in range(count)]
    started = time.monotonic()
    counts, total = we.count_corpus(words, count, lambda a, b: docs[a:b], lambda x: x)
    counted = time.monotonic()
    matrix = we.ppmi(counts, total)
    weighted = time.monotonic()
    we.embed(matrix, we.DIMS)
    done = time.monotonic()
    print(f"V={words} docs={count}: count {counted - started:.1f} s, ppmi {weighted - counted:.1f} s "
          f"(nnz {matrix.nnz}), svds {done - weighted:.1f} s, "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.2f} GB")


if __name__ == "__main__":
    main()
