import pytest

from accounts.middleware import SESSION_KEY
from accounts.models import Membership, Organization
from tests.accounts.factories import MembershipFactory, OrganizationFactory, UserFactory
from tests.accounts.pages import page_messages

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_organizations():
    """A user who owns "Alpha" and is a member of "Beta"."""
    alpha = MembershipFactory(organization__name="Alpha")
    beta = MembershipFactory(
        organization__name="Beta", user=alpha.user, role=Membership.Role.MEMBER
    )
    return alpha, beta


def _heading(client) -> str:
    content = client.get("/dashboard/").content.decode()
    return content.split("<h1>", 1)[1].split("</h1>", 1)[0]


def test_switcher_appears_only_for_several_organizations(client, two_organizations):
    single = MembershipFactory()
    client.force_login(single.user)
    assert 'id="organization-switcher"' not in client.get("/dashboard/").content.decode()
    client.force_login(two_organizations[0].user)
    content = client.get("/dashboard/").content.decode()
    assert 'id="organization-switcher"' in content
    assert '<label for="organization-switcher">' in content


def test_switching_changes_the_organization_every_page_shows(client, two_organizations):
    alpha, beta = two_organizations
    client.force_login(alpha.user)
    assert _heading(client) == "Alpha"
    response = client.post(
        "/organizations/switch/", {"organization": beta.organization.pk, "next": "/team/"}
    )
    assert response["Location"] == "/team/"
    assert "You are now working in Beta." in page_messages(response)
    assert client.session[SESSION_KEY] == beta.organization.pk
    assert _heading(client) == "Beta"
    assert "Team of Beta" in client.get("/team/").content.decode()


def test_switching_to_an_organization_you_are_not_in_is_404(client, two_organizations):
    alpha, _ = two_organizations
    stranger_org = OrganizationFactory(name="Gamma")
    client.force_login(alpha.user)
    response = client.post("/organizations/switch/", {"organization": stranger_org.pk})
    assert response.status_code == 404
    assert _heading(client) == "Alpha"


def test_a_stale_session_organization_falls_back_to_one_you_are_in(client, two_organizations):
    alpha, beta = two_organizations
    client.force_login(alpha.user)
    client.post("/organizations/switch/", {"organization": beta.organization.pk})
    beta.delete()
    assert _heading(client) == "Alpha"


def test_create_organization_makes_you_owner_and_switches_to_it(client):
    user = MembershipFactory(organization__name="Alpha").user
    client.force_login(user)
    response = client.post("/organizations/new/", {"name": "Side project"})
    assert response["Location"] == "/dashboard/"
    assert "Organization “Side project” created." in page_messages(response)
    organization = Organization.objects.get(name="Side project")
    assert Membership.objects.get(organization=organization).role == Membership.Role.OWNER
    assert _heading(client) == "Side project"


def test_user_without_an_organization_is_asked_to_create_one(client):
    client.force_login(UserFactory())
    response = client.get("/keys/")
    assert response["Location"] == "/organizations/new/"
    assert any("create one" in text for text in page_messages(response))
