"""Concurrent callers against the real database: account rotation, answers, agent names.

Each worker thread opens its own connection (a file database on SQLite, a server
connection on PostgreSQL), so these tests see the same locking production does.
"""

import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.db.models import BooleanField
from django.db.models.expressions import RawSQL

from agents.models import Account
from agents.repositories import AccountRepository, AgentRepository, ConversationRepository
from agents.repositories import agents as repos_module
from core.errors import Conflict
from tests import factories as f

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.concurrency]

THREADS = 8
ROUNDS = 5


def run_at_once(count: int, work: Callable[[int], Any]) -> tuple[list[Any], list[BaseException]]:
    """Run ``work(i)`` in ``count`` threads released together; return results and errors."""
    barrier = threading.Barrier(count, timeout=30)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []
    errors_lock = threading.Lock()

    def worker(index: int) -> None:
        try:
            barrier.wait()
            results[index] = work(index)
        except BaseException as error:
            with errors_lock:
                errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    assert not any(thread.is_alive() for thread in threads), "a worker thread hung"
    return results, errors


def claim(_index: int) -> Account | None:
    return AccountRepository().find_next_available("claude")


def test_one_round_of_concurrent_claims_never_hands_out_an_account_twice():
    pool = {f.AccountFactory(sort_order=i).id for i in range(THREADS)}
    f.AccountFactory(provider="codex")

    for round_number in range(ROUNDS):
        results, errors = run_at_once(THREADS, claim)

        assert errors == [], f"round {round_number}: {errors!r}"
        claimed = [account.id for account in results if account is not None]
        assert len(claimed) == THREADS, f"round {round_number}: a claim got nothing"
        assert set(claimed) == pool, f"round {round_number}: {Counter(claimed)}"


def test_more_claimers_than_accounts_get_an_account_again_or_none_but_never_fail():
    """Decided behaviour: once every account is taken this round, an extra claim gets the
    least recently used account again. On SQLite claims are serialized, so that is always
    what happens (each account exactly three times here). On PostgreSQL a claim that finds
    every account locked by an in-flight claim gets None instead of waiting."""
    pool = {f.AccountFactory(sort_order=i).id for i in range(4)}
    claimers = 12

    for round_number in range(ROUNDS):
        results, errors = run_at_once(claimers, claim)

        assert errors == [], f"round {round_number}: {errors!r}"
        claimed = Counter(account.id for account in results if account is not None)
        assert set(claimed) == pool, f"round {round_number}: {claimed}"
        if connection.vendor == "sqlite":
            assert list(claimed.values()) == [3, 3, 3, 3]


def test_a_claim_whose_read_overlaps_another_claims_commit_gets_a_different_account():
    """The slow claim starts reading first; the fast claim commits while the slow one is
    still scanning. The slow claim must not hand out the account the fast one just took."""
    first = f.AccountFactory(sort_order=0)
    second = f.AccountFactory(sort_order=1)
    scanning = threading.Event()

    class SlowScanRepository(AccountRepository):
        def _claimable(self, provider, now, excluded=()):
            if connection.vendor == "postgresql":
                sleep = "pg_sleep(0.3) IS NOT NULL"
            else:
                connection.ensure_connection()
                connection.connection.create_function("cw_test_sleep", 1, self._sleep)
                sleep = "cw_test_sleep(0.3) IS NOT NULL"
            slow = RawSQL(sleep, (), output_field=BooleanField())  # noqa: S611 (constant SQL)
            return super()._claimable(provider, now, excluded).filter(slow)

        @staticmethod
        def _sleep(seconds: float) -> int:
            scanning.set()
            time.sleep(seconds)
            return 1

    slow_result: list[Account | None] = []
    errors: list[BaseException] = []

    def slow_claim() -> None:
        try:
            slow_result.append(SlowScanRepository().find_next_available("claude"))
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    thread = threading.Thread(target=slow_claim)
    thread.start()
    wait_until_scanning(scanning)
    fast = AccountRepository().find_next_available("claude")
    thread.join(timeout=30)

    assert errors == []
    assert {fast.id, slow_result[0].id} == {first.id, second.id}


def wait_until_scanning(scanning: threading.Event, timeout: float = 10) -> None:
    """Block until the slow claim's SELECT is running (and holds its snapshot)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
                    " AND query LIKE %s AND pid <> pg_backend_pid()",
                    ["%pg_sleep(0.3)%"],
                )
                if cursor.fetchone()[0]:
                    return
        elif scanning.is_set():
            return
        time.sleep(0.005)
    raise AssertionError("the slow claim never started scanning")


def test_concurrent_answers_to_one_conversation_let_exactly_one_win():
    conversation = f.ConversationFactory()

    def answer(index: int):
        return ConversationRepository().answer(conversation.id, f"answer {index}")

    results, errors = run_at_once(THREADS, answer)

    winners = [result for result in results if result is not None]
    assert len(winners) == 1
    assert len(errors) == THREADS - 1
    assert all(isinstance(error, Conflict) for error in errors), errors
    assert {error.code for error in errors} == {"conversation_already_answered"}
    assert ConversationRepository().get(conversation.id).answer == winners[0].answer


def test_concurrent_agent_creation_in_a_crowded_word_space_gives_unique_names(monkeypatch):
    monkeypatch.setattr(repos_module, "ADJECTIVES", ("brave",))
    monkeypatch.setattr(repos_module, "ANIMALS", ("otter", "seal"))

    def create(index: int):
        return AgentRepository().create(worktree_id=f"/srv/wt/{index}")

    results, errors = run_at_once(THREADS, create)

    assert errors == []
    names = [agent.name for agent in results]
    assert len(set(names)) == THREADS
    assert all(name.startswith(("brave-otter", "brave-seal")) for name in names)
