"""Service calls from the harness's threads: each thread's connection closed after use."""

from django.db import close_old_connections, connection


def in_thread(function, *args, **kwargs):
    close_old_connections()
    try:
        return function(*args, **kwargs)
    finally:
        connection.close()
