"""System checks for misconfiguration, with stable ids (README "Configuration" lists them)."""

from django.conf import settings
from django.core.checks import Error, Warning


def check_secret_key(app_configs, **kwargs):
    if settings.SECRET_KEY == settings.INSECURE_DEMO_SECRET_KEY and not settings.DEMO_MODE:
        return [
            Error(
                "SECRET_KEY is not set, so the built-in demo key is in use outside demo mode.",
                hint="Set SECRET_KEY to a long random value, or TUNIXRT_DEMO=1 for a local demo.",
                id="tunixrt.E001",
            )
        ]
    return []


def check_debug_outside_demo(app_configs, **kwargs):
    if settings.DEBUG and not settings.DEMO_MODE and settings.DATABASE_URL:
        return [
            Warning(
                "DEBUG is on while a production database (DATABASE_URL) is configured.",
                hint="Unset DEBUG in production; it leaks settings and stack traces.",
                id="tunixrt.W001",
            )
        ]
    return []


def check_rediai_settings(app_configs, **kwargs):
    if settings.REDIAI_MODE not in ("mock", "real"):
        return [Error(f"REDIAI_MODE={settings.REDIAI_MODE!r} is not 'mock' or 'real'.", id="tunixrt.E002")]
    if settings.REDIAI_MODE == "real" and not settings.REDIAI_BASE_URL.startswith(("http://", "https://")):
        return [
            Error(
                "REDIAI_MODE=real needs REDIAI_BASE_URL (http:// or https://).",
                hint="Point it at the RediAI-compatible service, or use REDIAI_MODE=mock.",
                id="tunixrt.E003",
            )
        ]
    return []


def check_read_cache_is_shared(app_configs, **kwargs):
    caching = settings.READ_CACHE_SECONDS > 0 or settings.API_KEY_CACHE_SECONDS > 0
    if caching and not settings.CACHE_URL:
        return [
            Warning(
                "Read or API-key caching is on without a shared cache (CACHE_URL is not set).",
                hint="Each process would keep its own copy and miss other processes' writes and revocations: "
                     "set CACHE_URL=redis://…, or READ_CACHE_SECONDS=0 and API_KEY_CACHE_SECONDS=0.",
                id="tunixrt.W002",
            )
        ]
    return []


def check_artifact_store(app_configs, **kwargs):
    """A store URL names an absolute folder or a protocol whose fsspec driver is installed (s3:// needs
    s3fs, pinned in requirements.txt)."""
    url = settings.ARTIFACT_STORE_URL
    if not url:
        return []
    import fsspec

    protocol, _, rest = url.partition("://") if "://" in url else ("file", "", url)
    if protocol == "file" and not rest.startswith("/"):
        return [Error(f"ARTIFACT_STORE_URL={url!r} is not an absolute folder.",
                      hint="Use /mnt/shared/tunixrt, file:///mnt/shared/tunixrt or s3://bucket/prefix.",
                      id="tunixrt.E004")]
    try:
        fsspec.get_filesystem_class(protocol)
    except (ImportError, ValueError) as exc:
        return [Error(f"ARTIFACT_STORE_URL uses {protocol}://, which this install cannot open: {exc}",
                      hint="Use a mounted folder, or s3:// (s3fs) for S3-compatible stores (GCS: its S3 "
                           "XML API with HMAC keys).", id="tunixrt.E004")]
    return []
