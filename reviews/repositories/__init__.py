"""How review records are found and stored: the seed's Proposal, ReviewComment and
ChatSession repositories, and the ChangeSet repository the accept/revert flows need, one
module each (``proposals``, ``review_comments``, ``chat_sessions``, ``change_sets``) on
what they share (``base``: exactly-once updates, the targets of proposals and chats).

As in ``core.repositories``: the base's generic writes are protected, and each repository
offers explicit, typed methods for what its table allows. Statuses are lifecycle fields:
a proposal is accepted or dismissed, a chat session closed, a change set reverted, each
exactly once, never by a plain update. Other tables are read only through their own
repositories' named accessors. The names below are the public ones, importable from
``reviews.repositories``.
"""

from reviews.repositories.base import TARGET_REPOSITORIES, target_initiative_id
from reviews.repositories.change_sets import ChangeSetRepository
from reviews.repositories.chat_sessions import ChatSessionChanges, ChatSessionRepository
from reviews.repositories.proposals import ProposalChanges, ProposalFields, ProposalRepository
from reviews.repositories.review_comments import (
    ReviewCommentChanges,
    ReviewCommentFields,
    ReviewCommentRepository,
)

__all__ = [
    "TARGET_REPOSITORIES",
    "ChangeSetRepository",
    "ChatSessionChanges",
    "ChatSessionRepository",
    "ProposalChanges",
    "ProposalFields",
    "ProposalRepository",
    "ReviewCommentChanges",
    "ReviewCommentFields",
    "ReviewCommentRepository",
    "target_initiative_id",
]
