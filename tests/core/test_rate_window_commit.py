"""The write counter's own transaction commits without waiting for the disk on
PostgreSQL (a lost count is harmless), and that never leaks into the connection's or a
caller's transaction."""

import pytest
from django.db import connection, transaction

from core.repositories.ratelimits import ApiRateWindowRepository

pytestmark = pytest.mark.django_db(transaction=True)


def durability() -> str:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SHOW synchronous_commit")
        else:
            cursor.execute("PRAGMA synchronous")
        return str(cursor.fetchone()[0])


def test_a_hit_counts_and_leaves_the_connection_as_durable_as_it_was():
    before = durability()
    windows = ApiRateWindowRepository()
    assert windows.hit("token:1", 60) == 1
    assert windows.hit("token:1", 60) == 2
    assert durability() == before
    with transaction.atomic():
        assert windows.hit("token:1", 60) == 3
        # Inside a caller's transaction the counter does not choose its commit.
        assert durability() == before
    assert durability() == before
