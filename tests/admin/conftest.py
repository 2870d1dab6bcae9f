import pytest

from tests.accounts.factories import UserFactory


@pytest.fixture
def staff(db):
    return UserFactory(is_staff=True, is_superuser=True, email="staff@example.com")


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


@pytest.fixture
def flagged_model(monkeypatch, db):
    """A catalog model whose engine renders an image the real detector flags."""
    from tests.generation.engines import register_flagged_model

    return register_flagged_model(monkeypatch)
