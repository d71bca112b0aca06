"""Content negotiation for ``/invocations``, decided here once for every algorithm from what
its predictor declares: ``answers`` (request type -> the response types it can answer it
with, its default first) and ``honours_accept``.

Request type: the Content-Type value, parsed by ``data.media_types`` (parameters dropped,
aliases resolved); missing or naming no type means JSON, as in SageMaker's legacy worker. A
type the predictor does not take is a 415 that lists the ones it takes.

Response type: werkzeug parses the Accept header (``parse_accept_header`` into a
``MIMEAccept``; an entry with an invalid q is dropped, as werkzeug does) and each range is
spelled canonically, parameters dropped. Each type the predictor can answer gets the quality
of the most specific range that matches it (``type/*`` and ``*/*`` included; q=0 rules it
out), and the highest quality wins. Ties go to the type matched by the more specific range,
then by the range the client listed first, then to SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT, then
to the predictor's order. A missing Accept, or one without a valid range, counts as ``*/*``:
the default setting when the predictor can answer it, else the predictor's default. When no
type is acceptable, a 406 lists what the model answers for that request type. A predictor
that does not honour Accept (BlazingText answers in the request's type, whatever Accept says)
always gets its default.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from werkzeug.datastructures import MIMEAccept
from werkzeug.http import parse_accept_header

from sagetext.data import media_types
from sagetext.errors import ClientError, UnsupportedContentType

if TYPE_CHECKING:  # importing algorithms pulls in torch, which the gunicorn master avoids
    from sagetext.algorithms.base import Predictor


def request_type(answers: Mapping[str, tuple[str, ...]], header: str | None) -> str:
    """The canonical type of a request whose Content-Type is ``header``, or a 415 when the
    predictor declaring ``answers`` does not take it."""
    content_type = media_types.media_type(header) or media_types.JSON
    if content_type not in answers:
        raise UnsupportedContentType(
            f"Content-Type {header or content_type!r} is not accepted by this model; "
            f"it accepts {', '.join(answers)}")
    return content_type


def negotiate(predictor: Predictor, content_type: str, accept_header: str | None,
              default_accept: str = "") -> str:
    """The response type for a request of ``content_type`` (as ``request_type`` returned it)
    to ``predictor``, from its declarations and the Accept header."""
    answers = predictor.answers[content_type]
    if not predictor.honours_accept:
        return answers[0]
    return response_type(answers, accept_header, default_accept, content_type)


def response_type(answers: tuple[str, ...], accept_header: str | None, default_accept: str = "",
                  content_type: str = "") -> str:
    """The most acceptable of ``answers`` (default first) under the Accept header, ties
    broken as the module docstring says; a 406 when none is acceptable."""
    accept = accept_ranges(accept_header)
    ranked = []
    for position, media in enumerate(answers):
        # The first range matching ``media`` in werkzeug's order is the most specific one; among
        # equally specific ranges of equal quality the order is the client's.
        index = accept.find(media)
        quality = accept[index][1] if index >= 0 else 0
        if quality > 0:
            ranked.append((quality, -index, media == default_accept, -position, media))
    if not ranked:
        raise ClientError(
            f"Accept {accept_header!r} cannot be met for Content-Type {content_type or answers[0]}; "
            f"this model answers it with {', '.join(answers)}", status=406)
    return max(ranked)[-1]


def accept_ranges(header: str | None) -> MIMEAccept:
    """The Accept header's media ranges and qualities, most specific first (werkzeug's order,
    which keeps the client's among equals), each canonical with parameters dropped; ``*/*``
    when the header is missing or holds no valid range."""
    ranges = []
    for value, quality in parse_accept_header(header, MIMEAccept):
        media = media_types.media_type(value)
        media = media_types.ANY if media == "*" else media
        if "/" in media:
            ranges.append((media, quality))
    return MIMEAccept(ranges or [(media_types.ANY, 1)])
