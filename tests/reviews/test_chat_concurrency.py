"""Opening a chat session under concurrent callers, on the real database (threads, commits)."""

import threading

import pytest
from django.db import connection

from reviews import services
from reviews.models import ChatSession
from tests import factories as f

pytestmark = [pytest.mark.concurrency, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("round_", range(3))
def test_openers_racing_on_one_target_share_one_session(round_):
    phase = f.PhaseFactory()
    barrier = threading.Barrier(4)
    outcomes: list[tuple[str, bool]] = []
    errors: list[Exception] = []

    def open_session() -> None:
        try:
            barrier.wait()
            session, opened = services.chat_session_open(target_type="phase", target_id=phase.id)
            outcomes.append((session.id, opened))
        except Exception as error:  # collected and asserted below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=open_session) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    [session] = ChatSession.objects.all()
    assert {session_id for session_id, _ in outcomes} == {session.id}
    assert sorted(opened for _, opened in outcomes) == [False, False, False, True]
