"""billing's reactions to what accounts announces (connected in BillingConfig.ready())."""

from billing import services


def grant_signup_credits(sender, *, organization, signed_up: bool, **kwargs) -> None:
    if signed_up:
        services.grant_signup_credits(organization=organization)
