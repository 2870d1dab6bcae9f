import json
import uuid

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts import errors, services
from accounts.models import User
from billing import services as billing_services
from billing.plans import PLANS


class Command(BaseCommand):
    help = "Create (or reuse) a user, a new organization on a plan with credits, and an API key."

    def add_arguments(self, parser):
        parser.add_argument("--email", required=True)
        parser.add_argument("--org-name")
        parser.add_argument("--plan", choices=sorted(PLANS), default="free")
        parser.add_argument("--credits", type=int, default=0)

    def handle(self, *args, email, org_name, plan, credits, **options):
        if credits < 0:
            raise CommandError("--credits must be zero or more")
        with transaction.atomic():
            user = User.objects.filter(email__iexact=email).first()
            if user is None:
                user = User.objects.create_user(email=email, password=None)
            try:
                organization = services.create_organization(
                    name=org_name or f"{email.split('@')[0]}'s organization",
                    owner=user,
                    plan=billing_services.plan_by_slug(plan),
                )
            except errors.OrganizationLimitReached as error:
                raise CommandError(
                    f"{user.email}: {error} Raise their limit in the admin to add one."
                ) from None
            if credits:
                billing_services.grant_credits(
                    organization=organization,
                    amount=credits,
                    reference=f"create_tenant:{organization.public_id}:{uuid.uuid4()}",
                    memo="Granted by create_tenant",
                )
            new_key = services.create_api_key(
                organization=organization, name="create_tenant", created_by=user
            )
        line = {
            "organization": organization.slug,
            "user": user.email,
            "api_key": new_key.secret,
            "plan": organization.plan.slug,
            "credits": organization.credit_balance,
        }
        self.stdout.write(json.dumps(line))
