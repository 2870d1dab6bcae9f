"""Add an endpoint through the API, rotate an added one's secret, or remove one.

Only the endpoints added here churn; each organization's healthy endpoint stays, so that
every event it subscribes to can be checked at the end.
"""

from ..context import call
from .database import in_thread

# Each added endpoint receives every event it subscribes to: more would turn the run into a
# measure of the webhooks worker's throughput.
MAX_ADDED = 2


def _rotate(public_id: str) -> None:
    from webhooks import services
    from webhooks.models import WebhookEndpoint

    endpoint = WebhookEndpoint.objects.filter(public_id=public_id).first()
    if endpoint is not None:
        services.rotate_endpoint_secret(endpoint=endpoint)


def run(ctx, tenant, rng) -> None:
    choice = rng.random()
    if not tenant.churned_endpoints or (choice < 0.4 and len(tenant.churned_endpoints) < MAX_ADDED):
        url = f"{ctx.receivers['healthy'].url}/churn/{tenant.slug}/{ctx.next_number()}"
        body = {"url": url, "events": rng.choice([["job.completed"], ["job.failed"], None])}
        if body["events"] is None:
            del body["events"]
        response = call(
            ctx, tenant, "endpoint_add", "POST", "/v1/webhook-endpoints", rng, json=body
        )
        if response is not None and response.status_code == 201:
            tenant.churned_endpoints.append(response.json()["id"])
        return
    public_id = rng.choice(tenant.churned_endpoints)
    if choice < 0.7:
        in_thread(_rotate, public_id)
        ctx.record.count("endpoint_rotations")
        return
    response = call(
        ctx, tenant, "endpoint_remove", "DELETE", f"/v1/webhook-endpoints/{public_id}", rng
    )
    if response is not None and response.status_code in (204, 404):
        tenant.churned_endpoints.remove(public_id)
