import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()

# The hot API endpoints skip the middleware only pages need (config.apilane).
from config.apilane import ApiLane  # noqa: E402 - needs the settings set up above

application = ApiLane(application)

# Start-up's objects stay: the collector stops walking them (jobs.processes.heap).
from jobs.processes.heap import freeze_startup_heap  # noqa: E402

freeze_startup_heap()
