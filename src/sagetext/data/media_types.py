"""The media types sagetext reads and writes, their other spellings, and the one parser of a
Content-Type value (an HTTP header, or a training channel's ``ContentType``).

Training (``data.text``, ``data.bow``) and serving (``serving.negotiation``, ``serving.codecs``)
name formats with these constants and compare what ``parse`` returns, so every part of the
package agrees on what ``Application/JSON; charset=utf-8`` or ``application/x-jsonlines`` means.

``parse`` is werkzeug's ``parse_options_header`` (werkzeug comes with Flask), which handles
quoted parameter values and stray separators, plus what SageMaker's clients need on top: the
type lowercased and spelled canonically (``ALIASES``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

JSON = "application/json"
JSONLINES = "application/jsonlines"
CSV = "text/csv"
RECORDIO = "application/x-recordio-protobuf"
# RecordIO framing around any payload: Pipe mode's RecordWrapperType RecordIO, augmented manifests.
RECORDIO_FRAMED = "application/x-recordio"
TEXT = "text/plain"
OCTET_STREAM = "application/octet-stream"
ANY = "*/*"

# Other spellings seen in the wild, mapped to the canonical name.
ALIASES: Mapping[str, str] = MappingProxyType({
    "application/json-lines": JSONLINES,
    "application/x-jsonlines": JSONLINES,
    "application/jsonl": JSONLINES,
})


@dataclass(frozen=True)
class MediaType:
    """A parsed Content-Type: ``name`` canonical and lowercase ('' when the value names no
    type), ``params`` with lowercase names (``charset``, ``label_size``, ...)."""

    name: str
    params: Mapping[str, str] = field(default_factory=dict)


def parse(header: str | None) -> MediaType:
    """``Text/CSV; label_size=0`` -> ``MediaType("text/csv", {"label_size": "0"})``; aliases
    resolved; ``MediaType("")`` for a missing, blank or parameter-only value."""
    if not header:
        return MediaType("")
    from werkzeug.http import parse_options_header  # here: a training job that never parses a header skips it

    name, params = parse_options_header(header)
    name = name.strip().lower()
    return MediaType(ALIASES.get(name, name), MappingProxyType({k.lower(): v for k, v in params.items()}))


def media_type(header: str | None) -> str:
    """The canonical media type of a Content-Type value, parameters dropped ('' for none)."""
    return parse(header).name
