from django.shortcuts import render


def rate_limited(request, exception=None):
    return render(
        request,
        "429.html",
        {"message": "Too many attempts. Wait a minute and try again."},
        status=429,
    )
