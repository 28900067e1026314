"""Benchmark support: Django set up against a throwaway PostgreSQL database.

Benchmarks never touch real data: they create `<db>_bench_<name>` from the migrations, use it, and
drop it on the way out.
"""

import contextlib
import os


@contextlib.contextmanager
def throwaway_database(name: str):
    """Migrate a fresh database for one benchmark and drop it afterwards; yields its name."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tunixrt.settings")
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        raise SystemExit("benchmarks need DATABASE_URL=postgres://… (make bench sets it)")
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_test_environment, teardown_test_environment

    setup_test_environment()
    connection.settings_dict["TEST"]["NAME"] = f"{connection.settings_dict['NAME']}_bench_{name}"
    original = connection.settings_dict["NAME"]
    created = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        yield created
    finally:
        connection.creation.destroy_test_db(original, verbosity=0)
        teardown_test_environment()


def database_url_for(name: str) -> str:
    """DATABASE_URL of the current connection, pointed at database `name` (for server subprocesses)."""
    from django.db import connection

    db = connection.settings_dict
    user = db["USER"] or ""
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return f"postgres://{user}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{name}"

