"""django-ratelimit's fixed windows, computed outside its decorator.

The rate limits count several windows in one Redis round trip (a Lua script), where
django-ratelimit itself spends two round trips per window. To share its windows and
counters exactly (any other cache goes through its `get_usage` on the same keys), this
takes its window edges and cache keys from `django_ratelimit.core`'s private helpers.
"""

from django_ratelimit import ALL
from django_ratelimit.core import EXPIRATION_FUDGE, _get_window, _make_cache_key, get_usage

__all__ = ["EXPIRATION_FUDGE", "cache_key", "get_usage", "window_end"]


def window_end(value: str, period: int) -> int:
    """When the window that `value` is counted in right now ends (a Unix time)."""
    return _get_window(value, period)


def cache_key(group: str, window_end: int, limit: int, period: int, value: str) -> str:
    """The key django-ratelimit counts `value` under in that window, for every method."""
    return _make_cache_key(group, window_end, (limit, period), value, ALL)
