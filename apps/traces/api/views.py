from functools import cached_property

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core import readcache
from apps.core.authentication import actor_label
from apps.core.errors import Conflict, Invalid
from apps.core.pagination import check_list_parameters
from apps.traces import requests, selectors, services
from apps.traces.api import serializers as s

# The list's filter parameters, read once: building the serializer per request costs more than a cache hit.
LIST_FILTERS = tuple(s.TraceQuerySerializer().fields)


class TraceListCreateView(generics.ListAPIView):
    serializer_class = s.TraceListSerializer
    query_serializer_class = s.TraceQuerySerializer
    write_permission = "traces.add_trace"

    @extend_schema(parameters=[s.TraceQuerySerializer])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @cached_property
    def filters(self) -> dict:
        query = s.TraceQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return query.validated_data

    def get_queryset(self):
        # The list shows no steps or meta; not loading them saves decoding 50 JSON documents a page.
        return selectors.trace_list(user=self.request.user, filters=self.filters).defer("steps", "meta")

    def list(self, request, *args, **kwargs):
        check_list_parameters(request, self)  # before the cache, which keys by the known filters only
        paginator = self.paginator
        limit, offset = paginator.get_limit(request), paginator.get_offset(request)
        # Keyed by the known filter parameters only (made-up ones cannot multiply the entries) and
        # validated on a miss: a bad value raises a 400 there and is never cached.
        filter_key = sorted((name, request.query_params.getlist(name)) for name in LIST_FILTERS
                            if name in request.query_params)
        key = f"list:{selectors.visibility_scope(request.user)}:{limit}:{offset}:{filter_key}"

        def count_and_page():
            page = paginator.paginate_queryset(self.get_queryset(), request, view=self)
            return paginator.count, JSONRenderer().render(self.get_serializer(page, many=True).data)

        # Cached as rendered JSON: decoding and re-encoding 50 rows cost more than fetching them.
        count, results = readcache.cached(selectors.TRACE_READS, key, count_and_page)
        # The links depend on the request's host, so they are built per request, not cached.
        paginator.request, paginator.limit, paginator.offset, paginator.count = request, limit, offset, count
        envelope = JSONRenderer().render({"count": count, "next": paginator.get_next_link(),
                                          "previous": paginator.get_previous_link()})
        return HttpResponse(envelope[:-1] + b',"results":' + results + b"}", content_type="application/json")

    @extend_schema(request=requests.TraceInSerializer, responses={201: s.TraceDetailSerializer})
    def post(self, request):
        trace, created = services.trace_create(data=request.data, user=request.user)
        if not created:
            # The id only for a caller who may see that trace: anything else would reveal it.
            visible = selectors.traces_visible_to(request.user).filter(pk=trace.pk).exists()
            raise Conflict("A trace with the same content is already stored.", code="duplicate",
                           extra={"existing_id": str(trace.id) if visible else None})
        return Response(s.TraceDetailSerializer(trace).data, status=status.HTTP_201_CREATED)


class TraceBatchView(APIView):
    write_permission = "traces.add_trace"

    def max_body_bytes(self):
        return settings.TRACE_BATCH_MAX_BYTES

    @extend_schema(request=requests.TraceBatchInSerializer, responses={201: dict})
    def post(self, request):
        """A list of traces (or {"traces": [...]}), all-or-nothing. 201 when anything was stored; 200 when
        every trace was already stored (each reported as a duplicate)."""
        body = request.data
        if isinstance(body, dict) and "traces" not in body:
            raise Invalid({"traces": ["Expected a list of traces, or an object {\"traces\": [...]}."]})
        items = body.get("traces") if isinstance(body, dict) else body
        if isinstance(body, dict) and set(body) - {"traces"}:
            raise Invalid({key: ["Unknown field."] for key in sorted(set(body) - {"traces"})})
        result = services.trace_batch_create(items=items, user=request.user)
        return Response(
            {"created": len(result["created"]), "ids": result["created"], "duplicates": result["duplicates"]},
            status=status.HTTP_201_CREATED if result["created"] else status.HTTP_200_OK,
        )


class TraceDetailView(APIView):
    @extend_schema(responses=s.TraceDetailSerializer)
    def get(self, request, trace_id):
        key = f"detail:{selectors.visibility_scope(request.user)}:{trace_id}"
        body = readcache.cached(selectors.TRACE_READS, key, lambda: JSONRenderer().render(
            s.TraceDetailSerializer(selectors.trace_get(user=request.user, trace_id=trace_id)).data))
        return HttpResponse(body, content_type="application/json")


class TraceCompareView(APIView):
    @extend_schema(parameters=[s.TraceCompareQuerySerializer], responses=dict)
    def get(self, request):
        query = s.TraceCompareQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        base = selectors.trace_get(user=request.user, trace_id=query.validated_data["base"])
        other = selectors.trace_get(user=request.user, trace_id=query.validated_data["other"])
        return Response(selectors.trace_compare(base=base, other=other))


class TraceScoreView(APIView):
    write_permission = "traces.add_tracescore"

    @extend_schema(request=None, responses={201: s.TraceScoreSerializer, 200: s.TraceScoreSerializer})
    def post(self, request, trace_id):
        trace = selectors.trace_get(user=request.user, trace_id=trace_id)
        score, created = services.trace_score(trace=trace)
        return Response(s.TraceScoreSerializer(score).data,
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class TraceReviewView(APIView):
    write_permission = "traces.review_trace"

    @extend_schema(request=requests.TraceReviewRequestSerializer, responses=s.TraceDetailSerializer)
    def post(self, request, trace_id):
        trace = services.trace_review_request(trace=selectors.trace_get(user=request.user, trace_id=trace_id),
                                              data=request.data, actor=request.user, actor_label=actor_label(request))
        return Response(s.TraceDetailSerializer(trace).data)
