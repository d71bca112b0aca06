"""Load benchmark: each algorithm's real server (gunicorn, 2 sync workers) driven by ``wrk``.

For each algorithm: a tiny model is trained through the real code (the models of
``tests/reliability``: the point here is the server, not the network's arithmetic), served on
loopback, and hit by ``wrk --latency`` with a Lua script POSTing a fixed body:

1. ``single``: one instance per request, ``--duration`` s at ``--connections`` connections;
2. ``batch<N>``: N instances per request (``--batch``, default 100), the same;
3. ``kill``: single-instance load again, and after a third of it one worker gets SIGKILL: the
   master must replace it (new PID, model loaded) and /ping must answer 200 within 10 s; only
   requests in flight on the killed worker may fail.

Worker memory: RSS of each worker is sampled through the ``single`` run; the result records
RSS after the first ~1,000 requests and at the end (at least 10,000 requests in between,
else it says so). Zero errors are required in runs 1 and 2 (socket errors or non-2xx).

Needs ``wrk`` (Debian: ``apt-get install wrk``). Run when the machine is otherwise idle:
    python bench/server_load.py [--algorithms ntm,seq2seq,supervised,word2vec] [--duration 60]
Writes bench/results/server_load-<time>.json and prints a table.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "src"))

from tests.conftest import FakeOptMl  # noqa: E402
from tests.reliability import conftest as models  # noqa: E402
from tests.reliability.test_hostile_clients import SERVE_NAME, good_bodies  # noqa: E402

RESULTS = REPO / "bench" / "results"
LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "{content_type}"
local f = assert(io.open("{body}", "rb"))
wrk.body = f:read("*all")
f:close()
"""


def train(algorithm: str, root: Path) -> Path:
    opt_ml = FakeOptMl(root / "opt_ml")
    models.lay_out(algorithm, opt_ml, models.DEFAULT_HP[algorithm], root)
    result = models.run_train(opt_ml, algorithm)
    if result.returncode != 0:
        raise SystemExit(f"{algorithm}: training failed\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return opt_ml.model


def workers(server: "models.Server") -> list[psutil.Process]:
    return psutil.Process(server.process.pid).children()


def parse_wrk(text: str) -> dict[str, float | int]:
    def latency_ms(label: str) -> float:
        value, unit = re.search(rf"^\s+{label}%\s+([0-9.]+)(us|ms|s)\s*$", text, re.M).groups()
        return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]

    requests_done = int(re.search(r"^\s+(\d+) requests in", text, re.M).group(1))
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return {
        "requests": requests_done,
        "req_per_s": float(re.search(r"Requests/sec:\s+([0-9.]+)", text).group(1)),
        "p50_ms": latency_ms("50"), "p90_ms": latency_ms("90"), "p99_ms": latency_ms("99"),
        "socket_errors": sum(int(x) for x in socket.groups()) if socket else 0,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
    }


def run_wrk(url: str, script: Path, duration: int, connections: int, threads: int) -> tuple[dict, str]:
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "30s",
               "-s", str(script), f"{url}/invocations"]
    text = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return parse_wrk(text), text


def sample_rss(server: "models.Server", stop: threading.Event, out: list[tuple[float, list[int]]]) -> None:
    start = time.monotonic()
    while not stop.is_set():
        try:
            out.append((time.monotonic() - start, [w.memory_info().rss for w in workers(server)]))
        except psutil.Error:
            pass
        stop.wait(0.5)


def kill_one_worker(server: "models.Server", at: float, report: dict) -> None:
    time.sleep(at)
    before = {w.pid for w in workers(server)}
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    killed = time.monotonic()
    report["killed_pid"] = victim
    ping_ok = None
    replaced = None
    while time.monotonic() - killed < 30 and (ping_ok is None or replaced is None):
        if ping_ok is None:
            try:
                if requests.get(f"{server.url}/ping", timeout=2).status_code == 200:
                    ping_ok = time.monotonic() - killed
            except requests.RequestException:
                pass
        if replaced is None:
            now = {w.pid for w in workers(server)}
            new = now - before
            loaded = any(f"worker {pid}: loaded" in server.log() for pid in new)
            if victim not in now and len(now) == len(before) and loaded:
                replaced = time.monotonic() - killed
        time.sleep(0.05)
    report["ping_200_after_s"] = ping_ok
    report["replacement_serving_after_s"] = replaced


def bench_algorithm(algorithm: str, args: argparse.Namespace, work: Path) -> dict:
    model_dir = train(algorithm, work / algorithm)
    server = models.launch(SERVE_NAME[algorithm], model_dir, work / f"{algorithm}.log", {
        "SAGEMAKER_MODEL_SERVER_WORKERS": str(args.workers), "SAGEMAKER_MODEL_SERVER_TIMEOUT": "60"})
    server.wait_ready()
    result: dict = {"algorithm": algorithm, "content_type": None, "runs": {}}
    try:
        for kind, count in (("single", 1), (f"batch{args.batch}", args.batch)):
            content_type, body = next(iter(good_bodies(algorithm, count).items()))
            result["content_type"] = content_type
            body_file = work / f"{algorithm}-{kind}.body"
            body_file.write_bytes(body)
            script = work / f"{algorithm}-{kind}.lua"
            script.write_text(LUA.format(content_type=content_type, body=body_file))
            assert requests.post(f"{server.url}/invocations", data=body, timeout=30,
                                 headers={"Content-Type": content_type}).status_code == 200
            samples: list[tuple[float, list[int]]] = []
            stop = threading.Event()
            sampler = threading.Thread(target=sample_rss, args=(server, stop, samples), daemon=True)
            sampler.start()
            stats, text = run_wrk(server.url, script, args.duration, args.connections, args.threads)
            stop.set()
            sampler.join()
            stats["body_bytes"] = len(body)
            if kind == "single" and samples:
                # RSS after ~1,000 requests (warm) vs at the end; time-based, from the mean rate.
                # Warm = after the first fifth of the run (and at least 1,000 requests): the
                # first requests of each worker allocate its buffers once.
                warm_at = max(1000 / max(stats["req_per_s"], 1e-9), 0.2 * args.duration)
                warm_time, warm = next(((t, rss) for t, rss in samples if t >= warm_at), samples[0])
                stats["rss_warm_mb"] = [round(r / 2**20, 1) for r in warm]
                stats["rss_end_mb"] = [round(r / 2**20, 1) for r in samples[-1][1]]
                stats["rss_requests_between"] = int(stats["req_per_s"] * (samples[-1][0] - warm_time))
            result["runs"][kind] = stats
            (work / f"{algorithm}-{kind}.wrk.txt").write_text(text)
        # kill run
        script = work / f"{algorithm}-single.lua"
        kill_report: dict = {}
        killer = threading.Thread(target=kill_one_worker, args=(server, args.kill_duration / 3, kill_report))
        killer.start()
        stats, _ = run_wrk(server.url, script, args.kill_duration, args.connections, args.threads)
        killer.join()
        result["runs"]["kill"] = {**stats, **kill_report}
        result["server_restarted_workers"] = server.log().count("Booting worker")
    finally:
        server.stop()
    return result


def check(result: dict) -> list[str]:
    problems = []
    for kind in (k for k in result["runs"] if k != "kill"):
        run = result["runs"].get(kind, {})
        if run.get("socket_errors") or run.get("non_2xx"):
            problems.append(f"{result['algorithm']} {kind}: {run['socket_errors']} socket errors, "
                            f"{run['non_2xx']} non-2xx")
    kill = result["runs"].get("kill", {})
    if kill.get("ping_200_after_s") is None or kill["ping_200_after_s"] > 10:
        problems.append(f"{result['algorithm']}: /ping not 200 within 10 s of the kill")
    if kill.get("replacement_serving_after_s") is None:
        problems.append(f"{result['algorithm']}: the killed worker was not replaced within 30 s")
    single = result["runs"].get("single", {})
    if single.get("rss_requests_between", 0) < 10_000:
        between = single.get("rss_requests_between")
        problems.append(f"{result['algorithm']}: only {between} requests between RSS samples")
    elif any(end > warm * 1.10 + 5 for warm, end in zip(single["rss_warm_mb"], single["rss_end_mb"])):
        problems.append(f"{result['algorithm']}: worker RSS grew {single['rss_warm_mb']} -> {single['rss_end_mb']} MB")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algorithms", default="ntm,seq2seq,supervised,word2vec")
    parser.add_argument("--duration", type=int, default=60)
    parser.add_argument("--kill-duration", type=int, default=30)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=100, help="instances per request in the batch run")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install wrk (Debian), or see the docstring")
    results = []
    with tempfile.TemporaryDirectory(prefix="server_load-") as tmp:
        for algorithm in args.algorithms.split(","):
            print(f"== {algorithm}", flush=True)
            results.append(bench_algorithm(algorithm, args, Path(tmp)))
    problems = [p for r in results for p in check(r)]
    report = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} {platform.machine()}, {psutil.cpu_count()} CPUs, "
                   f"{psutil.virtual_memory().total / 2**30:.0f} GiB",
        "load_average_after": os.getloadavg(),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "wrk": subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.splitlines()[0],
        "settings": vars(args), "results": results, "problems": problems,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"server_load-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"\n{'algorithm':<11}{'run':<10}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}  notes")
    for r in results:
        for kind, run in r["runs"].items():
            notes = ""
            if kind == "single" and "rss_warm_mb" in run:
                notes = (f"worker RSS {run['rss_warm_mb']} -> {run['rss_end_mb']} MB "
                         f"over {run['rss_requests_between']} req")
            if kind == "kill":
                notes = (f"/ping 200 after {run.get('ping_200_after_s') and round(run['ping_200_after_s'], 3)} s; "
                         f"replacement serving after "
                         f"{run.get('replacement_serving_after_s') and round(run['replacement_serving_after_s'], 2)} s")
            print(f"{r['algorithm']:<11}{kind:<10}{run['req_per_s']:>9.1f}{run['p50_ms']:>9.2f}{run['p99_ms']:>9.2f}"
                  f"{run['socket_errors'] + run['non_2xx']:>8}  {notes}")
    print(f"\nwrote {out}")
    for problem in problems:
        print("PROBLEM:", problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
