import json

from django.conf import settings
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import JSONParser


class RequestTooLarge(APIException):
    status_code = 413
    default_detail = "The request body is too large."
    default_code = "request_too_large"


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


class BoundedJSONParser(JSONParser):
    """Strict JSON (no NaN/Infinity); never reads more than MAX_REQUEST_BYTES."""

    limit_setting = "MAX_REQUEST_BYTES"

    def parse(self, stream, media_type=None, parser_context=None):
        limit = getattr(settings, self.limit_setting)
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise RequestTooLarge(f"The request body is larger than {limit} bytes.")
        try:
            return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
        except (ValueError, RecursionError) as exc:
            raise ParseError(f"The request body is not valid JSON ({exc}).") from None


class BatchJSONParser(BoundedJSONParser):
    """POST /api/schedule-batch: up to BATCH_MAX_MESSAGES messages in one body."""

    limit_setting = "BATCH_MAX_REQUEST_BYTES"
