from django.utils.functional import SimpleLazyObject


def current_organization(request):
    organization = getattr(request, "organization", None)
    if organization is not None and not organization:
        organization = None
    user = getattr(request, "user", None)
    return {
        "current_organization": organization,
        # For the switcher in the navigation; read only by pages that draw it.
        "user_organizations": SimpleLazyObject(lambda: _organizations_of(user)),
    }


def _organizations_of(user) -> list:
    from accounts import selectors

    if user is None or not user.is_authenticated:
        return []
    return list(selectors.organizations_for_user(user=user))
