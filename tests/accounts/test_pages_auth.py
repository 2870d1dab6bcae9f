import pytest
from django.core import mail
from django.test import Client

from accounts.models import Membership, User
from tests.accounts.factories import UserFactory
from tests.accounts.pages import PASSWORD, link_in, page_messages

pytestmark = pytest.mark.django_db

SIGN_UP = {"email": "ada@example.com", "full_name": "Ada", "password": "a-long-passphrase-42"}


def _is_logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_landing_page_offers_sign_up_and_log_in(client):
    response = client.get("/")
    assert response.status_code == 200
    assert b'href="/signup/"' in response.content
    assert b'href="/login/"' in response.content


def test_home_redirects_a_signed_in_user_to_the_dashboard(client):
    client.force_login(UserFactory())
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/dashboard/"


def test_sign_up_page_has_labelled_fields_and_csrf(client):
    content = client.get("/signup/").content.decode()
    assert "csrfmiddlewaretoken" in content
    for field in ("email", "full_name", "password"):
        assert f'<label for="id_{field}"' in content


def test_forms_are_refused_without_a_csrf_token():
    strict = Client(enforce_csrf_checks=True)
    assert strict.post("/signup/", SIGN_UP).status_code == 403
    assert not User.objects.exists()


def test_sign_up_creates_organization_owner_and_logs_in(client):
    response = client.post("/signup/", SIGN_UP, follow=True)
    assert response.redirect_chain[-1][0] == "/dashboard/"
    user = User.objects.get(email="ada@example.com")
    membership = Membership.objects.get(user=user)
    assert membership.role == Membership.Role.OWNER
    assert membership.organization.name == "Ada's organization"
    assert _is_logged_in(client)
    assert "Ada&#x27;s organization" in response.content.decode()
    assert any("is ready" in message for message in page_messages(response))


def test_second_sign_up_with_the_same_email_is_refused_with_a_message(client):
    client.post("/signup/", SIGN_UP)
    client.logout()
    response = client.post("/signup/", {**SIGN_UP, "email": "ADA@example.com"})
    assert response.status_code == 200
    assert "An account with this email already exists" in response.content.decode()
    assert User.objects.count() == 1
    assert not _is_logged_in(client)


def test_sign_up_refuses_a_weak_password(client):
    response = client.post("/signup/", {**SIGN_UP, "password": "12345678"})
    assert response.status_code == 200
    assert "This password is too common" in response.content.decode()
    assert not User.objects.exists()


def test_sign_up_follows_a_safe_next_link_only(client):
    response = client.post("/signup/", {**SIGN_UP, "next": "https://evil.example/"})
    assert response["Location"] == "/dashboard/"


def test_log_in_with_email_and_password(client):
    user = UserFactory(email="grace@example.com")
    response = client.post("/login/", {"username": "grace@example.com", "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == "/dashboard/"
    assert client.session["_auth_user_id"] == str(user.pk)
    assert "You are logged in." in page_messages(response)


def test_log_in_with_a_wrong_password_shows_an_error(client):
    UserFactory(email="grace@example.com")
    response = client.post("/login/", {"username": "grace@example.com", "password": "nope"})
    assert response.status_code == 200
    assert "Please enter a correct email" in response.content.decode()
    assert not _is_logged_in(client)


def test_log_out_is_a_post_and_ends_the_session(client):
    client.force_login(UserFactory())
    assert client.get("/logout/").status_code == 405
    response = client.post("/logout/")
    assert response.status_code == 302
    assert not _is_logged_in(client)
    assert "You are logged out." in page_messages(response)


def test_pages_need_a_login(client):
    response = client.get("/dashboard/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=/dashboard/")


def test_password_reset_email_link_sets_a_new_password(client):
    UserFactory(email="grace@example.com")
    response = client.post("/password-reset/", {"email": "grace@example.com"}, follow=True)
    assert response.redirect_chain[-1][0] == "/password-reset/sent/"
    assert len(mail.outbox) == 1
    email = mail.outbox[0]
    assert email.to == ["grace@example.com"]
    assert email.subject == "Reset your Imagen password"
    reset_link = link_in(email, "/password-reset/")

    form_page = client.get(reset_link, follow=True)
    assert "Choose a new password" in form_page.content.decode()
    set_password_path = form_page.redirect_chain[-1][0]
    done = client.post(
        set_password_path,
        {"new_password1": "brand-new-passphrase-7", "new_password2": "brand-new-passphrase-7"},
    )
    assert done.status_code == 302
    assert client.login(username="grace@example.com", password="brand-new-passphrase-7")


def test_password_reset_link_works_only_once(client):
    UserFactory(email="grace@example.com")
    client.post("/password-reset/", {"email": "grace@example.com"})
    reset_link = link_in(mail.outbox[0], "/password-reset/")
    set_password_path = client.get(reset_link, follow=True).redirect_chain[-1][0]
    new = {"new_password1": "brand-new-passphrase-7", "new_password2": "brand-new-passphrase-7"}
    client.post(set_password_path, new)
    again = client.get(reset_link, follow=True)
    assert "This link does not work" in again.content.decode()


def test_password_reset_for_an_unknown_email_sends_nothing_and_says_the_same(client):
    response = client.post("/password-reset/", {"email": "nobody@example.com"}, follow=True)
    assert response.status_code == 200
    assert "Check your email" in response.content.decode()
    assert mail.outbox == []


def test_log_in_is_limited_per_ip_address(client):
    for attempt in range(10):
        response = client.post("/login/", {"username": f"u{attempt}@example.com", "password": "x"})
        assert response.status_code == 200
    response = client.post("/login/", {"username": "u10@example.com", "password": "x"})
    assert response.status_code == 429
    assert "Too many attempts" in response.content.decode()


def test_log_in_is_limited_per_email_across_addresses(client):
    UserFactory(email="grace@example.com")
    for attempt in range(5):
        response = client.post(
            "/login/",
            {"username": "grace@example.com", "password": "wrong"},
            REMOTE_ADDR=f"10.0.0.{attempt}",
        )
        assert response.status_code == 200
    response = client.post(
        "/login/",
        {"username": "Grace@Example.com", "password": PASSWORD},
        REMOTE_ADDR="10.0.0.99",
    )
    assert response.status_code == 429
    assert not _is_logged_in(client)


def test_sign_up_is_limited_per_ip_address(client):
    for _ in range(10):
        assert client.post("/signup/", {**SIGN_UP, "password": "short"}).status_code == 200
    response = client.post("/signup/", SIGN_UP)
    assert response.status_code == 429
    assert not User.objects.exists()


def test_reading_the_log_in_page_is_not_limited(client):
    for _ in range(15):
        assert client.get("/login/").status_code == 200


def test_log_in_ignores_the_case_of_the_email(client):
    UserFactory(email="grace@example.com")
    response = client.post("/login/", {"username": "Grace@Example.COM", "password": PASSWORD})
    assert response.status_code == 302
    assert _is_logged_in(client)


def test_signed_in_user_is_sent_on_from_the_sign_up_page(client):
    client.force_login(UserFactory())
    assert client.get("/signup/")["Location"] == "/dashboard/"
