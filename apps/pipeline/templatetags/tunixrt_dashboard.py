from django import template

from apps.pipeline.dashboard import dashboard

register = template.Library()


@register.inclusion_tag("admin/pipeline/dashboard.html", takes_context=True)
def tunixrt_dashboard(context):
    return dashboard(context["request"].user)
