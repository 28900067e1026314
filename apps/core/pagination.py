from rest_framework import pagination

from apps.core.validation import refuse_unknown_parameters


class LimitOffsetPagination(pagination.LimitOffsetPagination):
    """`?limit=&offset=` -> {count, next, previous, results}; limit capped so no page is huge.

    A list takes only its pagination parameters and the filters its view declares
    (`query_serializer_class`); anything else is a 400 naming it."""

    default_limit = 50
    max_limit = 500

    def paginate_queryset(self, queryset, request, view=None):
        check_list_parameters(request, view)
        return super().paginate_queryset(queryset, request, view)


def check_list_parameters(request, view) -> None:
    declared = getattr(view, "query_serializer_class", None)
    filters = list(declared().fields) if declared is not None else []
    refuse_unknown_parameters(request.query_params, [*filters, "limit", "offset"])
