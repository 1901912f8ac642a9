"""The log services (``agents/services/logs.py``): a batch is all or nothing, bounded,
and names its bad chunk; reading iterates keyset pages."""

from datetime import timedelta

import pytest
from django.utils import timezone

from agents import services
from agents.models import AgentLogChunk
from core.errors import InvalidInput, NotFound
from core.models import Event
from tests import factories as f

pytestmark = pytest.mark.django_db


def test_agent_log_append_writes_the_batch_in_order_with_the_agents_name():
    agent = f.AgentFactory(name="calm-fox")
    ids = services.agent_log_append(
        agent_id=agent.id,
        chunks=[{"content": '{"n":1}'}, {"content": '{"n":2}', "session_number": 2}],
    )
    rows = list(AgentLogChunk.objects.filter(agent_id=agent.id).order_by("id"))
    assert ids == [r.id for r in rows] and ids[0] < ids[1]
    assert [(r.agent_name, r.session_number, r.content) for r in rows] == [
        ("calm-fox", 1, '{"n":1}'),
        ("calm-fox", 2, '{"n":2}'),
    ]
    # Logs are output, not state changes.
    assert not Event.objects.exists()


@pytest.mark.parametrize(
    ("bad", "code"),
    [
        ({"content": "\x00" * 300_000}, "invalid_log_chunk"),  # escaped: too long
        ({"content": '{"n":3}', "session_number": 0}, "invalid_session_number"),
        ({"content": "   "}, "empty_content"),
    ],
)
def test_a_bad_chunk_names_its_index_and_writes_nothing(bad, code):
    agent = f.AgentFactory()
    with pytest.raises(InvalidInput) as error:
        services.agent_log_append(agent_id=agent.id, chunks=[{"content": "{}"}, bad])
    assert error.value.code == code
    assert error.value.details["index"] == 1
    assert not AgentLogChunk.objects.exists()


def test_an_oversized_or_empty_batch_is_refused():
    agent = f.AgentFactory()
    with pytest.raises(InvalidInput) as error:
        services.agent_log_append(
            agent_id=agent.id, chunks=[{"content": "{}"}] * (services.MAX_LOG_BATCH + 1)
        )
    assert error.value.code == "log_batch_too_large"
    assert error.value.details["max_chunks"] == 1000
    with pytest.raises(InvalidInput) as error:
        services.agent_log_append(agent_id=agent.id, chunks=[])
    assert error.value.code == "empty_log_batch"
    assert not AgentLogChunk.objects.exists()


def test_a_batch_of_the_maximum_size_is_accepted():
    agent = f.AgentFactory()
    created = services.agent_log_append(
        agent_id=agent.id, chunks=[{"content": "{}"}] * services.MAX_LOG_BATCH
    )
    assert len(created) == AgentLogChunk.objects.count() == 1000


def test_appending_to_an_unknown_agent_is_not_found():
    with pytest.raises(NotFound) as error:
        services.agent_log_append(agent_id="nope", chunks=[{"content": "{}"}])
    assert error.value.code == "agent_not_found"


def test_agent_log_iter_reads_page_by_page(django_assert_num_queries):
    agent = f.AgentFactory()
    services.agent_log_append(
        agent_id=agent.id, chunks=[{"content": f'{{"n":{i}}}'} for i in range(7)]
    )
    # Three pages of 3 (the last short): three queries, every chunk once, in order.
    with django_assert_num_queries(3):
        contents = [c.content for c in services.agent_log_iter(agent_id=agent.id, page_size=3)]
    assert contents == [f'{{"n":{i}}}' for i in range(7)]


def test_agent_log_delete_removes_the_whole_log():
    agent = f.AgentFactory()
    services.agent_log_append(agent_id=agent.id, chunks=[{"content": "{}"}] * 3)
    assert services.agent_log_delete(agent_id=agent.id) == 3
    assert not AgentLogChunk.objects.exists()


def test_appending_and_pruning_chunks_record_no_event_deleting_the_log_does():
    """Log chunks are output, the one exception to "every change is on the feed"
    (docs/decisions.md); deleting a whole log is a person's decision and is on it."""
    agent = f.AgentFactory()
    services.agent_log_append(agent_id=agent.id, chunks=[{"content": "{}"}] * 2)
    services.agent_log_prune(older_than=timezone.now() + timedelta(seconds=1))
    services.agent_log_append(agent_id=agent.id, chunks=[{"content": "{}"}] * 3)
    assert (AgentLogChunk.objects.count(), Event.objects.count()) == (3, 0)

    services.agent_log_delete(agent_id=agent.id)
    services.agent_log_delete(agent_id=agent.id)  # an empty log: nothing changed
    with pytest.raises(NotFound):
        services.agent_log_delete(agent_id="missing")

    assert list(Event.objects.values_list("kind", "subject_id", "initiative_id", "data")) == [
        ("agent.log_deleted", agent.id, agent.initiative_id, {"chunks": 3})
    ]
