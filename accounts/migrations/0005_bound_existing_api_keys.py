"""Close the holes left by keys made before their creator's role bounded them.

A key a member made carried every scope: it loses the webhooks scope. A key whose creator
has since left the organization kept working: it is revoked, as removal now does.
"""

from django.db import migrations
from django.utils import timezone

# accounts.services.SCOPES_BY_ROLE as it stood when this migration was written.
MEMBER_SCOPES = ("generate", "read")


def bound_existing_api_keys(apps, schema_editor):
    ApiKey = apps.get_model("accounts", "ApiKey")
    Membership = apps.get_model("accounts", "Membership")
    now = timezone.now()
    keys = ApiKey.objects.filter(created_by__isnull=False, revoked_at=None)
    for api_key in keys.iterator():
        role = (
            Membership.objects.filter(
                organization_id=api_key.organization_id, user_id=api_key.created_by_id
            )
            .values_list("role", flat=True)
            .first()
        )
        if role is None:
            api_key.revoked_at = now
            api_key.save(update_fields=["revoked_at"])
        elif role == "member" and not set(api_key.scopes) <= set(MEMBER_SCOPES):
            api_key.scopes = [scope for scope in api_key.scopes if scope in MEMBER_SCOPES]
            api_key.save(update_fields=["scopes"])


class Migration(migrations.Migration):
    dependencies = [("accounts", "0004_organization_limits_and_personal_organization")]

    operations = [migrations.RunPython(bound_existing_api_keys, migrations.RunPython.noop)]
