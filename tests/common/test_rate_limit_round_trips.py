import pytest
from django.core.cache import caches

from common.api import rate_limits
from tests.accounts.factories import OrganizationFactory

pytestmark = [pytest.mark.django_db, pytest.mark.redis]


def test_both_submission_windows_cost_one_redis_round_trip(monkeypatch, rf):
    client = caches["default"]._cache.get_client(write=True)
    sent = []
    original = type(client).pipeline

    def counting_pipeline(self, *args, **kwargs):
        pipe = original(self, *args, **kwargs)
        execute = pipe.execute
        pipe.execute = lambda *a, **k: sent.append(len(pipe.command_stack)) or execute(*a, **k)
        return pipe

    monkeypatch.setattr(type(client), "pipeline", counting_pipeline)
    organization = OrganizationFactory()
    usage = rate_limits.count_submission(rf.post("/v1/text-to-image"), organization)
    again = rate_limits.count_submission(rf.post("/v1/text-to-image"), organization)
    assert (usage.minute.count, usage.day.count) == (1, 1)
    assert (again.minute.count, again.day.count) == (2, 2)
    assert len(sent) == 2  # one pipeline per submission, both windows in it
