"""Run the real server (gunicorn, ``sagetext.serving.gunicorn.serve``) around the echo
algorithm: ``python echo_server.py MODEL_DIR``. Settings come from the environment."""

from __future__ import annotations

import sys
from pathlib import Path

from sagetext import algorithms
from sagetext.serving.gunicorn import serve

if __name__ == "__main__":
    # Registered in this process only; the workers fork from it and inherit the entry.
    algorithms.MODULES["echo"] = "echo_algorithm"
    serve("echo", Path(sys.argv[1]))
