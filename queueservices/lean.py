"""A cheaper dispatch for the hot API views: the same view code, less machinery.

DRF's dispatch wraps each request in a Request, negotiates parser and renderer,
instantiates authenticators and permissions and renders through a Response: a
fifth of a schedule request's CPU (cProfile). For the plain requests clients send
(JSON in, JSON out, no query string), LeanAPIView runs the view's own handler on
the Django request instead, with `request.data` and `request.auth` set as DRF sets
them, and writes the JSON itself, byte for byte as DRF's JSONRenderer.

Everything else, and every request the lean path would answer differently, goes
through DRF's dispatch: other methods (OPTIONS, 405), other Accept or Content-Type
headers, a refused or missing key. Errors the handler raises are answered by
DRF's own handle_exception and renderer, so every error keeps its exact shape.
"""

import json
from functools import lru_cache

from django.conf import settings
from django.http import HttpResponse
from rest_framework.response import Response
from rest_framework.views import APIView

from queueservices.auth import ApiKeyAuthentication, ApiKeyWhenRequired
from queueservices.parsers import parse_bounded

# Media ranges that DRF's only renderer, JSONRenderer, matches.
JSON_RANGES = frozenset({"*/*", "application/*", "application/json"})
_AUTH = ApiKeyAuthentication()
_PERMISSION = ApiKeyWhenRequired()


class LeanAPIView(APIView):
    """An APIView whose `lean_methods` take the lean path when they can."""

    lean_methods: frozenset[str] = frozenset()

    def dispatch(self, request, *args, **kwargs):
        if request.method not in self.lean_methods or not self._plain(request):
            return super().dispatch(request, *args, **kwargs)
        # A wrong key raises, a missing one is refused: DRF answers both.
        try:
            credentials = _AUTH.authenticate(request)
        except Exception:  # noqa: BLE001 - DRF's dispatch raises and answers it
            return super().dispatch(request, *args, **kwargs)
        request.auth = credentials[1] if credentials else None
        if not _PERMISSION.has_permission(request, self):
            return super().dispatch(request, *args, **kwargs)
        self.args, self.kwargs = args, kwargs
        handler = getattr(self, request.method.lower())
        try:
            if request.method == "POST":
                request.data = parse_bounded(request, settings.MAX_REQUEST_BYTES)
            response = handler(request, *args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - answered as DRF answers it
            return self._error(request, exc)
        return self._render(response)

    def _plain(self, request) -> bool:
        """JSON in (a body of known length), JSON out, no query string: the
        requests whose DRF answer the lean path knows."""
        meta = request.META
        if not json_accepted(meta.get("HTTP_ACCEPT")) or meta.get("QUERY_STRING"):
            return False
        if request.method != "POST":
            return True
        return request.content_type == "application/json" and _length(meta) > 0

    def _render(self, response: Response) -> HttpResponse:
        # As DRF's JSONRenderer with the default settings (UNICODE_JSON,
        # COMPACT_JSON, STRICT_JSON), and the Allow header DRF's views add.
        text = json.dumps(
            response.data, ensure_ascii=False, allow_nan=False, separators=(",", ":")
        )
        text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
        answer = HttpResponse(
            text.encode(), status=response.status_code, content_type="application/json"
        )
        answer["Allow"] = ", ".join(self.allowed_methods)
        for name, value in response.items():
            # A Response starts with Django's text/html Content-Type; DRF replaces it.
            if name != "Content-Type":
                answer[name] = value
        return answer

    def _error(self, request, exc: Exception):
        """DRF's answer to `exc`: its exception handler, negotiation and renderer."""
        drf_request = self.initialize_request(request, *self.args, **self.kwargs)
        drf_request._full_data = getattr(request, "data", {})
        drf_request._authenticator, drf_request._auth = None, request.auth
        drf_request._user = None
        # As DRF's initial() does before any handler runs (DEBUG tracebacks read it).
        self.format_kwarg = self.get_format_suffix(**self.kwargs)
        negotiated = self.perform_content_negotiation(drf_request)
        drf_request.accepted_renderer, drf_request.accepted_media_type = negotiated
        self.request = drf_request
        self.headers = self.default_response_headers
        response = self.handle_exception(exc)
        return self.finalize_response(drf_request, response, *self.args, **self.kwargs)


@lru_cache(maxsize=256)
def json_accepted(accept: str | None) -> bool:
    """Whether DRF's negotiation would answer plain JSON to this Accept header:
    none, or one naming a JSON range without parameters (axios sends
    "application/json, text/plain, */*"). A parameter such as `indent` changes
    what JSONRenderer writes, and an empty header is a 406 to DRF: those go
    through DRF."""
    if accept is None:
        return True
    matched = False
    for item in accept.split(","):
        media, _, params = item.partition(";")
        if media.strip().lower() not in JSON_RANGES:
            continue
        names = {p.partition("=")[0].strip().lower() for p in params.split(";")}
        if names - {"", "q"}:
            return False
        matched = True
    return matched


def _length(meta) -> int:
    try:
        return int(meta.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0
