"""Report how a training job ended: ``output/failure`` and the exit code.

A user's mistake is written as ``ClientError: <message>``, one paragraph with the actionable
sentence first (only 1024 characters reach FailureReason). Our own bugs are written as
``AlgorithmError: <exception>`` followed by the traceback. The first failure written wins, so
a worker's precise message is not overwritten by the launcher's summary.
"""

from __future__ import annotations

import os
import signal
import traceback

from sagetext.contract.paths import Paths
from sagetext.errors import ClientError

EXIT_FAILURE = 1
EXIT_STOPPED = 143  # 128 + SIGTERM: stopped on request, state saved
EXIT_INTERRUPTED = 130  # 128 + SIGINT (Ctrl-C): stopped the same way
STOPPED_EXIT_CODES = (EXIT_STOPPED, EXIT_INTERRUPTED)


def stopped_exit_code(signum: int) -> int:
    """The shell's convention for a process ended by a signal: 128 + its number."""
    return 128 + int(signal.Signals(signum))


def describe(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return "ClientError: " + " ".join(exc.message.split())
    detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return f"AlgorithmError: {type(exc).__name__}: {exc}\n\n{detail}"


def write(paths: Paths, exc: BaseException) -> str:
    """Write the failure file unless one exists already; return the text describing ``exc``."""
    text = describe(exc)
    paths.output_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(paths.failure_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return text
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    return text


def write_success(paths: Paths) -> None:
    paths.output_dir.mkdir(parents=True, exist_ok=True)
    paths.success_file.touch()
