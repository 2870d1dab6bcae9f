import pytest
from django.core.cache import caches

from accounts import services
from common.api import rate_limits
from tests.accounts.factories import OrganizationFactory

pytestmark = [pytest.mark.django_db, pytest.mark.redis]


def test_both_submission_windows_cost_one_redis_command(monkeypatch, rf):
    client = caches["default"]._cache.get_client(write=True)
    sent = []
    original = type(client).execute_command

    def counting_command(self, *args, **kwargs):
        sent.append(args[0])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(type(client), "execute_command", counting_command)
    organization = OrganizationFactory()
    usage = rate_limits.count_submission(rf.post("/v1/text-to-image"), organization)
    again = rate_limits.count_submission(rf.post("/v1/text-to-image"), organization)
    assert (usage.minute.count, usage.day.count) == (1, 1)
    assert (again.minute.count, again.day.count) == (2, 2)
    assert sent in (["EVALSHA", "EVALSHA"], ["EVALSHA", "SCRIPT LOAD", "EVALSHA", "EVALSHA"])


def test_counting_survives_redis_forgetting_the_script(rf):
    client = caches["default"]._cache.get_client(write=True)
    organization = OrganizationFactory()
    rate_limits.count_submission(rf.post("/v1/text-to-image"), organization)
    client.script_flush()
    usage = rate_limits.count_submission(rf.post("/v1/text-to-image"), organization)
    assert (usage.minute.count, usage.day.count) == (2, 2)


def test_a_read_reports_the_submissions_without_counting_one(rf):
    organization = OrganizationFactory()
    rate_limits.count_submission(rf.post("/v1/text-to-image"), organization)
    api_key = services.create_api_key(organization=organization, name="test").api_key
    usage = rate_limits.count_read(rf.get("/v1/models"), organization, api_key)
    again = rate_limits.peek(rf.get("/v1/models"), organization)
    assert (usage.minute.count, usage.reads.count, again.minute.count) == (1, 1, 1)
