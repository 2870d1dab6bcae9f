"""Delivering events to a real receiver on loopback: signing, retries, logging, disabling."""

import json
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from tests.accounts.factories import MembershipFactory, OrganizationFactory
from tests.webhooks.factories import WebhookEndpointFactory
from tests.webhooks.receiver import Answer
from webhooks import services
from webhooks.models import Delivery, WebhookEndpoint
from webhooks.services import JobWebhookTarget

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.usefixtures("private_networks_allowed", "run_tasks_inline"),
]

JOB = {"id": "img_abc123def456", "status": "completed"}


def make_due_and_deliver():
    """Skip the waits: make every pending delivery due now and make its next attempt."""
    for delivery in Delivery.objects.filter(status=Delivery.Status.PENDING):
        Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
        services.attempt_delivery(delivery_id=delivery.pk)


@pytest.fixture
def emit(django_capture_on_commit_callbacks):
    """Emit an event in a transaction that commits, so its deliveries are sent."""

    def _emit(**kwargs):
        kwargs.setdefault("event_type", "job.completed")
        kwargs.setdefault("data", JOB)
        with django_capture_on_commit_callbacks(execute=True):
            return services.emit_event(**kwargs)

    return _emit


def verify(secret, received):
    return Webhook(secret).verify(received.body, received.headers)


def test_endpoint_delivery_verifies_with_the_endpoint_secret(receiver, emit):
    endpoint = WebhookEndpointFactory(url=receiver.url())
    event = emit(organization=endpoint.organization, job_id=JOB["id"])
    (received,) = receiver.received
    assert verify(endpoint.secret, received) == {
        "id": event.public_id,
        "type": "job.completed",
        "created_at": event.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "sequence": 1,
        "data": JOB,
    }
    assert received.headers["webhook-id"] == event.public_id
    assert received.headers["content-type"] == "application/json"


def test_job_target_without_a_secret_is_signed_with_the_organization_secret(receiver, emit):
    organization = OrganizationFactory()
    target = JobWebhookTarget(url=receiver.url(), secret=None, event_types=None)
    emit(organization=organization, job_id=JOB["id"], job_target=target)
    (received,) = receiver.received
    assert verify(organization.webhook_signing_secret, received)["data"] == JOB


def test_job_target_with_its_own_secret_is_signed_with_it(receiver, emit):
    organization = OrganizationFactory()
    job_secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    target = JobWebhookTarget(url=receiver.url(), secret=job_secret, event_types=None)
    emit(organization=organization, job_id=JOB["id"], job_target=target)
    (received,) = receiver.received
    assert verify(job_secret, received)["data"] == JOB
    with pytest.raises(Exception, match="No matching signature"):
        verify(organization.webhook_signing_secret, received)


def test_failing_twice_then_succeeding_makes_three_attempts_with_one_webhook_id(receiver, emit):
    receiver.answer(Answer(status=500, body=b"boom"), Answer(status=500), Answer(status=200))
    endpoint = WebhookEndpointFactory(url=receiver.url())
    emit(organization=endpoint.organization, job_id=JOB["id"])
    make_due_and_deliver()
    make_due_and_deliver()
    delivery = Delivery.objects.get()
    attempts = list(delivery.attempts.all())
    assert [a.status_code for a in attempts] == [500, 500, 200]
    assert attempts[0].response_body == "boom"
    assert all(a.latency_ms >= 0 and a.attempted_at for a in attempts)
    assert (delivery.status, delivery.attempt_count) == (Delivery.Status.SUCCEEDED, 3)
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 1
    assert len({r.body for r in receiver.received}) == 1
    for received in receiver.received:
        verify(endpoint.secret, received)


def test_a_failed_attempt_is_retried_after_about_five_seconds(receiver, emit):
    receiver.answer(Answer(status=500))
    endpoint = WebhookEndpointFactory(url=receiver.url())
    before = timezone.now()
    emit(organization=endpoint.organization)
    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.PENDING
    wait = delivery.next_attempt_at - before
    assert timedelta(seconds=4.5) <= wait <= timedelta(seconds=6)


def test_a_receiver_that_hangs_is_cut_at_the_timeout_and_logged(receiver, emit, settings):
    settings.WEBHOOK_TIMEOUT_SECONDS = 1.0
    receiver.answer(Answer(delay=3))
    endpoint = WebhookEndpointFactory(url=receiver.url())
    emit(organization=endpoint.organization)
    delivery = Delivery.objects.get()
    (attempt,) = delivery.attempts.all()
    assert attempt.status_code is None
    assert attempt.error == "No complete answer within 1 s"
    assert 900 <= attempt.latency_ms < 2500
    assert delivery.status == Delivery.Status.PENDING


def test_the_timeout_is_ten_seconds_by_default():
    from django.conf import settings

    assert settings.WEBHOOK_TIMEOUT_SECONDS == 10.0


def test_a_redirect_is_a_logged_failure_and_not_followed(receiver, emit):
    receiver.answer(Answer(status=301, headers={"Location": receiver.url("/moved")}))
    endpoint = WebhookEndpointFactory(url=receiver.url())
    emit(organization=endpoint.organization)
    delivery = Delivery.objects.get()
    (attempt,) = delivery.attempts.all()
    assert attempt.status_code == 301
    assert "Redirects are not followed" in attempt.error
    assert delivery.status == Delivery.Status.PENDING
    assert [r.path for r in receiver.received] == ["/hook"]


def test_gone_disables_the_endpoint_at_once_and_emails_the_owners(receiver, emit):
    receiver.answer(Answer(status=410))
    owner = MembershipFactory()
    MembershipFactory(organization=owner.organization, role="member")
    endpoint = WebhookEndpointFactory(organization=owner.organization, url=receiver.url())
    emit(organization=endpoint.organization)
    endpoint.refresh_from_db()
    assert (endpoint.enabled, endpoint.disabled_reason) == (False, "gone")
    assert Delivery.objects.get().status == Delivery.Status.FAILED
    assert [m.to for m in mail.outbox] == [[owner.user.email]]
    assert "disabled" in mail.outbox[0].subject
    emit(organization=endpoint.organization)
    assert len(receiver.received) == 1  # a disabled endpoint gets no new events


def test_retry_after_is_honoured_on_429(receiver, emit):
    receiver.answer(Answer(status=429, headers={"Retry-After": "120"}))
    endpoint = WebhookEndpointFactory(url=receiver.url())
    before = timezone.now()
    emit(organization=endpoint.organization)
    wait = Delivery.objects.get().next_attempt_at - before
    assert timedelta(seconds=119) <= wait <= timedelta(seconds=122)


def test_retry_after_is_honoured_on_503(receiver, emit):
    receiver.answer(Answer(status=503, headers={"Retry-After": "3600"}))
    endpoint = WebhookEndpointFactory(url=receiver.url())
    before = timezone.now()
    emit(organization=endpoint.organization)
    wait = Delivery.objects.get().next_attempt_at - before
    assert timedelta(seconds=3599) <= wait <= timedelta(seconds=3602)


def test_the_delivery_fails_after_the_last_retry(receiver, emit):
    receiver.answer(*[Answer(status=500)] * 8)
    endpoint = WebhookEndpointFactory(url=receiver.url())
    emit(organization=endpoint.organization)
    for _ in range(7):
        make_due_and_deliver()
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempt_count) == (Delivery.Status.FAILED, 8)
    assert delivery.next_attempt_at is None
    make_due_and_deliver()
    assert len(receiver.received) == 8


def test_an_endpoint_that_starts_failing_emails_its_owners_once(receiver, emit):
    receiver.answer(Answer(status=500), Answer(status=500))
    owner = MembershipFactory()
    endpoint = WebhookEndpointFactory(organization=owner.organization, url=receiver.url())
    emit(organization=endpoint.organization)
    emit(organization=endpoint.organization)
    assert [m.subject for m in mail.outbox] == [f"Webhook deliveries to {endpoint.url} are failing"]
    endpoint.refresh_from_db()
    assert endpoint.failing_since is not None
    assert endpoint.enabled


def test_an_endpoint_failing_for_five_days_is_disabled_and_owners_emailed(receiver, emit):
    receiver.answer(Answer(status=500))
    owner = MembershipFactory()
    endpoint = WebhookEndpointFactory(
        organization=owner.organization,
        url=receiver.url(),
        failing_since=timezone.now() - timedelta(days=5, minutes=1),
    )
    emit(organization=endpoint.organization)
    endpoint.refresh_from_db()
    assert (endpoint.enabled, endpoint.disabled_reason) == (False, "failing")
    assert [m.subject for m in mail.outbox] == [
        f"Webhook endpoint {endpoint.url} has been disabled"
    ]


def test_a_success_ends_the_failing_run(receiver, emit):
    endpoint = WebhookEndpointFactory(
        url=receiver.url(), failing_since=timezone.now() - timedelta(days=4)
    )
    emit(organization=endpoint.organization)
    endpoint.refresh_from_db()
    assert endpoint.failing_since is None


def test_job_target_subscribed_to_completed_gets_no_progress(receiver, emit):
    organization = OrganizationFactory()
    target = JobWebhookTarget(url=receiver.url(), secret=None, event_types=["job.completed"])
    emit(
        organization=organization,
        event_type="job.progress",
        data={"progress": 50},
        job_id="j1",
        job_target=target,
    )
    emit(
        organization=organization,
        event_type="job.completed",
        data=JOB,
        job_id="j1",
        job_target=target,
    )
    assert [json.loads(r.body)["type"] for r in receiver.received] == ["job.completed"]


def test_job_target_by_default_gets_completed_and_failed_only(receiver, emit):
    organization = OrganizationFactory()
    target = JobWebhookTarget(url=receiver.url(), secret=None, event_types=None)
    for event_type in ("job.progress", "job.failed", "job.completed"):
        emit(
            organization=organization,
            event_type=event_type,
            data={},
            job_id="j1",
            job_target=target,
        )
    assert [json.loads(r.body)["type"] for r in receiver.received] == [
        "job.failed",
        "job.completed",
    ]


def test_sequence_increases_with_each_event_of_a_job(receiver, emit):
    organization = OrganizationFactory()
    target = JobWebhookTarget(
        url=receiver.url(), secret=None, event_types=["job.progress", "job.completed"]
    )
    for event_type in ("job.progress", "job.progress", "job.completed"):
        emit(
            organization=organization,
            event_type=event_type,
            data={},
            job_id="j1",
            job_target=target,
        )
    emit(
        organization=organization,
        event_type="job.completed",
        data={},
        job_id="j2",
        job_target=target,
    )
    bodies = [json.loads(r.body) for r in receiver.received]
    assert [b["sequence"] for b in bodies] == [1, 2, 3, 1]


def test_endpoints_get_only_the_types_they_subscribe_to(receiver, emit):
    organization = OrganizationFactory()
    WebhookEndpointFactory(organization=organization, url=receiver.url("/all"))
    WebhookEndpointFactory(
        organization=organization, url=receiver.url("/credits"), event_types=["credits.low"]
    )
    emit(organization=organization, event_type="job.completed", data={})
    emit(organization=organization, event_type="credits.low", data={})
    assert sorted((r.path, json.loads(r.body)["type"]) for r in receiver.received) == [
        ("/all", "credits.low"),
        ("/all", "job.completed"),
        ("/credits", "credits.low"),
    ]


def test_another_organizations_endpoints_get_nothing(receiver, emit):
    WebhookEndpointFactory(url=receiver.url())
    emit(organization=OrganizationFactory())
    assert receiver.received == []


def test_an_event_nobody_listens_to_is_not_stored(receiver, emit):
    event = emit(organization=OrganizationFactory(), event_type="job.progress", data={})
    assert event.pk is None


def test_rotated_secret_signs_with_both_secrets_for_24_hours(receiver, emit):
    endpoint = WebhookEndpointFactory(url=receiver.url())
    old_secret = endpoint.secret
    services.rotate_endpoint_secret(endpoint=endpoint)
    emit(organization=endpoint.organization)
    (received,) = receiver.received
    assert len(received.headers["webhook-signature"].split(" ")) == 2
    verify(old_secret, received)
    verify(endpoint.secret, received)


def test_the_old_secret_stops_signing_after_24_hours(receiver, emit):
    endpoint = WebhookEndpointFactory(url=receiver.url())
    old_secret = endpoint.secret
    services.rotate_endpoint_secret(endpoint=endpoint)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        previous_secret_expires_at=timezone.now() - timedelta(seconds=1)
    )
    emit(organization=endpoint.organization)
    (received,) = receiver.received
    verify(endpoint.secret, received)
    with pytest.raises(Exception, match="No matching signature"):
        verify(old_secret, received)


def test_manual_retry_sends_the_same_event_again(
    receiver, emit, django_capture_on_commit_callbacks
):
    endpoint = WebhookEndpointFactory(url=receiver.url())
    emit(organization=endpoint.organization)
    delivery = Delivery.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        services.retry_delivery(delivery=delivery)
    first, second = receiver.received
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.body == second.body
    assert delivery.attempts.count() == 2


def test_resend_failed_since_sends_only_failed_deliveries_since_then(
    receiver, emit, django_capture_on_commit_callbacks
):
    endpoint = WebhookEndpointFactory(url=receiver.url())
    for _ in range(3):
        emit(organization=endpoint.organization)
    old, failed, _succeeded = Delivery.objects.order_by("created_at")
    Delivery.objects.filter(pk=old.pk).update(
        status="failed", created_at=timezone.now() - timedelta(days=2)
    )
    Delivery.objects.filter(pk=failed.pk).update(status="failed")
    with django_capture_on_commit_callbacks(execute=True):
        resent = services.resend_failed_deliveries(
            endpoint=endpoint, since=timezone.now() - timedelta(days=1)
        )
    assert resent == 1
    assert len(receiver.received) == 4
    assert receiver.received[-1].headers["webhook-id"] == failed.event.public_id
    assert Delivery.objects.get(pk=failed.pk).status == Delivery.Status.SUCCEEDED


def test_a_delivery_whose_enqueue_was_lost_is_sent_by_the_sweep(receiver):
    endpoint = WebhookEndpointFactory(url=receiver.url())
    # No on-commit callbacks run here: as if the broker had been down at commit time.
    services.emit_event(organization=endpoint.organization, event_type="job.completed", data={})
    assert receiver.received == []
    assert services.send_due_deliveries() == 0  # not yet overdue: its task may be on its way
    Delivery.objects.update(next_attempt_at=timezone.now() - timedelta(minutes=1))
    assert services.send_due_deliveries() == 1
    assert len(receiver.received) == 1
    assert Delivery.objects.get().status == Delivery.Status.SUCCEEDED


def test_a_delivery_is_not_sent_twice_by_a_duplicate_task(receiver, emit):
    endpoint = WebhookEndpointFactory(url=receiver.url())
    emit(organization=endpoint.organization)
    delivery = Delivery.objects.get()
    assert services.attempt_delivery(delivery_id=delivery.pk) is None
    assert len(receiver.received) == 1


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/hook",
        "http://localhost:{port}/hook",
        "http://[::1]:{port}/hook",
        "http://[::ffff:127.0.0.1]:{port}/hook",
        "http://10.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data/",
    ],
)
def test_non_public_addresses_are_refused_at_delivery(url, receiver, emit, settings):
    organization = OrganizationFactory()
    target = JobWebhookTarget(url=url.format(port=receiver.port), secret=None, event_types=None)
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    emit(organization=organization, job_id="j1", job_target=target)
    (attempt,) = Delivery.objects.get().attempts.all()
    assert "non-public" in attempt.error
    assert attempt.status_code is None
    assert receiver.received == []


EXPECTED_WAITS = [
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
]


@pytest.mark.parametrize(("failures", "expected"), list(enumerate(EXPECTED_WAITS, start=1)))
def test_retries_follow_the_schedule_with_jitter(failures, expected):
    waits = {services.next_retry_wait(failed_attempts=failures) for _ in range(20)}
    assert all(expected * 0.9 <= wait <= expected * 1.1 for wait in waits)
    assert len(waits) > 1  # jittered, so retries of many deliveries do not arrive together


def test_after_the_eighth_failed_attempt_there_is_no_retry():
    assert services.next_retry_wait(failed_attempts=8) is None


def test_each_retry_is_scheduled_on_the_delivery(receiver, emit):
    receiver.answer(*[Answer(status=500)] * 8)
    endpoint = WebhookEndpointFactory(url=receiver.url())
    emit(organization=endpoint.organization)
    waits = []
    for _ in range(7):
        delivery = Delivery.objects.get()
        last_attempt = delivery.attempts.last()
        waits.append(delivery.next_attempt_at - last_attempt.attempted_at)
        make_due_and_deliver()
    for wait, expected in zip(waits, EXPECTED_WAITS, strict=True):
        assert expected * 0.89 <= wait <= expected * 1.11


def test_gone_from_a_job_target_fails_the_delivery_without_retrying(receiver, emit):
    receiver.answer(Answer(status=410))
    target = JobWebhookTarget(url=receiver.url(), secret=None, event_types=None)
    emit(organization=OrganizationFactory(), job_id="j1", job_target=target)
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.next_attempt_at) == (Delivery.Status.FAILED, None)


def test_pending_retries_of_a_disabled_endpoint_are_not_sent(receiver, emit):
    receiver.answer(Answer(status=500))
    endpoint = WebhookEndpointFactory(url=receiver.url())
    emit(organization=endpoint.organization)
    services.disable_endpoint(endpoint=endpoint)
    make_due_and_deliver()
    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.FAILED
    assert delivery.attempts.last().error == "Not sent: the endpoint is disabled"
    assert len(receiver.received) == 1


def test_the_body_keeps_the_order_of_the_data_it_was_given(receiver, emit):
    endpoint = WebhookEndpointFactory(url=receiver.url())
    job = {"id": "img_1", "status": "completed", "prompt": "a fox", "images": [], "error": None}
    emit(organization=endpoint.organization, data=job)
    body = receiver.received[0].body.decode()
    assert body.endswith(
        ',"data":{"id":"img_1","status":"completed","prompt":"a fox","images":[],"error":null}}'
    )
    assert body.startswith('{"id":"evt_')
