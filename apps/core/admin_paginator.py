from django.core.paginator import Paginator
from django.db import connection
from django.utils.functional import cached_property


class EstimatedCountPaginator(Paginator):
    """Admin paginator that never runs COUNT(*) over a whole big table.

    Unfiltered lists on PostgreSQL use the planner's row estimate (pg_class.reltuples); filtered
    lists, small tables and SQLite count exactly.
    """

    exact_below = 10_000

    @cached_property
    def count(self):
        query = self.object_list.query
        if connection.vendor == "postgresql" and not query.where:
            with connection.cursor() as cursor:
                cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE relname = %s",
                               [self.object_list.model._meta.db_table])
                row = cursor.fetchone()
            if row and row[0] >= self.exact_below:
                return int(row[0])
        return super().count
