"""Database helpers shared by apps."""

from collections.abc import Iterable, Sequence

from django.db import connection


def copy_rows(model, columns: Sequence[str], rows: Iterable[Sequence]) -> None:
    """Insert rows with PostgreSQL COPY, which skips psycopg's per-parameter rewriting of a huge
    multi-row INSERT. Errors surface as Django's (IntegrityError on a unique clash), because the raw
    psycopg cursor alone would bypass Django's error translation."""
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(column) for column in columns)
    with connection.cursor() as cursor, connection.wrap_database_errors, \
            cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
