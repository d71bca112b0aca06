"""Content negotiation: the request type from Content-Type, the response type from Accept
(werkzeug's MIMEAccept), the predictor's declarations and SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from sagetext.data.media_types import CSV, JSON, JSONLINES, RECORDIO
from sagetext.errors import ClientError, UnsupportedContentType
from sagetext.serving.negotiation import negotiate, request_type, response_type

ALL = (JSON, JSONLINES, CSV, RECORDIO)
NTM_LIKE = (JSON, JSONLINES, RECORDIO)


# ---- Content-Type ---------------------------------------------------------------------------

@pytest.mark.parametrize("header, expected", [
    (None, JSON),  # SageMaker's legacy rule: missing means JSON
    ("", JSON),
    (";;;", JSON),
    ("Application/JSON; charset=utf-8", JSON),
    ("application/x-jsonlines", JSONLINES),
    ("text/csv; label_size=0", CSV),
])
def test_request_type_is_canonical(header, expected):
    assert request_type({media: (JSON,) for media in ALL}, header) == expected


def test_a_request_type_the_model_does_not_take_is_415_listing_what_it_takes():
    with pytest.raises(UnsupportedContentType) as raised:
        request_type({JSON: (JSON,), JSONLINES: (JSONLINES,)}, "text/csv; label_size=0")
    assert raised.value.status == 415
    assert raised.value.message == ("Content-Type 'text/csv; label_size=0' is not accepted by this model; "
                                    "it accepts application/json, application/jsonlines")


# ---- Accept: what the old list-based negotiation answered, unchanged ---------------------------

@pytest.mark.parametrize("answers, accept, expected", [
    (NTM_LIKE, None, JSON),
    (NTM_LIKE, "", JSON),
    (NTM_LIKE, "*/*", JSON),
    (NTM_LIKE, "*", JSON),
    (NTM_LIKE, "application/json", JSON),
    (NTM_LIKE, "text/html, application/x-recordio-protobuf", RECORDIO),  # the first it can answer
    (ALL, "text/csv;q=0.5, application/jsonlines", JSONLINES),  # by quality, not order
    ((CSV, JSON), "text/csv;q=0.5, application/jsonlines", CSV),
    (ALL, "application/json;q=0, text/csv", CSV),  # q=0 rules a type out
    (ALL, "application/jsonlines, */*;q=0.1, text/csv;q=0.05", JSONLINES),
    (NTM_LIKE, "application/jsonlines, application/json", JSONLINES),  # equal q: the client's order
    (NTM_LIKE, "application/json, application/jsonlines", JSON),
    (NTM_LIKE, "application/json-lines", JSONLINES),  # aliases
    (NTM_LIKE, "text/html;q=abc, application/json;q=0.9", JSON),  # an invalid q drops its entry
    ((JSON, CSV), "TEXT/CSV; charset=utf-8", CSV),  # parameters do not keep a range from matching
    ((JSON, CSV), "text/*", CSV),
    (NTM_LIKE, "application/*", JSON),
    (NTM_LIKE, "text/html, */*;q=0.5", JSON),  # nothing listed it can answer, but "or anything"
    ((JSONLINES,), "application/json, */*", JSONLINES),
])
def test_response_type(answers, accept, expected):
    assert response_type(answers, accept) == expected


@pytest.mark.parametrize("accept", ["text/html", "image/png, text/html", "application/x-unknown;q=1, */*;q=0",
                                    "application/json;q=0, application/jsonlines;q=0"])
def test_nothing_acceptable_is_406_listing_what_the_model_answers(accept):
    with pytest.raises(ClientError) as raised:
        response_type((JSON, JSONLINES), accept, "", JSON)
    assert raised.value.status == 406
    assert raised.value.message == (f"Accept {accept!r} cannot be met for Content-Type application/json; "
                                    "this model answers it with application/json, application/jsonlines")


@pytest.mark.parametrize("accept, default_accept, expected", [
    (None, JSONLINES, JSONLINES),  # SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT for a missing Accept
    ("*/*", JSONLINES, JSONLINES),  # ... and for */*
    (None, CSV, JSON),  # a default it cannot answer: the predictor's own
    ("application/json", JSONLINES, JSON),  # an explicit choice beats the default
    ("text/csv, */*", JSONLINES, JSONLINES),
    ("text/csv, */*", "", JSON),
])
def test_default_accept(accept, default_accept, expected):
    assert response_type((JSON, JSONLINES, RECORDIO), accept, default_accept) == expected


# ---- Accept: where q-values and ranges now count as RFC 9110 says (the old parser differed) ----

@pytest.mark.parametrize("answers, accept, default_accept, expected", [
    # A type ranked below */* is less wanted than anything else (before: treated as "anything",
    # so the default). The most specific range gives a type its quality.
    ((JSON, JSONLINES), "*/*, application/json;q=0.5", "", JSONLINES),
    ((CSV, JSON), "application/jsonlines, */*;q=0.1, text/csv;q=0.05", "", JSON),
    # */* minus one type (before: the excluded type, as if Accept were missing).
    ((JSON, JSONLINES), "*/*, application/json;q=0", "", JSONLINES),
    # type/* leaves the choice to the server, so the default setting applies (before: the first
    # supported type of that kind).
    (NTM_LIKE, "application/*", RECORDIO, RECORDIO),
    # An exact range beats a wildcard of the same quality (before: the order of the header).
    (NTM_LIKE, "application/*, application/jsonlines", "", JSONLINES),
    # Every entry invalid: as if Accept were missing (before: "text/html" kept, so 406).
    (NTM_LIKE, "text/html;q=abc", "", JSON),
    (NTM_LIKE, "text/html;q=2", "", JSON),
])
def test_response_type_follows_rfc_quality_rules(answers, accept, default_accept, expected):
    assert response_type(answers, accept, default_accept) == expected


def test_only_refused_types_is_406():
    """``application/json;q=0`` alone refuses JSON (before: read as no Accept, so JSON)."""
    with pytest.raises(ClientError) as raised:
        response_type((JSON, JSONLINES), "application/json;q=0")
    assert raised.value.status == 406


# ---- the predictor's declarations ---------------------------------------------------------------

def test_a_predictor_that_does_not_honour_accept_gets_its_default():
    blazingtext = SimpleNamespace(answers={JSON: (JSON,), JSONLINES: (JSONLINES,)}, honours_accept=False)
    assert negotiate(blazingtext, JSONLINES, "text/html", JSON) == JSONLINES
    assert negotiate(blazingtext, JSON, "application/jsonlines;q=0", JSONLINES) == JSON
    strict = SimpleNamespace(answers=blazingtext.answers, honours_accept=True)
    with pytest.raises(ClientError):
        negotiate(strict, JSONLINES, "text/html", JSON)
    assert negotiate(strict, JSONLINES, None, JSON) == JSONLINES
