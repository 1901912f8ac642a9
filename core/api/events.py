"""The core router's event feed: every committed state change, read forward by id.

A reader keeps the ``next_after`` of each answer and sends it back as ``after``: ids
follow commit order (``core.events``), so it sees every committed event exactly once.
"""

from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from django.http import HttpRequest
from ninja import Field, Query, Schema

from core.api.router import router
from core.api.sse import PAGE_SIZE, component, follow, last_event_id, sse_response
from core.events import EVENT_KINDS, event_list, event_list_waiting
from core.live import MAX_WAIT_SECONDS, events_channel
from core.repositories.pagination import DEFAULT_KEYSET_PAGE_SIZE, MAX_KEYSET_PAGE_SIZE
from core.schemas import AUTH_ERRORS, PAGE_BYTES, ActorOut, ErrorOut, FromRecord, Id

if TYPE_CHECKING:
    EventKind = str
else:
    #: One of ``core.events.EVENT_KINDS``: an enum in the OpenAPI document, 400
    #: ``invalid_kind`` otherwise (the code ``core.events.event_list`` gives).
    EventKind = Literal[tuple(EVENT_KINDS)]

#: The largest cursor: the events' ids are 64-bit.
MAX_CURSOR = 2**63 - 1


class EventFilters(Schema):
    """Query parameters of ``GET /events``."""

    after: int = Field(
        0, ge=0, le=MAX_CURSOR, description="The id of the last event seen (0: from the start)."
    )
    initiative_id: Id | None = Field(
        None,
        description=(
            "Only this initiative's events (an id that names nothing gives none: events "
            "outlive what they describe)."
        ),
    )
    kind: list[EventKind] | None = Field(
        None, description="Only events of these kinds (repeat the parameter for several)."
    )
    limit: int = Field(
        DEFAULT_KEYSET_PAGE_SIZE,
        ge=1,
        le=MAX_KEYSET_PAGE_SIZE,
        description=f"Events per answer (at most {MAX_KEYSET_PAGE_SIZE}).",
    )
    wait: float = Field(
        0,
        ge=0,
        le=MAX_WAIT_SECONDS,
        allow_inf_nan=False,
        description=(
            f"Seconds to wait for an event when there is none yet (at most {MAX_WAIT_SECONDS}); "
            "the answer comes as soon as one commits."
        ),
    )


class EventOut(FromRecord):
    """One state change: what happened (``kind``), to which record, by whom, and when."""

    id: int = Field(description="The event's position in commit order.")
    kind: str = Field(description="One of the kinds listed on ``GET /events``.")
    subject_type: str = Field(description="The kind of record the event is about.")
    subject_id: str
    initiative_id: str | None
    data: Any = Field(description="What the kind says it carries (a JSON object).")
    actor: ActorOut = Field(description="Who made the change.")
    created_at: datetime


class EventPageOut(Schema):
    """The next events after the cursor, and the cursor to send next."""

    items: list[EventOut] = Field(
        description=(
            "At most `limit` events, and at most "
            f"{PAGE_BYTES} of their `data` (always at least one): a page may end "
            "before `limit` events while more follow. Send back `next_after`; an empty "
            "page is the end of the feed."
        )
    )
    next_after: int = Field(
        description="The last item's id, or the ``after`` given when there is none."
    )


_KIND_LIST = "\n".join(f"- `{kind}`: {spec.describe()}" for kind, spec in EVENT_KINDS.items())


@router.get(
    "/events",
    response={200: EventPageOut, 400: ErrorOut, 422: ErrorOut, **AUTH_ERRORS},
    tags=["events"],
    summary="List events after a cursor",
    description=(
        "The next events after `after`, oldest first, in commit order: a reader that sends "
        "back each answer's `next_after` sees every committed event exactly once. "
        "Filter by `initiative_id` and by `kind` (repeatable).\n\n"
        f"With `wait` (at most {MAX_WAIT_SECONDS} s) an empty answer is held until an "
        "event commits or the wait runs out (a long poll). A waiting call holds no server "
        "thread and no database connection: it is woken when an event commits.\n\n"
        f"Kinds:\n\n{_KIND_LIST}"
    ),
)
async def list_events(request: HttpRequest, filters: Query[EventFilters]) -> dict[str, Any]:
    items = await event_list_waiting(
        after=filters.after,
        limit=filters.limit,
        initiative_id=filters.initiative_id,
        kinds=list(filters.kind) if filters.kind else None,
        wait=filters.wait,
    )
    return {"items": items, "next_after": items[-1].id if items else filters.after}


class EventStreamFilters(Schema):
    """Query parameters of ``GET /events/stream``."""

    after: int = Field(
        0,
        ge=0,
        le=MAX_CURSOR,
        description="The id of the last event seen (0: from the start); `Last-Event-ID` wins.",
    )
    initiative_id: Id | None = Field(None, description="Only this initiative's events.")
    kind: list[EventKind] | None = Field(
        None, description="Only events of these kinds (repeat the parameter for several)."
    )


@router.get(
    "/events/stream",
    response={200: None, 400: ErrorOut, 422: ErrorOut, **AUTH_ERRORS},
    tags=["events"],
    summary="Follow the event feed as server-sent events",
    openapi_extra={"responses": {200: sse_response(component("EventOut"))}},
)
def stream_events(request: HttpRequest, filters: Query[EventStreamFilters]) -> Any:
    """Every event after the cursor (`after`, or the `Last-Event-ID` of a reconnecting
    client), then each one as it commits: `id` is the event's id, `event` its kind,
    `data` the event as `GET /events` lists it."""
    kinds = list(filters.kind) if filters.kind else None
    event_list(kinds=kinds)  # refuses an unknown kind before the stream starts

    def read(cursor: int) -> list[Any]:
        return event_list(
            after=cursor, limit=PAGE_SIZE, initiative_id=filters.initiative_id, kinds=kinds
        )

    return follow(
        request,
        read=read,
        cursor=last_event_id(request, filters.after),
        channel=events_channel(),
        render=lambda event: (
            event.id,
            event.kind,
            EventOut.model_validate(event).model_dump_json(),
        ),
    )
