"""The report's first address, from when it lived under billing in the admin: staff
bookmarks of /admin/billing/usagereport/ (and its CSV exports) land on the report."""

from django.urls import path
from django.views.generic import RedirectView

urlpatterns = [
    path(
        "",
        RedirectView.as_view(
            pattern_name="admin:reporting_usagereport_changelist", query_string=True, permanent=True
        ),
    ),
    path(
        "export/<slug:rows>.csv",
        RedirectView.as_view(
            pattern_name="admin:reporting_usagereport_export", query_string=True, permanent=True
        ),
    ),
]
