"""The customer dashboard: overview, playground, job history and organization settings.

Views stay thin: parse a form, call one service or selector scoped to
`request.organization`, then render or redirect with a message. Another organization's
ids are 404.
"""

import json
import shlex
from datetime import timedelta

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_safe

from accounts import errors as account_errors
from accounts import selectors as account_selectors
from accounts import services as account_services
from accounts.access import organization_required
from billing import selectors as billing_selectors
from common.errors import Refused
from dashboard import charts, forms
from generation import selectors as generation_selectors
from generation import services as generation_services
from generation.api.serializers import TextToImageRequestSerializer
from generation.errors import SubmissionsRateLimited
from generation.image_urls import signed_url
from generation.models import Job
from webhooks import selectors as webhook_selectors

USAGE_DAYS = 30
RECENT_JOBS = 6
HISTORY_LIMIT = 100
# How often the playground asks whether its job is done.
POLL_INTERVAL_MS = 1000
# The session key of the playground's last submitted choices, shown again after the run.
PLAYGROUND_CHOICES = "playground_choices"


def _image_urls(job: Job) -> list[str]:
    return [
        signed_url(storage_path=image.storage_path, job_expires_at=job.expires_at)
        for image in job.servable_images
    ]


def _with_image_urls(jobs: list[Job]) -> list[Job]:
    for job in jobs:
        job.image_urls = _image_urls(job)
    return jobs


def _job_or_404(request, public_id: str) -> Job:
    # By its img_ id, or by its UUID as the credit history links it.
    job = generation_selectors.get_job(organization=request.organization, job_ref=public_id)
    if job is None:
        raise Http404("No such job.")
    job.image_urls = _image_urls(job)
    return job


@organization_required
def overview(request):
    organization = request.organization
    today = timezone.now().date()
    usage = generation_selectors.usage_by_day(
        organization=organization, start=today - timedelta(days=USAGE_DAYS - 1), end=today
    )
    recent = generation_selectors.job_history(
        organization=organization,
        filters=generation_selectors.JobFilters(),
        limit=RECENT_JOBS,
    )
    return render(
        request,
        "dashboard/overview.html",
        {
            "organization": organization,
            "membership": account_selectors.membership_for(
                user=request.user, organization=organization
            ),
            "chart": charts.usage_chart(usage),
            "expiring": billing_selectors.expiring_credits(organization=organization),
            "recent_jobs": _with_image_urls(recent),
            "api_keys": account_selectors.api_keys(organization=organization).select_related(
                "created_by"
            ),
        },
    )


def _curl_command(request, body: dict) -> str:
    url = request.build_absolute_uri(reverse("api-text-to-image"))
    return (
        f"curl {shlex.quote(url)} \\\n"
        '  -H "Authorization: Bearer $IMAGEN_API_KEY" \\\n'
        '  -H "Content-Type: application/json" \\\n'
        f"  -d {shlex.quote(json.dumps(body))}"
    )


def _job_api_body(job: Job) -> dict:
    """The POST /v1/text-to-image body that asks for this job again (same seed, same images)."""
    body = {
        "prompt": job.prompt,
        "model": job.model_id,
        "width": job.width,
        "height": job.height,
        "steps": job.steps,
        "guidance_scale": job.guidance_scale,
        "seed": job.seed,
        "num_images": job.num_images,
    }
    if job.negative_prompt:
        body["negative_prompt"] = job.negative_prompt
    if job.style:
        body["style"] = job.style
    return body


def _submit(request, form: forms.PlaygroundForm) -> Job | None:
    """Submit the form's request as the API would: same limits, validation and charge."""
    try:
        return generation_services.submit(
            organization=request.organization,
            api_key=None,
            body=TextToImageRequestSerializer(data=form.api_body()),
        )
    except SubmissionsRateLimited as error:
        messages.error(request, error.details)
    except Refused as error:
        if error.fields is None:
            messages.error(request, f"{error.message}. {error.details or ''}".strip())
        for field, errors in (error.fields or {}).items():
            for message in errors:
                form.add_error(field if field in form.fields else None, message)
    return None


@organization_required
def playground(request):
    organization = request.organization
    job = None
    if request.method == "POST":
        form = forms.PlaygroundForm(request.POST)
        if form.is_valid():
            job = _submit(request, form)
            if job is not None:
                request.session[PLAYGROUND_CHOICES] = form.cleaned_data
                messages.success(
                    request,
                    f"Job {job.public_id} submitted: {job.num_images} "
                    f"image{'s' if job.num_images != 1 else ''} for "
                    f"{job.credits_reserved} credit{'s' if job.credits_reserved != 1 else ''}.",
                )
                return redirect(f"{reverse('dashboard:playground')}?job={job.public_id}")
        status = 400 if form.errors else 200
    else:
        form = forms.PlaygroundForm(initial=request.session.get(PLAYGROUND_CHOICES))
        status = 200
        if request.GET.get("job"):
            job = _job_or_404(request, request.GET["job"])
    if form.is_bound and form.is_valid():
        body = form.api_body()
    elif job is not None:
        body = _job_api_body(job)
    else:
        body = {"prompt": "a lighthouse at dusk", "width": 1024, "height": 1024}
    cost = form.current_cost()
    balance = billing_selectors.credit_balance(organization=organization)
    return render(
        request,
        "dashboard/playground.html",
        {
            "form": form,
            "job": job,
            "organization": organization,
            "curl": _curl_command(request, body),
            "poll_interval_ms": POLL_INTERVAL_MS,
            "prices": form.prices(),
            "cost": cost,
            "balance": balance,
            "balance_after": None if cost is None else balance - cost,
        },
        status=status,
    )


@require_safe
@organization_required
def playground_job(request, public_id: str):
    """The playground's result panel for one job, polled until the job is finished."""
    return render(
        request,
        "dashboard/_job_result.html",
        {"job": _job_or_404(request, public_id), "poll_interval_ms": POLL_INTERVAL_MS},
    )


@organization_required
def jobs(request):
    form = forms.JobFilterForm(request.GET or None)
    filters = generation_selectors.JobFilters()
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        filters = generation_selectors.JobFilters(
            status=data["status"] or None,
            model=data["model"] or None,
            created_from=data["created_from"],
            created_to=data["created_to"],
        )
    history = generation_selectors.job_history(
        organization=request.organization, filters=filters, limit=HISTORY_LIMIT
    )
    return render(
        request,
        "dashboard/jobs.html",
        {
            "form": form,
            "jobs": _with_image_urls(history),
            "filtered": filters != generation_selectors.JobFilters(),
            "limit": HISTORY_LIMIT,
        },
    )


@organization_required
def job_detail(request, public_id: str):
    job = _job_or_404(request, public_id)
    deliveries = webhook_selectors.deliveries_for_job(
        organization=request.organization, job_id=str(job.pk)
    )
    return render(
        request, "dashboard/job_detail.html", {"job": job, "deliveries": list(deliveries)}
    )


@organization_required
def organization_settings(request):
    organization = request.organization
    membership = account_selectors.membership_for(user=request.user, organization=organization)
    maximum = organization.plan.output_retention_days
    if request.method == "POST":
        form = forms.SettingsForm(request.POST, maximum_retention=maximum)
        if form.is_valid():
            try:
                account_services.update_organization_settings(
                    organization=organization, actor=request.user, **form.cleaned_data
                )
            except account_errors.NotAllowed as error:
                messages.error(request, str(error))
                return redirect("dashboard:settings")
            except account_errors.InvalidSettings as error:
                form.add_error("output_retention_days", str(error))
            else:
                messages.success(request, "Settings saved.")
                return redirect("dashboard:settings")
        status = 400
    else:
        form = forms.SettingsForm(
            initial={
                "name": organization.name,
                "billing_email": organization.billing_email,
                "low_credit_threshold": organization.low_credit_threshold,
                "output_retention_days": organization.output_retention_days,
            },
            maximum_retention=maximum,
        )
        status = 200
    return render(
        request,
        "dashboard/settings.html",
        {"form": form, "membership": membership, "organization": organization},
        status=status,
    )
