"""The hot API endpoints' own middleware chain.

Schedule, batch and job-status requests carry an API key, never a session,
cookie, form or static file: the middleware for those (WhiteNoise, sessions,
CSRF, auth, messages) only costs them time, 12% of a schedule request's CPU
(cProfile). ApiLane hands those paths to a second Django handler built with
settings.API_MIDDLEWARE (the headers every answer gets: security, CORS, frame
options, Content-Length) and everything else to the usual one. Both are Django's
WSGIHandler: same signals, same URLconf, same views and error handlers.

The lean handler's plain schedule and job-status requests are answered by
queueservices.lean.FastLane before they reach it.

Before either, a URL or headers over MAX_URL_BYTES / MAX_HEADER_BYTES are refused
in the API's error shape, and a chunked body is read (up to the path's body limit)
and given a Content-Length (config.limits).
"""

import re
from contextlib import contextmanager

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler

from config.limits import HeadLimits, read_chunked
from queueservices import views
from queueservices.lean import FastLane, Route

HOT_PATHS = re.compile(r"^/api/(schedule-(sms|email|batch)|job-status/)")
BATCH_PATH = re.compile(r"^/api/schedule-batch/?$")


class ApiLane:
    """A WSGI application: hot API paths to a lean handler, the rest to `full`."""

    def __init__(self, full: WSGIHandler):
        self.full = full
        self.limits = HeadLimits()
        with _middleware(settings.API_MIDDLEWARE):
            self.lean = fast_lane(WSGIHandler())

    def __call__(self, environ, start_response):
        refused = self.limits.refuse(environ, start_response)
        if refused is not None:
            return refused
        path = environ.get("PATH_INFO", "")
        limit = settings.MAX_REQUEST_BYTES
        if BATCH_PATH.match(path):
            limit = settings.BATCH_MAX_REQUEST_BYTES
        refused = read_chunked(environ, start_response, limit)
        if refused is not None:
            return refused
        lane = self.lean if HOT_PATHS.match(path) else self.full
        return lane(environ, start_response)


def fast_lane(django) -> FastLane:
    """FastLane on the schedule and job-status URLs (queueservices.urls), with
    and without their optional trailing slash."""
    exact = {}
    for name, view in (
        ("sms", views.ScheduleSmsView),
        ("email", views.ScheduleEmailView),
    ):
        route = Route(view, "POST")
        exact[f"/api/schedule-{name}"] = exact[f"/api/schedule-{name}/"] = route
    return FastLane(django, exact, Route(views.JobStatusView, "GET"))


@contextmanager
def _middleware(paths: list[str]):
    # Django's handler reads settings.MIDDLEWARE when it is built, and has no
    # other way to be given a list: set it for that moment (at start-up, before
    # any request or thread).
    full = settings.MIDDLEWARE
    settings.MIDDLEWARE = paths
    try:
        yield
    finally:
        settings.MIDDLEWARE = full
