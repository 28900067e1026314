"""ASGI entry point: serves the run log stream (async SSE) in production, and everything in `make serve`.

In DEBUG (the demo) it also serves the admin's static files, as runserver would.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tunixrt.settings")
application = get_asgi_application()

from django.conf import settings  # noqa: E402 - settings are configured by get_asgi_application()

from tunixrt.startup import refuse_insecure_secret_key  # noqa: E402

refuse_insecure_secret_key()

if settings.DEBUG:
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    application = ASGIStaticFilesHandler(application)
