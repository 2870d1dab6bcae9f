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


def test_the_docs_page_shows_each_operations_examples(page, live_server, client):
    schema = client.get("/openapi.json").json()
    labels = {
        operation["summary"]: [sample["label"] for sample in operation["x-codeSamples"]]
        for methods in schema["paths"].values()
        for operation in methods.values()
    }
    page.goto(f"{live_server.url}/docs/")
    page.wait_for_selector(".opblock-summary-description")
    operations = page.locator(".opblock")
    missing = []
    for index in range(operations.count()):
        operation = operations.nth(index)
        operation.locator(".opblock-summary").click()
        summary = operation.locator(".opblock-summary-description").inner_text().strip()
        description = operation.locator(".opblock-description-wrapper").first
        text = description.inner_text()
        code = description.locator("pre").all_inner_texts()
        missing += [f"{summary}: {label}" for label in labels[summary] if label not in text]
        if not any(block.startswith("curl") for block in code):
            missing.append(f"{summary}: curl code")
        if not any("import requests" in block for block in code):
            missing.append(f"{summary}: Python code")
    assert operations.count() == len(labels)
    assert missing == []
