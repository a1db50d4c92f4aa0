import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()

# The hot API endpoints skip the middleware only pages need (config.apilane).
from config.apilane import ApiLane  # noqa: E402 - needs the settings set up above

application = ApiLane(application)
