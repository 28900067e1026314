import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tunixrt.settings")
application = get_wsgi_application()

from tunixrt.startup import refuse_insecure_secret_key  # noqa: E402 - needs the configured settings

refuse_insecure_secret_key()
