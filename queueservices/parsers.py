import json

from django.conf import settings
from rest_framework.exceptions import APIException, ParseError, ValidationError
from rest_framework.parsers import BaseParser, JSONParser


class RequestTooLarge(APIException):
    status_code = 413
    default_detail = "The request body is too large."
    default_code = "request_too_large"


def too_large(limit: int) -> RequestTooLarge:
    return RequestTooLarge(f"The request body is larger than {limit} bytes.")


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


class DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    """An object whose keys are all different (json's object_pairs_hook).

    Python keeps the last of two equal keys, other readers the first or both: a
    body they read apart (a job filed under one workspace by one, another by the
    next) is refused, at any depth. Keys are compared unescaped ("a" = "\\u0061").
    """
    found = dict(pairs)
    if len(found) != len(pairs):
        seen = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKey(key)
            seen.add(key)
    return found


class BoundedJSONParser(JSONParser):
    """Strict JSON (no NaN/Infinity, no key twice in an object); never reads more
    than MAX_REQUEST_BYTES."""

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


def _nul_at(value, path: str) -> str | None:
    """Where the first NUL is (a dotted path, "" at the top), or None."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = ((str(n), item) for n, item in enumerate(value))
    else:
        return None
    for key, item in items:
        here = f"{path}.{key}" if path else key
        if "\x00" in key:
            return here
        if (found := _nul_at(item, here)) is not None:
            return found
    return None


def parse_bounded(stream, limit: int):
    raw = stream.read(limit + 1) if stream is not None else b""
    if len(raw) > limit:
        raise too_large(limit)
    return parse_json(raw)


def parse_json(raw: bytes):
    """The strict JSON in `raw`, or DRF's ParseError / ValidationError."""
    try:
        text = raw.decode("utf-8")
        data = json.loads(
            text, parse_constant=_reject_constant, object_pairs_hook=_unique_keys
        )
        # PostgreSQL stores no NUL in text or jsonb (a 500, not an answer): refused
        # in any string, key or value, at any depth. The walk only when one may be.
        if "\\u0000" in text and (where := _nul_at(data, "")) is not None:
            where = where.replace("\x00", "\\u0000") or "body"
            message = f"No string may hold a NUL character (\\u0000): {where}."
            raise ValidationError({where.split(".")[0]: [message]})
        return data
    except DuplicateKey as exc:
        key = json.dumps(exc.args[0][:100], ensure_ascii=False)
        message = f"The key {key} appears twice in one object: give each key once."
        raise ValidationError({"body": [message]}) from None
    except (ValueError, RecursionError) as exc:
        raise ParseError(f"The request body is not valid JSON ({exc}).") from None
