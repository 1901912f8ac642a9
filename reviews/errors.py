"""The error codes the reviews app raises, declared in the one catalogue (``core.errors``).

Loaded by ``ReviewsConfig.ready()``. Codes carried by the reviews' model constraints
(``chat_session_already_active``, ``invalid_line_number``, …) are declared on the
constraints, and the codes every app shares (``invalid_status``, ``empty_content``, …) in
``core.errors``.
"""

from core.errors import Conflict, InvalidInput, NotFound, declare, rename

declare("reviews", "proposal_not_found", NotFound, "No proposal has this id.")
declare("reviews", "review_comment_not_found", NotFound, "No review comment has this id.")
declare("reviews", "chat_message_not_found", NotFound, "No chat message has this id.")
declare("reviews", "chat_session_not_found", NotFound, "No chat session has this id.")
declare("reviews", "change_set_not_found", NotFound, "No change set has this id.")
declare("reviews", "change_set_entry_not_found", NotFound, "No change set entry has this id.")

# Shared by several of the reviews' constraints, each listing its own target types.
declare(
    "reviews",
    "invalid_target_type",
    InvalidInput,
    "A target type the record does not take (a proposal targets a page, phase or task; "
    "a chat session a phase or task).",
)

# Proposals.
declare(
    "reviews",
    "proposal_target_missing",
    NotFound,
    "The page, phase or task a new proposal would change does not exist.",
)
declare(
    "reviews",
    "proposal_target_other_initiative",
    InvalidInput,
    "A proposal's target belongs to another initiative than the proposal.",
)
rename("proposal_target_elsewhere", "proposal_target_other_initiative")
declare(
    "reviews",
    "proposal_target_deleted",
    Conflict,
    "The page, phase or task a proposal changes was deleted since it was proposed.",
)
declare(
    "reviews",
    "proposal_not_pending",
    Conflict,
    "The proposal is already accepted or dismissed: it cannot be accepted, dismissed or edited.",
)
declare(
    "reviews",
    "invalid_metadata",
    InvalidInput,
    "A proposal's metadata is not a JSON object, or one of its keys has the wrong shape "
    "(`details.key`).",
)
rename("proposal_metadata_invalid", "invalid_metadata")
declare(
    "reviews",
    "phase_closed",
    Conflict,
    "The phase is in review or completed: it takes no new tasks.",
)
declare(
    "reviews",
    "initiative_closed",
    Conflict,
    "The initiative is not active: it takes no new phases or tasks.",
)

# Review comments.
declare(
    "reviews",
    "invalid_file_path",
    InvalidInput,
    "A review comment's file path is not one line without tabs.",
)
declare(
    "reviews",
    "review_no_comments",
    InvalidInput,
    "Changes are requested on a phase that has no unresolved review comments.",
)

# Chat sessions and messages.
declare(
    "reviews",
    "chat_target_other_initiative",
    InvalidInput,
    "A chat session's phase or task belongs to another initiative.",
)
rename("target_not_in_initiative", "chat_target_other_initiative")
declare(
    "reviews",
    "chat_target_without_initiative",
    InvalidInput,
    "A chat session is opened on a task that belongs to no initiative.",
)
declare(
    "reviews",
    "chat_change_set_not_assistant",
    InvalidInput,
    "A chat message that is not the assistant's names a change set; only an assistant "
    "message may name the change set it applied.",
)
declare(
    "reviews",
    "chat_session_closed",
    Conflict,
    "The chat session is closed: it takes no new messages and cannot be closed again.",
)
declare(
    "reviews",
    "chat_change_set_other_initiative",
    InvalidInput,
    "A chat message's change set belongs to another initiative than its session.",
)
rename("change_set_not_in_initiative", "chat_change_set_other_initiative")

# Change sets and their revert.
declare(
    "reviews",
    "change_set_source_missing",
    InvalidInput,
    "A change set does not name the proposal or chat session it comes from.",
)
rename("missing_source_reference", "change_set_source_missing")
declare("reviews", "empty_change_set", InvalidInput, "A change set has no entries.")
declare(
    "reviews",
    "invalid_entry",
    InvalidInput,
    "A change set entry is malformed (`details.index` says which).",
)
declare(
    "reviews",
    "invalid_change_set",
    InvalidInput,
    "A change set entry names a table or action revert does not handle, or an edge"
    " without both ends.",
)
rename("change_set_invalid", "invalid_change_set")
declare("reviews", "change_set_already_reverted", Conflict, "The change set is already reverted.")
declare(
    "reviews",
    "change_set_stale",
    Conflict,
    "Records the change set touched changed since it was applied (`details.changed`).",
)

# Blank required text.
declare("reviews", "empty_file_path", InvalidInput, "The file path is missing or blank.")
declare("reviews", "empty_body", InvalidInput, "The body is missing or blank.")
declare("reviews", "empty_author", InvalidInput, "The author is missing or blank.")
declare("reviews", "empty_title", InvalidInput, "The title is missing or blank.")
