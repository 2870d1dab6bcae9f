"""The project's configuration: settings, URLs and the Celery app.

Importing this package sets nothing: each entry point (config.wsgi, config.asgi,
config.celery for the worker, manage.py) chooses its own settings module first.
"""
