"""An extension point for ModelAdmins that other apps add actions and list filters to.

The traces desk lives in `apps.traces`, but `apps.datasets` adds "Build dataset from selection" and
a filter by dataset version (and later apps may add more). Instead of unregistering the admin and
registering a subclass, which only one app can do, an app calls from its admin module:

    TraceAdmin.add_action(build_dataset_from_selection, permission="datasets.add_datasetversion")
    TraceAdmin.add_list_filter(InDatasetFilter)

An action is a plain admin action function `(modeladmin, request, queryset)`; it is offered only to
users holding `permission`.
"""

from django.contrib import admin


class ExtensibleModelAdmin(admin.ModelAdmin):
    _extra_actions: list = []
    _extra_filters: list = []

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls._extra_actions, cls._extra_filters = [], []  # each admin class has its own extensions

    @classmethod
    def add_action(cls, function, *, permission: str | None = None) -> None:
        cls._extra_actions.append((function, permission))

    @classmethod
    def add_list_filter(cls, list_filter) -> None:
        cls._extra_filters.append(list_filter)

    def get_actions(self, request):
        actions = super().get_actions(request)
        if self.actions is None or "_popup" in request.GET:  # what Django does for its own actions
            return actions
        for function, permission in self._extra_actions:
            if permission is None or request.user.has_perm(permission):
                actions[function.__name__] = self.get_action(function)
        return actions

    def get_list_filter(self, request):
        return [*super().get_list_filter(request), *self._extra_filters]


class ReadOnlyAdmin(admin.ModelAdmin):
    """For records nobody edits by hand (evaluations, registry rows): view only."""

    def get_readonly_fields(self, request, obj=None):
        return self.fields or super().get_readonly_fields(request, obj)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(admin.TabularInline):
    """A table of related rows shown, never added or edited, on a parent's page."""

    extra = 0
    can_delete = False

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_add_permission(self, request, obj=None):
        return False
