"""Reading /metrics the way Prometheus does, for the tests of what it counts."""

from prometheus_client.parser import text_string_to_metric_families

TOKEN = "metrics-test-token"


def scrape(client) -> dict[tuple[str, frozenset], float]:
    """Every sample /metrics serves, by (name, labels)."""
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)
