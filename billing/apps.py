from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"

    def ready(self):
        from accounts.signals import organization_created
        from billing import receivers

        organization_created.connect(
            receivers.grant_signup_credits, dispatch_uid="billing-signup-credits"
        )
