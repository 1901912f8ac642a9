"""agents' models: constraints refuse in words with stable codes, one account per login,
JSON columns take only JSON, and a log chunk takes any text."""

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from agents.models import Account, AgentLogChunk, Conversation, ConversationStatus
from agents.repositories import (
    AccountRepository,
    AgentRepository,
    ConversationRepository,
    LogChunkRepository,
    MessageRepository,
)
from core.errors import Conflict, InvalidInput
from core.validators import TEXT_MAX_LENGTH
from tests import factories as f
from tests.model_checks import assert_validation_failed

pytestmark = pytest.mark.django_db

accounts = AccountRepository()
agents = AgentRepository()
logs = LogChunkRepository()
messages = MessageRepository()
conversations = ConversationRepository()


# --- one account per provider and email ----------------------------------------------------


ACCOUNT_DUPLICATE = (
    "account_email_taken",
    "An account with this provider and email already exists (emails compare without "
    "regard to case).",
)


def test_the_same_account_added_twice_is_a_conflict_in_words():
    accounts.create(email="dev@example.com", provider="claude")
    with pytest.raises(Conflict) as error:
        accounts.create(email="dev@example.com", provider="claude")
    assert (error.value.code, error.value.message) == ACCOUNT_DUPLICATE
    assert Account.objects.count() == 1


def test_emails_of_one_provider_compare_without_regard_to_case():
    accounts.create(email="dev@example.com", provider="claude")
    with pytest.raises(Conflict) as error:
        accounts.create(email="Dev@Example.COM", provider="claude")
    assert error.value.code == "account_email_taken"


def test_the_same_email_may_log_in_to_another_provider():
    accounts.create(email="dev@example.com", provider="claude")
    assert accounts.create(email="dev@example.com", provider="codex").provider == "codex"


def test_an_account_cannot_be_renamed_onto_another():
    accounts.create(email="dev@example.com")
    other = accounts.create(email="ops@example.com")
    with pytest.raises(Conflict) as error:
        accounts.update(other.id, email="DEV@example.com")
    assert error.value.code == "account_email_taken"


def test_a_form_refuses_a_duplicate_account_in_words():
    f.AccountFactory(email="dev@example.com", provider="claude")
    twin = Account(email="DEV@example.com", provider="claude")
    with pytest.raises(ValidationError) as error:
        twin.validate_constraints()
    (refusal,) = error.value.error_dict["__all__"]
    assert (refusal.code, refusal.messages[0]) == ACCOUNT_DUPLICATE


def test_the_database_itself_refuses_a_duplicate_account():
    f.AccountFactory(email="dev@example.com", provider="claude")
    with pytest.raises(IntegrityError), transaction.atomic():
        Account.objects.create(email="Dev@example.com", provider="claude")


# --- other constraints --------------------------------------------------------------------


def test_a_taken_agent_name_is_a_conflict_in_words():
    agent = f.AgentFactory()
    with pytest.raises(Conflict) as error:
        agents.create(name=agent.name, worktree_id="/w")
    assert error.value.code == "agent_name_taken"
    twin = f.AgentFactory.build(name=agent.name)
    with pytest.raises(ValidationError) as form_refusal:
        twin.validate_constraints()
    (refusal,) = form_refusal.value.error_dict["__all__"]
    assert (refusal.code, refusal.messages) == (
        "agent_name_taken",
        ["An agent with this name already exists."],
    )


def test_an_answered_conversation_without_an_answer_is_refused_in_words():
    agent = f.AgentFactory()
    # No public method writes this state; the protected helper shows what the base
    # makes of the database's refusal.
    with pytest.raises(InvalidInput) as error:
        conversations._create(
            from_agent=agent, to_agent=agent, question="Why?", status=ConversationStatus.ANSWERED
        )
    assert (error.value.code, error.value.message) == (
        "conversation_answer_missing",
        "An answered conversation must have an answer.",
    )
    assert not Conversation.objects.exists()


def test_an_enum_check_refuses_with_the_code_check_choice_gives():
    agent = f.AgentFactory.build(status="flying")
    with pytest.raises(ValidationError) as error:
        agent.validate_constraints()
    assert [e.code for e in error.value.error_dict["__all__"]] == ["invalid_status"]


# --- what each column holds ---------------------------------------------------------------


@pytest.mark.parametrize("field", ["result", "pending_questions"])
@pytest.mark.parametrize("value", ["not json", "{'a': 1}", "[1, 2", "NaN", '{"x": Infinity}'])
def test_an_agents_json_columns_refuse_what_is_not_json(field, value):
    with pytest.raises(InvalidInput) as error:
        agents.create(worktree_id="/w", **{field: value})
    assert_validation_failed(error.value, field)
    agent = f.AgentFactory()
    with pytest.raises(InvalidInput) as error:
        agents.update(agent.id, **{field: value})
    assert_validation_failed(error.value, field)


@pytest.mark.parametrize("field", ["result", "pending_questions"])
@pytest.mark.parametrize(
    "value", [None, "null", "{}", '{"questions": [{"id": "q1", "question": "Which DB?"}]}', "3"]
)
def test_an_agents_json_columns_take_json(field, value):
    assert getattr(agents.create(worktree_id="/w", **{field: value}), field) == value


@pytest.mark.parametrize(
    "content",
    ["not json", '{"a": 1}\nnot json\n', '{"a": 1}{"b": 2}', '{"a": NaN}'],
    ids=["text", "line-2", "two-on-a-line", "nan"],
)
def test_a_log_chunk_that_is_not_json_lines_is_kept_as_it_is(content):
    chunk = logs.insert_chunk(agent_id="a", agent_name="n", session_number=1, content=content)
    assert chunk.content == content
    (id,) = logs.append_chunks([{"agent_id": "a", "agent_name": "n", "content": content}])
    assert AgentLogChunk.objects.get(pk=id).content == content


@pytest.mark.parametrize(
    "content",
    ['{"type": "text"}\n', '{"a": 1}\n\n{"b": [2]}\n', '"just a string"', "{}"],
    ids=["one-line", "blank-line-between", "json-string", "no-newline"],
)
def test_json_lines_are_accepted(content):
    chunk = logs.insert_chunk(agent_id="a", agent_name="n", session_number=1, content=content)
    assert chunk.content == content


def test_message_text_past_the_shared_limit_is_refused():
    with pytest.raises(InvalidInput) as error:
        messages.create(
            sender_type="agent", recipient_type="user", content="x" * (TEXT_MAX_LENGTH + 1)
        )
    assert_validation_failed(error.value, "content")


def test_a_conversations_question_past_the_shared_limit_is_refused():
    agent = f.AgentFactory()
    with pytest.raises(InvalidInput) as error:
        conversations.create(from_agent=agent, to_agent=agent, question="x" * (TEXT_MAX_LENGTH + 1))
    assert_validation_failed(error.value, "question")
