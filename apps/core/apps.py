from django.apps import AppConfig
from django.core import checks


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"
    verbose_name = "Core: API keys and health"

    def ready(self):
        from apps.core import checks as core_checks
        from apps.core import signals  # noqa: F401 (connects the API-key cache bookkeeping)

        checks.register(core_checks.check_secret_key, checks.Tags.security, deploy=False)
        checks.register(core_checks.check_debug_outside_demo, checks.Tags.security)
        checks.register(core_checks.check_rediai_settings)
        checks.register(core_checks.check_llm_judge_settings)
        checks.register(core_checks.check_read_cache_is_shared)
        checks.register(core_checks.check_artifact_store)
