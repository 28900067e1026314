"""What every long-running entry point checks before it serves or works (WSGI, ASGI, Celery worker and beat).

`manage.py` reports the same problem as the system check `tunixrt.E001`; a server process has no such
check run, so it refuses here: outside demo mode nothing signs sessions or keys API-key hashes with the
public demo key.
"""

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

INSECURE_SECRET_KEY = (
    "SECRET_KEY is not set, so only the public demo key is available, and this is not demo mode. Set SECRET_KEY "
    "to a long random value (or TUNIXRT_DEMO=1 for a local demo); refusing to start."
)


def refuse_insecure_secret_key() -> None:
    # An exception, not SystemExit: gunicorn halts on a worker that fails to boot, but respawns one that exits.
    if settings.SECRET_KEY == settings.INSECURE_DEMO_SECRET_KEY and not settings.DEMO_MODE:
        raise ImproperlyConfigured(INSECURE_SECRET_KEY)
