"""Helpers for the page tests: read what a person would see and follow emailed links."""

import re

from django.contrib.messages import get_messages

from tests.accounts.factories import MembershipFactory, UserFactory

PASSWORD = "correct-horse-battery"


def page_messages(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def link_in(email, pattern: str) -> str:
    """The path of the first link to `pattern` in both parts of `email` (they must agree)."""
    text_match = re.search(rf"https?://testserver({pattern}[^\s\"<]*)", email.body)
    html = email.alternatives[0][0]
    html_match = re.search(rf"https?://testserver({pattern}[^\s\"<]*)", html)
    assert text_match, email.body
    assert html_match, html
    assert text_match.group(1) == html_match.group(1)
    return text_match.group(1)


def member_of(organization, role="member", **user_fields):
    return MembershipFactory(organization=organization, role=role, user=UserFactory(**user_fields))


def logged_in(client, membership):
    client.force_login(membership.user)
    return client
