from rest_framework import pagination


class LimitOffsetPagination(pagination.LimitOffsetPagination):
    """`?limit=&offset=` -> {count, next, previous, results}; limit capped so no page is huge."""

    default_limit = 50
    max_limit = 500
