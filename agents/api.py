"""The API router of the ``agents`` app: provider accounts, agents, their logs, messages
and conversations (tagged ``accounts``, ``agents``, ``logs``, ``messages``,
``conversations``). Handlers are thin: reads go to the repositories, every change to
``agents.services``.

Account secrets are write-only: every response uses ``AccountOut`` (which says whether
a secret is set, never what it is) except the claim, which hands the claimed account's
secrets to the tool that will run an agent under it. The claim therefore takes a bearer
token only (``TOOL_AUTH``): a person's staff session is refused, since people never see
a secret in clear.
"""

import json
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

import orjson
from django.http import HttpRequest, StreamingHttpResponse
from ninja import Query, Router, Status
from pydantic import ValidationError

from agents import services
from agents.logformat import parse_chunk
from agents.models import AgentStatus
from agents.repositories import (
    AccountRepository,
    AgentRepository,
    ConversationRepository,
    LogChunkRepository,
    MessageRepository,
)
from agents.schemas import (
    LOG_APPEND_BODY,
    AccountClaimIn,
    AccountClaimOut,
    AccountExhaustIn,
    AccountIn,
    AccountOut,
    AccountPatch,
    AgentFinishedIn,
    AgentOut,
    AgentRegisteredOut,
    AgentRegisterIn,
    AgentRunningIn,
    AgentWaitingIn,
    ConversationAnswerIn,
    ConversationIn,
    ConversationOut,
    LogAppendedOut,
    LogChunkIn,
    LogChunkOut,
    LogFollowParams,
    LogPageOut,
    LogReadParams,
    LogRecordsPageOut,
    LogSessionParams,
    LogSessionsOut,
    MessageIn,
    MessageOut,
    MessageReplyIn,
    PendingQuestionsParams,
    QuestionFollowParams,
    ReleasedOut,
)
from agents.services.logs import NewLogChunk
from core.actors import Actor, actor_from_auth
from core.api.sse import (
    PAGE_SIZE,
    component,
    follow,
    last_event_id,
    served_as_it_comes,
    sse_response,
)
from core.auth import TOOL_AUTH
from core.errors import InvalidInput, PermissionRequired
from core.live import log_channel, questions_channel
from core.repositories import INT32, page_max_bytes
from core.repositories.events import EventRepository
from core.schemas import ERRORS, Id, Page, PageParams, page_of
from core.schemas.base import field_refusal_code
from core.text import decoded_text
from core.validators import TEXT_MAX_LENGTH

router = Router(tags=["accounts"])

accounts = AccountRepository()
agents = AgentRepository()
logs = LogChunkRepository()
messages = MessageRepository()
conversations = ConversationRepository()
feed = EventRepository()


class AccountFilters(PageParams):
    provider: Id | None = None


@router.get("/accounts", response={200: Page[AccountOut], **ERRORS})
def list_accounts(request: HttpRequest, filters: Query[AccountFilters]) -> dict[str, Any]:
    """Accounts in rotation order, optionally of one provider; secrets never included."""
    page = accounts.find_page(
        provider=filters.provider,
        limit=filters.limit,
        offset=filters.offset,
        max_bytes=page_max_bytes(),
    )
    return page_of(page.items, total=page.total, params=filters)


@router.post("/accounts", response={201: AccountOut, **ERRORS})
def create_account(request: HttpRequest, payload: AccountIn) -> Status:
    return Status(HTTPStatus.CREATED, services.account_create(**payload.dict()))


@router.post("/accounts/claim", response={200: AccountClaimOut, **ERRORS}, auth=TOOL_AUTH)
def claim_account(request: HttpRequest, payload: AccountClaimIn) -> Any:
    """Claim the next available account of a provider, round-robin, with its secrets.

    Tools only: needs a bearer token; a staff session is refused with 403
    ``tool_token_required``. 409 ``account_unavailable`` when every account of the
    provider is exhausted.
    """
    return services.account_claim(provider=payload.provider)


@router.post("/accounts/clear-expired-exhaustion", response={200: ReleasedOut, **ERRORS})
def clear_expired_exhaustion(request: HttpRequest) -> dict[str, int]:
    """Release every account whose exhaustion has passed; answers how many."""
    return {"released": services.account_clear_expired_exhaustion()}


@router.get("/accounts/{account_id}", response={200: AccountOut, **ERRORS})
def retrieve_account(request: HttpRequest, account_id: Id) -> Any:
    return accounts.get(account_id)


@router.patch("/accounts/{account_id}", response={200: AccountOut, **ERRORS})
def update_account(request: HttpRequest, account_id: Id, payload: AccountPatch) -> Any:
    """Change only the fields sent; ``null`` for a secret clears it."""
    return services.account_update(account_id=account_id, **payload.dict(exclude_unset=True))


@router.delete("/accounts/{account_id}", response={204: None, **ERRORS})
def delete_account(request: HttpRequest, account_id: Id) -> Status:
    services.account_delete(account_id=account_id)
    return Status(HTTPStatus.NO_CONTENT, None)


@router.post("/accounts/{account_id}/exhaust", response={200: AccountOut, **ERRORS})
def mark_account_exhausted(request: HttpRequest, account_id: Id, payload: AccountExhaustIn) -> Any:
    """Park the account (rate-limited) until the given time: at most a year away (a later
    time parks it for a year); a time already past leaves it available (released)."""
    return services.account_report_exhausted(account_id=account_id, until=payload.until)


# --- agents --------------------------------------------------------------------------------


def _actor(request: HttpRequest) -> Actor:
    """Who calls: the token's person or tool, or the staff session's user."""
    return actor_from_auth(request.auth)  # type: ignore[attr-defined]


class AgentFilters(PageParams):
    status: AgentStatus | None = None
    task_id: Id | None = None
    initiative_id: Id | None = None


@router.post("/agents", response={201: AgentRegisteredOut, **ERRORS}, tags=["agents"])
def register_agent(request: HttpRequest, payload: AgentRegisterIn) -> Status:
    """Register an agent (idle), optionally bound to a task and to an account claimed in
    the same call.

    With ``claim_account`` the answer carries the account's secrets, so only a tool's
    token may ask: a person (staff session or personal token) gets 403
    ``tool_token_required``. 409 ``account_unavailable`` writes nothing.
    """
    if payload.claim_account and _actor(request).kind != "tool":
        raise PermissionRequired(
            "Claiming an account with an agent hands out its secrets, so it needs a tool's "
            "API token, not a person's session or personal token.",
            code="tool_token_required",
        )
    agent, account = services.agent_register(**payload.dict())
    return Status(HTTPStatus.CREATED, {"agent": agent, "account": account})


@router.get("/agents", response={200: Page[AgentOut], **ERRORS}, tags=["agents"])
def list_agents(request: HttpRequest, filters: Query[AgentFilters]) -> dict[str, Any]:
    """Agents, oldest first, optionally by status, task or initiative."""
    page = agents.find_page(
        status=filters.status,
        task_id=filters.task_id,
        initiative_id=filters.initiative_id,
        limit=filters.limit,
        offset=filters.offset,
        max_bytes=page_max_bytes(),
    )
    return page_of(page.items, total=page.total, params=filters)


@router.get("/agents/by-name/{name}", response={200: AgentOut, **ERRORS}, tags=["agents"])
def retrieve_agent_by_name(request: HttpRequest, name: Id) -> Any:
    """The agent with this name (``brave-otter``)."""
    agent = agents.find_by_name(name)
    if agent is None:
        raise agents.not_found(name)
    return agent


@router.get("/agents/{agent_id}", response={200: AgentOut, **ERRORS}, tags=["agents"])
def retrieve_agent(request: HttpRequest, agent_id: Id) -> Any:
    """One agent."""
    return agents.get(agent_id)


@router.post("/agents/{agent_id}/running", response={200: AgentOut, **ERRORS}, tags=["agents"])
def mark_agent_running(request: HttpRequest, agent_id: Id, payload: AgentRunningIn) -> Any:
    """The agent's process runs (from idle, waiting for input, stopped or crashed);
    clears its pending questions. 409 ``transition_not_allowed`` otherwise."""
    return services.agent_mark_running(agent_id=agent_id, **payload.dict(exclude_unset=True))


@router.post(
    "/agents/{agent_id}/waiting-for-input",
    response={200: AgentOut, **ERRORS},
    tags=["agents"],
)
def mark_agent_waiting(request: HttpRequest, agent_id: Id, payload: AgentWaitingIn) -> Any:
    """A running agent waits for answers to its pending questions."""
    return services.agent_mark_waiting(
        agent_id=agent_id, pending_questions=payload.pending_questions
    )


@router.post("/agents/{agent_id}/idle", response={200: AgentOut, **ERRORS}, tags=["agents"])
def mark_agent_idle(request: HttpRequest, agent_id: Id, payload: AgentFinishedIn) -> Any:
    """The agent finished a turn (from running or waiting for input)."""
    return services.agent_mark_idle(agent_id=agent_id, **payload.dict())


@router.post("/agents/{agent_id}/stopped", response={200: AgentOut, **ERRORS}, tags=["agents"])
def mark_agent_stopped(request: HttpRequest, agent_id: Id, payload: AgentFinishedIn) -> Any:
    """The agent was ended on purpose (from idle, running or waiting for input)."""
    return services.agent_mark_stopped(agent_id=agent_id, **payload.dict())


@router.post("/agents/{agent_id}/crashed", response={200: AgentOut, **ERRORS}, tags=["agents"])
def mark_agent_crashed(request: HttpRequest, agent_id: Id, payload: AgentFinishedIn) -> Any:
    """The agent's process died (from idle, running or waiting for input)."""
    return services.agent_mark_crashed(agent_id=agent_id, **payload.dict())


@router.post("/agents/{agent_id}/dismiss", response={200: AgentOut, **ERRORS}, tags=["agents"])
def dismiss_agent(request: HttpRequest, agent_id: Id) -> Any:
    """Hide a finished agent (idle, stopped or crashed) from the working views."""
    return services.agent_dismiss(agent_id=agent_id)


# --- logs ----------------------------------------------------------------------------------


def _log_chunks(request: HttpRequest, session_number: int | None) -> list[NewLogChunk]:
    """The chunks of an append's body: a JSON array of ``LogChunkIn``, or NDJSON text
    whose every non-blank line is one chunk, whatever it holds (``decoded_text``). A bad
    chunk names its index."""
    content_type = request.content_type or ""
    if content_type == "application/x-ndjson":
        text = decoded_text(request.body)  # bytes that are not UTF-8: \xNN, not refused
        # Lines end at "\n" (a "\r" before it is part of the ending), never at the other
        # separators str.splitlines knows, which a JSON string may hold raw.
        raw: Any = [
            {"content": line}
            if session_number is None
            else {"content": line, "session_number": session_number}
            for line in text.replace("\r\n", "\n").split("\n")
            if line.strip()
        ]
    elif content_type == "application/json":
        try:
            raw = orjson.loads(request.body)
        except ValueError:
            try:  # orjson is the stricter: what it refuses, json decides
                raw = json.loads(request.body)
            except (ValueError, RecursionError) as error:
                # RecursionError: nested deeper than the parser reads (orjson stops at
                # 1,024 levels, json at Python's recursion limit).
                raise InvalidInput("The body is not JSON.", code="invalid_log_body") from error
        if not isinstance(raw, list):
            raise InvalidInput(
                "A JSON body is an array of chunks ({content, session_number?}).",
                code="invalid_log_body",
            )
    else:
        raise InvalidInput(
            "Send application/json (an array of chunks) or application/x-ndjson.",
            code="invalid_log_body",
            details={"content_type": content_type},
        )
    services.check_log_batch_size(len(raw))
    chunks: list[NewLogChunk] = []
    for index, item in enumerate(raw):
        if (chunk := _plain_chunk(item)) is not None:
            chunks.append(chunk)
            continue
        try:
            checked = LogChunkIn.model_validate(item)
            chunks.append({"content": checked.content, "session_number": checked.session_number})
        except ValidationError as error:
            found = error.errors(include_url=False)
            problems = [{"loc": list(problem["loc"]), "msg": problem["msg"]} for problem in found]
            raise InvalidInput(
                f"Chunk {index} is malformed: {problems[0]['msg']}.",
                code=_chunk_refusal_code(found),
                details={"index": index, "errors": problems},
            ) from None
    return chunks


def _chunk_refusal_code(problems: list[Any]) -> str:
    """A bad chunk's code: its field's (``empty_content``, ``invalid_session_number``: the
    codes of those fields anywhere, ``core.schemas.base.field_refusal_code``) when each
    problem has one, else ``invalid_log_chunk``."""
    codes = [
        field_refusal_code(
            str(problem["loc"][0]) if problem["loc"] else None,
            problem["type"],
            problem.get("input"),
            nested=len(problem["loc"]) > 1,
        )
        for problem in problems
    ]
    first = codes[0] if codes else None
    return first if first is not None and None not in codes else "invalid_log_chunk"


def _plain_chunk(item: Any) -> NewLogChunk | None:
    """``item`` as a chunk when plain comparisons show ``LogChunkIn`` would accept it (the
    usual case, checked without building a model per chunk); None to let it decide."""
    if type(item) is not dict:
        return None
    content, session = item.get("content"), item.get("session_number", 1)
    if (
        type(content) is str
        and 0 < len(content) <= TEXT_MAX_LENGTH
        and (not content[0].isspace() or content.strip() != "")
        and len(item) == (2 if "session_number" in item else 1)
        and type(session) is int
        and 1 <= session <= INT32[1]
    ):
        return {"content": content, "session_number": session}
    return None


@router.post(
    "/agents/{agent_id}/logs",
    response={201: LogAppendedOut, **ERRORS},
    tags=["logs"],
    openapi_extra={"requestBody": LOG_APPEND_BODY},
)
def append_agent_log(request: HttpRequest, agent_id: Id, params: Query[LogSessionParams]) -> Status:
    """Append a batch of chunks to an agent's log, all or nothing.

    The body is a JSON array of ``{content, session_number?}`` or, with
    ``Content-Type: application/x-ndjson``, one chunk a line (session from
    ``?session_number=``, default 1). At most 1,000 chunks (400 ``log_batch_too_large``)
    and 2.5 MB (413); a bad chunk (400 ``invalid_log_chunk``; ``empty_content`` or
    ``invalid_session_number`` for those fields; ``details.index``) writes nothing.

    A chunk's content is any text the agent printed: JSON Lines, plain lines (``Error:
    rate limit reached``), a JSON line cut in two, all taken as they are. What no
    database stores alike is escaped, never refused, in Python's ``backslashreplace``
    spelling: NUL as ``\\x00``, a lone surrogate (JSON ``"\\ud800"``) as ``\\ud800``,
    and in an NDJSON body each byte that is not UTF-8 as ``\\xNN``. Blank NDJSON lines
    are skipped; a blank ``content`` in a JSON array is ``empty_content``.

    The answer's ``ids`` are exactly the chunks written; each agent's chunks become
    visible in id order, so a reader following the log with ``after`` misses none.
    """
    chunks = _log_chunks(request, params.session_number)
    ids = services.agent_log_append(agent_id=agent_id, chunks=chunks)
    return Status(
        HTTPStatus.CREATED,
        {"count": len(ids), "ids": ids, "first_id": ids[0], "last_id": ids[-1]},
    )


@router.get("/agents/{agent_id}/logs", response={200: LogPageOut, **ERRORS}, tags=["logs"])
def list_agent_log(
    request: HttpRequest, agent_id: Id, params: Query[LogReadParams]
) -> dict[str, Any]:
    """An agent's log oldest first, one keyset page after the cursor ``after``: at most
    ``limit`` chunks and ``CW_API_PAGE_MAX_BYTES`` bytes of content (a page stops before
    the chunk that would pass it, one chunk at least). Send the answer's ``next_after``
    back as ``after`` to read on; ``more`` false means the log ended within this page."""
    agents.require(agent_id)
    page = logs.find_page_by_agent_id(
        agent_id,
        after=params.after,
        limit=params.limit,
        session_number=params.session_number,
        max_bytes=page_max_bytes(),
    )
    items = page.items
    return {
        "items": items,
        "next_after": items[-1].id if items else params.after,
        "more": page.more,
    }


@router.get(
    "/agents/{agent_id}/logs/records",
    response={200: LogRecordsPageOut, **ERRORS},
    tags=["logs"],
)
def list_agent_log_records(
    request: HttpRequest, agent_id: Id, params: Query[LogReadParams]
) -> dict[str, Any]:
    """An agent's log read as records, a page of chunks at a time (the same cursor and
    bounds as ``GET /agents/{agent_id}/logs``): each JSON line of Claude Code's
    ``stream-json`` by its kind (what the assistant said, tool calls and results, the
    run's result with its cost), every other line — stderr, a cut line — as plain
    ``text``: what the admin's log viewer and ``cw_logs tail`` show."""
    page = list_agent_log(request, agent_id, params)
    return {
        **page,
        "items": [
            {
                "chunk_id": chunk.id,
                "session_number": chunk.session_number,
                "created_at": chunk.created_at,
                **record,
            }
            for chunk in page["items"]
            for record in parse_chunk(chunk.content)
        ],
    }


@router.get(
    "/agents/{agent_id}/logs/stream",
    response={200: None, **ERRORS},
    tags=["logs"],
    openapi_extra={
        "responses": {
            200: {
                "description": "The log's content, oldest first, as the agent wrote it.",
                "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
            }
        }
    },
)
def stream_agent_log(
    request: HttpRequest, agent_id: Id, params: Query[LogSessionParams]
) -> StreamingHttpResponse:
    """The whole log (or one session) as NDJSON, streamed: each chunk's text (JSON Lines
    and plain lines, as stored) in write order, read one page at a time, never loaded whole."""
    agents.require(agent_id)
    chunks = services.agent_log_iter(agent_id=agent_id, session_number=params.session_number)
    return StreamingHttpResponse(
        served_as_it_comes(request, _ndjson(chunks)), content_type="application/x-ndjson"
    )


def _ndjson(chunks: Iterator[Any]) -> Iterator[bytes]:
    for chunk in chunks:
        content = chunk.content
        yield (content if content.endswith("\n") else content + "\n").encode()


@router.get(
    "/agents/{agent_id}/logs/events",
    response={200: None, **ERRORS},
    tags=["logs"],
    summary="Follow an agent's log as server-sent events",
    openapi_extra={"responses": {200: sse_response(component("LogChunkOut"))}},
)
def follow_agent_log(request: HttpRequest, agent_id: Id, params: Query[LogFollowParams]) -> Any:
    """Every chunk after the cursor (`after`, or the `Last-Event-ID` of a reconnecting
    client), then each one as it commits: `id` is the chunk's id, `event` is `chunk`,
    `data` the chunk as `GET /agents/{agent_id}/logs` lists it."""
    agents.require(agent_id)
    return follow(
        request,
        read=lambda cursor: (
            logs.find_page_by_agent_id(
                agent_id,
                after=cursor,
                limit=PAGE_SIZE,
                session_number=params.session_number,
                max_bytes=page_max_bytes(),
            ).items
        ),
        cursor=last_event_id(request, params.after),
        channel=log_channel(agent_id),
        render=lambda chunk: (
            chunk.id,
            "chunk",
            LogChunkOut.model_validate(chunk).model_dump_json(),
        ),
    )


@router.get(
    "/agents/{agent_id}/logs/sessions", response={200: LogSessionsOut, **ERRORS}, tags=["logs"]
)
def retrieve_agent_log_sessions(request: HttpRequest, agent_id: Id) -> dict[str, int]:
    """How many sessions the agent's log has (its highest session number; 0 when empty)."""
    agents.require(agent_id)
    return {"count": logs.get_session_count(agent_id)}


@router.delete("/agents/{agent_id}/logs", response={204: None, **ERRORS}, tags=["logs"])
def delete_agent_log(request: HttpRequest, agent_id: Id) -> Status:
    """Delete the agent's whole log."""
    services.agent_log_delete(agent_id=agent_id)
    return Status(HTTPStatus.NO_CONTENT, None)


# --- messages ------------------------------------------------------------------------------


@router.post("/messages", response={201: MessageOut, **ERRORS}, tags=["messages"])
def send_message(request: HttpRequest, payload: MessageIn) -> Status:
    """Send a message between an agent and a person (pending until read or answered)."""
    return Status(HTTPStatus.CREATED, services.message_send(**payload.dict()))


@router.get("/messages/pending", response={200: Page[MessageOut], **ERRORS}, tags=["messages"])
def list_messages_pending_for_person(
    request: HttpRequest, page: Query[PageParams]
) -> dict[str, Any]:
    """Messages addressed to people, neither read nor answered, oldest first."""
    found = messages.find_page(
        messages.pending_for_user(),
        limit=page.limit,
        offset=page.offset,
        max_bytes=page_max_bytes(),
    )
    return page_of(found.items, total=found.total, params=page)


@router.get(
    "/messages/requiring-response",
    response={200: Page[MessageOut], **ERRORS},
    tags=["messages"],
)
def list_messages_requiring_response(
    request: HttpRequest, page: Query[PageParams]
) -> dict[str, Any]:
    """Messages that require a response and are not answered, oldest first."""
    found = messages.find_page(
        messages.requiring_response(),
        limit=page.limit,
        offset=page.offset,
        max_bytes=page_max_bytes(),
    )
    return page_of(found.items, total=found.total, params=page)


@router.get("/messages/{message_id}", response={200: MessageOut, **ERRORS}, tags=["messages"])
def retrieve_message(request: HttpRequest, message_id: Id) -> Any:
    """One message."""
    return messages.get(message_id)


@router.post(
    "/messages/{message_id}/replies", response={201: MessageOut, **ERRORS}, tags=["messages"]
)
def reply_to_message(request: HttpRequest, message_id: Id, payload: MessageReplyIn) -> Status:
    """Reply to a message (the reply goes to its sender) and mark it responded.

    Answering a message addressed to a person is a person's gate: a tool's token gets
    403 ``person_required``.
    """
    reply = services.message_reply(message_id=message_id, actor=_actor(request), **payload.dict())
    return Status(HTTPStatus.CREATED, reply)


@router.post("/messages/{message_id}/read", response={200: MessageOut, **ERRORS}, tags=["messages"])
def mark_message_read(request: HttpRequest, message_id: Id) -> Any:
    """Mark a pending message read (one read or answered already stays as it is)."""
    return services.message_mark_read(message_id=message_id)


# --- conversations -------------------------------------------------------------------------


@router.post("/conversations", response={201: ConversationOut, **ERRORS}, tags=["conversations"])
def ask_question(request: HttpRequest, payload: ConversationIn) -> Status:
    """One agent asks another a question (pending until answered)."""
    return Status(HTTPStatus.CREATED, services.conversation_ask(**payload.dict()))


@router.get(
    "/agents/{agent_id}/questions",
    response={200: list[ConversationOut], **ERRORS},
    tags=["conversations"],
)
async def list_pending_questions(
    request: HttpRequest, agent_id: Id, params: Query[PendingQuestionsParams]
) -> Any:
    """The unanswered questions addressed to an agent, oldest first; with ``wait`` the
    answer comes as soon as one is pending, or empty after ``wait`` seconds (at most 30).
    A waiting call holds no server thread and no database connection."""
    return await services.conversation_list_pending_waiting(agent_id=agent_id, wait=params.wait)


@router.get(
    "/agents/{agent_id}/questions/stream",
    response={200: None, **ERRORS},
    tags=["conversations"],
    summary="Follow the questions asked of an agent as server-sent events",
    openapi_extra={
        "responses": {
            200: sse_response({"anyOf": [component("ConversationOut"), {"type": "null"}]})
        }
    },
)
def follow_agent_questions(
    request: HttpRequest, agent_id: Id, params: Query[QuestionFollowParams]
) -> Any:
    """The questions asked of an agent as they are asked: `id` is the event feed's id of
    the asking (`Last-Event-ID` goes on from there), `event` is `question`, `data` the
    conversation as `GET /conversations/{conversation_id}` answers it. A new stream (no
    `Last-Event-ID`, no `after`) first sends the questions pending now."""
    agents.require(agent_id)
    start = last_event_id(request, params.after)
    pending: list[Any] = []
    if not start:
        start = feed.last_id()
        pending = [(start, question) for question in conversations.find_pending_for_agent(agent_id)]

    def read(cursor: int) -> list[tuple[int, Any]]:
        if pending:
            found, pending[:] = list(pending), []
            return found
        asked = feed.find_questions_after(agent_id, cursor, limit=PAGE_SIZE)
        by_id = {c.pk: c for c in conversations.find_by_ids([e.subject_id for e in asked])}
        # A question deleted since it was asked still moves the cursor ("question_gone").
        return [(e.id, by_id.get(e.subject_id)) for e in asked]

    return follow(
        request,
        read=read,
        cursor=start,
        channel=questions_channel(agent_id),
        render=lambda item: (
            item[0],
            "question" if item[1] is not None else "question_gone",
            ConversationOut.model_validate(item[1]).model_dump_json()
            if item[1] is not None
            else "null",
        ),
    )


@router.get(
    "/conversations/{conversation_id}",
    response={200: ConversationOut, **ERRORS},
    tags=["conversations"],
)
def retrieve_conversation(request: HttpRequest, conversation_id: Id) -> Any:
    """One conversation."""
    return conversations.get(conversation_id)


@router.post(
    "/conversations/{conversation_id}/answer",
    response={200: ConversationOut, **ERRORS},
    tags=["conversations"],
)
def answer_question(
    request: HttpRequest, conversation_id: Id, payload: ConversationAnswerIn
) -> Any:
    """Answer a question, exactly once: a second answer is 409
    ``conversation_already_answered``."""
    return services.conversation_answer(conversation_id=conversation_id, answer=payload.answer)
