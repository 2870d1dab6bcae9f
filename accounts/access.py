"""Who may open a page: the guards every page of an organization wears.

The organization is the one CurrentOrganizationMiddleware chose. A guard is the first line
only: a service that changes something still checks the role itself, as the authority.
"""

from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect

from accounts import selectors
from common import log_context


def organization_required(view):
    """Signed-in users working in an organization; those without one are asked to create one.

    Anonymous visitors are sent to the log-in page, back here afterwards.
    """

    @login_required
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not request.organization:
            messages.info(request, "You are not in any organization yet: create one to continue.")
            return redirect("accounts:organization-create")
        log_context.organization.set(request.organization.slug)
        return view(request, *args, **kwargs)

    return wrapped


def can_manage(request) -> bool:
    """Whether the signed-in user is an owner or admin of the current organization."""
    membership = selectors.membership_for(user=request.user, organization=request.organization)
    return membership is not None and membership.can_manage


def require_manager(request) -> None:
    """Raise PermissionDenied (a 403 page) unless the user may manage the organization.

    For a view open to every member that only some of its methods may change.
    """
    if not can_manage(request):
        raise PermissionDenied("Only owners and admins of the organization can do this.")


def manager_required(view):
    """Owners and admins of the current organization; members get a 403 page."""

    @organization_required
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        require_manager(request)
        return view(request, *args, **kwargs)

    return wrapped
