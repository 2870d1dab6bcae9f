from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


def _catalog_changed(sender, **kwargs):
    from generation import catalog

    catalog.invalidate()


class GenerationConfig(AppConfig):
    name = "generation"

    def ready(self):
        from generation.models import ModelCatalogEntry

        # Cache invalidation only: every process must stop serving an edited catalog.
        post_save.connect(_catalog_changed, sender=ModelCatalogEntry, dispatch_uid="catalog-save")
        post_delete.connect(
            _catalog_changed, sender=ModelCatalogEntry, dispatch_uid="catalog-delete"
        )
