import json

from django.conf import settings
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import BaseParser, JSONParser


class RequestTooLarge(APIException):
    status_code = 413
    default_detail = "The request body is too large."
    default_code = "request_too_large"


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


class BoundedJSONParser(JSONParser):
    """Strict JSON (no NaN/Infinity); never reads more than MAX_REQUEST_BYTES."""

    def parse(self, stream, media_type=None, parser_context=None):
        return parse_bounded(stream, settings.MAX_REQUEST_BYTES)


class BatchJSONParser(BaseParser):
    """POST /api/schedule-batch: the same JSON, up to BATCH_MAX_REQUEST_BYTES.

    Not a JSONParser on purpose: DRF reads request.body for those, which Django
    caps at DATA_UPLOAD_MAX_MEMORY_SIZE (= MAX_REQUEST_BYTES); this one gets the
    raw stream and applies its own, larger bound.
    """

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        return parse_bounded(stream, settings.BATCH_MAX_REQUEST_BYTES)


def parse_bounded(stream, limit: int):
    raw = stream.read(limit + 1) if stream is not None else b""
    if len(raw) > limit:
        raise RequestTooLarge(f"The request body is larger than {limit} bytes.")
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise ParseError(f"The request body is not valid JSON ({exc}).") from None
