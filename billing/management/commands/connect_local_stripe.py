import time

import requests
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from billing import services
from billing.stripe_events import HANDLERS
from billing.stripe_gateway import StripeUnavailable

WEBHOOK_NAME = "imagen"


class Command(BaseCommand):
    help = (
        "Point localstripe (STRIPE_API_BASE) at this site: register SITE_URL/stripe/webhook/ "
        "with STRIPE_WEBHOOK_SECRET and create the prices of plans and products of packs."
    )

    def handle(self, *args, **options):
        base = settings.STRIPE_API_BASE.rstrip("/")
        if not base:
            raise CommandError("STRIPE_API_BASE is not set: this command is for localstripe only.")
        webhook_url = settings.SITE_URL.rstrip("/") + reverse("stripe-webhook")
        # localstripe may still be starting when the run command calls this.
        for attempt in range(20):
            try:
                response = requests.post(
                    f"{base}/_config/webhooks/{WEBHOOK_NAME}",
                    json={
                        "url": webhook_url,
                        "secret": settings.STRIPE_WEBHOOK_SECRET,
                        "events": sorted(HANDLERS),
                    },
                    timeout=5,
                )
                response.raise_for_status()
                break
            except requests.RequestException as error:
                if attempt == 19:
                    raise CommandError(f"localstripe at {base} did not answer: {error}") from error
                time.sleep(0.5)
        try:
            catalog = services.sync_stripe_catalog()
        except StripeUnavailable as error:
            raise CommandError(f"Could not create the Stripe catalog: {error}") from error
        self.stdout.write(
            f"localstripe at {base} sends events to {webhook_url}; "
            f"{len(catalog['plans'])} plan prices and {len(catalog['packs'])} pack products ready."
        )
