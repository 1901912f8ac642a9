"""cw's PostgreSQL backend reads timestamps with psycopg's compiled loader when the
connection is in UTC, and Django's cursors (named ones too) still work."""

import datetime

import pytest
from django.db import connection

from core.models import Initiative
from core.repositories import hot
from tests import factories as f

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="the PostgreSQL backend's own reading"
    ),
]


def test_timestamps_read_as_aware_utc_through_the_orm_and_the_hot_path():
    initiative = f.InitiativeFactory()
    read = Initiative.objects.get(pk=initiative.pk).created_at
    assert read == initiative.created_at and read.tzinfo is datetime.UTC
    (row,) = hot.fetch_all(
        connection, "SELECT created_at FROM initiatives WHERE id = %s", [initiative.id]
    )
    assert row[0] == initiative.created_at and row[0].tzinfo is datetime.UTC


def test_a_server_side_cursor_iterates():
    for _ in range(3):
        f.InitiativeFactory()
    names = [i.name for i in Initiative.objects.order_by("id").iterator(chunk_size=2)]
    assert len(names) == 3


def test_hot_statements_are_prepared_after_the_threshold():
    threshold = connection.settings_dict["OPTIONS"].get("prepare_threshold")
    if threshold is None:
        pytest.skip("CW_PG_PREPARE_THRESHOLD=off")
    sql = "SELECT count(*) FROM initiatives WHERE name = %s"
    for _ in range(threshold + 1):
        hot.fetch_all(connection, sql, ["x"])
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s",
            ["%FROM initiatives WHERE name = $1%"],
        )
        assert cursor.fetchone()[0] == 1
