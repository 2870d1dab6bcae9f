from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"

    def ready(self):
        # Services enqueue deliver_webhook by name (webhooks.queues); registering it in
        # every process makes that the task itself, eager mode included, not a bare message.
        from webhooks import tasks  # noqa: F401
