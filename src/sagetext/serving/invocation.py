"""One request to a loaded model, bytes in and bytes out: what ``POST /invocations`` and
``sagetext predict`` share, so that a file gets exactly the answers the server would give.

``negotiate`` decides the request and response types from the predictor's declarations
(``serving.negotiation``: 415 and 406 as ``ClientError``); ``answer`` decodes the body
(``serving.codecs``), checks the instance count against the server's cap, calls
``predictor.predict`` and encodes the result.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sagetext.data.media_types import JSON, JSONLINES
from sagetext.errors import ClientError, PayloadTooLarge
from sagetext.serving import codecs, negotiation
from sagetext.serving.settings import ServerSettings, env_var

if TYPE_CHECKING:  # importing algorithms pulls in torch, which the gunicorn master avoids
    from sagetext.algorithms.base import Predictor


@dataclass(frozen=True)
class Types:
    request: str  # canonical media type of the body
    response: str  # canonical media type of the answer


def negotiate(predictor: Predictor, content_type: str | None, accept: str | None,
              default_accept: str = "") -> Types:
    """The request's type (a missing Content-Type means JSON) and the answer's type."""
    request = negotiation.request_type(predictor.answers, content_type)
    return Types(request, negotiation.negotiate(predictor, request, accept, default_accept))


def answer(predictor: Predictor, types: Types, body: bytes, settings: ServerSettings | None = None,
           configuration: Mapping[str, Any] | None = None) -> bytes:
    """The encoded answer to ``body``. With ``settings``, a body of more instances than
    ``max_instances_per_request`` is refused (413) before any prediction. ``configuration``
    (``sagetext predict -c``) is added to a JSON body's ``"configuration"`` object, or to each
    JSON Lines object, before the predictor sees it."""
    data = codecs.decode(types.request, body)
    if settings is not None:
        check_instance_count(codecs.instance_count(types.request, data), settings)
    if configuration:
        data = configured(types.request, data, configuration)
    return codecs.encode(types.response, predictor.predict(data, types.request, types.response))


def check_instance_count(count: int | None, settings: ServerSettings) -> None:
    limit = settings.max_instances_per_request
    if count is not None and count > limit:
        raise PayloadTooLarge(
            f"the request holds {count} instances, more than the {limit} this server answers per "
            f"request; send at most {limit} per request, or raise "
            f"{env_var('max_instances_per_request')} (each request must finish within "
            f"{env_var('timeout')}={settings.timeout} s); in a batch transform job, leave MaxPayloadInMB "
            f"and BatchStrategy unset (/execution-parameters gives what fits) or set a smaller MaxPayloadInMB")


def configured(request_type: str, data: Any, configuration: Mapping[str, Any]) -> Any:
    """``data`` with ``configuration`` merged in where each format carries it."""
    if request_type == JSON and isinstance(data, dict):
        given = data.get("configuration") or {}
        if not isinstance(given, dict):
            raise ClientError('"configuration" must be an object such as {"k": 2}')
        return {**data, "configuration": {**given, **configuration}}
    if request_type == JSONLINES:
        return [{**line, **configuration} if isinstance(line, dict) else line for line in data]
    raise ClientError(f"a configuration ({', '.join(configuration)}) can go into {JSON} and {JSONLINES} "
                      f"requests, not {request_type}")
