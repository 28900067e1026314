import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tunixrt.settings")

app = Celery("tunixrt")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.celeryd_init.connect
@signals.beat_init.connect
def _refuse_insecure_secret_key(**kwargs):
    """Celery logs and ignores exceptions in signal handlers; SystemExit is what stops a worker or beat."""
    from django.core.exceptions import ImproperlyConfigured

    from tunixrt.startup import refuse_insecure_secret_key

    try:
        refuse_insecure_secret_key()
    except ImproperlyConfigured as exc:
        raise SystemExit(f"tunix-rt: {exc}") from None
