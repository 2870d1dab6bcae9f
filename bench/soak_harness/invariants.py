"""The invariants checked at the end of a run, one function each.

Each takes the run and returns its violations as (invariant, evidence) through `Violation`;
INVARIANTS lists them in the order they are checked and printed.
"""

import json
from collections import Counter, defaultdict

from django.db.models import Count, Sum

from .record import Violation

TERMINAL_EVENTS = ("job.completed", "job.failed")


def _organizations(run) -> list[int]:
    return [tenant.organization_id for tenant in run.tenants]


def _jobs(run):
    from generation.models import Job

    return Job.objects.filter(organization_id__in=_organizations(run))


def every_accepted_job_is_terminal(run):
    from generation.models import Job

    for job in _jobs(run).filter(status__in=Job.UNFINISHED):
        yield f"job {job.public_id} ({job.dialect}) still {job.status}, submitted {job.created_at}"


def balance_equals_ledger_and_never_negative(run):
    from accounts.models import Organization
    from billing.models import CreditLedgerEntry
    from billing.selectors import ledger_mismatches

    ours = set(_organizations(run))
    for row in ledger_mismatches():
        if row["id"] in ours:
            yield (
                f"{row['slug']}: balance {row['credit_balance']} != ledger sum {row['ledger_sum']}"
            )
    for organization in Organization.objects.filter(pk__in=ours):
        running = 0
        entries = CreditLedgerEntry.objects.filter(organization=organization).order_by("pk")
        for entry in entries:
            running += entry.amount
            if entry.balance_after != running or entry.balance_after < 0:
                yield (
                    f"{organization.slug}: entry {entry.pk} ({entry.kind} {entry.amount}) left "
                    f"balance_after {entry.balance_after}, the running sum is {running}"
                )
                break


def each_job_charged_once_and_refunded_once_if_not_completed(run):
    from billing.models import CreditLedgerEntry
    from generation.models import Job

    Kind = CreditLedgerEntry.Kind
    moves = defaultdict(list)
    entries = CreditLedgerEntry.objects.filter(
        organization_id__in=_organizations(run), job_id__isnull=False
    ).values_list("job_id", "kind", "amount")
    for job_id, kind, amount in entries:
        moves[job_id].append((kind, amount))
    for job in _jobs(run):
        kinds = Counter(kind for kind, _ in moves[job.pk])
        net = -sum(amount for _, amount in moves[job.pk])
        if kinds[Kind.RESERVE] > 1 or kinds[Kind.REFUND] > 1:
            yield f"job {job.public_id}: ledger moves {moves[job.pk]}"
        elif job.status in (Job.Status.FAILED, Job.Status.CANCELED) and (
            kinds[Kind.REFUND] != 1 or net != 0
        ):
            yield f"job {job.public_id} {job.status}: ledger moves {moves[job.pk]}, kept {net}"
        elif job.status == Job.Status.COMPLETED and net != job.credits_used:
            yield f"job {job.public_id}: credits_used {job.credits_used}, the ledger kept {net}"


def _jobs_by_prompt(run) -> Counter:
    return Counter(_jobs(run).values_list("prompt", flat=True))


def no_idempotency_key_made_two_jobs(run):
    jobs = _jobs_by_prompt(run)
    accepted = {r.prompt for r in run.record.responses if r.submission and r.status in (200, 202)}
    for prompt in {r.prompt for r in run.record.responses if r.submission}:
        if jobs[prompt] > 1:
            yield f"{prompt!r} (one idempotency key) made {jobs[prompt]} jobs"
        elif prompt in accepted and jobs[prompt] == 0:
            yield f"{prompt!r} was accepted but no job exists"


def unavailable_means_nothing_charged(run):
    """A request answered only with 503s left no job and no charge behind."""
    jobs = _jobs_by_prompt(run)
    statuses = defaultdict(set)
    for response in run.record.responses:
        if response.submission:
            statuses[response.prompt].add(response.status)
    for prompt, seen in statuses.items():
        if seen == {503} and jobs[prompt]:
            yield f"{prompt!r} got only 503s but made {jobs[prompt]} job(s)"


# How the OpenAI-compatible endpoint reports a job that failed (refunded), in OpenAI's shape:
# a failure of the job, counted, not an error of the server.
OPENAI_FAILED_JOB = "The generation failed ("


def no_server_errors(run):
    for response in run.record.responses:
        if response.status == 500 and OPENAI_FAILED_JOB in response.body:
            run.record.count("openai_failed_jobs_answered_500")
            continue
        if response.status is not None and response.status >= 500 and response.status != 503:
            yield (
                f"{response.method} {response.path} ({response.action}, {response.organization})"
                f" answered {response.status}: {response.body[:300]}"
            )


def a_canceled_job_stays_canceled(run):
    from generation.models import Job

    canceled = [job_id for job_id, status in run.record.cancels if status == 200]
    for job in _jobs(run).filter(public_id__in=canceled).exclude(status=Job.Status.CANCELED):
        yield f"job {job.public_id}: cancel answered 200, the job ended {job.status}"


def every_pack_credited_exactly_once(run):
    from billing.models import PackPurchase

    purchases = PackPurchase.objects.filter(organization_id__in=_organizations(run))
    for purchase in purchases:
        count, total = _credited(purchase)
        expected = 1 if purchase.status == PackPurchase.Status.SUCCEEDED else 0
        if count != expected or (count and total != purchase.credits):
            yield f"purchase {purchase.token} {purchase.status}: credited {count} time(s)"
    by_token = {purchase.token: purchase for purchase in purchases}
    for bought in run.record.purchases:
        if bought["outcome"] != PackPurchase.Status.PROCESSING:
            continue
        purchase = by_token[bought["token"]]
        if purchase.status == PackPurchase.Status.SUCCEEDED:
            continue
        if _paid_at_stripe(purchase):
            yield f"purchase {purchase.token} was paid at Stripe but ended {purchase.status}"
        else:
            # Paid at a localstripe that was killed since: it starts again from scratch.
            run.record.count("payments_forgotten_by_localstripe")


def _credited(purchase) -> tuple[int, int]:
    from billing.models import CreditLedgerEntry

    credited = CreditLedgerEntry.objects.filter(
        reference=f"stripe:payment_intent:{purchase.stripe_payment_intent_id}",
        kind=CreditLedgerEntry.Kind.PURCHASE,
    ).aggregate(count=Count("pk"), total=Sum("amount"))
    return credited["count"] or 0, credited["total"] or 0


def _paid_at_stripe(purchase) -> bool:
    """What localstripe says now; one restarted since the payment no longer knows it."""
    from billing import stripe_gateway

    if not purchase.stripe_payment_intent_id:
        return False
    try:
        payment_intent = stripe_gateway.retrieve_payment_intent(purchase.stripe_payment_intent_id)
    except stripe_gateway.ResourceMissing:
        return False
    return payment_intent["status"] == "succeeded"


def auto_recharge_credited_once(run):
    """Every automatic purchase paid at Stripe is credited exactly once and its attempt says
    paid; one that failed or was canceled took nothing."""
    from billing.models import AutoRechargeAttempt, PackPurchase

    Status = AutoRechargeAttempt.Status
    attempts = AutoRechargeAttempt.objects.filter(
        organization_id__in=_organizations(run)
    ).select_related("purchase", "organization")
    for attempt in attempts:
        run.record.count(f"auto_recharge_attempts:{attempt.status}")
        purchase = attempt.purchase
        where = f"{attempt.organization.slug}: auto-recharge attempt {attempt.pk}"
        if attempt.status == Status.PENDING:
            yield f"{where} still waiting to charge, opened {attempt.created_at}"
            continue
        if purchase is None:
            if attempt.status != Status.CANCELED:
                yield f"{where} {attempt.status} without a purchase"
            continue
        count, total = _credited(purchase)
        paid = purchase.status == PackPurchase.Status.SUCCEEDED or _paid_at_stripe(purchase)
        if paid and (count != 1 or total != purchase.credits):
            yield f"{where}: paid at Stripe, credited {count} time(s) ({total} credits)"
        if paid and attempt.status == Status.FAILED:
            yield f"{where}: paid at Stripe, but its owners were told it failed"
        if not paid and count:
            yield f"{where} {attempt.status}: not paid at Stripe, credited {count} time(s)"
        if attempt.status == Status.CHARGING:
            # The run charged every stuck attempt again at the end, as the sweep does.
            yield f"{where} still charging after it was charged again"


def _received(run) -> dict:
    """(receiver, path) -> {webhook-id: payload} of the receipts."""
    received = defaultdict(dict)
    for receipt in run.record.receipts:
        received[(receipt.receiver, receipt.path)][receipt.webhook_id] = receipt.payload
    return received


def every_event_reached_each_healthy_endpoint(run):
    from webhooks.models import Delivery, Event, WebhookEndpoint

    received = _received(run)
    healthy = run.receivers["healthy"].url
    for tenant in run.tenants:
        for public_id, path in tenant.healthy_endpoints:
            endpoint = WebhookEndpoint.objects.get(public_id=public_id)
            events = Event.objects.filter(
                organization_id=tenant.organization_id, created_at__gte=endpoint.created_at
            )
            if endpoint.event_types:
                events = events.filter(type__in=endpoint.event_types)
            for event in events:
                if event.public_id not in received[("healthy", path)]:
                    yield (
                        f"{tenant.slug}: event {event.public_id} ({event.type}) "
                        f"never reached {path}"
                    )
    job_targets = Delivery.objects.filter(
        organization_id__in=_organizations(run), target_url__startswith=healthy
    ).select_related("event")
    for delivery in job_targets:
        path = delivery.target_url.removeprefix(healthy)
        if delivery.event.public_id not in received[("healthy", path)]:
            yield (
                f"job {delivery.event.job_id}: event {delivery.event.public_id} "
                f"({delivery.event.type}) never reached its webhook_url, {delivery.status}"
            )


def one_webhook_id_across_retries(run):
    payloads = {}
    for receipt in run.record.receipts:
        if receipt.payload is None or receipt.payload.get("id") != receipt.webhook_id:
            yield (
                f"{receipt.receiver}{receipt.path}: webhook-id {receipt.webhook_id!r} "
                "names another body"
            )
            continue
        body = json.dumps(receipt.payload, sort_keys=True)
        if payloads.setdefault(receipt.webhook_id, body) != body:
            yield f"webhook-id {receipt.webhook_id} came with two different bodies"


def sequence_increases_per_job(run):
    from webhooks.models import Event

    events = defaultdict(list)
    rows = Event.objects.filter(organization_id__in=_organizations(run)).exclude(job_id="")
    for event in rows.order_by("created_at", "pk"):
        events[event.job_id].append((event.sequence, event.type, event.public_id))
    for job_id, sequence in events.items():
        numbers = [number for number, _, _ in sequence]
        if numbers != sorted(set(numbers)):
            yield f"job {job_id}: event sequences {numbers} in the order they were made"
        terminal = [number for number, kind, _ in sequence if kind in TERMINAL_EVENTS]
        if terminal and max(numbers) not in terminal:
            yield f"job {job_id}: an event after its terminal one: {sequence}"
    for receipt in run.record.receipts:
        data = (receipt.payload or {}).get("sequence")
        if data is None:
            continue
        known = next(
            (
                n
                for job in events.values()
                for n, _, public_id in job
                if public_id == receipt.webhook_id
            ),
            data,
        )
        if known != data:
            yield f"webhook {receipt.webhook_id} carried sequence {data}, the event has {known}"


def rate_limits_held_in_every_window(run):
    """Jobs accepted per organization in one minute window, counted by the window the answer
    named (`X-RateLimit-Reset`), never above the plan's per-minute limit."""
    limits = {tenant.slug: tenant.per_minute for tenant in run.tenants}
    accepted = Counter(
        (r.organization, r.rate_limit_reset)
        for r in run.record.responses
        if r.submission and r.status in (200, 202) and not r.replayed and r.rate_limit_reset
    )
    for (slug, window), count in accepted.items():
        if count > limits[slug]:
            yield (
                f"{slug}: {count} jobs accepted in the window ending {window}, "
                f"the plan allows {limits[slug]}"
            )


def running_slots_return_to_zero(run):
    """Once the run is over and drained, no organization holds a running slot."""
    from generation.models import Job

    running = (
        _jobs(run)
        .filter(status=Job.Status.RUNNING)
        .values_list("organization__slug")
        .annotate(n=Count("pk"))
    )
    for slug, count in running:
        yield f"{slug}: {count} job(s) still running at the end"


def concurrent_limits_held(run):
    """No organization ran more jobs at once than its limit, read from each job's
    `started_at` and `completed_at` (a job rerun after its worker died shows its last run)."""
    from accounts.models import Organization

    limits = {
        o.pk: (o.slug, o.max_concurrent_jobs)
        for o in Organization.objects.filter(pk__in=_organizations(run)).select_related("plan")
    }
    moments = defaultdict(list)
    ran = _jobs(run).filter(started_at__isnull=False, completed_at__isnull=False)
    for org_id, started, completed in ran.values_list(
        "organization_id", "started_at", "completed_at"
    ):
        moments[org_id] += [(started, 1), (completed, -1)]
    for org_id, changes in moments.items():
        slug, limit = limits[org_id]
        running = 0
        for moment, change in sorted(changes):
            running += change
            if running > limit:
                yield f"{slug}: {running} jobs running at {moment}, the limit is {limit}"
                break


def budgets_never_exceeded(run):
    """No organization's month's spend passed its monthly budget (which only ever grew)."""
    from accounts.models import Organization

    for organization in Organization.objects.filter(
        pk__in=_organizations(run), monthly_credit_budget__isnull=False
    ):
        if organization.month_spend > organization.monthly_credit_budget:
            yield (
                f"{organization.slug} spent {organization.month_spend} credits this month, "
                f"over its budget of {organization.monthly_credit_budget}"
            )


INVARIANTS = [
    every_accepted_job_is_terminal,
    balance_equals_ledger_and_never_negative,
    each_job_charged_once_and_refunded_once_if_not_completed,
    no_idempotency_key_made_two_jobs,
    unavailable_means_nothing_charged,
    no_server_errors,
    a_canceled_job_stays_canceled,
    every_pack_credited_exactly_once,
    every_event_reached_each_healthy_endpoint,
    one_webhook_id_across_retries,
    sequence_increases_per_job,
    rate_limits_held_in_every_window,
    running_slots_return_to_zero,
    concurrent_limits_held,
    budgets_never_exceeded,
    auto_recharge_credited_once,
]


def check(run) -> list[Violation]:
    violations = list(run.record.violations)
    for invariant in INVARIANTS:
        violations.extend(Violation(invariant.__name__, evidence) for evidence in invariant(run))
    return violations
