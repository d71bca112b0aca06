"""The one exception type for problems a user can cause and fix.

Training reports a ``ClientError`` as ``ClientError: <message>`` in ``output/failure``; the
server answers it with its ``status`` (4xx) and the message as JSON. Anything else that goes
wrong is our fault and is reported as an ``AlgorithmError``.
"""

from __future__ import annotations


class ClientError(Exception):
    """A bad hyperparameter, channel, data line or request; the message says which and why."""

    status: int = 400

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class UnsupportedContentType(ClientError):
    status = 415


class PayloadTooLarge(ClientError):
    status = 413
