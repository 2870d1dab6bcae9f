"""The product run as separate hosts, each with its own network address and its own disk.

Two web hosts, a generation worker host and a webhooks worker host run the Procfile's `web`,
`worker` and `upstream`, and `webhooks` lines with the production settings; PostgreSQL,
Redis and an S3 server (moto's) run on hosts of their own, and so do an upstream model and a
customer's webhook receiver. Every host is a network namespace (tests/integration/hosts.py);
they reach each other only over the network between them, so nothing can pass through a
shared disk, a shared loopback or a shared process.
"""

import contextlib
import io
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

import boto3
import psycopg
import pytest
import requests
from django.utils import timezone
from PIL import Image

from billing.models import CreditLedgerEntry
from generation.models import Job, ModelCatalogEntry
from tests import procfile
from tests.billing.conftest import wait_for
from tests.generation.factories import customer
from tests.generation.fake_upstream import FakeUpstream
from tests.integration.faults import (
    RedisServer,
    assert_ledger_consistent,
    assert_refused_by_the_minute_window,
    clear_of_the_minute_edge,
    wait_for_port,
)
from tests.integration.hosts import Host, Network, PostgresServer, this_process_on_database
from tests.webhooks.receiver import Receiver

# This process reads and writes the hosts' database through its own PostgreSQL connection.
pytestmark = [pytest.mark.postgres]

UPSTREAM_MODEL = "imagen-upstream"
COST = 2  # credits for one 512 x 512 image of it
FREE_PER_MINUTE = 10
# Far more than eleven submissions over the hosts' network take, even on a busy machine.
WINDOW_MARGIN_SECONDS = 20
# Generous: the machine running the tests may be busy with much else.
STARTUP_SECONDS = 120
JOB_SECONDS = 120
WEB_PORT = 8000
S3_PORT = 9000
REDIS_PORT = 6379
BUCKET = "imagen-multi-host"
S3_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@dataclass
class Deployment:
    web_a: Host
    web_b: Host
    worker: Host
    webhooks: Host
    s3: Host
    upstream: FakeUpstream
    receiver: Receiver
    bucket: object  # boto3's Bucket, to look into it
    environment: dict[str, str]

    def logs(self) -> str:
        """The end of every product process's log, for a failure's message."""
        return "\n".join(
            f"--- {log.parent.name}/{log.name}\n" + "\n".join(log.read_text().splitlines()[-40:])
            for host in (self.web_a, self.web_b, self.worker, self.webhooks)
            for log in sorted(host.disk.glob("*.log"))
        )

    def url(self, web: Host, path: str) -> str:
        return f"http://{web.address}:{WEB_PORT}{path}"

    def send_periodic_task(self, task: str) -> None:
        """Send `task` to the broker as beat does; the webhooks worker runs it."""
        sent = subprocess.run(
            [*self.webhooks.launcher, "celery", "-A", "config", "call", task],
            env=self.environment,
            capture_output=True,
            text=True,
            timeout=STARTUP_SECONDS,
            check=False,
        )
        assert sent.returncode == 0, sent.stderr


def _environment(network: Network, hosts: dict[str, Host], upstream_key: str) -> dict[str, str]:
    """What every process of the product gets: the README's production configuration."""
    web = [hosts["web-a"].address, hosts["web-b"].address]
    return {
        "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}",
        "LANG": "C.UTF-8",
        "SECRET_KEY": f"multi-host-{network.tag}-secret-key-of-this-deployment",
        "STRIPE_SECRET_KEY": "sk_test_multi_host",
        "STRIPE_WEBHOOK_SECRET": "whsec_multi_host",
        "ALLOWED_HOSTS": ",".join(web),
        # Plain HTTP between the hosts: no TLS-terminating load balancer in front here.
        "SECURE_SSL_REDIRECT": "false",
        "SITE_URL": f"http://{web[0]}:{WEB_PORT}",
        "DATABASE_URL": f"postgres://postgres@{hosts['db'].address}:{PostgresServer.PORT}/imagen",
        "REDIS_URL": f"redis://{hosts['redis'].address}:{REDIS_PORT}/0",
        "AWS_STORAGE_BUCKET_NAME": BUCKET,
        "AWS_S3_ENDPOINT_URL": f"http://{hosts['s3'].address}:{S3_PORT}",
        "AWS_S3_REGION_NAME": "us-east-1",
        "AWS_S3_ADDRESSING_STYLE": "path",
        "AWS_ACCESS_KEY_ID": S3_CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": S3_CREDENTIALS["aws_secret_access_key"],
        # The receiver and the upstream are on this private network.
        "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
        "UPSTREAM_ALLOW_PRIVATE_NETWORKS": "true",
        "UPSTREAM_API_KEY": upstream_key,
        # One process a host is plenty here, and lighter on a busy machine.
        "WEB_CONCURRENCY": "1",
        "GENERATION_CONCURRENCY": "1",
        "UPSTREAM_CONCURRENCY": "2",
    }


def _on_own_disk(host: Host, environment: dict[str, str]) -> dict[str, str]:
    """The host's own home, temporary folder and media folder (which must stay empty)."""
    return {
        **environment,
        "HOME": str(host.disk),
        "TMPDIR": str(host.disk / "tmp"),
        "MEDIA_ROOT": str(host.disk / "media"),
    }


def _start_procfile_line(host: Host, line: str, environment: dict) -> subprocess.Popen:
    """The Procfile's line, run by a shell as honcho runs it."""
    return host.start(
        line,
        ["sh", "-c", procfile.processes()[line]],
        env={**_on_own_disk(host, environment), "WEB_HOST": host.address, "PORT": str(WEB_PORT)},
    )


def _wait_until_ready(worker: subprocess.Popen) -> None:
    ready = wait_for(
        lambda: worker.poll() is not None or " ready." in worker.log_path.read_text(),
        timeout=STARTUP_SECONDS,
    )
    assert ready, worker.log_path.read_text()
    assert worker.poll() is None, worker.log_path.read_text()


def _submit(web_url: str, key: str, **body) -> requests.Response:
    return requests.post(
        f"{web_url}/v1/text-to-image",
        json={"model": UPSTREAM_MODEL, "width": 512, "height": 512, **body},
        headers={"Authorization": f"Bearer {key}", "Prefer": "respond-async"},
        timeout=60,
    )


def _make_hosts(network: Network) -> dict[str, Host]:
    try:
        network.create()
        return {
            name: network.host(name)
            for name in (
                *("db", "redis", "s3", "web-a", "web-b", "worker", "webhooks"),
                *("model", "customer"),
            )
        }
    except RuntimeError as error:
        pytest.fail(f"cannot make the hosts' network namespaces: {error}")


def _start_s3(host: Host) -> subprocess.Popen:
    return host.start(
        "moto",
        ["moto_server", "-H", host.address, "-p", str(S3_PORT)],
        env=_on_own_disk(host, {"PATH": f"{os.path.dirname(sys.executable)}:/usr/bin"}),
    )


def _create_bucket(host: Host, process: subprocess.Popen):
    wait_for_port(S3_PORT, process, timeout=STARTUP_SECONDS, host=host.address)
    s3 = boto3.resource(
        "s3",
        endpoint_url=f"http://{host.address}:{S3_PORT}",
        region_name="us-east-1",
        **S3_CREDENTIALS,
    )
    bucket = s3.Bucket(BUCKET)
    bucket.create()
    return bucket


def _migrate(host: Host, environment: dict[str, str]) -> None:
    """The release step, from one web host, before any process of the release starts."""
    migrate = host.start(
        "migrate",
        [sys.executable, "manage.py", "migrate", "--noinput"],
        env={
            **_on_own_disk(host, environment),
            "DJANGO_SETTINGS_MODULE": "config.settings.production",
        },
    )
    assert migrate.wait(timeout=STARTUP_SECONDS) == 0, migrate.log_path.read_text()


def _add_upstream_model(upstream: FakeUpstream) -> None:
    """Before the processes start: each reads the catalog once and keeps it."""
    ModelCatalogEntry.objects.create(
        id=UPSTREAM_MODEL,
        name="Upstream",
        engine="openai_compatible",
        engine_settings={
            "base_url": upstream.base_url,
            "model": "fake-model",
            "api_key_env": "UPSTREAM_API_KEY",
            "timeout_seconds": 90,
        },
        credits_per_image=COST,
        capabilities=["text-to-image"],
    )


def _start_product(hosts: dict[str, Host], environment: dict[str, str]) -> None:
    webs = [_start_procfile_line(hosts[web], "web", environment) for web in ("web-a", "web-b")]
    workers = [
        _start_procfile_line(hosts["worker"], "worker", environment),
        # The test's model is an upstream one: its jobs are this line's.
        _start_procfile_line(hosts["worker"], "upstream", environment),
        _start_procfile_line(hosts["webhooks"], "webhooks", environment),
        _start_procfile_line(hosts["webhooks"], "webhooks_slow", environment),
    ]
    # A web process's first submission loads the prompt classifier; a customer without
    # credits pays for it here (refused with 402: no job), before any test's window.
    _, bystander_key = customer(credits=0)

    def warm(web: Host, process: subprocess.Popen) -> None:
        wait_for_port(WEB_PORT, process, timeout=STARTUP_SECONDS, host=web.address)
        response = _submit(f"http://{web.address}:{WEB_PORT}", bystander_key, prompt="a fox")
        assert response.status_code == 402, process.log_path.read_text()

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(warm, [hosts["web-a"], hosts["web-b"]], webs))
    for worker in workers:
        _wait_until_ready(worker)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, django_db_blocker):
    """The hosts, their servers and the product's processes; all of it gone after."""
    network = Network(tmp_path_factory.mktemp("hosts"))
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(network.destroy)
        hosts = _make_hosts(network)
        s3 = _start_s3(hosts["s3"])
        redis = hosts["redis"]
        RedisServer(REDIS_PORT, host=redis.address, launcher=redis.launcher).start()
        postgres = PostgresServer(hosts["db"], network.cidr)
        cleanup.callback(postgres.remove)
        postgres.start()
        with psycopg.connect(postgres.url("postgres"), autocommit=True) as admin:
            admin.execute("CREATE DATABASE imagen")
        # The test's own servers, each listening on a host of its own.
        with hosts["model"].inside():
            upstream = FakeUpstream(host=hosts["model"].address)
        with hosts["customer"].inside():
            receiver = Receiver(host=hosts["customer"].address)
        upstream.start()
        cleanup.callback(upstream.stop)
        receiver.start()
        cleanup.callback(receiver.stop)

        environment = _environment(network, hosts, upstream_key="sk-upstream-multi-host")
        _migrate(hosts["web-a"], environment)
        bucket = _create_bucket(hosts["s3"], s3)
        cleanup.enter_context(django_db_blocker.unblock())
        cleanup.enter_context(this_process_on_database(postgres.url("imagen")))
        _add_upstream_model(upstream)
        _start_product(hosts, environment)

        yield Deployment(
            web_a=hosts["web-a"],
            web_b=hosts["web-b"],
            worker=hosts["worker"],
            webhooks=hosts["webhooks"],
            s3=hosts["s3"],
            upstream=upstream,
            receiver=receiver,
            bucket=bucket,
            environment=_on_own_disk(hosts["webhooks"], environment),
        )


def _job_requests(upstream: FakeUpstream, prompt: str):
    return [r for r in upstream.generation_requests() if r.json()["prompt"] == prompt]


def _events(receiver: Receiver, job_id: str) -> list[dict]:
    events = [json.loads(received.body) for received in receiver.received if received.body]
    return [event for event in events if event["data"]["id"] == job_id]


def _entries(job: Job) -> list[str]:
    entries = CreditLedgerEntry.objects.filter(job_id=job.pk).order_by("pk")
    return list(entries.values_list("kind", flat=True))


def test_a_job_from_web_host_a_is_generated_on_the_worker_host_and_served_by_web_host_b(
    deployment,
):
    organization, key = customer(credits=10)
    prompt = "a fox that crosses hosts"
    submitted = _submit(
        deployment.url(deployment.web_a, ""),
        key,
        prompt=prompt,
        webhook_url=deployment.receiver.url("/jobs"),
    )
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["id"]

    events = wait_for(lambda: _events(deployment.receiver, job_id), timeout=JOB_SECONDS)
    assert [event["type"] for event in events] == ["job.completed"], deployment.logs()
    # Rendered by the worker host (it called the upstream) and told by the webhooks host.
    assert [r.client for r in _job_requests(deployment.upstream, prompt)] == [
        deployment.worker.address
    ]
    assert [r.client for r in deployment.receiver.received if r.body] == [
        deployment.webhooks.address
    ]

    # The image's URL, as a load balancer would send it to the other web host.
    image_url = urlsplit(events[0]["data"]["images"][0]["url"])
    via_b = requests.get(
        deployment.url(deployment.web_b, f"{image_url.path}?{image_url.query}"),
        allow_redirects=False,
        timeout=30,
    )
    assert via_b.status_code == 302, via_b.text
    presigned = via_b.headers["Location"]
    assert urlsplit(presigned).netloc == f"{deployment.s3.address}:{S3_PORT}"
    image = requests.get(presigned, timeout=30)
    assert image.status_code == 200
    with Image.open(io.BytesIO(image.content)) as png:
        assert (png.format, png.size) == ("PNG", (512, 512))

    job = Job.objects.get(public_id=job_id)
    assert [item.key for item in deployment.bucket.objects.all()] == [
        f"jobs/{organization.pk}/{job.pk}/0.png"
    ]
    # No host kept a copy on its own disk.
    for host in (deployment.web_a, deployment.web_b, deployment.worker, deployment.webhooks):
        assert not list((host.disk / "media").rglob("*.png")), host.namespace
    organization.refresh_from_db()
    assert (job.status, job.credits_used, _entries(job)) == ("completed", COST, ["reserve"])
    assert organization.credit_balance == 10 - COST
    assert_ledger_consistent(organization)


def test_both_web_hosts_count_submissions_in_one_rate_limit_window(deployment):
    organization, key = customer(plan="free", credits=100)
    clear_of_the_minute_edge(organization, WINDOW_MARGIN_SECONDS)
    webs = [deployment.url(deployment.web_a, ""), deployment.url(deployment.web_b, "")]

    responses = [
        _submit(webs[attempt % 2], key, prompt="a fox in a hurry")
        for attempt in range(FREE_PER_MINUTE + 1)
    ]

    *accepted, refused = responses
    assert [r.status_code for r in accepted] == [202] * FREE_PER_MINUTE, [r.text for r in accepted]
    # A and B in turn, each counting the other's submissions too.
    assert [r.headers["X-RateLimit-Remaining"] for r in accepted] == [
        str(remaining) for remaining in range(FREE_PER_MINUTE - 1, -1, -1)
    ]
    assert_refused_by_the_minute_window(refused, FREE_PER_MINUTE)
    # One window throughout: the countdown was not a window turning over mid-test.
    assert len({r.headers["X-RateLimit-Reset"] for r in responses}) == 1
    # The accepted ones all run, each charged once.
    jobs = Job.objects.filter(organization=organization)
    finished = wait_for(
        lambda: [job.status for job in jobs.all()] == ["completed"] * FREE_PER_MINUTE,
        timeout=JOB_SECONDS,
    )
    assert finished, deployment.logs()
    organization.refresh_from_db()
    assert organization.credit_balance == 100 - FREE_PER_MINUTE * COST
    assert_ledger_consistent(organization)


def test_a_job_whose_worker_host_dies_mid_job_is_refunded_once(deployment):
    """The worker host loses power mid-job; the reaper, run by the webhooks host as beat
    asks it to, fails the job and refunds it, once. Runs last: the worker host stays down."""
    organization, key = customer(credits=10)
    prompt = "a fox on a host that goes down"
    deployment.upstream.delay = 90  # answers only long after the host is gone
    try:
        submitted = _submit(deployment.url(deployment.web_a, ""), key, prompt=prompt)
        assert submitted.status_code == 202, submitted.text
        job = Job.objects.get(public_id=submitted.json()["id"])
        started = wait_for(lambda: _job_requests(deployment.upstream, prompt), timeout=JOB_SECONDS)
        assert started, deployment.logs()
        assert Job.objects.get(pk=job.pk).status == "running"

        deployment.worker.crash()
    finally:
        deployment.upstream.delay = 0

    Job.objects.filter(pk=job.pk).update(deadline_at=timezone.now())
    deployment.send_periodic_task("generation.tasks.reap_stuck_jobs")

    failed = wait_for(lambda: Job.objects.get(pk=job.pk).is_finished, timeout=JOB_SECONDS)
    assert failed, deployment.logs()
    job.refresh_from_db()
    assert (job.status, job.error_code, job.credits_used) == ("failed", "timeout", 0)
    assert _entries(job) == ["reserve", "refund"]
    assert len(_job_requests(deployment.upstream, prompt)) == 1
    organization.refresh_from_db()
    assert organization.credit_balance == 10
    assert_ledger_consistent(organization)
