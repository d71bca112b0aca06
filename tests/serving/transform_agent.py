"""Plays SageMaker's batch-transform agent against a running server (not a test module).

What a ``CreateTransformJob`` that leaves ``MaxConcurrentTransforms``, ``MaxPayloadInMB`` and
``BatchStrategy`` unset does with one input file (DG ``your-algorithms-batch-code``,
``batch-transform``; API ``CreateTransformJob``):

- ``GET /execution-parameters`` once, before any invocation; its answer sets all three;
- ``SplitType: Line``: each line of the file is a record, its newline kept;
- ``BatchStrategy`` ``MULTI_RECORD``: consecutive records packed into mini-batches of at most
  ``MaxPayloadInMB`` MB (taken as MiB, the larger reading; a single record over it fails the
  job); ``SINGLE_RECORD``: one record per request;
- at most ``MaxConcurrentTransforms`` requests in flight; each must answer 200 within the
  invocation timeout; ``AssembleWith: Line``: the answers' lines, in the order of the input.

The agent also checks that each answer has one line per record it was sent, which is what
makes the assembled output line up with the input.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import requests

MIB = 1024 * 1024


@dataclass(frozen=True)
class Transformed:
    parameters: dict[str, object]  # /execution-parameters' answer
    lines: list[bytes]  # the assembled output, one line per input record
    batch_sizes: list[int]  # records per request, in order
    slowest: float  # seconds, the longest request


def transform(url: str, data: bytes, content_type: str, accept: str, timeout: float) -> Transformed:
    """Run one input file through the server at ``url`` as a transform job would."""
    parameters = requests.get(f"{url}/execution-parameters", timeout=10).json()
    assert set(parameters) == {"MaxConcurrentTransforms", "BatchStrategy", "MaxPayloadInMB"}, parameters
    batches = mini_batches(data.splitlines(keepends=True), str(parameters["BatchStrategy"]),
                           int(parameters["MaxPayloadInMB"]) * MIB)

    def invoke(batch: list[bytes]) -> tuple[list[bytes], float]:
        started = time.monotonic()
        response = requests.post(f"{url}/invocations", data=b"".join(batch), timeout=timeout,
                                 headers={"Content-Type": content_type, "Accept": accept})
        elapsed = time.monotonic() - started
        assert response.status_code == 200, f"{len(batch)} records: {response.status_code} {response.text[:500]}"
        lines = response.content.splitlines()
        assert len(lines) == len(batch), f"{len(batch)} records sent, {len(lines)} lines answered"
        return lines, elapsed

    with ThreadPoolExecutor(max_workers=int(parameters["MaxConcurrentTransforms"])) as pool:
        answers = list(pool.map(invoke, batches))
    return Transformed(parameters, [line for lines, _ in answers for line in lines],
                       [len(batch) for batch in batches], max(elapsed for _, elapsed in answers))


def mini_batches(records: list[bytes], strategy: str, limit: int) -> list[list[bytes]]:
    if strategy == "SINGLE_RECORD":
        return [[record] for record in records]
    assert strategy == "MULTI_RECORD", strategy
    batches: list[list[bytes]] = []
    current: list[bytes] = []
    size = 0
    for record in records:
        assert len(record) <= limit, f"a record of {len(record)} bytes is over MaxPayloadInMB: the job fails"
        if size + len(record) > limit:
            batches.append(current)
            current, size = [], 0
        current.append(record)
        size += len(record)
    if current:
        batches.append(current)
    return batches
