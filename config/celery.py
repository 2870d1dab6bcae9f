"""The Celery app, and the worker's entry point (`celery -A config worker`).

A worker started without DJANGO_SETTINGS_MODULE runs with the production settings, as the
web entry points do; the embedded run command and the tests name their own. Web processes
load this module through config's AppConfig, after their settings are chosen.
"""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

app = Celery("imagen")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.setup_logging.connect
def use_django_logging(**kwargs):
    """Keep the settings' LOGGING (the LOG_FORMAT and the log context) in workers: with a
    receiver here Celery configures no logging of its own."""
    from logging.config import dictConfig

    from django.conf import settings

    dictConfig(settings.LOGGING)


@signals.worker_process_init.connect
def load_diffusers_models(**kwargs):
    """A worker process of the `gpu` queue loads its diffusion models before its first job
    (in the child that runs the jobs: CUDA does not survive a fork)."""
    from generation import diffusers_models

    if diffusers_models.QUEUE in app.amqp.queues.consume_from:
        diffusers_models.load_diffusers_models()


@signals.worker_process_shutdown.connect
def forget_process_metrics(pid, **kwargs):
    """A prefork child's live gauges leave the shared metrics directory with it."""
    from common import metrics

    metrics.mark_process_dead(pid)


@signals.task_prerun.connect
@signals.task_postrun.connect
def close_old_connections(task=None, **kwargs):
    """Retire broken or over-age database connections around each task, as Django does
    around each request (CELERY_DB_REUSE_MAX keeps the healthy ones open). An eager task
    runs inside its caller's connection and transaction, which are left alone."""
    from django.db import close_old_connections as close_django_connections

    if task is not None and getattr(task.request, "is_eager", False):
        return
    close_django_connections()
