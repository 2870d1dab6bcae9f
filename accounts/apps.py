from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"

    def ready(self):
        from accounts import (
            api_key_cache,
            schema,  # noqa: F401 - registers the OpenAPI auth scheme
        )

        api_key_cache.connect_signals()
