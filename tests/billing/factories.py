import uuid

from billing import services


def give_credits(organization, amount: int):
    """Put `amount` credits on the organization's balance through the ledger."""
    return services.grant_credits(
        organization=organization, amount=amount, reference=f"test-grant:{uuid.uuid4()}"
    )
