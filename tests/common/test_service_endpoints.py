import pytest


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_checks_database_cache_and_queue(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "cache": "ok", "queue": "ok"}


@pytest.mark.django_db
def test_readyz_names_the_queue_when_it_is_down(client, monkeypatch):
    from common import views

    def broken_queue():
        raise ConnectionError("broker refused the connection")

    monkeypatch.setattr(views, "_check_queue", broken_queue)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failing"] == "queue"


def test_openapi_document_is_served_as_json(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    assert "/v1/account" in document["paths"]


def test_docs_page_loads_nothing_from_a_cdn(client):
    response = client.get("/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    assert "cdn" not in html.lower()
    assert "//unpkg" not in html
