"""On PostgreSQL, a transaction takes the event-order lock only after its deferred
foreign-key checks have run, so it never waits for a row while holding that lock.

Django's foreign keys are ``DEFERRABLE INITIALLY DEFERRED``: left to COMMIT, the check
of a new review comment's phase took the phase row (KEY SHARE) while the event lock was
held, and a task start holding that phase FOR UPDATE and waiting for the event lock
deadlocked with it (500s under load, found by tests/cw_project/test_soak.py).
"""

import psycopg
import pytest
from django.db import connection, transaction

from core.events import event_record
from tests.factories import PhaseFactory, ReviewCommentFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _other_connection() -> psycopg.Connection:
    settings = connection.settings_dict
    return psycopg.connect(
        dbname=settings["NAME"],
        host=settings["HOST"] or None,
        port=settings["PORT"] or None,
        user=settings["USER"] or None,
        password=settings["PASSWORD"] or None,
        autocommit=True,
    )


def test_the_foreign_key_checks_run_before_the_event_lock(on_postgres):
    if not on_postgres:
        pytest.skip("deferred constraints and advisory locks are PostgreSQL's")
    phase = PhaseFactory()

    with transaction.atomic():
        ReviewCommentFactory(phase=phase)
        event_record(
            "review_comment.created",
            subject_type="review_comment",
            subject_id="c1",
            data={"phase_id": phase.pk},
        )

        # The comment's check on its phase has run: the phase row is held (KEY SHARE)
        # already, not only from COMMIT on, after the event lock.
        with _other_connection() as other, pytest.raises(psycopg.errors.LockNotAvailable):
            other.execute("SELECT 1 FROM phases WHERE id = %s FOR UPDATE NOWAIT", [phase.pk])
