from django.utils.functional import SimpleLazyObject

from common.middleware import is_api_path

SESSION_KEY = "current_organization_id"


def _current_organization(request):
    from accounts import selectors

    user = request.user
    if not user.is_authenticated:
        return None
    organizations = selectors.organizations_for_user(user=user)
    chosen = request.session.get(SESSION_KEY)
    organization = organizations.filter(pk=chosen).first() if chosen else None
    return organization or organizations.first()


class CurrentOrganizationMiddleware:
    """For pages: `request.organization` is the organization the signed-in user works in.

    API requests get theirs from the key (accounts.authentication) instead.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not is_api_path(request.path):
            request.organization = SimpleLazyObject(lambda: _current_organization(request))
        return self.get_response(request)
