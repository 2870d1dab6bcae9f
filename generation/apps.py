from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


def _catalog_changed(sender, **kwargs):
    from generation import catalog

    catalog.invalidate()


def _blocklist_changed(sender, **kwargs):
    from generation import blocklist

    blocklist.invalidate()


class GenerationConfig(AppConfig):
    name = "generation"

    def ready(self):
        from generation.models import BlockedTerm, ModelCatalogEntry

        # Cache invalidation only: every process must stop serving an edited catalog.
        post_save.connect(_catalog_changed, sender=ModelCatalogEntry, dispatch_uid="catalog-save")
        post_delete.connect(
            _catalog_changed, sender=ModelCatalogEntry, dispatch_uid="catalog-delete"
        )
        post_save.connect(_blocklist_changed, sender=BlockedTerm, dispatch_uid="blocklist-save")
        post_delete.connect(_blocklist_changed, sender=BlockedTerm, dispatch_uid="blocklist-delete")
