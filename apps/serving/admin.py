"""The version page in the admin, with its playground: the registry's own page plus a link and a view that
asks the version a question (apps.serving.playground). Registered here, above the registry, because
serving imports the registry and never the other way round."""

from django.contrib import admin
from django.urls import path, reverse
from django.utils.html import format_html

from apps.registry.admin import ModelVersionAdmin, version_or_404
from apps.registry.models import ModelVersion
from apps.serving.playground import playground_view

admin.site.unregister(ModelVersion)


@admin.register(ModelVersion)
class ServedModelVersionAdmin(ModelVersionAdmin):
    fields = [*ModelVersionAdmin.fields[:3], "playground_link", *ModelVersionAdmin.fields[3:]]

    @admin.display(description="playground")
    def playground_link(self, obj):
        return format_html('<a href="{}">ask this version a question</a>',
                           reverse("admin:registry_modelversion_playground", args=[obj.pk]))

    def get_urls(self):
        return [path("<uuid:version_id>/playground/", self.admin_site.admin_view(self.playground_view),
                     name="registry_modelversion_playground"), *super().get_urls()]

    def playground_view(self, request, version_id):
        version = version_or_404(request, version_id)
        context = {**self.admin_site.each_context(request), "title": f"Playground: {version}",
                   "opts": self.model._meta}
        return playground_view(request, version, context)
