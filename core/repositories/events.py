"""The event feed's table: appended in commit order, read forward with an id cursor."""

import json
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Max

from core.models import Event
from core.repositories.base import Repository
from core.repositories.commit_order import EVENT_ORDER_LOCK, hold_commit_order
from core.repositories.pagination import check_keyset_page, fitting_count, page_max_bytes


class EventRepository(Repository[Event]):
    """Events, each with an id that is its position in commit order.

    ``append`` takes a transaction-scoped lock before it picks the next id
    (``core.repositories.commit_order``: an advisory lock on PostgreSQL; SQLite's
    immediate transactions already hold the database's write lock), so no transaction
    can take an id until the one holding the lock has committed or rolled back: ids
    become visible in increasing order, and a reader that follows ``id > after`` never
    skips an event that commits late.
    """

    model = Event
    slug = "event"
    label = "Event"

    def append(
        self,
        *,
        kind: str,
        subject_type: str,
        subject_id: str,
        initiative_id: str | None = None,
        data: dict[str, Any] | None = None,
        actor: dict[str, Any] | None = None,
    ) -> Event:
        """Record one event in the caller's transaction (which must be atomic); ``actor``
        holds the ``actor_*`` fields (who made the change)."""
        self._require_atomic("append")
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                # Run the foreign-key checks deferred so far (Django's are DEFERRABLE
                # INITIALLY DEFERRED) now, before the event lock: left to COMMIT they
                # would take their KEY SHARE row locks while this transaction holds the
                # event lock, and a transaction holding such a row FOR UPDATE and
                # waiting for the event lock would deadlock with it (a review comment's
                # check on its phase against a task start, seen under load).
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                cursor.execute("SET CONSTRAINTS ALL DEFERRED")
            hold_commit_order(connection, EVENT_ORDER_LOCK)
        last = Event.objects.aggregate(last=Max("id"))["last"] or 0
        return self._insert(
            Event(
                id=last + 1,
                kind=kind,
                subject_type=subject_type,
                subject_id=str(subject_id),
                initiative_id=initiative_id,
                data=data or {},
                **(actor or {}),
            )
        )

    def find_after(
        self,
        after: int = 0,
        *,
        limit: int,
        initiative_id: str | None = None,
        kinds: list[str] | None = None,
    ) -> list[Event]:
        """Up to ``limit`` events with an id above ``after``, oldest first (keyset page),
        cut before the one whose ``data`` (as JSON) would take the page past
        ``page_max_bytes()`` (at least one event). An event's data holds names, ids and
        field names, never a long text, so the cut is made here on the loaded events
        rather than by an extra query of their sizes on the feed's hot path."""
        check_keyset_page(limit, after, integer_cursor=True)
        qs = Event.objects.filter(id__gt=after)
        if initiative_id is not None:
            qs = qs.filter(initiative_id=initiative_id)
        if kinds:
            qs = qs.filter(kind__in=kinds)
        found = list(qs.order_by("id")[:limit])
        sizes = [len(json.dumps(event.data, separators=(",", ":"))) for event in found]
        return found[: fitting_count(sizes, page_max_bytes())]

    def find_by_subject(self, subject_type: str, subject_id: str, *, limit: int) -> list[Event]:
        """The newest ``limit`` events about one record, newest first (a record's history)."""
        return list(
            Event.objects.filter(subject_type=subject_type, subject_id=subject_id).order_by("-id")[
                :limit
            ]
        )

    def last_id(self) -> int:
        """The id of the newest committed event (0 when there is none): a stream's start."""
        return Event.objects.aggregate(last=Max("id"))["last"] or 0

    def find_questions_after(self, agent_id: str, after: int, *, limit: int) -> list[Event]:
        """Up to ``limit`` ``question.asked`` events to ``agent_id`` after ``after``."""
        return list(
            Event.objects.filter(
                id__gt=after, kind="question.asked", data__to_agent_id=agent_id
            ).order_by("id")[:limit]
        )

    def delete_older_than(self, moment: datetime) -> int:
        """Delete every event created before ``moment``; how many were deleted."""
        deleted, _ = Event.objects.filter(created_at__lt=moment).delete()
        return deleted
