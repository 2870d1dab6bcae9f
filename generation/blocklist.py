"""The staff blocklist, read on every submission through an in-process cache.

Like the model catalog (generation.catalog): a save or delete of a BlockedTerm clears this
process's copy and renews a version token in the shared cache; other processes compare their
version with it at most every CHECK_INTERVAL seconds, so a new term is refused on every
web host within seconds without a database read per submission.
"""

import threading
import time

from common.cache import SharedVersion
from generation.models import BlockedTerm

# A token, not a counter (common.cache.SharedVersion); a new key name, so processes of
# the counter era never INCR a token.
VERSION = SharedVersion("blocked-terms:version-token")
CHECK_INTERVAL = 5.0

_lock = threading.Lock()
_state: dict = {"terms": None, "version": None, "checked_at": 0.0}


def clear_local_cache() -> None:
    with _lock:
        _state.update(terms=None, version=None, checked_at=0.0)


def invalidate() -> None:
    """Forget the blocklist here and tell other processes to reload it."""
    clear_local_cache()
    VERSION.renew()


def blocked_terms() -> tuple[str, ...]:
    """Every blocked term, as staff wrote it."""
    now = time.monotonic()
    with _lock:
        terms = _state["terms"]
        if terms is not None and now - _state["checked_at"] < CHECK_INTERVAL:
            return terms
    version = VERSION.current()
    with _lock:
        if _state["terms"] is not None and _state["version"] == version:
            _state["checked_at"] = now
            return _state["terms"]
    terms = tuple(BlockedTerm.objects.order_by().values_list("term", flat=True))
    with _lock:
        _state.update(terms=terms, version=version, checked_at=now)
    return terms
