from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from apps.core.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key for a user and print it once (it is stored hashed)."

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True, help="username that owns the key")
        parser.add_argument("--name", required=True, help="label shown in the admin")
        parser.add_argument("--scope", choices=["read", "write"], default="read")
        parser.add_argument("--expires-days", type=int, default=None, help="days until the key expires")

    def handle(self, *args, **options):
        user = get_user_model().objects.filter(username=options["user"]).first()
        if user is None:
            raise CommandError(f"No user named {options['user']!r}.")
        days = options["expires_days"]
        if days is not None and days <= 0:
            raise CommandError("--expires-days must be a positive number of days.")
        expires_at = timezone.now() + timedelta(days=days) if days else None
        _, token = api_key_create(user=user, name=options["name"], scope=options["scope"], expires_at=expires_at)
        self.stdout.write(token)
