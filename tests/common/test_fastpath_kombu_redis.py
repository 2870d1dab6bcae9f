"""The Celery broker on Redis publishes through one client per channel (common.fastpaths)."""

import pytest
import redis
from kombu import Queue

from common.fastpaths.kombu_redis import Transport
from config.celery import app

pytestmark = pytest.mark.redis

QUEUE = "test-celery-redis-transport"


def test_a_redis_broker_uses_the_shared_client_transport():
    with app.connection_for_write() as connection:
        assert isinstance(connection.transport, Transport)


def test_messages_are_published_without_a_new_redis_client_each(monkeypatch):
    queue = Queue(QUEUE)
    with app.connection_for_write() as connection:
        producer = connection.Producer()
        producer.publish({"n": 0}, routing_key=QUEUE, declare=[queue])
        clients_made = []
        original_init = redis.Redis.__init__

        def counting_init(self, *args, **kwargs):
            clients_made.append(1)
            original_init(self, *args, **kwargs)

        monkeypatch.setattr(redis.Redis, "__init__", counting_init)
        for n in (1, 2):
            producer.publish({"n": n}, routing_key=QUEUE)
        monkeypatch.undo()
        with connection.SimpleQueue(queue) as received:
            bodies = [received.get(timeout=2) for _ in range(3)]
            for message in bodies:
                message.ack()
    assert clients_made == []
    assert [message.payload["n"] for message in bodies] == [0, 1, 2]
