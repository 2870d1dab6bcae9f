from django.contrib import admin

from generation.models import Job, JobImage, ModelCatalogEntry


@admin.register(ModelCatalogEntry)
class ModelCatalogEntryAdmin(admin.ModelAdmin):
    """Staff edit the catalog here; a save reaches every web process within seconds."""

    list_display = (
        "id",
        "name",
        "engine",
        "credits_per_image",
        "is_default",
        "enabled",
        "sort_order",
    )
    list_editable = ("credits_per_image", "enabled", "sort_order")
    list_filter = ("engine", "enabled")
    search_fields = ("id", "name")
    ordering = ("sort_order", "id")


class JobImageInline(admin.TabularInline):
    model = JobImage
    extra = 0
    can_delete = False
    fields = ("index", "width", "height", "storage_path", "quarantined")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    """Jobs are read-only here: they change state only through generation.services."""

    list_display = (
        "public_id",
        "organization",
        "dialect",
        "mode",
        "model",
        "status",
        "credits_used",
        "created_at",
    )
    list_filter = ("status", "dialect", "mode", "model")
    search_fields = ("public_id", "id", "organization__name", "organization__slug", "prompt")
    list_select_related = ("organization", "model")
    date_hierarchy = "created_at"
    show_full_result_count = False
    inlines = [JobImageInline]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in Job._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
