"""Production security headers, the CSP the pages run under, and the admin for staff only."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from tests.accounts.factories import MembershipFactory, UserFactory

ROOT = Path(__file__).resolve().parent.parent.parent
TEMPLATES = ROOT / "templates"

pytestmark = pytest.mark.django_db


def _production_setting(name: str) -> str:
    """A setting as production computes it, read in a fresh process."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "SECRET_KEY": "a-long-random-production-secret-key-" + "x" * 40,
        "ALLOWED_HOSTS": "api.example.com",
        "STRIPE_SECRET_KEY": "sk_live_headers_test",
        "STRIPE_WEBHOOK_SECRET": "whsec_headers_test",
    }
    code = f"import django; django.setup(); from django.conf import settings as s; print(s.{name})"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("SESSION_COOKIE_SECURE", "True"),
        ("CSRF_COOKIE_SECURE", "True"),
        ("SESSION_COOKIE_HTTPONLY", "True"),
        ("SECURE_SSL_REDIRECT", "True"),
        ("SECURE_HSTS_SECONDS", "31536000"),
        ("SECURE_HSTS_INCLUDE_SUBDOMAINS", "True"),
    ],
)
def test_production_sends_cookies_only_over_https_with_hsts(name, expected):
    assert _production_setting(name) == expected


def test_production_answers_https_requests_with_hsts(client, settings):
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    response = client.get("/login/", secure=True)
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


@pytest.mark.parametrize("path", ["/login/", "/v1/models", "/healthz", "/docs/"])
def test_every_response_carries_the_security_headers(client, path):
    response = client.get(path)
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"
    assert "camera=()" in response["Permissions-Policy"]
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]


def _directives(response) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}


def test_the_csp_allows_this_origin_and_stripe_js_and_no_inline_script(client):
    directives = _directives(client.get("/login/"))
    stripe_origin = "/".join(settings.STRIPE_JS_URL.split("/")[:3])
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'", stripe_origin]
    assert stripe_origin in directives["frame-src"]
    assert stripe_origin in directives["connect-src"]
    assert directives["img-src"] == ["'self'", "data:", "blob:"]
    assert "'unsafe-inline'" not in " ".join(" ".join(v) for v in directives.values())


def test_no_template_has_an_inline_script_or_style_the_csp_would_block():
    offenders = []
    for template in TEMPLATES.rglob("*.html"):
        if "emails" in template.parts:
            continue  # emails are read in mail clients, not under this CSP
        text = template.read_text()
        inline_script = "<script>" in text or "<script " in text.replace("<script src=", "")
        if inline_script or " style=" in text or "<style" in text:
            offenders.append(str(template.relative_to(ROOT)))
    assert not offenders


def test_the_api_docs_load_their_start_up_script_from_a_file(client):
    page = client.get("/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "<script>" not in html.replace(" ", "")
    script = client.get("/docs/?script=")
    assert script.status_code == 200
    assert "SwaggerUIBundle" in script.content.decode()


def test_the_admin_sends_an_anonymous_visitor_to_its_login(client):
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_the_admin_refuses_a_customer_who_is_not_staff(client):
    membership = MembershipFactory()
    client.force_login(membership.user)
    response = client.get("/admin/generation/job/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_the_admin_opens_for_staff(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    assert client.get("/admin/generation/job/").status_code == 200
