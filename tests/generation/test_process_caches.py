"""The catalog and the blocklist each process keeps in memory never outlive a change, even
when the shared cache lost their version (a Redis restart or an eviction) in between."""

import pytest
from django.core.cache import cache

from generation import blocklist, catalog
from generation.models import BlockedTerm, ModelCatalogEntry

pytestmark = pytest.mark.django_db


def _invalidate_in_another_process(module, monkeypatch):
    # Another process's invalidate(): it tells the others, but this process's copy stays.
    with monkeypatch.context() as other_process:
        other_process.setattr(module, "clear_local_cache", lambda: None)
        module.invalidate()


def test_a_catalog_edit_after_the_shared_cache_lost_its_version_is_seen(monkeypatch):
    monkeypatch.setattr(catalog, "CHECK_INTERVAL", 0)
    entry = catalog.default_model()
    catalog.invalidate()  # an earlier edit
    assert catalog.get_model(entry.id) is not None  # this process holds the catalog
    cache.clear()  # Redis restarted

    ModelCatalogEntry.objects.filter(pk=entry.pk).update(enabled=False)
    _invalidate_in_another_process(catalog, monkeypatch)

    assert catalog.get_model(entry.id) is None


def test_a_blocked_term_added_after_the_shared_cache_lost_its_version_is_seen(monkeypatch):
    monkeypatch.setattr(blocklist, "CHECK_INTERVAL", 0)
    blocklist.invalidate()  # an earlier edit
    assert blocklist.blocked_terms() == ()  # this process holds the blocklist
    cache.clear()  # Redis restarted

    BlockedTerm.objects.bulk_create([BlockedTerm(term="forbidden")])  # sends no signal
    _invalidate_in_another_process(blocklist, monkeypatch)

    assert blocklist.blocked_terms() == ("forbidden",)


def test_a_catalog_loaded_before_the_shared_cache_lost_its_version_is_reloaded(monkeypatch):
    monkeypatch.setattr(catalog, "CHECK_INTERVAL", 0)
    entry = catalog.default_model()
    ModelCatalogEntry.objects.filter(pk=entry.pk).update(enabled=False)  # unannounced
    cache.clear()  # Redis restarted: nothing says whether this copy is current

    assert catalog.get_model(entry.id) is None
