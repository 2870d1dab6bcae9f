"""The pages work in a real browser under the Content-Security-Policy: no violations."""

import shutil

import pytest

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not shutil.which("chromium"), reason="needs chromium"),
]


@pytest.fixture
def browser_page(live_server, monkeypatch):
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"))
        page = browser.new_page()
        page.violations = []
        page.on(
            "console",
            lambda message: (
                "Content Security Policy" in message.text and page.violations.append(message.text)
            ),
        )
        yield page
        browser.close()


def test_the_api_docs_render_swagger_ui_without_csp_violations(browser_page, live_server):
    browser_page.goto(f"{live_server.url}/docs/")
    browser_page.wait_for_selector(".swagger-ui .info .title", timeout=30_000)
    assert "Imagen API" in browser_page.inner_text(".swagger-ui .info .title")
    assert browser_page.violations == []


@pytest.mark.parametrize("path", ["/", "/login/", "/signup/"])
def test_the_public_pages_load_without_csp_violations(browser_page, live_server, path):
    response = browser_page.goto(f"{live_server.url}{path}")
    assert response.status == 200
    browser_page.wait_for_load_state("networkidle")
    assert browser_page.violations == []
