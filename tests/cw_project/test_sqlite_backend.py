"""cw's SQLite backend reads timestamps once, straight into aware UTC datetimes."""

from datetime import UTC, datetime

import pytest
from django.db import connection

from core.models import Initiative
from tests import factories as f

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "sqlite", reason="the SQLite backend's own reading"),
]


def test_the_driver_hands_over_text_and_the_orm_reads_it_as_aware_utc():
    initiative = f.InitiativeFactory()
    with connection.cursor() as cursor:
        cursor.execute("SELECT created_at FROM initiatives WHERE id = %s", [initiative.id])
        (stored,) = cursor.fetchone()
    assert isinstance(stored, str)  # no parsing by declared type in the driver
    read = Initiative.objects.get(pk=initiative.pk).created_at
    assert read == initiative.created_at and read.tzinfo is UTC


def test_text_with_an_offset_of_its_own_is_still_read_right():
    initiative = f.InitiativeFactory()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE initiatives SET created_at = %s WHERE id = %s",
            ["2026-01-02 03:04:05+02:00", initiative.id],
        )
    read = Initiative.objects.get(pk=initiative.pk).created_at
    assert read == datetime(2026, 1, 2, 1, 4, 5, tzinfo=UTC)


def test_booleans_and_aggregates_still_convert():
    f.ReviewCommentFactory(resolved=True)
    from django.db.models import Max

    from reviews.models import ReviewComment

    assert ReviewComment.objects.values_list("resolved", flat=True).get() is True
    latest = ReviewComment.objects.aggregate(latest=Max("created_at"))["latest"]
    assert isinstance(latest, datetime) and latest.tzinfo is UTC
