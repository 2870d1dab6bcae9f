"""Browser tests: Debian's Chromium driven by Playwright against the live server.

The Stripe fixtures and the webhook receiver are the billing and webhooks tests' own.
"""

import re
import shutil
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connections

from generation import catalog
from tests import procfile
from tests.billing.conftest import localstripe_server, stripe_server  # noqa: F401
from tests.celery_worker import in_thread_worker
from tests.webhooks.receiver import Receiver

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(autouse=True)
def _fresh_catalog():
    # The catalog is cached per process; each test's database starts from the seed.
    catalog.clear_local_cache()
    yield
    catalog.clear_local_cache()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    # Kept on the test item so the browser fixture knows, at teardown, whether to screenshot.
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def browser(monkeypatch):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls here are safe.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=shutil.which("chromium") or "/usr/bin/chromium",
            headless=True,
            args=CHROMIUM_ARGS,
        )
        yield browser
        browser.close()
        # ORM calls made while Playwright's loop ran used their own connection: close it
        # here, in that loop's context, or the session outlives the test database.
        connections.close_all()


@pytest.fixture
def page(browser, request):
    """A fresh browser tab; if the test fails, a screenshot of it lands in test-artifacts/."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    context.close()


def log_in_as(page, live_server, client, user) -> None:
    """Give the tab `user`'s session, as if they had just logged in."""
    client.force_login(user)
    page.context.add_cookies(
        [
            {
                "name": django_settings.SESSION_COOKIE_NAME,
                "value": client.cookies[django_settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )


@pytest.fixture
def webhook_receiver(settings):
    """The webhooks tests' loopback receiver: answers 200 and records every POST."""
    # Our SSRF guard refuses loopback addresses unless told this network is trusted.
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture
def celery_worker(transactional_db):
    """A real Celery worker in a thread, consuming the queues of the Procfile's workers: jobs,
    webhook deliveries and the periodic tasks."""
    with in_thread_worker(procfile.queues("worker") + procfile.queues("webhooks")) as worker:
        yield worker
