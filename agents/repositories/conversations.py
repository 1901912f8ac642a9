"""Questions one agent asks another, each answered exactly once."""

from typing import NotRequired, TypedDict

from typing_extensions import Unpack

from agents.models import Agent, Conversation, ConversationStatus
from core.errors import Conflict
from core.models import Initiative, Phase, Task
from core.repositories import Repository, require_text


class ConversationFields(TypedDict):
    question: str
    from_agent: NotRequired[Agent]
    from_agent_id: NotRequired[str]
    to_agent: NotRequired[Agent]
    to_agent_id: NotRequired[str]
    initiative: NotRequired[Initiative | None]
    initiative_id: NotRequired[str | None]
    phase: NotRequired[Phase | None]
    phase_id: NotRequired[str | None]
    task: NotRequired[Task | None]
    task_id: NotRequired[str | None]


class ConversationChanges(TypedDict, total=False):
    question: str
    from_agent: Agent
    from_agent_id: str
    to_agent: Agent
    to_agent_id: str
    initiative: Initiative | None
    initiative_id: str | None
    phase: Phase | None
    phase_id: str | None
    task: Task | None
    task_id: str | None


class ConversationRepository(Repository[Conversation]):
    """Questions one agent asks another, each answered exactly once, by ``answer``:
    ``update`` can neither rewrite an answer nor reopen a question."""

    model = Conversation
    slug = "conversation"
    label = "Conversation"
    lifecycle_fields = frozenset({"answer", "status"})

    def find_pending_for_agent(self, to_agent_id: str) -> list[Conversation]:
        """Unanswered questions addressed to ``to_agent_id``, oldest first."""
        return list(
            self.queryset().filter(to_agent_id=to_agent_id, status=ConversationStatus.PENDING)
        )

    def create(self, **fields: Unpack[ConversationFields]) -> Conversation:
        """Ask a question (pending until answered); both agents must exist, and a blank
        question is ``empty_question``."""
        require_text(fields.get("question"), "question")
        return self._create(**fields)

    def update(
        self, conversation: Conversation | str, /, **changes: Unpack[ConversationChanges]
    ) -> Conversation:
        """Change who asks whom, the question or what it is about; never the answer."""
        if "question" in changes:
            require_text(changes["question"], "question")
        return self._update(conversation, **changes)

    def delete(self, id: str) -> bool:
        return self._delete(id)

    def answer(self, id: str, answer: str) -> Conversation:
        """Record the answer and mark the conversation answered, exactly once.

        The write is a conditional UPDATE on ``status = 'pending'``, so of two concurrent
        answerers exactly one wins; the other gets ``Conflict``
        ``conversation_already_answered``. A blank answer is ``InvalidInput``
        ``empty_answer`` (and one no column can hold is refused like any value); a
        missing conversation is ``NotFound``.
        """
        require_text(answer, "answer")
        self._validate(Conversation(answer=answer), only=["answer"])
        pending = self.model._default_manager.filter(pk=id, status=ConversationStatus.PENDING)
        updated = self._update_many(pending, answer=answer, status=ConversationStatus.ANSWERED)
        conversation = self.find_by_id(id)
        if conversation is None:
            raise self.not_found(id)
        if not updated:
            raise Conflict(
                "This conversation has already been answered.",
                code="conversation_already_answered",
                details={"id": str(id)},
            )
        return conversation
