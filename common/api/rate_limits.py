"""Rate limits on the shared cache (docs/api/README.md), with django-ratelimit's core.

Windows are django-ratelimit's fixed windows (common.fastpaths.ratelimit: its window edges
and cache keys). Job submissions count per organization in a minute and a day window;
reads count per key against a flat 600 a minute. On Redis every check is ONE command, a
Lua script (both submission windows at once, or the read counter plus the minute window
for the headers), where django-ratelimit itself would spend two round trips per window,
and a pipeline four or five commands; any other
cache goes through django-ratelimit's `get_usage`, which gives the same counts on the
same keys.
"""

import functools
import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import caches
from redis.commands.core import Script

from common import metrics
from common.errors import Unavailable
from common.fastpaths.ratelimit import EXPIRATION_FUDGE, cache_key, get_usage, window_end
from common.fastpaths.redis_cache import redis_client

logger = logging.getLogger(__name__)

MINUTE = 60
DAY = 24 * 60 * 60
READS_PER_MINUTE_PER_KEY = 600
# Creating endpoints, rotating their secrets, retrying and resending deliveries: each can
# start sends to the organization's receivers, so each counts, per organization.
WEBHOOK_CHANGES_PER_MINUTE = 30

SUBMISSIONS = "submissions"
READS = "reads"
WEBHOOK_CHANGES = "webhook_changes"


class RateLimitsUnavailable(Unavailable):
    """The cache that holds the windows is unreachable."""


@dataclass(frozen=True)
class Window:
    name: str  # "minute" or "day": the word a 429 names
    limit: int
    period: int
    count: int
    resets_at: int  # unix seconds

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.count)

    @property
    def exceeded(self) -> bool:
        return self.count > self.limit

    def seconds_left(self) -> int:
        return max(1, self.resets_at - int(time.time()))


@dataclass(frozen=True)
class _Counter:
    group: str
    value: str
    limit: int
    period: int
    increment: bool

    @property
    def resets_at(self) -> int:
        return window_end(self.value, self.period)

    @property
    def key(self) -> str:
        return _window_key(self.group, self.resets_at, self.limit, self.period, self.value)


@functools.lru_cache(maxsize=4096)
def _window_key(group: str, resets_at: int, limit: int, period: int, value: str) -> str:
    # The same for every call in a window (an MD5 of its parts): made once per window.
    return cache_key(group, resets_at, limit, period, value)


def _cache():
    return caches[getattr(settings, "RATELIMIT_USE_CACHE", "default")]


def _counts(request, counters: list[_Counter], read_along: str | None) -> tuple[list[int], object]:
    cache = _cache()
    client = redis_client(cache)
    if client is not None:
        return _redis_counts(client, cache, counters, read_along)
    counts = []
    for counter in counters:
        usage = get_usage(
            request,
            group=counter.group,
            key=lambda group, request, value=counter.value: value,
            rate=(counter.limit, counter.period),
            increment=counter.increment,
        )
        counts.append(usage["count"] if usage else 0)
    return counts, None if read_along is None else cache.get(read_along)


# Counts every counter of one check, and reads the caller's read-along key, in ONE command.
# KEYS: the counters' keys, then the read-along key if any. ARGV: how many counters, then
# per counter its expiry in seconds when it is to be counted (django-ratelimit's add-then-
# incr), or 0 when it is only read. A missing key reads as 0 (a counter) or nil.
_COUNT_SCRIPT = Script(
    None,
    b"""
local counters = tonumber(ARGV[1])
local results = {}
for i = 1, counters do
  local expiry = tonumber(ARGV[i + 1])
  if expiry > 0 then
    redis.call('SET', KEYS[i], 0, 'EX', expiry, 'NX')
    results[i] = redis.call('INCR', KEYS[i])
  else
    results[i] = tonumber(redis.call('GET', KEYS[i]) or 0)
  end
end
if #KEYS > counters then
  results[counters + 1] = redis.call('GET', KEYS[counters + 1])
end
return results
""",
)


def _redis_counts(
    client, cache, counters: list[_Counter], read_along: str | None
) -> tuple[list[int], object]:
    keys = [cache.make_and_validate_key(counter.key) for counter in counters]
    if read_along is not None:
        keys.append(cache.make_and_validate_key(read_along))
    expiries = [
        counter.period + EXPIRATION_FUDGE if counter.increment else 0 for counter in counters
    ]
    # EVALSHA; the script itself once after a Redis restart forgot it (redis-py's Script).
    results = _COUNT_SCRIPT(keys=keys, args=[len(counters), *expiries], client=client)
    value = results[len(counters)] if len(results) > len(counters) else None
    return [int(count) for count in results[: len(counters)]], value or None


def _submission_counters(organization, *, increment: bool) -> list[_Counter]:
    value = str(organization.pk)
    return [
        _Counter(SUBMISSIONS, value, organization.requests_per_minute, MINUTE, increment),
        _Counter(SUBMISSIONS, value, organization.requests_per_day, DAY, increment),
    ]


@dataclass(frozen=True)
class Usage:
    """Where the organization stands in its windows, for the headers and the 429."""

    minute: Window
    day: Window
    reads: Window | None = None
    webhook_changes: Window | None = None
    # The raw value of the cache key the caller asked to read in the same round trip.
    read_along: object = None

    @property
    def full_window(self) -> Window | None:
        for window in (self.minute, self.day):
            if window.exceeded:
                return window
        return None

    def headers(self) -> dict[str, str]:
        minute, day = self.minute, self.day
        return {
            "X-RateLimit-Limit": str(minute.limit),
            "X-RateLimit-Remaining": str(minute.remaining),
            "X-RateLimit-Reset": str(minute.resets_at),
            "RateLimit-Policy": (
                f'"minute";q={minute.limit};w={minute.period}, "day";q={day.limit};w={day.period}'
            ),
            "RateLimit": f'"minute";r={minute.remaining};t={minute.seconds_left()}',
        }


def _measure(request, counters: list[_Counter], read_along: str | None):
    """The counters' windows and `read_along`'s value, or None when the cache is down."""
    try:
        counts, value = _counts(request, counters, read_along)
    except Exception:
        # The cache is down: reads are served without limits rather than refused;
        # count_submission refuses submissions instead.
        logger.warning("Rate-limit cache unavailable", exc_info=True)
        return None
    for counter, count in zip(counters, counts, strict=True):
        # A counted call over its limit is a refused one, whoever answers it.
        if counter.increment and count > counter.limit:
            window = "minute" if counter.period == MINUTE else "day"
            metrics.RATE_LIMIT_REFUSALS.labels(counter.group, window).inc()
    windows = [
        Window(name, c.limit, c.period, count, c.resets_at)
        for name, c, count in zip(("minute", "day"), counters, counts, strict=False)
    ]
    return windows, value


def _day_policy(organization) -> Window:
    # Only RateLimit-Policy shows the day window outside submissions: its limit, no count.
    day = _submission_counters(organization, increment=False)[1]
    return Window("day", day.limit, DAY, 0, day.resets_at)


# Each function below is ONE round trip on Redis. `read_along` names a cache key to read in
# that same round trip (Usage.read_along), for a caller that would otherwise spend a round
# trip of its own on it.


def count_submission(request, organization, *, read_along: str | None = None) -> Usage:
    """Count one job submission in both windows (whatever its outcome) and report them.

    Raises RateLimitsUnavailable when the windows cannot be counted: a submission is
    refused then, where a read is served, because letting it through would let an
    organization past its plan's limits for as long as the cache is down.
    """
    measured = _measure(request, _submission_counters(organization, increment=True), read_along)
    if measured is None:
        raise RateLimitsUnavailable(
            "The rate limits cannot be checked right now. Nothing was charged; retry shortly."
        )
    (minute, day), value = measured
    return Usage(minute=minute, day=day, read_along=value)


def count_read(request, organization, api_key, *, read_along: str | None = None) -> Usage | None:
    """Count one read against the key's cap and report the minute submission window."""
    minute = _submission_counters(organization, increment=False)[0]
    reads = _Counter(READS, str(api_key.pk), READS_PER_MINUTE_PER_KEY, MINUTE, increment=True)
    measured = _measure(request, [minute, reads], read_along)
    if measured is None:
        return None
    windows, value = measured
    reads_window = Window("minute", reads.limit, MINUTE, windows[1].count, reads.resets_at)
    return Usage(
        minute=windows[0], day=_day_policy(organization), reads=reads_window, read_along=value
    )


def count_webhook_change(request, organization, *, read_along: str | None = None) -> Usage | None:
    """Count one webhook change against the organization's cap and report the minute
    submission window (for the headers)."""
    minute = _submission_counters(organization, increment=False)[0]
    changes = _Counter(
        WEBHOOK_CHANGES, str(organization.pk), WEBHOOK_CHANGES_PER_MINUTE, MINUTE, increment=True
    )
    measured = _measure(request, [minute, changes], read_along)
    if measured is None:
        return None
    windows, value = measured
    changes_window = Window("minute", changes.limit, MINUTE, windows[1].count, changes.resets_at)
    return Usage(
        minute=windows[0],
        day=_day_policy(organization),
        webhook_changes=changes_window,
        read_along=value,
    )


def peek(request, organization, *, read_along: str | None = None) -> Usage | None:
    """Report the minute window without counting anything (other calls, e.g. a cancel)."""
    counters = _submission_counters(organization, increment=False)[:1]
    measured = _measure(request, counters, read_along)
    if measured is None:
        return None
    (minute,), value = measured
    return Usage(minute=minute, day=_day_policy(organization), read_along=value)
