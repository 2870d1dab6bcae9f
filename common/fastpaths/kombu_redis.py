"""Kombu's Redis transport, publishing through one Redis client per channel.

kombu.transport.redis builds a new `redis.Redis` (some 170 response callbacks set up) for
every message it publishes and every command it sends outside its polling loop: a tenth of
a job submission's CPU went to it. A client is safe to share (each command borrows a
connection from the channel's pool), so each channel keeps one. The settings use this
transport for `redis://` brokers.
"""

from contextlib import contextmanager
from functools import cached_property

from kombu.transport import redis


class Channel(redis.Channel):
    @cached_property
    def _shared_client(self):
        return self._create_client()

    @contextmanager
    def conn_or_acquire(self, client=None):
        yield client or self._shared_client


class Transport(redis.Transport):
    Channel = Channel
