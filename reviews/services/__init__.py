"""What people decide on: proposals (accept, dismiss, revert) and phase review.

One module per topic, their public names importable from here:

- ``proposals``: proposing, accepting (applying to the target) and dismissing;
- ``change_sets``: recording what an operation changed, and reverting it exactly,
  through a registry of the tables a change set may touch;
- ``brief``: a phase's unresolved review comments as markdown;
- ``phase_diff``: what a phase changed in each project, read from cw's mirrors;
- ``review``: review comments, and requesting changes on a phase in review;
- ``chat``: chat sessions on a phase or task, and their messages.

Each public function is one transaction with keyword-only arguments and raises the
domain errors of ``core.errors`` with stable codes.
"""

from reviews.services.brief import ReviewBrief, phase_review_brief, render_brief
from reviews.services.change_sets import (
    REGISTRY,
    ChangeRecorder,
    change_set_revert,
    snapshot,
)
from reviews.services.chat import (
    chat_message_delete,
    chat_message_post,
    chat_session_close,
    chat_session_create,
    chat_session_delete,
    chat_session_open,
    chat_session_update,
)
from reviews.services.phase_diff import (
    PhaseDiff,
    ProjectDiff,
    is_outdated,
    line_context,
    phase_diff,
)
from reviews.services.proposals import (
    proposal_accept,
    proposal_accept_all,
    proposal_create,
    proposal_delete,
    proposal_dismiss,
    proposal_dismiss_all,
    proposal_update,
)
from reviews.services.review import (
    phase_request_changes,
    review_comment_create,
    review_comment_delete,
    review_comment_resolve,
    review_comment_unresolve,
    review_comment_update,
)

__all__ = [
    "REGISTRY",
    "ChangeRecorder",
    "PhaseDiff",
    "ProjectDiff",
    "ReviewBrief",
    "change_set_revert",
    "chat_message_delete",
    "chat_message_post",
    "chat_session_close",
    "chat_session_create",
    "chat_session_delete",
    "chat_session_open",
    "chat_session_update",
    "is_outdated",
    "line_context",
    "phase_diff",
    "phase_request_changes",
    "phase_review_brief",
    "proposal_accept",
    "proposal_accept_all",
    "proposal_create",
    "proposal_delete",
    "proposal_dismiss",
    "proposal_dismiss_all",
    "proposal_update",
    "render_brief",
    "review_comment_create",
    "review_comment_delete",
    "review_comment_resolve",
    "review_comment_unresolve",
    "review_comment_update",
    "snapshot",
]
