"""Keep cached API keys (apps.core.selectors) in step with edits made anywhere, the admin included.

Only cache bookkeeping lives here. Permission changes made through a *group* are not tracked per
user; they apply when the cached entry expires (API_KEY_CACHE_SECONDS, 60 s by default).
"""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver

from apps.core.models import ApiKey
from apps.core.services import api_key_cache_forget

User = get_user_model()


@receiver([post_save, post_delete], sender=ApiKey, dispatch_uid="apikey-cache-key")
def _forget_key(sender, instance, **kwargs):
    api_key_cache_forget(key_ids=[instance.key_id])


def _forget_users_keys(user_id) -> None:
    if settings.API_KEY_CACHE_SECONDS <= 0:
        return  # every login saves the user; no query for keys when nothing is cached
    api_key_cache_forget(key_ids=list(ApiKey.objects.filter(user_id=user_id).values_list("key_id", flat=True)))


@receiver([post_save, post_delete], sender=User, dispatch_uid="apikey-cache-user")
def _forget_user(sender, instance, **kwargs):
    _forget_users_keys(instance.pk)


@receiver(m2m_changed, sender=User.groups.through, dispatch_uid="apikey-cache-groups")
@receiver(m2m_changed, sender=User.user_permissions.through, dispatch_uid="apikey-cache-perms")
def _forget_on_membership(sender, instance, action, reverse, pk_set, **kwargs):
    if not action.startswith("post_"):
        return
    if not reverse:
        _forget_users_keys(instance.pk)
    elif pk_set:
        # Changed from the group/permission side: instance is the group, pk_set the users.
        for user_id in pk_set:
            _forget_users_keys(user_id)
