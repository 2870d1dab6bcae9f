"""Django's page middleware, skipped by API calls.

A module of its own: common.middleware is imported by the logging configuration, before
the apps (and so django.contrib.auth's models) are ready.
"""

from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware

from common.middleware import is_api_path


class _ForPagesOnly:
    """Mixin: the middleware runs for pages only.

    API requests (/v1, /v2) authenticate with a key and answer JSON: they use no session,
    signed-in user or message, and skipping that middleware is a sixth of what a cheap API
    call costs (bench/README.md, "Profile"). Subclasses of Django's own classes, so the
    admin's checks still find them.
    """

    def __call__(self, request):
        if is_api_path(request.path_info):
            return self.get_response(request)
        return super().__call__(request)


class PageSessionMiddleware(_ForPagesOnly, SessionMiddleware):
    pass


class PageAuthenticationMiddleware(_ForPagesOnly, AuthenticationMiddleware):
    pass


class PageMessageMiddleware(_ForPagesOnly, MessageMiddleware):
    pass
