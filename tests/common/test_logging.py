"""Log lines: LOG_FORMAT=json gives one JSON object a line, with the request id, organization
and job id where known; the default stays readable."""

import copy
import io
import json
import logging.config
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from generation import catalog, tasks
from generation.models import Job
from tests.accounts.factories import OrganizationFactory, api_key_for, auth_header
from tests.generation.factories import ASYNC, customer, headers

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]

LOG_ONE_LINE = """
import logging, django
django.setup()
logging.getLogger("imagen.test").warning("hello %s", "there")
"""


def _log_in_a_process(**env) -> str:
    result = subprocess.run(
        [sys.executable, "-c", LOG_ONE_LINE],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stderr.strip()


def test_log_format_json_gives_one_json_object_per_line():
    line = json.loads(_log_in_a_process(LOG_FORMAT="json"))
    assert line["level"] == "WARNING"
    assert line["logger"] == "imagen.test"
    assert line["message"] == "hello there"
    assert line["timestamp"].endswith("+00:00")
    assert (line["request_id"], line["organization"], line["job_id"]) == ("-", "-", "-")


def test_the_default_log_format_is_human_readable():
    line = _log_in_a_process()
    assert line.endswith("WARNING imagen.test [-] hello there")


@pytest.fixture
def json_lines():
    """The root logger in the JSON format, into a buffer; its parsed lines."""
    buffer = io.StringIO()
    config = copy.deepcopy(settings.LOGGING)
    config["handlers"]["console"].update(formatter="json", stream=buffer)
    logging.config.dictConfig(config)
    yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines()]
    logging.config.dictConfig(settings.LOGGING)


@pytest.mark.urls("tests.common.test_error_contract")
def test_an_api_requests_log_lines_carry_its_request_id_and_organization(client, json_lines):
    organization = OrganizationFactory()
    response = client.get("/v1/test-explode", **auth_header(api_key_for(organization)))
    assert response.status_code == 500
    (line,) = [line for line in json_lines() if line["logger"] == "common.api.errors"]
    assert line["request_id"] == response["X-Request-Id"]
    assert line["organization"] == organization.slug
    assert line["level"] == "ERROR"


@pytest.fixture
def _fresh_catalog():
    catalog.clear_local_cache()
    yield
    catalog.clear_local_cache()


@pytest.mark.usefixtures("_fresh_catalog")
def test_a_jobs_log_lines_in_the_worker_carry_its_job_id_and_organization(
    client, json_lines, monkeypatch
):
    from generation import engines

    monkeypatch.setitem(
        engines._ENGINES,
        "crashing",
        engines.Registered("tests.generation.engines.CrashingEngine", queue="local"),
    )
    from generation.models import ModelCatalogEntry

    model = ModelCatalogEntry.objects.create(
        id="imagen-crashing",
        name="Crashing",
        engine="crashing",
        credits_per_image=1,
        capabilities=["text-to-image"],
    )
    organization, key = customer(plan="pro", credits=10)
    client.post(
        "/v2/images/generate",
        {"prompt": "p", "model": model.id},
        content_type="application/json",
        **headers(key, **ASYNC),
    )
    job = Job.objects.get()
    tasks.run_job.apply(args=[str(job.pk)])
    (line,) = [line for line in json_lines() if line["logger"] == "generation.pipeline"]
    assert line["job_id"] == str(job.pk)
    assert line["organization"] == organization.slug
    assert line["request_id"] == "-"
