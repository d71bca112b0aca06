"""Batch transform as SageMaker's agent runs it with what ``/execution-parameters`` advertises.

For each algorithm the real ``serve`` (gunicorn, one worker per CPU, the default 60 s timeout)
loads a small model (the models of ``tests/serving/test_batch_transform.py``: a supervised model
trained on the bundled sample, the committed tiny Seq2Seq and NTM models) and
``tests/serving/transform_agent.py`` sends it:

1. ``lines``: a 10,000-line JSON Lines file, split by line, in the advertised mini-batches;
2. ``smallest`` (the MULTI_RECORD algorithms): full advertised mini-batches of the smallest
   record the algorithm takes (BlazingText ``{"source":""}``, NTM CSV rows of 12 zeros), the
   most instances one request can hold.

Records: the advertised parameters, requests sent, the job's wall time and the slowest request,
which must stay under the worker timeout. Run when the machine is otherwise idle:
    python bench/batch_transform.py [--algorithms supervised,seq2seq,ntm]
Writes bench/results/batch_transform-<time>.json and prints a table.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "src"))

from sagetext.data.media_types import JSONLINES  # noqa: E402
from tests.serving.test_batch_transform import SMALLEST, TIMEOUT, input_file, lay_out_model, start_server  # noqa: E402
from tests.serving.transform_agent import MIB, transform  # noqa: E402

RESULTS = REPO / "bench" / "results"


def run(url: str, data: bytes, content_type: str) -> dict:
    started = time.monotonic()
    done = transform(url, data, content_type, JSONLINES, timeout=TIMEOUT + 30)
    return {"records": len(done.lines), "requests": len(done.batch_sizes), "largest_batch": max(done.batch_sizes),
            "wall_s": round(time.monotonic() - started, 2), "slowest_request_s": round(done.slowest, 3),
            "parameters": done.parameters}


def bench_algorithm(algorithm: str, work: Path) -> dict:
    root = work / algorithm
    root.mkdir()
    lay_out_model(algorithm, root)
    server = start_server(algorithm, root)
    try:
        runs = {"lines": run(server.url, input_file(algorithm), JSONLINES)}
        if algorithm in SMALLEST:
            content_type, record = SMALLEST[algorithm]
            runs["smallest"] = run(server.url, record * (2 * (MIB // len(record))), content_type)
    finally:
        server.stop()
    return {"algorithm": algorithm, "runs": runs}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algorithms", default="supervised,seq2seq,ntm")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="batch_transform-") as tmp:
        results = [bench_algorithm(algorithm, Path(tmp)) for algorithm in args.algorithms.split(",")]
    report = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} CPUs",
        "load_average_after": os.getloadavg(), "worker_timeout_s": TIMEOUT,
        "command": " ".join([Path(sys.executable).name, *sys.argv]), "results": results,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"batch_transform-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"{'algorithm':<11}{'run':<10}{'records':>9}{'requests':>10}{'wall s':>9}{'slowest s':>11}")
    for result in results:
        for kind, r in result["runs"].items():
            print(f"{result['algorithm']:<11}{kind:<10}{r['records']:>9}{r['requests']:>10}{r['wall_s']:>9}"
                  f"{r['slowest_request_s']:>11}")
    print(f"wrote {out}")
    slow = [(res["algorithm"], kind) for res in results for kind, r in res["runs"].items()
            if r["slowest_request_s"] >= TIMEOUT]
    return 1 if slow else 0


if __name__ == "__main__":
    raise SystemExit(main())
