from django.core.management.base import BaseCommand
from django.db import transaction

from accounts import selectors, services
from accounts.models import User
from billing import services as billing_services

DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "demo-password-2026"  # noqa: S105 - the printed, local-only demo login
DEMO_CREDITS = 500


class Command(BaseCommand):
    help = "Create the local demo login (once) and a fresh API key for it; print both."

    def handle(self, *args, **options):
        with transaction.atomic():
            user = User.objects.filter(email=DEMO_EMAIL).first()
            if user is None:
                user = User.objects.create_user(email=DEMO_EMAIL, password=DEMO_PASSWORD)
                organization = services.create_organization(name="Demo", owner=user)
                billing_services.grant_credits(
                    organization=organization,
                    amount=DEMO_CREDITS,
                    reference=f"demo:{organization.public_id}",
                    memo="Demo credits",
                )
            organization = selectors.organizations_for_user(user=user).first()
            new_key = services.create_api_key(
                organization=organization, name="demo", created_by=user
            )
        self.stdout.write(
            "\n".join(
                [
                    "Demo login:    " + DEMO_EMAIL + " / " + DEMO_PASSWORD,
                    "Demo API key:  " + new_key.secret,
                    f"Organization:  {organization.name} ({organization.credit_balance} credits)",
                ]
            )
        )
