"""Run the real server (gunicorn through ``sagetext.serving.gunicorn.serve``) for one model:
``python serve_model.py ALGORITHM MODEL_DIR``; settings come from the environment."""

from __future__ import annotations

import sys
from pathlib import Path

from sagetext.serving.gunicorn import serve

if __name__ == "__main__":
    serve(sys.argv[1], Path(sys.argv[2]))
