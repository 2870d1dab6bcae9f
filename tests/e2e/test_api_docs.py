"""The API docs page, in a real browser: every operation is listed with its summary."""

import shutil

import pytest

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not shutil.which("chromium"), reason="needs chromium"),
]


def test_the_docs_page_lists_every_operation_with_its_summary(page, live_server, client):
    schema = client.get("/openapi.json").json()
    summaries = sorted(
        operation["summary"]
        for methods in schema["paths"].values()
        for operation in methods.values()
    )
    page.goto(f"{live_server.url}/docs/")
    page.wait_for_selector(".opblock-summary-description")
    shown = page.eval_on_selector_all(
        ".opblock-summary-description", "nodes => nodes.map(n => n.textContent.trim())"
    )
    assert sorted(shown) == summaries
