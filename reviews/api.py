"""The API router of the ``reviews`` app: proposals, change sets and phase review.

Handlers only parse, call a repository or service, and return a schema; every refusal
is a domain error that ``cw_project.errors`` turns into the ``ErrorOut`` shape.
"""

from http import HTTPStatus
from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Status

from agents.repositories import AgentRepository
from core import services as core_services
from core.repositories import PhaseRepository
from core.schemas import ERRORS, Id, Page, PhaseOut, TaskOut, page_of
from reviews import services
from reviews.repositories import ChangeSetRepository, ProposalRepository, ReviewCommentRepository
from reviews.schemas import (
    AcceptAllOut,
    ChangeSetOut,
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
phases = PhaseRepository()
agents = AgentRepository()


# --- proposals -------------------------------------------------------------------------


@router.get("/proposals", response={200: Page[ProposalOut], **ERRORS}, tags=["proposals"])
def list_proposals(request: HttpRequest, filters: Query[ProposalFilters]) -> dict[str, Any]:
    """Proposals, filtered by agent, initiative, status and target type; oldest first."""
    criteria = filters.dict(include={"agent_id", "initiative_id", "status", "target_type"})
    items = proposals.find(**criteria, limit=filters.limit, offset=filters.offset)
    return page_of(items, total=proposals.count(**criteria), params=filters)


@router.post("/proposals", response={201: ProposalOut, **ERRORS}, tags=["proposals"])
def create_proposal(request: HttpRequest, payload: ProposalIn) -> Status:
    """An agent submits a proposal (``target_id`` null to create a record)."""
    return Status(HTTPStatus.CREATED, services.proposal_create(**payload.dict()))


@router.get("/proposals/{proposal_id}", response={200: ProposalOut, **ERRORS}, tags=["proposals"])
def retrieve_proposal(request: HttpRequest, proposal_id: Id) -> Any:
    return proposals.get(proposal_id)


@router.post(
    "/proposals/{proposal_id}/accept", response={200: ChangeSetOut, **ERRORS}, tags=["proposals"]
)
def accept_proposal(request: HttpRequest, proposal_id: Id) -> Any:
    """Apply the proposal to its target; answers the change set that can revert it."""
    change_set = services.proposal_accept(proposal_id=proposal_id)
    return change_sets.get_with_entries(change_set.pk)


@router.post(
    "/proposals/{proposal_id}/dismiss", response={200: ProposalOut, **ERRORS}, tags=["proposals"]
)
def dismiss_proposal(request: HttpRequest, proposal_id: Id) -> Any:
    return services.proposal_dismiss(proposal_id=proposal_id)


@router.post(
    "/agents/{agent_id}/proposals/accept-all",
    response={200: AcceptAllOut, **ERRORS},
    tags=["proposals"],
)
def accept_all_proposals(request: HttpRequest, agent_id: Id) -> dict[str, Any]:
    """Accept every pending proposal of the agent, all or nothing."""
    applied = services.proposal_accept_all(agent_id=agent_id)
    ids = [change_set.pk for change_set in applied]
    return {"accepted": len(ids), "change_sets": change_sets.find_with_entries_by_ids(ids)}


@router.post(
    "/agents/{agent_id}/proposals/dismiss-all",
    response={200: DismissAllOut, **ERRORS},
    tags=["proposals"],
)
def dismiss_all_proposals(request: HttpRequest, agent_id: Id) -> dict[str, int]:
    return {"dismissed": services.proposal_dismiss_all(agent_id=agent_id)}


@router.get(
    "/agents/{agent_id}/proposals/counts",
    response={200: ProposalCountsOut, **ERRORS},
    tags=["proposals"],
)
def count_agent_proposals(request: HttpRequest, agent_id: Id) -> dict[str, int]:
    """How many proposals of the agent are pending, accepted and dismissed."""
    agents.require(agent_id)
    return proposals.count_by_agent_id_per_status(agent_id)


@router.get(
    "/change-sets/{change_set_id}", response={200: ChangeSetOut, **ERRORS}, tags=["proposals"]
)
def retrieve_change_set(request: HttpRequest, change_set_id: Id) -> Any:
    return change_sets.get_with_entries(change_set_id)


@router.post(
    "/change-sets/{change_set_id}/revert",
    response={200: ChangeSetOut, **ERRORS},
    tags=["proposals"],
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
)
def list_review_comments(
    request: HttpRequest, phase_id: Id, filters: Query[ReviewCommentFilters]
) -> dict[str, Any]:
    """A phase's comments by file and line; ``resolved`` filters open or resolved ones."""
    phases.require(phase_id)
    page = review_comments.find_page(
        phase_id, resolved=filters.resolved, limit=filters.limit, offset=filters.offset
    )
    return page_of(page.items, total=page.total, params=filters)


@router.post(
    "/phases/{phase_id}/review-comments",
    response={201: ReviewCommentOut, **ERRORS},
    tags=["review"],
)
def create_review_comment(request: HttpRequest, phase_id: Id, payload: ReviewCommentIn) -> Status:
    return Status(HTTPStatus.CREATED, review_comments.create(phase_id=phase_id, **payload.dict()))


@router.patch(
    "/review-comments/{comment_id}", response={200: ReviewCommentOut, **ERRORS}, tags=["review"]
)
def update_review_comment(request: HttpRequest, comment_id: Id, payload: ReviewCommentPatch) -> Any:
    return review_comments.update_body(comment_id, payload.body)


@router.post(
    "/review-comments/{comment_id}/resolve",
    response={200: ReviewCommentOut, **ERRORS},
    tags=["review"],
)
def resolve_review_comment(request: HttpRequest, comment_id: Id) -> Any:
    return review_comments.resolve(comment_id)


@router.post(
    "/review-comments/{comment_id}/unresolve",
    response={200: ReviewCommentOut, **ERRORS},
    tags=["review"],
)
def unresolve_review_comment(request: HttpRequest, comment_id: Id) -> Any:
    return review_comments.unresolve(comment_id)


@router.delete("/review-comments/{comment_id}", response={204: None, **ERRORS}, tags=["review"])
def delete_review_comment(request: HttpRequest, comment_id: Id) -> Status:
    if not review_comments.delete(comment_id):
        raise review_comments.not_found(comment_id)
    return Status(HTTPStatus.NO_CONTENT, None)


@router.get(
    "/phases/{phase_id}/review-brief", response={200: ReviewBriefOut, **ERRORS}, tags=["review"]
)
def retrieve_review_brief(request: HttpRequest, phase_id: Id) -> Any:
    """The phase's unresolved comments as markdown an agent can act on."""
    return services.phase_review_brief(phase_id=phase_id)


@router.post(
    "/phases/{phase_id}/request-changes", response={201: TaskOut, **ERRORS}, tags=["review"]
)
def request_phase_changes(request: HttpRequest, phase_id: Id) -> Status:
    """Turn the unresolved comments into one review task; the phase goes back in progress."""
    return Status(HTTPStatus.CREATED, services.phase_request_changes(phase_id=phase_id))


@router.post("/phases/{phase_id}/approve", response={200: PhaseOut, **ERRORS}, tags=["review"])
def approve_phase(request: HttpRequest, phase_id: Id) -> Any:
    """Approve a phase waiting for review: it becomes completed."""
    return core_services.phase_approve(phase_id=phase_id)
