"""The base every tenant API view inherits: the organization comes from the key, once.

It also applies what the API reference's Conventions ask of every authenticated call: the rate-limit
windows (counted for job submissions, a per-key cap for reads) with their headers on every
response, and Idempotency-Key on POSTs.

The rate-limit round trip also confirms a key this process remembers
(accounts/api_key_cache.py): authentication takes it on trust, the round trip reads the
keys' generation along with the counters, and a key found out of date is loaded again
before permissions or the view see it. One Redis round trip per call, not two.
"""

from rest_framework.views import APIView

from accounts import api_key_cache, services
from accounts.authentication import ApiKeyAuthentication
from common import log_context
from common.api import idempotency, rate_limits
from common.api.errors import RateLimitExceeded
from common.api.views import SAFE_METHODS, HasScope, json_object


class OrganizationApiView(APIView):
    """An API view that acts for `self.organization`, the key's organization.

    Reads go through selectors that take that organization, so another tenant's ids
    are simply not found.
    """

    required_scope: str | None = None
    # A POST that creates a job: it uses a slot of the plan's minute and day windows,
    # whatever its outcome (a 400, 402 or 429 too).
    counts_as_submission = False
    # A POST that changes webhook endpoints or sends deliveries again: it uses a slot of the
    # organization's webhook-change window (rate_limits.WEBHOOK_CHANGES_PER_MINUTE).
    counts_as_webhook_change = False
    # A POST that only reads (an estimate): it counts against the key's read cap instead.
    counts_as_read = False
    # POSTs accept Idempotency-Key unless a view opts out.
    idempotent_posts = True

    def get_authenticators(self):
        # perform_authentication confirms a remembered key in the rate-limit round trip.
        return [ApiKeyAuthentication(confirm=False)]

    def get_permissions(self):
        return [*super().get_permissions(), HasScope()]

    @property
    def organization(self):
        return self.request.organization

    def json_object(self) -> dict:
        """The request body, which must be a JSON object (400 `bad_request` otherwise)."""
        return json_object(self.request)

    def perform_authentication(self, request):
        # Before the permissions: every authenticated answer (a 403 for a missing scope
        # too) carries the rate-limit headers, and nothing trusts an unconfirmed key.
        super().perform_authentication(request)
        if request.auth is not None:
            # For the request's log lines; the request id middleware resets it.
            log_context.organization.set(self.organization.slug)
            self._apply_rate_limits(request)

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if request.method == "POST" and self.idempotent_posts:
            request.idempotency_claim = idempotency.claim(request, self.organization)

    def _apply_rate_limits(self, request):
        unconfirmed = api_key_cache.needs_confirmation(request.auth)
        read_along = api_key_cache.GENERATION_KEY if unconfirmed else None
        usage = self._count(request, read_along)
        if unconfirmed:
            limits = self._limits()
            if usage is not None and api_key_cache.is_confirmed(request.auth, usage.read_along):
                services.record_api_key_use(request.auth)
            else:
                self._load_key_again(request)  # which records the key's use itself
                if self._limits() != limits:
                    usage = self._count(request, None)
        request.rate_limit_usage = usage
        if usage is None:
            return
        if request.method == "POST" and self.counts_as_submission:
            window = usage.full_window
            if window is not None:
                raise RateLimitExceeded(
                    f"The {window.name} limit of {window.limit} submissions is reached; "
                    f"retry in {window.seconds_left()} seconds.",
                    headers={"Retry-After": str(window.seconds_left())},
                )
        elif usage.webhook_changes is not None and usage.webhook_changes.exceeded:
            raise RateLimitExceeded(
                f"The limit of {usage.webhook_changes.limit} webhook changes per minute is "
                f"reached; retry in {usage.webhook_changes.seconds_left()} seconds.",
                headers={"Retry-After": str(usage.webhook_changes.seconds_left())},
            )
        elif usage.reads is not None and usage.reads.exceeded:
            raise RateLimitExceeded(
                f"The limit of {usage.reads.limit} reads per minute for this API key is "
                f"reached; retry in {usage.reads.seconds_left()} seconds.",
                headers={"Retry-After": str(usage.reads.seconds_left())},
            )

    def _count(self, request, read_along: str | None) -> rate_limits.Usage | None:
        if request.method == "POST" and self.counts_as_submission:
            return rate_limits.count_submission(request, self.organization, read_along=read_along)
        if request.method == "POST" and self.counts_as_webhook_change:
            return rate_limits.count_webhook_change(
                request, self.organization, read_along=read_along
            )
        if request.method in SAFE_METHODS or self.counts_as_read:
            return rate_limits.count_read(
                request, self.organization, request.auth, read_along=read_along
            )
        return rate_limits.peek(request, self.organization, read_along=read_along)

    def _limits(self) -> tuple:
        # What the counters' cache keys are made of: the organization and its two limits.
        organization = self.organization
        return organization.pk, organization.requests_per_minute, organization.requests_per_day

    def _load_key_again(self, request):
        """The remembered key is out of date (or unconfirmable): load it from the database.

        Raises 401/403 when the key or its organization is now refused.
        """
        request.user, request.auth = ApiKeyAuthentication().authenticate(request)

    def handle_exception(self, exc):
        if isinstance(exc, idempotency.Replay):
            return exc.response
        return super().handle_exception(exc)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        usage = getattr(request, "rate_limit_usage", None)
        if usage is not None:
            for name, value in usage.headers().items():
                response[name] = value
        claim = getattr(request, "idempotency_claim", None)
        if claim is not None and not response.has_header("Idempotent-Replayed"):
            idempotency.settle(claim, response)
        return response
