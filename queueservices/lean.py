"""The hot API requests answered without Django's request handler.

A schedule request spent a third of its CPU in Django's WSGI handler, URL
resolution, signals and middleware, and a fifth in DRF's dispatch (cProfile,
issue 12). For the requests clients really send (JSON in, JSON out, no query
string, no CORS origin), FastLane runs the view's own handler straight from the
WSGI environ, with `request.data` and `request.auth` set as DRF sets them, and
writes the answer and the headers the middleware would add.

Everything else goes to Django untouched: other methods, Accept or Content-Type
headers, a body that does not parse, a refused key. Errors the view raises are
handed to Django with the request (LeanAPIView answers them with DRF's exception
handler and renderer), so every error keeps its exact shape and is not run twice.
tests/test_lean_api.py asks each case both ways and compares the answers.
"""

import io
import re
from functools import lru_cache

from django.conf import settings
from django.core.signals import request_finished, request_started
from django.http.request import split_domain_port, validate_host
from rest_framework.views import APIView

from queueservices.auth import ApiKeyAuthentication, ApiKeyWhenRequired
from queueservices.parsers import parse_json
from queueservices.renderers import FastJSONRenderer

# Media ranges that the API's only renderer (DRF's JSONRenderer) matches.
JSON_RANGES = frozenset({"*/*", "application/*", "application/json"})
# What LeanAPIView reads back from the environ of a request FastLane handed over.
RAISED, DATA, AUTH = "queueservices.raised", "queueservices.data", "queueservices.auth"
_AUTH = ApiKeyAuthentication()
_PERMISSION = ApiKeyWhenRequired()


class LeanAPIView(APIView):
    """An APIView that also answers the errors its handler raised in FastLane."""

    def dispatch(self, request, *args, **kwargs):
        raised = request.META.pop(RAISED, None)
        if raised is None:
            return super().dispatch(request, *args, **kwargs)
        self.args, self.kwargs = args, kwargs
        request.data, request.auth = request.META.pop(DATA), request.META.pop(AUTH)
        return self._error(request, raised)

    def _error(self, request, exc: Exception):
        """DRF's answer to `exc`: its exception handler, negotiation and renderer."""
        drf_request = self.initialize_request(request, *self.args, **self.kwargs)
        drf_request._full_data = request.data
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


class PlainRequest:
    """What the hot views read of a request: META, data, auth, headers.get."""

    __slots__ = ("META", "data", "auth")

    def __init__(self, environ: dict):
        self.META = environ
        self.data = None
        self.auth = None

    @property
    def headers(self):
        return self

    def get(self, name: str, default=None):
        return self.META.get("HTTP_" + name.upper().replace("-", "_"), default)


class Route:
    """One hot endpoint: its view, the method FastLane takes, the Allow header."""

    def __init__(self, view_class: type[APIView], method: str):
        self.view_class = view_class
        self.method = method
        view = view_class()
        view.setup(None)  # as as_view() does: GET brings HEAD
        self.allow = ", ".join(view.allowed_methods)


class FastLane:
    """A WSGI application: the routes' plain requests here, the rest to `django`."""

    def __init__(self, django, exact: dict[str, Route], job_status: Route):
        self.django = django
        self.exact = exact
        self.job_status = job_status

    def __call__(self, environ, start_response):
        answer = self.answer(environ)
        if answer is None:
            return self.django(environ, start_response)
        status, headers, body = answer
        start_response(status, headers)
        return [body]

    def answer(self, environ: dict) -> tuple[str, list, bytes] | None:
        """The answer to a plain request to a route; None leaves it to Django
        (with its body, and any error the view raised, in the environ)."""
        route, kwargs = self._route(environ)
        if route is None or not _plain(environ, route.method):
            return None
        request = PlainRequest(environ)
        try:
            # A wrong key raises, a missing one is refused: DRF answers both.
            credentials = _AUTH.authenticate(request)
        except Exception:  # noqa: BLE001 - Django's dispatch raises and answers it
            return None
        request.auth = credentials[1] if credentials else None
        if not _PERMISSION.has_permission(request, None):
            return None
        if route.method == "POST":
            raw = _body(environ)
            if raw is None:
                return None
            try:
                request.data = parse_json(raw)
            except Exception:  # noqa: BLE001 - DRF's parser words the error
                return None
        # Django's request signals (its receivers close unusable DB connections).
        request_started.send(sender=FastLane, environ=environ)
        try:
            response = self._handle(route, request, kwargs)
        except Exception as exc:  # noqa: BLE001 - answered by LeanAPIView
            environ.update({RAISED: exc, DATA: request.data, AUTH: request.auth})
            return None
        finally:
            request_finished.send(sender=FastLane)
        return _rendered(response, route)

    def _route(self, environ) -> tuple[Route | None, dict]:
        path = environ.get("PATH_INFO", "")
        route = self.exact.get(path)
        if route is not None:
            return route, {}
        found = JOB_STATUS_PATH.fullmatch(path)
        if found is None:
            return None, {}
        return self.job_status, {"job_id": found[1]}

    def _handle(self, route: Route, request: PlainRequest, kwargs: dict):
        view = route.view_class()
        view.args, view.kwargs, view.request = (), kwargs, request
        return getattr(view, route.method.lower())(request, **kwargs)


# As the job-status URL pattern, for ids as the API writes them: anything else
# (a 404, a non-ASCII path) is Django's.
JOB_STATUS_PATH = re.compile(r"/api/job-status/([0-9a-fA-F-]{32,36})/?")


def _plain(environ: dict, method: str) -> bool:
    """A request whose answer FastLane knows: `method`, JSON in (a body of known
    length) and out, no query string, no Origin (CORS is the middleware's), plain
    HTTP to an allowed host, nothing a setting makes the middleware act on."""
    if environ.get("REQUEST_METHOD") != method or environ.get("QUERY_STRING"):
        return False
    if not json_accepted(environ.get("HTTP_ACCEPT")) or "HTTP_ORIGIN" in environ:
        return False
    if environ.get("wsgi.url_scheme") != "http" or not _host_allowed(environ):
        return False
    if settings.SECURE_SSL_REDIRECT or settings.DISALLOWED_USER_AGENTS:
        return False
    return method != "POST" or _json_body(environ.get("CONTENT_TYPE"))


@lru_cache(maxsize=64)
def _json_body(content_type: str | None) -> bool:
    # JSON, as the parser reads it (UTF-8): with no parameter or that charset.
    media, _, params = (content_type or "").partition(";")
    charset = params.replace(" ", "").lower()
    return media.strip().lower() == "application/json" and charset in (
        "",
        "charset=utf-8",
    )


def _host_allowed(environ) -> bool:
    # Django's request.get_host(), without X-Forwarded-Host (not set here).
    if settings.USE_X_FORWARDED_HOST or settings.USE_X_FORWARDED_PORT:
        return False
    host = environ.get("HTTP_HOST")
    if host is None:
        host, port = environ.get("SERVER_NAME", ""), environ.get("SERVER_PORT", "")
        host = host if port == "80" else f"{host}:{port}"
    return _allowed(host, tuple(settings.ALLOWED_HOSTS))


@lru_cache(maxsize=64)
def _allowed(host: str, allowed_hosts: tuple) -> bool:
    if settings.DEBUG and not allowed_hosts:
        allowed_hosts = (".localhost", "127.0.0.1", "[::1]")
    domain, _ = split_domain_port(host)
    return bool(domain) and validate_host(domain, allowed_hosts)


def _body(environ) -> bytes | None:
    """The body, when its length is given and within MAX_REQUEST_BYTES; put back
    for Django in case the request goes there after all."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    if not 0 < length <= settings.MAX_REQUEST_BYTES:
        return None
    raw = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(raw)
    return raw if len(raw) == length else None


def _rendered(response, route: Route) -> tuple[str, list, bytes]:
    """As the API's renderer writes response.data (queueservices.renderers) with
    the headers of the API's middleware (settings.API_MIDDLEWARE: security, CORS's
    Vary, frame options, Content-Length)."""
    body = FastJSONRenderer().render(response.data)
    headers = [
        ("Content-Type", "application/json"),
        ("Allow", route.allow),
        *[(k, v) for k, v in response.items() if k != "Content-Type"],
        ("X-Frame-Options", settings.X_FRAME_OPTIONS),
        ("Content-Length", str(len(body))),
        ("Vary", "origin"),
        *_security_headers(),
    ]
    return f"{response.status_code} {response.reason_phrase}", headers, body


def _security_headers() -> list[tuple[str, str]]:
    # SecurityMiddleware's answers to a plain-HTTP request, by its settings.
    headers = []
    if settings.SECURE_CONTENT_TYPE_NOSNIFF:
        headers.append(("X-Content-Type-Options", "nosniff"))
    referrer = settings.SECURE_REFERRER_POLICY
    if referrer:
        text = referrer if isinstance(referrer, str) else ",".join(referrer)
        headers.append(("Referrer-Policy", text))
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        coop = settings.SECURE_CROSS_ORIGIN_OPENER_POLICY
        headers.append(("Cross-Origin-Opener-Policy", coop))
    return headers


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
