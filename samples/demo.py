"""The README's demo: train BlazingText supervised on the bundled sample, serve the model
with the real server, send one request and print the answer.

Runs the same code paths as the container: ``sagetext train`` (the image's ``train``) and
``sagetext serve`` (the image's ``serve``).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

SAMPLE = Path(__file__).resolve().parent / "blazingtext"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_ping(url: str, server: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit("the server exited before answering /ping")
        try:
            with urllib.request.urlopen(url + "/ping", timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the server did not answer /ping in time")


def main() -> None:
    model_dir = Path(tempfile.mkdtemp(prefix="sagetext-demo-model-"))
    cli = [sys.executable, "-m", "sagetext"]
    print(f"== Training BlazingText (supervised) on {SAMPLE} ...", flush=True)
    subprocess.run(cli + ["train", "--algorithm", "blazingtext",
                          "--channel", f"train={SAMPLE / 'train.txt'}",
                          "--channel", f"validation={SAMPLE / 'validation.txt'}",
                          "-p", "mode=supervised", "-p", "epochs=10", "-p", "learning_rate=0.5",
                          "-p", "min_count=1", "-p", "vector_dim=10", "-p", "word_ngrams=2",
                          "-p", "buckets=100000",
                          "--model-dir", str(model_dir)], check=True)
    print(f"== Model files: {sorted(p.name for p in model_dir.iterdir())}", flush=True)
    port = free_port()
    server = subprocess.Popen(cli + ["serve", "--algorithm", "blazingtext", "--model-dir", str(model_dir),
                                     "--port", str(port)],
                              env={**__import__("os").environ, "SAGEMAKER_MODEL_SERVER_WORKERS": "1"})
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_ping(url, server)
        body = {"instances": ["the striker scored twice in the second half .",
                              "heavy rain and strong winds are expected tomorrow morning ."],
                "configuration": {"k": 2}}
        print(f"== POST {url}/invocations {json.dumps(body)}", flush=True)
        request = urllib.request.Request(url + "/invocations", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as reply:
            print(json.dumps(json.loads(reply.read()), indent=2))
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
