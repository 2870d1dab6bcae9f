from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows staff may look at but never add, change or delete here: they change only
    through their app's services (or, for a report, they are computed)."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
