"""API keys remembered by each web process between requests, checked against Redis.

Loading a key with its organization and plan is a three-table query, compiled by the ORM on
every request: more than everything else an authenticated read does. Each process keeps
what it loaded, by key prefix, tagged with the *generation* it read from the shared cache
first; it trusts an entry only while the generation is unchanged. Whatever can change a
key's answer (a key revoked or edited, an organization suspended, edited or moved to
another plan, a plan edited) sets a new generation, so every process reloads on its next
request: a revocation still holds from the next request on. The generation is a
common.cache.SharedVersion: a random token, not a counter, so a Redis restart that loses it
can never bring an old one back.

`load` reads the generation with a GET of its own. A caller that makes a Redis round trip
of its own right after (the API's rate limits) can take the entry on trust instead
(`confirm=False`), read GENERATION_KEY in that round trip and pass the value to
`is_confirmed`; it must not act on the key before, and must load it again when the answer
is no.

Expiry and the secret are still checked on every request, by the caller. The balance is
never remembered: it is deferred, so reading it queries the database. Without a shared
cache (locmem is one process's memory) or when Redis does not answer, nothing is
remembered and every request loads the key. An entry is also dropped after
MAX_AGE_SECONDS, which bounds how long a change made while Redis was unreachable (so no new
generation could be set) goes unseen.
"""

import logging
import time
from collections.abc import Callable

from django.core.cache import caches
from django.db import transaction
from django.db.models.base import ModelState
from django.db.models.signals import post_delete, post_save

from accounts.models import ApiKey, Organization
from common.cache import SharedVersion
from common.fastpaths.redis_cache import redis_client

logger = logging.getLogger(__name__)

GENERATION = SharedVersion("api-keys:generation")
# Read along in the rate limits' round trip (common.api.views).
GENERATION_KEY = GENERATION.key
# Far more keys than one process serves between two changes; past it, start afresh.
MAX_ENTRIES = 10_000
MAX_AGE_SECONDS = 60

# prefix -> (generation, monotonic time loaded, key with organization and plan)
_entries: dict[str, tuple[str, float, ApiKey]] = {}


def _current_generation() -> str | None:
    if redis_client(caches["default"]) is None:
        return None
    try:
        return GENERATION.current()
    except Exception:
        logger.warning("Shared cache unavailable; loading API keys from the database")
        return None


def load(
    prefix: str, load_from_database: Callable[[str], ApiKey | None], *, confirm: bool = True
) -> ApiKey | None:
    """The key with this prefix, from memory when still current, else from the database.

    With `confirm=False` a remembered key is returned without reading the generation, and
    `is_confirmed` must then be asked before the key is trusted.

    Each call gets its own copies of the key, organization and plan, so a request can
    change them without another request seeing it.
    """
    now = time.monotonic()
    if not confirm:
        entry = _entries.get(prefix)
        if entry is not None and now - entry[1] < MAX_AGE_SECONDS:
            api_key = _copy(entry[2])
            api_key._unconfirmed_generation = entry[0]
            return api_key
    generation = _current_generation()
    entry = _entries.get(prefix) if generation is not None else None
    if entry is not None and entry[0] == generation and now - entry[1] < MAX_AGE_SECONDS:
        return _copy(entry[2])
    api_key = load_from_database(prefix)
    if api_key is None or generation is None:
        return api_key
    if len(_entries) >= MAX_ENTRIES:
        _entries.clear()
    _entries[prefix] = (generation, now, api_key)
    return _copy(api_key)


def needs_confirmation(api_key: ApiKey) -> bool:
    """Whether `api_key` was taken from memory on trust (`load(confirm=False)`)."""
    return getattr(api_key, "_unconfirmed_generation", None) is not None


def is_confirmed(api_key: ApiKey, generation: bytes | str | None) -> bool:
    """Whether the key taken on trust is current, given GENERATION_KEY's value just read."""
    if isinstance(generation, bytes):
        generation = generation.decode()
    confirmed = generation is not None and generation == api_key._unconfirmed_generation
    if confirmed:
        api_key._unconfirmed_generation = None
    return confirmed


def remember_use(api_key: ApiKey) -> None:
    """Carry a new `last_used_at` into the remembered key, so it is written once a minute."""
    entry = _entries.get(api_key.prefix)
    if entry is not None:
        entry[2].last_used_at = api_key.last_used_at


def forget_all() -> None:
    """Make every process reload keys: now, and again once the change is committed.

    Now, so nothing in this transaction trusts an old entry; after the commit, because
    another process may have loaded the row between the two and kept the old answer.
    """
    _set_new_generation()
    transaction.on_commit(_set_new_generation)


def _set_new_generation() -> None:
    _entries.clear()
    if redis_client(caches["default"]) is None:
        return
    try:
        GENERATION.renew()
    except Exception:
        # Other processes trust their entries for at most MAX_AGE_SECONDS more.
        logger.error("Shared cache unavailable; other processes see this change late")


def _copy(api_key: ApiKey) -> ApiKey:
    key = _clone(api_key)
    key.scopes = list(api_key.scopes)
    organization = _clone(api_key.organization)
    organization.plan = _clone(api_key.organization.plan)
    key.organization = organization
    return key


def _clone(instance):
    # What copy.copy() makes of a model instance (Model.__getstate__), without going through
    # the pickle protocol, which costs several times more.
    clone = object.__new__(type(instance))
    clone.__dict__.update(instance.__dict__)
    clone._state = ModelState()
    clone._state.db = instance._state.db
    clone._state.adding = instance._state.adding
    clone._state.fields_cache = dict(instance._state.fields_cache)
    return clone


def _forget_on_change(sender, instance, created=False, **kwargs):
    # A new row cannot be remembered anywhere yet.
    if not created:
        forget_all()


def connect_signals() -> None:
    """Saves and deletes through the ORM (the admin's too) renew the generation.

    Bulk `update()`s send no signal: the services that change these rows that way call
    forget_all() themselves.
    """
    plan = Organization.plan.field.related_model  # billing's, known here only through the FK
    for model in (ApiKey, Organization, plan):
        post_save.connect(_forget_on_change, sender=model, dispatch_uid=f"api-keys-{model}")
        post_delete.connect(_forget_on_change, sender=model, dispatch_uid=f"api-keys-{model}-")
