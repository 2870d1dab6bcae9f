from django.apps import AppConfig


class ProjectConfig(AppConfig):
    name = "config"
    verbose_name = "Imagen"

    def ready(self):
        # Web processes send tasks through the project's Celery app (its broker and
        # routes), not Celery's default one, so it is loaded whenever Django starts.
        from config import celery  # noqa: F401
