def current_organization(request):
    organization = getattr(request, "organization", None)
    if organization is not None and not organization:
        organization = None
    return {"current_organization": organization}
