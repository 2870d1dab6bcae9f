"""The faults, one function each, injected at times drawn from the seed."""

import time

import requests
from django.db import connection

from .processes import PRODUCT_APPLICATION_NAME


def configure_localstripe(stripe_url: str, relay_url: str) -> None:
    """Point localstripe's events at the relay (a fresh localstripe knows no endpoint)."""
    from django.conf import settings

    from billing.stripe_events import HANDLERS

    requests.post(
        f"{stripe_url}/_config/webhooks/soak",
        json={
            "url": relay_url,
            "secret": settings.STRIPE_WEBHOOK_SECRET,
            "events": sorted(HANDLERS),
        },
        timeout=5,
    ).raise_for_status()


def kill_generation_worker(run, rng) -> None:
    worker = rng.choice(run.product.workers)
    worker.kill()
    time.sleep(rng.uniform(0.5, 3))
    worker.start()


def kill_webhooks_worker(run, rng) -> None:
    run.product.webhooks.kill()
    time.sleep(rng.uniform(0.5, 3))
    run.product.webhooks.start()


def kill_web_process(run, rng) -> None:
    web = rng.choice(run.product.web)
    web.kill()
    time.sleep(rng.uniform(0.2, 2))
    web.start()


def redis_outage(run, rng) -> None:
    """Redis stopped for a few seconds (a failover, a restart), then back with its data."""
    run.product.redis.stop()
    time.sleep(rng.uniform(2, 5))
    run.product.redis.start()


def terminate_database_connections(run, rng) -> None:
    """pg_terminate_backend of every product connection to this run's database."""
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND application_name = %s",
                [PRODUCT_APPLICATION_NAME],
            )
            run.record.count("database_connections_terminated", cursor.fetchone()[0])
    finally:
        connection.close()


def receiver_hangs(run, rng) -> None:
    """The slow receiver stops answering for longer than the delivery timeout."""
    run.receivers["slow"].hang(rng.uniform(10, 20))


def restart_localstripe(run, rng) -> None:
    run.product.localstripe.kill()
    time.sleep(rng.uniform(0.5, 2))
    run.product.localstripe.start()
    configure_localstripe(run.stripe_url, run.receivers["stripe_relay"].url)


FAULTS = {
    "kill_generation_worker": kill_generation_worker,
    "kill_webhooks_worker": kill_webhooks_worker,
    "kill_web_process": kill_web_process,
    "redis_outage": redis_outage,
    "terminate_database_connections": terminate_database_connections,
    "receiver_hangs": receiver_hangs,
    "restart_localstripe": restart_localstripe,
}
