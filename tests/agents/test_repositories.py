"""The agents repositories: accounts, agents, messages, log chunks, conversations."""

import math
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from agents.models import (
    Account,
    Agent,
    AgentLogChunk,
    AgentStatus,
    ConversationStatus,
    Message,
    MessageStatus,
    ParticipantType,
)
from agents.repositories import (
    ADJECTIVES,
    ANIMALS,
    AccountRepository,
    AgentRepository,
    ConversationRepository,
    LogChunkRepository,
    MessageRepository,
)
from agents.repositories import agents as repos_module
from core.errors import Conflict, InvalidInput, NotFound
from tests import factories as f

pytestmark = pytest.mark.django_db

accounts = AccountRepository()
agents = AgentRepository()
messages = MessageRepository()
logs = LogChunkRepository()
conversations = ConversationRepository()

SIZES = [10, 1000]


def ago(**kwargs) -> timezone.datetime:
    return timezone.now() - timedelta(**kwargs)


def ahead(**kwargs) -> timezone.datetime:
    return timezone.now() + timedelta(**kwargs)


# --- accounts: CRUD and listing ------------------------------------------------------------


def test_account_crud_round_trip():
    account = accounts.create(email="a@example.com", provider="claude", sort_order=3)

    assert accounts.get(account.id).email == "a@example.com"
    assert accounts.update(account.id, sort_order=4).sort_order == 4
    assert accounts.delete(account.id) is True
    assert accounts.find_by_id(account.id) is None


def test_find_by_provider_lists_only_that_provider_in_sort_order():
    second = f.AccountFactory(provider="claude", sort_order=2)
    first = f.AccountFactory(provider="claude", sort_order=1)
    f.AccountFactory(provider="codex")

    assert accounts.find_by_provider("claude") == [first, second]
    assert accounts.find_by_provider("nobody") == []


@pytest.mark.parametrize("size", SIZES)
def test_find_by_provider_costs_one_query_at_any_size(size, django_assert_max_num_queries):
    Account.objects.bulk_create(
        Account(email=f"a{i}@example.com", provider="claude", sort_order=i) for i in range(size)
    )
    with django_assert_max_num_queries(1):
        assert len(accounts.find_by_provider("claude")) == size


# --- accounts: round-robin -----------------------------------------------------------------


def test_find_next_available_hands_out_never_used_accounts_first_by_sort_order():
    used = f.AccountFactory(sort_order=0, last_used_at=ago(hours=1))
    third = f.AccountFactory(sort_order=3)
    second = f.AccountFactory(sort_order=2)

    assert accounts.find_next_available("claude") == second
    assert accounts.find_next_available("claude") == third
    assert accounts.find_next_available("claude") == used


def test_find_next_available_passes_over_the_excluded_accounts():
    first = f.AccountFactory(sort_order=0)
    second = f.AccountFactory(sort_order=1)

    assert accounts.find_next_available("claude", exclude_ids=[first.pk]) == second
    assert accounts.find_next_available("claude", exclude_ids=[first.pk, second.pk]) is None
    first.refresh_from_db()
    assert first.last_used_at is None


def test_ids_by_provider_lists_each_providers_accounts():
    claude = f.AccountFactory(provider="claude")
    codex = f.AccountFactory(provider="codex")

    assert accounts.ids_by_provider(["claude", "codex", "gemini"]) == {
        "claude": [claude.pk],
        "codex": [codex.pk],
    }


def test_find_next_available_then_takes_the_least_recently_used():
    recent = f.AccountFactory(sort_order=0, last_used_at=ago(minutes=1))
    oldest = f.AccountFactory(sort_order=1, last_used_at=ago(hours=2))
    middle = f.AccountFactory(sort_order=2, last_used_at=ago(hours=1))

    claimed = [accounts.find_next_available("claude") for _ in range(4)]

    assert claimed == [oldest, middle, recent, oldest]


def test_find_next_available_breaks_sort_order_ties_by_id():
    pair = sorted(
        [f.AccountFactory(sort_order=5), f.AccountFactory(sort_order=5)], key=lambda a: a.id
    )

    assert accounts.find_next_available("claude") == pair[0]
    assert accounts.find_next_available("claude") == pair[1]


def test_find_next_available_cycles_round_robin_through_every_account():
    pool = [f.AccountFactory(sort_order=i) for i in range(4)]

    claimed = [accounts.find_next_available("claude") for _ in range(12)]

    assert claimed == pool * 3


def test_find_next_available_stamps_last_used_at_and_updated_at():
    account = f.AccountFactory()
    before = timezone.now()

    claimed = accounts.find_next_available("claude")

    stored = Account.objects.get(pk=account.pk)
    assert claimed.last_used_at == stored.last_used_at
    assert stored.last_used_at >= before
    assert stored.updated_at == stored.last_used_at


def test_find_next_available_skips_exhausted_accounts():
    f.AccountFactory(sort_order=0, is_exhausted=True, exhausted_until=ahead(hours=1))
    f.AccountFactory(sort_order=1, is_exhausted=True, exhausted_until=None)
    free = f.AccountFactory(sort_order=2, last_used_at=ago(minutes=1))

    assert accounts.find_next_available("claude") == free
    assert accounts.find_next_available("claude") == free


def test_find_next_available_uses_and_releases_an_account_whose_exhaustion_expired():
    expired = f.AccountFactory(
        sort_order=0, is_exhausted=True, exhausted_until=ago(minutes=1), last_used_at=None
    )
    f.AccountFactory(sort_order=1, last_used_at=ago(minutes=5))

    claimed = accounts.find_next_available("claude")

    assert claimed == expired
    assert claimed.is_exhausted is False
    assert claimed.exhausted_until is None
    stored = Account.objects.get(pk=expired.pk)
    assert (stored.is_exhausted, stored.exhausted_until) == (False, None)


def test_find_next_available_ignores_other_providers_and_returns_none_when_nothing_is_free():
    f.AccountFactory(provider="codex")
    f.AccountFactory(provider="claude", is_exhausted=True, exhausted_until=ahead(hours=1))

    assert accounts.find_next_available("claude") is None
    assert accounts.find_next_available("gemini") is None


@pytest.mark.parametrize("size", SIZES)
def test_find_next_available_costs_a_read_and_a_write_at_any_size(
    size, django_assert_max_num_queries
):
    Account.objects.bulk_create(
        Account(email=f"a{i}@example.com", provider="claude", sort_order=i) for i in range(size)
    )
    # SELECT and UPDATE, plus the SAVEPOINT/RELEASE of the atomic block nested in the test's
    # transaction.
    with django_assert_max_num_queries(4):
        assert accounts.find_next_available("claude") is not None


def test_mark_exhausted_parks_the_account_until_the_given_time():
    account = f.AccountFactory()
    until = ahead(hours=1)

    parked = accounts.mark_exhausted(account.id, until)

    assert (parked.is_exhausted, parked.exhausted_until) == (True, until)
    assert Account.objects.get(pk=account.pk).exhausted_until == until
    assert accounts.find_next_available("claude") is None


def test_mark_exhausted_refuses_a_missing_account():
    with pytest.raises(NotFound) as error:
        accounts.mark_exhausted("missing", ahead(hours=1))
    assert error.value.code == "account_not_found"


def test_mark_exhausted_refuses_a_naive_datetime():
    account = f.AccountFactory()
    naive = timezone.make_naive(ahead(hours=1))

    with pytest.raises(InvalidInput) as error:
        accounts.mark_exhausted(account.id, naive)

    assert error.value.code == "exhausted_until_naive"
    assert Account.objects.get(pk=account.pk).is_exhausted is False


def test_mark_exhausted_refuses_a_time_in_the_past():
    account = f.AccountFactory()

    with pytest.raises(InvalidInput) as error:
        accounts.mark_exhausted(account.id, ago(seconds=1))

    assert error.value.code == "exhausted_until_past"
    assert Account.objects.get(pk=account.pk).is_exhausted is False


def test_release_expired_releases_only_lapsed_accounts_and_names_them():
    stale = ago(days=1)
    lapsed = [f.AccountFactory(is_exhausted=True, exhausted_until=ago(minutes=m)) for m in (1, 60)]
    still_parked = f.AccountFactory(is_exhausted=True, exhausted_until=ahead(hours=1))
    parked_by_hand = f.AccountFactory(is_exhausted=True, exhausted_until=None)
    Account.objects.filter(pk__in=[a.pk for a in lapsed]).update(updated_at=stale)

    assert sorted(accounts.release_expired()) == sorted(a.pk for a in lapsed)

    for account in lapsed:
        stored = Account.objects.get(pk=account.pk)
        assert (stored.is_exhausted, stored.exhausted_until) == (False, None)
        assert stored.updated_at > stale
    assert Account.objects.get(pk=still_parked.pk).is_exhausted is True
    assert Account.objects.get(pk=parked_by_hand.pk).is_exhausted is True
    assert accounts.release_expired() == []


# --- agents --------------------------------------------------------------------------------

NAME = re.compile(r"^([a-z]+)-([a-z]+)$")


def test_create_without_a_name_gives_an_adjective_animal_name():
    agent = agents.create(worktree_id="/srv/wt/1")

    match = NAME.match(agent.name)
    assert match, agent.name
    assert match.group(1) in ADJECTIVES
    assert match.group(2) in ANIMALS
    assert Agent.objects.get(pk=agent.pk).name == agent.name


def test_word_lists_are_large_and_free_of_duplicates():
    assert len(ADJECTIVES) >= 50
    assert len(ANIMALS) >= 50
    assert len(set(ADJECTIVES)) == len(ADJECTIVES)
    assert len(set(ANIMALS)) == len(ANIMALS)
    assert all(NAME.match(f"{a}-{b}") for a in ADJECTIVES for b in ANIMALS)


def test_generated_names_are_unique_across_many_agents():
    created = [agents.create(worktree_id=f"/srv/wt/{i}") for i in range(60)]

    assert len({agent.name for agent in created}) == 60


class ScriptedSecrets:
    """Stands in for ``secrets`` so a test decides which words are drawn."""

    def __init__(self, words: list[str], number: int = 41) -> None:
        self.words = list(words)
        self.number = number

    def choice(self, seq):
        word = self.words.pop(0)
        assert word in seq
        return word

    def randbelow(self, n: int) -> int:
        return self.number


def test_create_retries_a_generated_name_that_is_taken(monkeypatch):
    f.AgentFactory(name="brave-otter")
    monkeypatch.setattr(
        repos_module,
        "secrets",
        ScriptedSecrets(["brave", "otter", "brave", "otter", "calm", "fox"]),
    )

    agent = agents.create(worktree_id="/srv/wt/1")

    assert agent.name == "calm-fox"


def test_create_adds_a_number_suffix_once_the_word_space_is_crowded(monkeypatch):
    monkeypatch.setattr(repos_module, "ADJECTIVES", ("brave",))
    monkeypatch.setattr(repos_module, "ANIMALS", ("otter",))

    names = [agents.create(worktree_id=f"/srv/wt/{i}").name for i in range(3)]

    assert names[0] == "brave-otter"
    assert len(set(names)) == 3
    assert all(re.fullmatch(r"brave-otter-\d{1,4}", name) for name in names[1:])


def test_create_gives_up_with_a_conflict_when_no_name_is_free(monkeypatch):
    monkeypatch.setattr(repos_module, "ADJECTIVES", ("brave",))
    monkeypatch.setattr(repos_module, "ANIMALS", ("otter",))
    monkeypatch.setattr(repos_module, "secrets", ScriptedSecrets(["brave", "otter"] * 20, 5))
    f.AgentFactory(name="brave-otter")
    f.AgentFactory(name="brave-otter-7")

    with pytest.raises(Conflict) as error:
        agents.create(worktree_id="/srv/wt/1")

    assert error.value.code == "agent_name_unavailable"
    assert Agent.objects.count() == 2


def test_create_refuses_an_explicit_name_already_taken_and_keeps_the_transaction_usable():
    f.AgentFactory(name="brave-otter")

    with pytest.raises(Conflict) as error:
        agents.create(name="brave-otter", worktree_id="/srv/wt/2")

    assert error.value.code == "agent_name_taken"
    assert Agent.objects.filter(name="brave-otter").count() == 1


def test_create_keeps_an_explicit_name_and_validates_fields():
    assert agents.create(name="my-agent", worktree_id="/srv/wt/1").name == "my-agent"

    with pytest.raises(InvalidInput) as error:
        agents.create(name="other", worktree_id="/srv/wt/2", status="dancing")
    assert error.value.code == "validation_failed"


def test_find_by_name_and_session_id():
    agent = f.AgentFactory(name="brave-otter", session_id="sess-1")

    assert agents.find_by_name("brave-otter") == agent
    assert agents.find_by_name("calm-fox") is None
    assert agents.find_by_session_id("sess-1") == agent
    assert agents.find_by_session_id("sess-2") is None


def test_find_by_session_id_prefers_the_newest_agent_when_two_share_a_session():
    f.AgentFactory(session_id="sess-1", created_at=ago(hours=1))
    newer = f.AgentFactory(session_id="sess-1")

    assert agents.find_by_session_id("sess-1") == newer


def test_find_by_task_id_lists_the_task_agents_oldest_first():
    task = f.TaskFactory()
    older = f.AgentFactory(task=task, created_at=ago(hours=1))
    newer = f.AgentFactory(task=task)
    f.AgentFactory()

    assert agents.find_by_task_id(task.id) == [older, newer]
    assert agents.find_by_task_id("missing") == []


def test_find_by_status_lists_agents_in_that_status():
    running = f.AgentFactory(status=AgentStatus.RUNNING)
    f.AgentFactory(status=AgentStatus.IDLE)

    assert agents.find_by_status("running") == [running]
    assert agents.find_by_status(AgentStatus.CRASHED) == []


def test_find_by_status_refuses_an_unknown_status():
    with pytest.raises(InvalidInput) as error:
        agents.find_by_status("dancing")

    assert error.value.code == "invalid_status"
    assert "running" in error.value.details["allowed"]


@pytest.mark.parametrize("size", SIZES)
def test_agent_list_methods_cost_one_query_at_any_size(size, django_assert_max_num_queries):
    task = f.TaskFactory()
    Agent.objects.bulk_create(
        Agent(name=f"agent-{i}", worktree_id=f"/wt/{i}", task=task, status=AgentStatus.RUNNING)
        for i in range(size)
    )
    with django_assert_max_num_queries(1):
        assert len(agents.find_by_status("running")) == size
    with django_assert_max_num_queries(1):
        assert len(agents.find_by_task_id(task.id)) == size


# --- messages ------------------------------------------------------------------------------


def test_find_pending_for_user_lists_pending_messages_to_people_oldest_first():
    newer = f.MessageFactory(recipient_type=ParticipantType.USER)
    older = f.MessageFactory(recipient_type=ParticipantType.USER, created_at=ago(hours=1))
    f.MessageFactory(recipient_type=ParticipantType.USER, status=MessageStatus.READ)
    f.MessageFactory(sender_type=ParticipantType.USER, recipient_type=ParticipantType.AGENT)

    assert messages.find_pending_for_user() == [older, newer]


def test_find_requiring_response_lists_questions_without_a_reply():
    answered = f.MessageFactory(requires_response=True, created_at=ago(hours=2))
    waiting = f.MessageFactory(requires_response=True, created_at=ago(hours=1))
    f.MessageFactory(requires_response=False)
    f.MessageFactory(
        parent_message=answered,
        sender_type=ParticipantType.USER,
        recipient_type=ParticipantType.AGENT,
    )

    assert messages.find_requiring_response() == [waiting]


def test_find_replies_lists_direct_replies_oldest_first():
    question = f.MessageFactory(requires_response=True)
    second = f.MessageFactory(parent_message=question)
    first = f.MessageFactory(parent_message=question, created_at=ago(minutes=5))
    f.MessageFactory(parent_message=second)

    assert messages.find_replies(question.id) == [first, second]
    assert messages.find_replies(first.id) == []


def test_message_crud_round_trip():
    message = messages.create(
        sender_type="agent", recipient_type="user", content="Which database?", type="question"
    )

    assert messages.update(message.id, content="Which database, Postgres?").content == (
        "Which database, Postgres?"
    )
    assert messages.mark_read(message.id).status == "read"
    with pytest.raises(InvalidInput) as error:
        messages.set_status(message.id, "lost")
    assert error.value.code == "invalid_status"
    assert messages.delete(message.id) is True


@pytest.mark.parametrize("size", SIZES)
def test_message_list_methods_cost_one_query_at_any_size(size, django_assert_max_num_queries):
    from agents.models import Message

    root = f.MessageFactory(requires_response=True)
    Message.objects.bulk_create(
        Message(
            sender_type="agent",
            recipient_type="user",
            content=f"m{i}",
            requires_response=True,
            parent_message=root if i % 2 else None,
        )
        for i in range(size)
    )
    with django_assert_max_num_queries(1):
        # The root has replies, so it is answered and no longer pending.
        assert len(messages.find_pending_for_user()) == size
    with django_assert_max_num_queries(1):
        # The root has replies; of the new messages the even ones have none.
        assert len(messages.find_requiring_response()) == size
    with django_assert_max_num_queries(1):
        assert len(messages.find_replies(root.id)) == size // 2


# --- log chunks ----------------------------------------------------------------------------


def test_insert_chunk_appends_a_chunk():
    chunk = logs.insert_chunk(
        agent_id="a" * 22, agent_name="brave-otter", session_number=2, content='{"x":1}\n'
    )

    stored = AgentLogChunk.objects.get(pk=chunk.pk)
    assert (stored.agent_id, stored.agent_name, stored.session_number, stored.content) == (
        "a" * 22,
        "brave-otter",
        2,
        '{"x":1}\n',
    )
    assert stored.created_at is not None


@pytest.mark.parametrize("session_number", [0, -1, "2"])
def test_insert_chunk_refuses_a_bad_session_number(session_number):
    with pytest.raises(InvalidInput) as error:
        logs.insert_chunk(agent_id="a", agent_name="n", session_number=session_number, content="{}")
    assert error.value.code == "invalid_session_number"


def test_insert_chunk_refuses_an_overlong_agent_id():
    with pytest.raises(InvalidInput) as error:
        logs.insert_chunk(agent_id="a" * 23, agent_name="n", session_number=1, content="{}")
    assert error.value.code == "validation_failed"
    assert AgentLogChunk.objects.count() == 0


def test_append_chunks_appends_in_order_and_counts():
    chunks = [{"agent_id": "a", "agent_name": "n", "content": f"{i}\n"} for i in range(5)]

    assert len(logs.append_chunks(chunks)) == 5

    stored = list(AgentLogChunk.objects.order_by("id"))
    assert [c.content for c in stored] == [f"{i}\n" for i in range(5)]
    assert {c.session_number for c in stored} == {1}


def test_append_chunks_of_nothing_runs_no_query(django_assert_num_queries):
    with django_assert_num_queries(0):
        assert len(logs.append_chunks([])) == 0


def test_append_chunks_issues_one_insert_per_batch():
    chunks = [{"agent_id": "a", "agent_name": "n", "content": "{}"} for _ in range(1000)]
    batch = logs.rows_per_insert(connection)
    # As many rows a statement as the database's parameter limit allows (5 a row).
    limit = connection.features.max_query_params
    assert batch == min(logs.rows_per_statement, limit // 5 if limit else 10**9)

    with CaptureQueriesContext(connection) as captured:
        assert len(logs.append_chunks(chunks)) == 1000

    inserts = [q for q in captured.captured_queries if q["sql"].startswith("INSERT")]
    assert len(inserts) == math.ceil(1000 / batch)
    assert AgentLogChunk.objects.count() == 1000


def test_append_chunks_is_all_or_nothing():
    chunks = [
        {"agent_id": "a", "agent_name": "n", "content": "ok"},
        {"agent_id": "a", "agent_name": "n", "content": "ok", "colour": "red"},
    ]
    with pytest.raises(InvalidInput) as error:
        logs.append_chunks(chunks)
    assert error.value.code == "invalid_log_chunk"
    assert error.value.details["unknown"] == ["colour"]

    with pytest.raises(InvalidInput) as error:
        logs.append_chunks([{"agent_id": "a", "content": "no name"}])
    assert error.value.details["missing"] == ["agent_name"]
    assert AgentLogChunk.objects.count() == 0


def write_log(agent_id: str, count: int, *, interleave_with: str | None = None) -> None:
    rows = []
    for i in range(count):
        rows.append(AgentLogChunk(agent_id=agent_id, agent_name="n", content=f"{i}"))
        if interleave_with:
            rows.append(AgentLogChunk(agent_id=interleave_with, agent_name="o", content="x"))
    AgentLogChunk.objects.bulk_create(rows, batch_size=150)


def test_find_by_agent_id_pages_through_the_whole_log_in_order_without_gaps():
    write_log("a", 1234, interleave_with="b")

    seen: list[str] = []
    cursor = None
    pages = 0
    while page := logs.find_by_agent_id("a", after=cursor, limit=100):
        pages += 1
        assert all(chunk.agent_id == "a" for chunk in page)
        seen.extend(chunk.content for chunk in page)
        cursor = page[-1].id

    assert seen == [str(i) for i in range(1234)]
    assert pages == 13


def test_find_by_agent_id_returns_only_chunks_after_the_cursor():
    write_log("a", 5)
    ids = list(AgentLogChunk.objects.order_by("id").values_list("id", flat=True))

    assert [c.id for c in logs.find_by_agent_id("a")] == ids
    assert [c.id for c in logs.find_by_agent_id("a", after=ids[1], limit=2)] == ids[2:4]
    assert logs.find_by_agent_id("a", after=ids[-1]) == []
    assert logs.find_by_agent_id("nobody") == []


def test_find_by_agent_id_refuses_a_page_beyond_the_cap_instead_of_clamping():
    write_log("a", logs.max_page_size + 1)

    assert len(logs.find_by_agent_id("a", limit=logs.max_page_size)) == logs.max_page_size
    with pytest.raises(InvalidInput) as refused:
        logs.find_by_agent_id("a", limit=logs.max_page_size + 1)
    assert refused.value.code == "invalid_limit"


@pytest.mark.parametrize("limit", [0, -1])
def test_find_by_agent_id_refuses_a_limit_below_one(limit):
    with pytest.raises(InvalidInput) as error:
        logs.find_by_agent_id("a", limit=limit)
    assert error.value.code == "invalid_limit"


@pytest.mark.parametrize("size", SIZES)
def test_find_by_agent_id_reads_any_page_with_one_keyset_query(size):
    write_log("a", size, interleave_with="b")
    last_but_five = AgentLogChunk.objects.filter(agent_id="a").order_by("-id")[5].id

    with CaptureQueriesContext(connection) as captured:
        first = logs.find_by_agent_id("a", limit=5)
        end = logs.find_by_agent_id("a", after=last_but_five)

    assert [c.content for c in first] == ["0", "1", "2", "3", "4"]
    assert [c.content for c in end] == [str(i) for i in range(size - 5, size)]
    assert len(captured.captured_queries) == 2
    assert not any("OFFSET" in q["sql"].upper() for q in captured.captured_queries)


def test_delete_by_agent_id_deletes_only_that_agents_log():
    write_log("a", 3)
    write_log("b", 2)

    assert logs.delete_by_agent_id("a") == 3
    assert logs.delete_by_agent_id("a") == 0
    assert AgentLogChunk.objects.filter(agent_id="b").count() == 2


def test_log_chunks_survive_their_agents_deletion():
    agent = f.AgentFactory()
    logs.insert_chunk(agent_id=agent.id, agent_name=agent.name, session_number=1, content="{}")

    agents.delete(agent.id)

    assert len(logs.find_by_agent_id(agent.id)) == 1


def test_get_session_count_is_the_highest_session_number():
    assert logs.get_session_count("a") == 0
    for session in (1, 3, 2):
        logs.insert_chunk(agent_id="a", agent_name="n", session_number=session, content="{}")
    logs.insert_chunk(agent_id="b", agent_name="n", session_number=9, content="{}")

    assert logs.get_session_count("a") == 3


# --- conversations -------------------------------------------------------------------------


def test_conversation_create_and_find_by_id():
    asker, answerer = f.AgentFactory(), f.AgentFactory()

    conversation = conversations.create(
        from_agent_id=asker.id, to_agent_id=answerer.id, question="Which port?"
    )

    found = conversations.find_by_id(conversation.id)
    assert found.question == "Which port?"
    assert found.status == ConversationStatus.PENDING
    assert found.answer is None
    assert conversations.find_by_id("missing") is None


def test_conversation_create_refuses_a_missing_agent():
    asker = f.AgentFactory()
    with pytest.raises(InvalidInput):
        conversations.create(from_agent_id=asker.id, to_agent_id="missing", question="?")


def test_find_pending_for_agent_lists_unanswered_questions_to_that_agent_oldest_first():
    answerer = f.AgentFactory()
    newer = f.ConversationFactory(to_agent=answerer)
    older = f.ConversationFactory(to_agent=answerer, created_at=ago(minutes=5))
    f.ConversationFactory(to_agent=answerer, status="answered", answer="done")
    f.ConversationFactory()

    assert conversations.find_pending_for_agent(answerer.id) == [older, newer]


@pytest.mark.parametrize("size", SIZES)
def test_find_pending_for_agent_costs_one_query_at_any_size(size, django_assert_max_num_queries):
    from agents.models import Conversation

    asker, answerer = f.AgentFactory(), f.AgentFactory()
    Conversation.objects.bulk_create(
        Conversation(from_agent=asker, to_agent=answerer, question=f"q{i}") for i in range(size)
    )
    with django_assert_max_num_queries(1):
        assert len(conversations.find_pending_for_agent(answerer.id)) == size


def test_answer_records_the_answer_once():
    conversation = f.ConversationFactory()
    Conversation = type(conversation)
    Conversation.objects.filter(pk=conversation.pk).update(updated_at=ago(days=1))

    answered = conversations.answer(conversation.id, "Port 8000.")

    assert (answered.status, answered.answer) == (ConversationStatus.ANSWERED, "Port 8000.")
    assert answered.updated_at > ago(minutes=1)
    assert conversations.find_pending_for_agent(conversation.to_agent_id) == []


def test_answer_refuses_a_second_answer_and_keeps_the_first():
    conversation = f.ConversationFactory()
    conversations.answer(conversation.id, "first")

    with pytest.raises(Conflict) as error:
        conversations.answer(conversation.id, "second")

    assert error.value.code == "conversation_already_answered"
    assert conversations.get(conversation.id).answer == "first"


def test_answer_refuses_a_missing_conversation():
    with pytest.raises(NotFound) as error:
        conversations.answer("missing", "hello")
    assert error.value.code == "conversation_not_found"


@pytest.mark.parametrize("blank", ["", "   \n"])
def test_answer_refuses_a_blank_answer(blank):
    conversation = f.ConversationFactory()

    with pytest.raises(InvalidInput) as error:
        conversations.answer(conversation.id, blank)

    assert error.value.code == "empty_answer"
    assert conversations.get(conversation.id).status == ConversationStatus.PENDING


# --- bad input as coded errors; answers cannot be rewritten -------------------------------


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda a: accounts.mark_exhausted(a.id, None), "invalid_exhausted_until"),
        (lambda a: accounts.mark_exhausted(a.id, "2099-01-01"), "invalid_exhausted_until"),
        (lambda a: logs.find_by_agent_id("x", after="abc"), "invalid_cursor"),
        (lambda a: logs.find_by_agent_id("x", limit=None), "invalid_limit"),
        (lambda a: logs.find_by_agent_id("x", limit="5"), "invalid_limit"),
        (
            lambda a: logs.insert_chunk(
                agent_id="x", agent_name="x", session_number=True, content="{}"
            ),
            "invalid_session_number",
        ),
        (
            lambda a: logs.insert_chunk(
                agent_id="x", agent_name="a\x00b", session_number=1, content="a\x00b"
            ),
            "invalid_value",
        ),
        (lambda a: agents.create(worktree_id="w", foo=1), "invalid_field"),
    ],
    ids=[
        "until-none", "until-string", "cursor-string", "limit-none", "limit-string",
        "session-bool", "nul-name", "unknown-field",
    ],
)  # fmt: skip
def test_bad_input_is_a_coded_domain_error(call, code):
    account = f.AccountFactory()
    with pytest.raises(InvalidInput) as error:
        call(account)
    assert error.value.code == code


def test_an_answer_cannot_be_rewritten_or_reopened_through_update():
    conversation = f.ConversationFactory()
    conversations.answer(conversation.id, "Yes.")
    for fields in ({"answer": "No."}, {"status": "pending"}):
        with pytest.raises(InvalidInput) as error:
            conversations.update(conversation.id, **fields)
        assert error.value.code == "invalid_field"
    conversation.refresh_from_db()
    assert (conversation.answer, conversation.status) == ("Yes.", "answered")


def test_a_datetime_that_would_overflow_in_utc_is_refused_before_the_database():
    from datetime import datetime
    from datetime import timezone as dt_timezone

    agent = f.AgentFactory()
    far = datetime(9999, 12, 31, 23, tzinfo=dt_timezone(timedelta(hours=-15)))
    with pytest.raises(InvalidInput) as error:
        agents.update(agent.id, user_dismissed_at=far)
    assert error.value.code == "invalid_value"


# --- lifecycle columns move only through their named transitions -------------------------


@pytest.mark.parametrize(
    ("make", "repository", "changes"),
    [
        (f.AgentFactory, agents, {"status": AgentStatus.RUNNING}),
        (f.MessageFactory, messages, {"status": MessageStatus.READ}),
        (f.AccountFactory, accounts, {"is_exhausted": True}),
        (f.AccountFactory, accounts, {"exhausted_until": None}),
        (f.AccountFactory, accounts, {"last_used_at": None}),
        (f.ConversationFactory, conversations, {"status": ConversationStatus.ANSWERED}),
    ],
    ids=[
        "agent-status", "message-status", "account-is-exhausted", "account-exhausted-until",
        "account-last-used-at", "conversation-status",
    ],
)  # fmt: skip
def test_update_refuses_a_lifecycle_field_and_writes_nothing(make, repository, changes):
    record = make()
    before = type(record).objects.filter(pk=record.pk).values().get()

    with pytest.raises(InvalidInput) as error:
        repository.update(record.id, **changes)

    assert error.value.code == "invalid_field"
    assert error.value.details == {"fields": sorted(changes)}
    assert type(record).objects.filter(pk=record.pk).values().get() == before


def test_agent_set_status_records_the_transition_with_what_the_process_reported():
    agent = f.AgentFactory(status=AgentStatus.RUNNING, pid=4242)

    crashed = agents.set_status(agent.id, AgentStatus.CRASHED, exit_code=137, pid=None)

    stored = Agent.objects.get(pk=agent.pk)
    assert (crashed.status, stored.status) == (AgentStatus.CRASHED, AgentStatus.CRASHED)
    assert (stored.exit_code, stored.pid) == (137, None)


def test_agent_set_status_refuses_an_unknown_status_and_changes_nothing():
    agent = f.AgentFactory()

    with pytest.raises(InvalidInput) as error:
        agents.set_status(agent, "dancing")

    assert error.value.code == "invalid_status"
    assert Agent.objects.get(pk=agent.pk).status == AgentStatus.IDLE


def test_agent_update_changes_what_the_process_reports_but_not_the_status():
    agent = f.AgentFactory()

    agents.update(agent.id, session_id="sess-9", pid=77, result='{"ok": true}')

    stored = Agent.objects.get(pk=agent.pk)
    assert (stored.session_id, stored.pid, stored.result) == ("sess-9", 77, '{"ok": true}')
    assert stored.status == AgentStatus.IDLE


@pytest.mark.parametrize("field", ["result", "pending_questions"])
def test_agent_json_columns_refuse_text_that_is_not_json(field):
    agent = f.AgentFactory()

    with pytest.raises(InvalidInput) as error:
        agents.update(agent.id, **{field: "not json"})

    assert error.value.code == "validation_failed"
    assert field in error.value.details["fields"]


def test_mark_read_moves_only_a_pending_message():
    pending = f.MessageFactory()
    responded = f.MessageFactory(status=MessageStatus.RESPONDED)

    assert messages.mark_read(pending.id).status == MessageStatus.READ
    assert messages.mark_read(pending.id).status == MessageStatus.READ
    assert messages.mark_read(responded.id).status == MessageStatus.RESPONDED


def test_mark_responded_moves_a_pending_or_read_message():
    pending = f.MessageFactory()
    read = f.MessageFactory(status=MessageStatus.READ)

    assert messages.mark_responded(pending.id).status == MessageStatus.RESPONDED
    assert messages.mark_responded(read.id).status == MessageStatus.RESPONDED


def test_message_transitions_refuse_a_missing_message():
    for transition in (messages.mark_read, messages.mark_responded):
        with pytest.raises(NotFound) as error:
            transition("missing")
        assert error.value.code == "message_not_found"


def test_message_set_status_records_any_known_status():
    message = f.MessageFactory(status=MessageStatus.RESPONDED)

    assert messages.set_status(message, MessageStatus.PENDING).status == MessageStatus.PENDING


def test_a_message_never_replies_to_itself_or_to_one_of_its_replies():
    root = f.MessageFactory()
    reply = f.MessageFactory(parent_message=root)
    reply_of_reply = f.MessageFactory(parent_message=reply)

    for parent in (root, reply_of_reply):
        with pytest.raises(InvalidInput) as error:
            messages.update(root.id, parent_message_id=parent.id)
        assert error.value.code == "message_parent_cycle"
    assert Message.objects.get(pk=root.pk).parent_message_id is None
    other = f.MessageFactory()
    assert messages.update(reply.id, parent_message=other).parent_message_id == other.id


@pytest.mark.parametrize("blank", ["", "  \n"])
def test_blank_message_content_and_questions_are_refused(blank):
    with pytest.raises(InvalidInput) as error:
        messages.create(sender_type="agent", recipient_type="user", content=blank)
    assert error.value.code == "empty_content"
    asker, answerer = f.AgentFactory(), f.AgentFactory()
    with pytest.raises(InvalidInput) as error:
        conversations.create(from_agent_id=asker.id, to_agent_id=answerer.id, question=blank)
    assert error.value.code == "empty_question"
    assert not Message.objects.exists()


def test_an_answer_no_database_can_store_is_refused_and_the_question_stays_pending():
    conversation = f.ConversationFactory()

    with pytest.raises(InvalidInput) as error:
        conversations.answer(conversation.id, "port\x008000")

    assert error.value.code == "invalid_value"
    assert conversations.get(conversation.id).status == ConversationStatus.PENDING


# --- accounts: one per provider and email; release; pages ----------------------------------


def test_an_account_is_unique_per_provider_and_email_regardless_of_case():
    accounts.create(email="dev@example.com", provider="claude")

    with pytest.raises(Conflict) as error:
        accounts.create(email="DEV@example.com", provider="claude")

    assert error.value.code == "account_email_taken"
    assert "already exists" in error.value.message
    assert accounts.create(email="dev@example.com", provider="codex").provider == "codex"
    assert Account.objects.count() == 2


def test_an_account_cannot_be_renamed_onto_another_and_keeps_the_transaction_usable():
    f.AccountFactory(email="taken@example.com")
    account = f.AccountFactory(email="free@example.com")

    with pytest.raises(Conflict) as error:
        accounts.update(account.id, email="taken@example.com")

    assert error.value.code == "account_email_taken"
    assert Account.objects.get(pk=account.pk).email == "free@example.com"


def test_release_puts_a_parked_account_back_in_the_rotation():
    account = f.AccountFactory(is_exhausted=True, exhausted_until=None)

    released = accounts.release(account.id)

    assert (released.is_exhausted, released.exhausted_until) == (False, None)
    assert accounts.find_next_available("claude") == account


def test_find_page_pages_the_accounts_of_a_provider_with_their_total():
    claude = [f.AccountFactory(provider="claude") for _ in range(3)]
    f.AccountFactory(provider="codex")

    page = accounts.find_page(provider="claude", limit=2, offset=1)

    assert (page.items, page.total, page.limit, page.offset) == (claude[1:3], 3, 2, 1)
    assert accounts.find_page().total == 4


@pytest.mark.parametrize(
    ("limit", "offset", "code"),
    [(201, 0, "invalid_limit"), (0, 0, "invalid_limit"), (1, -1, "invalid_offset")],
)
def test_find_page_refuses_a_page_outside_the_contract_instead_of_clamping(limit, offset, code):
    with pytest.raises(InvalidInput) as error:
        accounts.find_page(limit=limit, offset=offset)
    assert error.value.code == code


# --- log chunks: one session-number rule, any text -----------------------------------------


def test_insert_chunk_refuses_a_session_number_beyond_32_bits():
    with pytest.raises(InvalidInput) as error:
        logs.insert_chunk(agent_id="a", agent_name="n", session_number=2**31, content="{}")
    assert error.value.code == "invalid_session_number"
    assert error.value.details["field"] == "session_number"


def test_insert_chunk_keeps_content_that_is_not_json_lines():
    chunk = logs.insert_chunk(
        agent_id="a", agent_name="n", session_number=1, content='{"a": 1}\nnot'
    )
    assert AgentLogChunk.objects.get(pk=chunk.id).content == '{"a": 1}\nnot'
