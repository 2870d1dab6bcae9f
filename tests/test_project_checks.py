import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.django_db
def test_models_and_migrations_agree():
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def test_the_import_contracts_are_kept():
    # The layers and the cycles of pyproject.toml's [tool.importlinter] (docs/architecture.md).
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint_imports), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


PRODUCTION_ENVIRONMENT = {
    "DJANGO_SETTINGS_MODULE": "config.settings.production",
    "SECRET_KEY": "a-long-random-production-secret-key-" + "x" * 40,
    "ALLOWED_HOSTS": "api.example.com",
    "STRIPE_SECRET_KEY": "sk_live_deploy_check",
    "STRIPE_WEBHOOK_SECRET": "whsec_deploy_check",
}


def check_deploy(environment: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_with_production_settings():
    result = check_deploy(PRODUCTION_ENVIRONMENT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_is_clean_with_images_in_a_bucket():
    bucket = {
        "AWS_STORAGE_BUCKET_NAME": "imagen-images",
        "AWS_S3_ENDPOINT_URL": "https://s3.example.com",
        "AWS_S3_REGION_NAME": "eu-west-1",
    }
    result = check_deploy({**PRODUCTION_ENVIRONMENT, **bucket})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize("variable", ["STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET"])
def test_check_deploy_fails_without_a_stripe_secret(variable):
    environment = {**PRODUCTION_ENVIRONMENT, variable: ""}
    result = check_deploy(environment)
    assert result.returncode != 0
    assert f"Set the {variable} environment variable" in result.stderr
