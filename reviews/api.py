"""The API router of the ``reviews`` app: proposals, change sets, phase review and chat.

Handlers only parse, call a service (or read through a repository), and return a
schema; every refusal is a domain error that ``cw_project.errors`` turns into the
``ErrorOut`` shape. The
people's gates (accepting or dismissing proposals, requesting changes) pass the
request's actor to the service, which refuses a tool's token (403 ``person_required``).
"""

from http import HTTPStatus
from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Status

from agents.repositories import AgentRepository
from core.actors import Actor, actor_from_auth
from core.repositories import PhaseRepository, page_max_bytes
from core.schemas import ERRORS, Id, Page, TaskOut, page_of
from reviews import services
from reviews.repositories import (
    ChangeSetRepository,
    ChatSessionRepository,
    ProposalRepository,
    ReviewCommentRepository,
)
from reviews.schemas import (
    AcceptAllOut,
    ChangeSetOut,
    ChatMessageFilters,
    ChatMessageIn,
    ChatMessageOut,
    ChatMessagePageOut,
    ChatSessionIn,
    ChatSessionOut,
    DismissAllOut,
    ProposalCountsOut,
    ProposalFilters,
    ProposalIn,
    ProposalOut,
    ReviewBriefOut,
    ReviewCommentFilters,
    ReviewCommentIn,
    ReviewCommentOut,
    ReviewCommentPatch,
)

router = Router(tags=["reviews"])

proposals = ProposalRepository()
change_sets = ChangeSetRepository()
review_comments = ReviewCommentRepository()
chat_sessions = ChatSessionRepository()
phases = PhaseRepository()
agents = AgentRepository()


def _actor(request: HttpRequest) -> Actor:
    """Who asks: a person (a staff session or a personal token) or a tool."""
    return actor_from_auth(request.auth)  # type: ignore[attr-defined]


# --- proposals -------------------------------------------------------------------------


@router.get(
    "/proposals",
    response={200: Page[ProposalOut], **ERRORS},
    tags=["proposals"],
    summary="List proposals",
)
def list_proposals(request: HttpRequest, filters: Query[ProposalFilters]) -> dict[str, Any]:
    """Proposals, filtered by agent, initiative, status and target type; oldest first."""
    criteria = filters.dict(include={"agent_id", "initiative_id", "status", "target_type"})
    page = proposals.find_page_rows(
        **criteria, limit=filters.limit, offset=filters.offset, max_bytes=page_max_bytes()
    )
    return page_of(page.items, total=page.total, params=filters)


@router.post(
    "/proposals",
    response={201: ProposalOut, **ERRORS},
    tags=["proposals"],
    summary="Propose a new or changed page, phase or task",
)
def create_proposal(request: HttpRequest, payload: ProposalIn) -> Status:
    """An agent submits a proposal (``target_id`` null to create a record)."""
    return Status(HTTPStatus.CREATED, services.proposal_create(**payload.dict()))


@router.get(
    "/proposals/{proposal_id}",
    response={200: ProposalOut, **ERRORS},
    tags=["proposals"],
    summary="Retrieve a proposal",
)
def retrieve_proposal(request: HttpRequest, proposal_id: Id) -> Any:
    return proposals.get(proposal_id)


@router.post(
    "/proposals/{proposal_id}/accept",
    response={200: ChangeSetOut, **ERRORS},
    tags=["proposals"],
    summary="Accept a proposal (person)",
)
def accept_proposal(request: HttpRequest, proposal_id: Id) -> Any:
    """Apply the proposal to its target; answers the change set that can revert it."""
    change_set = services.proposal_accept(proposal_id=proposal_id, actor=_actor(request))
    return change_sets.get_with_entries(change_set.pk)


@router.post(
    "/proposals/{proposal_id}/dismiss",
    response={200: ProposalOut, **ERRORS},
    tags=["proposals"],
    summary="Dismiss a proposal (person)",
)
def dismiss_proposal(request: HttpRequest, proposal_id: Id) -> Any:
    """A person dismisses a pending proposal."""
    return services.proposal_dismiss(proposal_id=proposal_id, actor=_actor(request))


@router.post(
    "/agents/{agent_id}/proposals/accept-all",
    response={200: AcceptAllOut, **ERRORS},
    tags=["proposals"],
    summary="Accept every pending proposal of an agent (person)",
)
def accept_all_proposals(request: HttpRequest, agent_id: Id) -> dict[str, Any]:
    """Accept every pending proposal of the agent, all or nothing."""
    applied = services.proposal_accept_all(agent_id=agent_id, actor=_actor(request))
    ids = [change_set.pk for change_set in applied]
    return {"accepted": len(ids), "change_sets": change_sets.find_with_entries_by_ids(ids)}


@router.post(
    "/agents/{agent_id}/proposals/dismiss-all",
    response={200: DismissAllOut, **ERRORS},
    tags=["proposals"],
    summary="Dismiss every pending proposal of an agent (person)",
)
def dismiss_all_proposals(request: HttpRequest, agent_id: Id) -> dict[str, int]:
    """A person dismisses every pending proposal of the agent."""
    dismissed = services.proposal_dismiss_all(agent_id=agent_id, actor=_actor(request))
    return {"dismissed": dismissed}


@router.get(
    "/agents/{agent_id}/proposals/counts",
    response={200: ProposalCountsOut, **ERRORS},
    tags=["proposals"],
    summary="Count an agent's proposals by status",
)
def count_agent_proposals(request: HttpRequest, agent_id: Id) -> dict[str, int]:
    """How many proposals of the agent are pending, accepted and dismissed."""
    agents.require(agent_id)
    return proposals.count_by_agent_id_per_status(agent_id)


@router.get(
    "/change-sets/{change_set_id}",
    response={200: ChangeSetOut, **ERRORS},
    tags=["proposals"],
    summary="Retrieve a change set with its entries",
)
def retrieve_change_set(request: HttpRequest, change_set_id: Id) -> Any:
    return change_sets.get_with_entries(change_set_id)


@router.post(
    "/change-sets/{change_set_id}/revert",
    response={200: ChangeSetOut, **ERRORS},
    tags=["proposals"],
    summary="Revert a change set",
)
def revert_change_set(request: HttpRequest, change_set_id: Id) -> Any:
    """Put back exactly the values before the change set; refused if touched since."""
    services.change_set_revert(change_set_id=change_set_id)
    return change_sets.get_with_entries(change_set_id)


# --- review comments and phase review -----------------------------------------------------


@router.get(
    "/phases/{phase_id}/review-comments",
    response={200: Page[ReviewCommentOut], **ERRORS},
    tags=["review"],
    summary="List a phase's review comments",
)
def list_review_comments(
    request: HttpRequest, phase_id: Id, filters: Query[ReviewCommentFilters]
) -> dict[str, Any]:
    """A phase's comments by file and line; ``resolved`` filters open or resolved ones."""
    phases.require(phase_id)
    page = review_comments.find_page_rows(
        phase_id,
        resolved=filters.resolved,
        limit=filters.limit,
        offset=filters.offset,
        max_bytes=page_max_bytes(),
    )
    return page_of(page.items, total=page.total, params=filters)


@router.post(
    "/phases/{phase_id}/review-comments",
    response={201: ReviewCommentOut, **ERRORS},
    tags=["review"],
    summary="Comment on a line of a phase's diff",
)
def create_review_comment(request: HttpRequest, phase_id: Id, payload: ReviewCommentIn) -> Status:
    """Comment on a line of the phase's diff (with the line's text and hunk when cw's
    mirror holds the diff: see ``project_id``)."""
    fields = payload.dict()
    context = services.line_context(
        phase_id=phase_id,
        project_id=fields["project_id"],
        file_path=fields["file_path"],
        line_type=fields["line_type"],
        line_number=fields["line_number"],
    )
    return Status(
        HTTPStatus.CREATED,
        services.review_comment_create(phase_id=phase_id, **{**fields, **context}),
    )


@router.patch(
    "/review-comments/{comment_id}",
    response={200: ReviewCommentOut, **ERRORS},
    tags=["review"],
    summary="Edit a review comment",
)
def update_review_comment(request: HttpRequest, comment_id: Id, payload: ReviewCommentPatch) -> Any:
    return services.review_comment_update(comment_id=comment_id, body=payload.body)


@router.post(
    "/review-comments/{comment_id}/resolve",
    response={200: ReviewCommentOut, **ERRORS},
    tags=["review"],
    summary="Resolve a review comment",
)
def resolve_review_comment(request: HttpRequest, comment_id: Id) -> Any:
    return services.review_comment_resolve(comment_id=comment_id)


@router.post(
    "/review-comments/{comment_id}/unresolve",
    response={200: ReviewCommentOut, **ERRORS},
    tags=["review"],
    summary="Reopen a review comment",
)
def unresolve_review_comment(request: HttpRequest, comment_id: Id) -> Any:
    return services.review_comment_unresolve(comment_id=comment_id)


@router.delete(
    "/review-comments/{comment_id}",
    response={204: None, **ERRORS},
    tags=["review"],
    summary="Delete a review comment",
)
def delete_review_comment(request: HttpRequest, comment_id: Id) -> Status:
    services.review_comment_delete(comment_id=comment_id)
    return Status(HTTPStatus.NO_CONTENT, None)


@router.get(
    "/phases/{phase_id}/review-brief",
    response={200: ReviewBriefOut, **ERRORS},
    tags=["review"],
    summary="Retrieve a phase's review brief",
)
def retrieve_review_brief(request: HttpRequest, phase_id: Id) -> Any:
    """The phase's unresolved comments as markdown an agent can act on."""
    return services.phase_review_brief(phase_id=phase_id)


@router.post(
    "/phases/{phase_id}/request-changes",
    response={201: TaskOut, **ERRORS},
    tags=["review"],
    summary="Request changes on a phase in review (person)",
)
def request_phase_changes(request: HttpRequest, phase_id: Id) -> Status:
    """Turn the unresolved comments into one review task; the phase goes back in progress."""
    task = services.phase_request_changes(phase_id=phase_id, actor=_actor(request))
    return Status(HTTPStatus.CREATED, task)


# --- chat ----------------------------------------------------------------------------------


@router.post(
    "/chat-sessions",
    response={200: ChatSessionOut, 201: ChatSessionOut, **ERRORS},
    tags=["chat"],
    summary="Open or get the active chat session of a phase or task",
)
def open_chat_session(request: HttpRequest, payload: ChatSessionIn) -> Status:
    """201 with a new session when the target had none active, else 200 with the active
    one (a target has at most one)."""
    session, opened = services.chat_session_open(**payload.dict())
    return Status(HTTPStatus.CREATED if opened else HTTPStatus.OK, session)


@router.get(
    "/chat-sessions/{session_id}",
    response={200: ChatSessionOut, **ERRORS},
    tags=["chat"],
    summary="Retrieve a chat session",
)
def retrieve_chat_session(request: HttpRequest, session_id: Id) -> Any:
    return chat_sessions.get(session_id)


@router.get(
    "/chat-sessions/{session_id}/messages",
    response={200: ChatMessagePageOut, **ERRORS},
    tags=["chat"],
    summary="List a chat session's messages after a cursor",
)
def list_chat_messages(
    request: HttpRequest, session_id: Id, filters: Query[ChatMessageFilters]
) -> dict[str, Any]:
    """Messages oldest first, at most ``limit`` and ``CW_API_PAGE_MAX_BYTES`` bytes of
    content (one message at least); send back ``next_after`` as ``after`` to read on
    while ``more`` (an ``after`` that is not a message of this session is 400
    ``invalid_cursor``)."""
    chat_sessions.require(session_id)
    page = chat_sessions.find_message_page_by_session_id(
        session_id, after=filters.after, limit=filters.limit, max_bytes=page_max_bytes()
    )
    items = page.items
    return {
        "items": items,
        "next_after": items[-1].id if items else filters.after,
        "more": page.more,
    }


@router.post(
    "/chat-sessions/{session_id}/messages",
    response={201: ChatMessageOut, **ERRORS},
    tags=["chat"],
    summary="Post a message in a chat session",
)
def post_chat_message(request: HttpRequest, session_id: Id, payload: ChatMessageIn) -> Status:
    """An assistant message may name the change set it applied (``change_set_id``),
    which ``POST /change-sets/{id}/revert`` undoes; a closed session is 409."""
    return Status(
        HTTPStatus.CREATED, services.chat_message_post(session_id=session_id, **payload.dict())
    )


@router.post(
    "/chat-sessions/{session_id}/close",
    response={200: ChatSessionOut, **ERRORS},
    tags=["chat"],
    summary="Close a chat session",
)
def close_chat_session(request: HttpRequest, session_id: Id) -> Any:
    """Close an active session (409 ``chat_session_closed`` when already closed)."""
    return services.chat_session_close(session_id=session_id)
