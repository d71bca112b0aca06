"""The one table of media types and the one Content-Type parser, shared by training channels
and the server."""

from __future__ import annotations

import pytest

from sagetext.data import media_types
from sagetext.data.media_types import CSV, JSON, JSONLINES, RECORDIO, MediaType


@pytest.mark.parametrize("header, expected", [
    ("application/json", JSON),
    ("Application/JSON; charset=utf-8", JSON),
    ("text/csv; label_size=0", CSV),
    ("application/json-lines", JSONLINES),
    ("application/x-jsonlines", JSONLINES),
    ("application/jsonl", JSONLINES),
    ("  application/x-recordio-protobuf ", RECORDIO),
    ("application/x-recordio", media_types.RECORDIO_FRAMED),  # not an alias: framing, any payload
    ("", ""),
    (None, ""),
    (";;;", ""),
    ("; charset=utf-8", ""),
    ("a/b/c", "a/b/c"),  # unknown types come back as given, for the caller to refuse
])
def test_media_type_drops_parameters_and_resolves_aliases(header, expected):
    assert media_types.media_type(header) == expected


def test_parse_keeps_parameters_with_lowercase_names():
    assert media_types.parse('Text/CSV; Label_Size=1; charset="utf-8"') == MediaType(
        CSV, {"label_size": "1", "charset": "utf-8"})
    assert media_types.parse("application/x-jsonlines").params == {}


def test_aliases_name_only_canonical_types():
    canonical = {JSON, JSONLINES, CSV, RECORDIO}
    assert set(media_types.ALIASES.values()) <= canonical
    assert not canonical & set(media_types.ALIASES)
