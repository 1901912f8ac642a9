"""What may happen to a conversation: one agent asks another a question, which is
answered exactly once; the asked agent finds its pending questions, optionally waiting
a bounded time for one to arrive."""

from asgiref.sync import sync_to_async
from django.db import transaction
from typing_extensions import Unpack

from agents.models import Conversation
from agents.repositories import AgentRepository, ConversationChanges, ConversationRepository
from core import live
from core.events import event_record
from core.live import check_wait
from core.services.feed import RecordFeed, apply_update, record_all, snapshot

agents = AgentRepository()
conversations = ConversationRepository()

#: A question's edits and deletion on the feed (``question.updated`` / ``.deleted``).
QUESTIONS = RecordFeed(
    "conversation",
    prefix="question",
    deleted_data=lambda values: {
        "from_agent_id": values["from_agent_id"],
        "to_agent_id": values["to_agent_id"],
    },
)


@transaction.atomic
def conversation_ask(
    *,
    from_agent_id: str,
    to_agent_id: str,
    question: str,
    initiative_id: str | None = None,
    phase_id: str | None = None,
    task_id: str | None = None,
) -> Conversation:
    """One agent asks another a question (pending until answered); records
    ``question.asked``. Unknown agents are ``agent_not_found``, a blank question
    ``empty_question``."""
    agents.require(from_agent_id)
    agents.require(to_agent_id)
    conversation = conversations.create(
        from_agent_id=from_agent_id,
        to_agent_id=to_agent_id,
        question=question,
        initiative_id=initiative_id,
        phase_id=phase_id,
        task_id=task_id,
    )
    event_record(
        "question.asked",
        subject_type="conversation",
        subject_id=conversation.pk,
        initiative_id=conversation.initiative_id,
        data={"from_agent_id": from_agent_id, "to_agent_id": to_agent_id},
    )
    live.notify(live.questions_channel(to_agent_id))
    return conversation


@transaction.atomic
def conversation_answer(*, conversation_id: str, answer: str) -> Conversation:
    """Answer a question, exactly once: a second answer is 409
    ``conversation_already_answered``; records ``question.answered``."""
    conversation = conversations.answer(conversation_id, answer)
    event_record(
        "question.answered",
        subject_type="conversation",
        subject_id=conversation.pk,
        initiative_id=conversation.initiative_id,
        data={
            "from_agent_id": conversation.from_agent_id,
            "to_agent_id": conversation.to_agent_id,
        },
    )
    return conversation


@transaction.atomic
def conversation_update(
    *, conversation_id: str, **changes: Unpack[ConversationChanges]
) -> Conversation:
    """Change who asks whom, the question or what it is about (never the answer, which
    ``conversation_answer`` gives once); records ``question.updated`` with the fields
    that changed (nothing when none did)."""
    conversation = conversations.get_for_update(conversation_id)
    return apply_update(QUESTIONS, conversations, conversation, changes)


@transaction.atomic
def conversation_delete(*, conversation_id: str) -> None:
    """Delete a question (``conversation_not_found`` when there is none); records
    ``question.deleted``."""
    conversation = conversations.get_for_update(conversation_id)
    events = QUESTIONS.deleted(snapshot(conversation))
    conversations.delete(conversation.pk)
    record_all(events)


def conversation_list_pending(*, agent_id: str, wait: float = 0) -> list[Conversation]:
    """The unanswered questions addressed to ``agent_id``, oldest first. With ``wait``
    (seconds, 0 to ``MAX_WAIT_SECONDS``) the call returns as soon as one is pending, or
    empty once the wait is over; outside that range is ``invalid_wait``.

    Each look is its own read (no transaction is held while waiting), woken when a
    question to this agent commits (``core.live``).
    """
    wait = check_wait(wait)
    agents.require(agent_id)
    return live.read_when_found_sync(
        lambda: conversations.find_pending_for_agent(agent_id),
        channel=live.questions_channel(agent_id),
        wait=wait,
    )


async def conversation_list_pending_waiting(
    *, agent_id: str, wait: float = 0
) -> list[Conversation]:
    """``conversation_list_pending`` for an async caller: its wait holds no thread and
    no connection."""
    wait = check_wait(wait)
    await sync_to_async(live.read_released)(lambda: agents.require(agent_id))
    return await live.read_when_found(
        lambda: conversations.find_pending_for_agent(agent_id),
        channel=live.questions_channel(agent_id),
        wait=wait,
    )
