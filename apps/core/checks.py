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


LLM_JUDGE_MODES = ("mock", "rediai", "openai")


def llm_judge_mode() -> str:
    """The llm_judge's grader: LLM_JUDGE_MODE, or when it is unset the one REDIAI_MODE implies. Read at
    call time (not folded into the settings) so that a test or a deployment that sets only REDIAI_MODE
    keeps its judge. Lives in core because the checks and /api/redi/health need it, and core imports no app."""
    if settings.LLM_JUDGE_MODE:
        return settings.LLM_JUDGE_MODE
    return "rediai" if settings.REDIAI_MODE == "real" else "mock"


def check_rediai_settings(app_configs, **kwargs):
    if settings.REDIAI_MODE not in ("mock", "real"):
        return [Error(f"REDIAI_MODE={settings.REDIAI_MODE!r} is not 'mock' or 'real'.", id="tunixrt.E002")]
    if llm_judge_mode() == "rediai" and not settings.REDIAI_BASE_URL.startswith(("http://", "https://")):
        return [
            Error(
                "The llm_judge's RediAI mode (REDIAI_MODE=real or LLM_JUDGE_MODE=rediai) needs REDIAI_BASE_URL "
                "(http:// or https://).",
                hint="Point it at the RediAI-compatible service, or use REDIAI_MODE=mock.",
                id="tunixrt.E003",
            )
        ]
    return []


def check_llm_judge_settings(app_configs, **kwargs):
    mode = llm_judge_mode()
    if mode not in LLM_JUDGE_MODES:
        return [Error(f"LLM_JUDGE_MODE={mode!r} is not one of {', '.join(LLM_JUDGE_MODES)}.",
                      hint="Leave it unset to follow REDIAI_MODE.", id="tunixrt.E005")]
    if mode != "openai":
        return []
    errors = []
    if not settings.LLM_JUDGE_BASE_URL.startswith(("http://", "https://")):
        errors.append(Error("LLM_JUDGE_MODE=openai needs LLM_JUDGE_BASE_URL (http:// or https://).",
                            hint="The server's API root, e.g. http://127.0.0.1:8000/v1 (/chat/completions "
                                 "is appended).", id="tunixrt.E006"))
    if not settings.LLM_JUDGE_MODEL.strip():
        errors.append(Error("LLM_JUDGE_MODE=openai needs LLM_JUDGE_MODEL.",
                            hint="The model the server grades with, e.g. reasoner@champion; it is part of "
                                 "the judge_key, so evaluations graded by other models never rank together.",
                            id="tunixrt.E007"))
    return errors


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
