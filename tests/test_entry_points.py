"""Each entry point chooses its own settings module, in a process with a clean environment.

Production entry points (WSGI, ASGI, the Celery worker) default to production settings and
refuse to start without their secrets; manage.py defaults to the local settings.
"""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

PRODUCTION_ENVIRONMENT = {
    "SECRET_KEY": "a-long-random-production-secret-key-" + "x" * 40,
    "ALLOWED_HOSTS": "api.example.com",
    "STRIPE_SECRET_KEY": "sk_live_entry_point_test",
    "STRIPE_WEBHOOK_SECRET": "whsec_entry_point_test",
}
PRINT_SETTINGS = "from django.conf import settings; print(settings.SETTINGS_MODULE, settings.DEBUG)"
LOAD = {
    "wsgi": "import config.wsgi",
    "asgi": "import config.asgi",
    # What `celery -A config worker` does to find its app.
    "celery": "from celery.app.utils import find_app; find_app('config')",
}


def run_python(code: str, environment: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {"PATH": "/usr/bin:/bin", "HOME": str(ROOT), **environment}
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("entry_point", LOAD)
def test_production_entry_points_use_production_settings(entry_point):
    result = run_python(f"{LOAD[entry_point]}; {PRINT_SETTINGS}", PRODUCTION_ENVIRONMENT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["config.settings.production", "False"]


@pytest.mark.parametrize("entry_point", LOAD)
@pytest.mark.parametrize("variable", PRODUCTION_ENVIRONMENT)
def test_production_entry_points_refuse_to_start_without_a_required_variable(entry_point, variable):
    environment = {k: v for k, v in PRODUCTION_ENVIRONMENT.items() if k != variable}
    result = run_python(f"{LOAD[entry_point]}; {PRINT_SETTINGS}", environment)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert variable in result.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("variable", "development_value"),
    [
        ("STRIPE_WEBHOOK_SECRET", "whsec_localstripe_development"),
        ("STRIPE_SECRET_KEY", "sk_test_localstripe"),
        ("STRIPE_WEBHOOK_SECRET", ""),
    ],
)
def test_production_refuses_the_public_development_stripe_secrets(variable, development_value):
    environment = {**PRODUCTION_ENVIRONMENT, variable: development_value}
    result = run_python(f"{LOAD['wsgi']}; {PRINT_SETTINGS}", environment)
    assert result.returncode != 0
    assert variable in result.stderr.strip().splitlines()[-1]


def test_importing_the_config_package_chooses_no_settings():
    result = run_python(
        "import os, config; print(os.environ.get('DJANGO_SETTINGS_MODULE'))",
        PRODUCTION_ENVIRONMENT,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "None"


def test_manage_py_uses_the_local_settings():
    clean = {"PATH": "/usr/bin:/bin", "HOME": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", PRINT_SETTINGS],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["config.settings.local", "True"]


def test_web_processes_send_tasks_through_the_project_celery_app():
    result = run_python(
        "import config.wsgi; from celery import current_app; print(current_app.main)",
        PRODUCTION_ENVIRONMENT,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "imagen"


def test_the_web_tier_and_the_other_workers_never_import_torch():
    # Only a `gpu` worker needs the gpu dependency group: torch and diffusers are imported
    # by the diffusers engine when it first loads a model, not by its module.
    code = (
        "import sys, django; django.setup(); "
        "import config.urls, config.celery, generation.tasks, generation.pipeline, "
        "generation.admin, generation.engines.diffusers, generation.diffusers_models; "
        "from django.urls import get_resolver; get_resolver().url_patterns; "
        "print(sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules))"
    )
    result = run_python(code, {"DJANGO_SETTINGS_MODULE": "config.settings.test"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
