"""core.repositories.hot: prepared statements for hot paths give what the ORM gives, raise
Django's errors, and stay visible to whatever watches the connection's queries."""

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from agents.models import Account, AgentLogChunk
from core.models import ApiToken, Phase
from core.repositories import ApiTokenRepository, hot
from core.tokens import api_token_create, hash_token
from reviews.models import Proposal, ReviewComment
from tests import factories as f

pytestmark = pytest.mark.django_db


def test_fetch_all_reads_rows_and_is_logged_when_queries_are_captured():
    f.InitiativeFactory(name="alpha")
    with CaptureQueriesContext(connection) as captured:
        rows = hot.fetch_all(connection, "SELECT name FROM initiatives WHERE name = %s", ["alpha"])
    assert rows == [("alpha",)]
    assert len(captured.captured_queries) == 1


def test_execute_outside_query_logging_goes_to_the_driver_and_keeps_the_transaction():
    initiative = f.InitiativeFactory(name="before")
    assert not connection.queries_logged
    with transaction.atomic():
        hot.execute(
            connection, "UPDATE initiatives SET name = %s WHERE id = %s", ["after", initiative.id]
        )
        transaction.set_rollback(True)
    initiative.refresh_from_db()
    assert initiative.name == "before"  # rolled back with the atomic block around it


@pytest.mark.parametrize("logged", [False, True])
def test_a_refusal_by_the_database_is_djangos_integrity_error(logged, settings):
    token, _clear = api_token_create(name="one")
    sql = (
        "INSERT INTO api_tokens (id, name, token_hash, prefix, created_at) "
        "VALUES (%s, %s, %s, %s, %s)"
    )
    params = ["x" * 22, "two", token.token_hash, "cw_abcde", "2026-01-01 00:00:00"]
    settings.DEBUG = logged
    with pytest.raises(IntegrityError), transaction.atomic():
        hot.execute(connection, sql, params)
    assert ApiToken.objects.count() == 1


def test_placeholders_are_translated_for_the_driver_once():
    assert hot.driver_sql("qmark", "a = %s AND b LIKE '%%x'") == "a = ? AND b LIKE '%x'"
    assert hot.driver_sql("pyformat", "a = %s") == "a = %s"


def test_columns_build_the_instance_the_orm_builds():
    account = f.AccountFactory(email="a@example.com")
    account.refresh_from_db()
    columns = hot.Columns(Account)
    rows = hot.fetch_all(
        connection,
        f"SELECT {columns.select(connection, 'accounts')} FROM accounts WHERE id = %s",  # noqa: S608
        [account.id],
    )
    built = columns.build(connection, rows[0])
    assert isinstance(built, Account)
    for field in Account._meta.concrete_fields:
        assert getattr(built, field.attname) == getattr(account, field.attname), field.name
    assert built.created_at.tzinfo is not None


def test_token_lookup_by_hash_loads_the_token_and_its_person():
    person = f.UserFactory(username="ada")
    token, clear = api_token_create(name="personal", person=person)
    found = ApiTokenRepository().find_active_by_hash(hash_token(clear))
    assert found is not None and found.pk == token.pk
    assert found.person == person and found.person.is_active is True
    with CaptureQueriesContext(connection) as captured:
        assert found.person.username == "ada"  # already loaded: no query
    assert captured.captured_queries == []

    _tool, tool_clear = api_token_create(name="tool")
    tool = ApiTokenRepository().find_active_by_hash(hash_token(tool_clear))
    assert tool is not None and tool.person is None
    assert ApiTokenRepository().find_active_by_hash("0" * 64) is None


@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"status": "pending"},
        {"status": "accepted"},
        {"target_type": "task", "status": "pending"},
    ],
)
@pytest.mark.parametrize(("limit", "offset"), [(3, 0), (3, 3), (50, 0), (2, 7), (5, 40)])
def test_listing_pages_exactly_as_the_orm_does(filters, limit, offset):
    agent = f.AgentFactory()
    for i in range(8):
        f.ProposalFactory(
            agent=agent,
            initiative=agent.initiative or f.InitiativeFactory(),
            status="accepted" if i % 3 == 0 else "pending",
            sort_order=i % 2,
        )
    listing = hot.Listing(Proposal)
    items, total = listing.page(
        connection, {"agent_id": agent.id, **filters}, limit=limit, offset=offset, max_bytes=10**9
    )
    qs = Proposal.objects.filter(agent_id=agent.id, **filters)
    fields = [field.attname for field in Proposal._meta.concrete_fields]
    assert items == list(qs.values(*fields)[offset : offset + limit])
    assert total == qs.count()


def test_listing_filters_by_a_boolean_and_leaves_none_unfiltered():
    phase = f.PhaseFactory()
    for i in range(4):
        f.ReviewCommentFactory(phase=phase, line_number=i + 1, resolved=i % 2 == 0)
    f.ReviewCommentFactory()  # another phase's
    listing = hot.Listing(ReviewComment)
    resolved, total = listing.page(
        connection, {"phase_id": phase.id, "resolved": True}, limit=10, offset=0, max_bytes=10**9
    )
    assert total == 2 and all(row["resolved"] is True for row in resolved)
    every, total = listing.page(
        connection, {"phase_id": phase.id, "resolved": None}, limit=10, offset=0, max_bytes=10**9
    )
    assert total == 4 and [row["line_number"] for row in every] == [1, 2, 3, 4]


def test_exists_by_text_id_uses_one_prepared_statement():
    phase = f.PhaseFactory()
    from core.repositories import PhaseRepository

    repository = PhaseRepository()
    assert repository.exists(phase.id) is True
    assert repository.exists("nope") is False
    assert Phase.objects.filter(pk=phase.pk).exists()


def test_log_chunk_ids_returned_are_those_stored():
    from agents.repositories import LogChunkRepository

    chunks = [{"agent_id": "a", "agent_name": "n", "content": f'{{"n":{i}}}'} for i in range(7)]
    ids = LogChunkRepository().append_chunks(chunks)  # type: ignore[arg-type]
    stored = list(AgentLogChunk.objects.order_by("id").values_list("id", "content"))
    assert ids == [id for id, _ in stored]
    assert [content for _, content in stored] == [c["content"] for c in chunks]
