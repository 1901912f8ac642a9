"""The log's fast path keeps every rule of the model: a batch with one bad chunk writes
nothing and names the chunk with the same error the model's validation gives; what the
quick check cannot vouch for is decided by the model, not refused by the quick check;
and both store any text alike, escaped where a database could not keep it."""

import pytest

from agents.models import AgentLogChunk
from agents.repositories import LogChunkRepository, LogChunkRow
from core.errors import DomainError, InvalidInput

pytestmark = pytest.mark.django_db

logs = LogChunkRepository()


def good(n: int = 100) -> list[dict]:
    return [
        {"agent_id": "a" * 22, "agent_name": "brave-otter", "content": f'{{"n":{i}}}\n'}
        for i in range(n)
    ]


BAD = {
    # Escaped, NUL takes four characters: past the column's length.
    "NULs escaped past the length": {"content": "\x00" * 300_000},
    "blank": {"content": " \n\t"},
    "empty": {"content": ""},
    "not text": {"content": 5},
    "session 0": {"session_number": 0},
    "session bool": {"session_number": True},
    "session beyond 32 bits": {"session_number": 2**31},
    "agent id too long": {"agent_id": "a" * 23},
    "agent name blank": {"agent_name": ""},
    "agent name NUL": {"agent_name": "a\x00"},
    "unknown key": {"colour": "red"},
}


def slow_refusal(batch: list[dict]) -> DomainError:
    """What the model's validation alone says of the batch."""
    with pytest.raises(DomainError) as error:
        logs._validated_models(batch)  # type: ignore[arg-type]
    return error.value


@pytest.mark.parametrize("what", list(BAD))
@pytest.mark.parametrize("index", [0, 57, 99])
def test_a_bad_chunk_refuses_the_batch_like_the_model_does_and_writes_nothing(what, index):
    batch = good()
    batch[index] = {**batch[index], **BAD[what]}
    expected = slow_refusal(batch)

    with pytest.raises(InvalidInput) as refused:
        logs.append_chunks(batch)  # type: ignore[arg-type]

    assert refused.value.code == expected.code
    assert refused.value.details == expected.details
    assert refused.value.details["index"] == index
    assert refused.value.message == expected.message
    assert not AgentLogChunk.objects.exists()


def test_a_missing_key_is_named_like_the_model_names_it():
    batch = good(3)
    del batch[1]["agent_name"]
    with pytest.raises(InvalidInput) as refused:
        logs.append_chunks(batch)  # type: ignore[arg-type]
    assert refused.value.code == "invalid_log_chunk"
    assert refused.value.details == {"unknown": [], "missing": ["agent_name"], "index": 1}


@pytest.mark.parametrize(
    "content",
    [
        '{"n": 1e400}\n',  # orjson refuses a number beyond a double; JSON allows it
        '{"n": 123456789012345678901234567890}\n',  # beyond 64 bits
        '{"text": "a\u2028b\u0085c"}\n',  # raw line separators inside a JSON string
        '\n{"a": 1}\r\n\n{"b": 2}\n',  # several lines, blank ones, CRLF
    ],
)
def test_what_the_quick_check_cannot_vouch_for_the_model_accepts(content):
    batch = good(5)
    batch[2]["content"] = content
    assert len(logs.append_chunks(batch)) == 5  # type: ignore[arg-type]
    stored = list(AgentLogChunk.objects.order_by("id").values_list("content", flat=True))
    assert stored[2] == content


#: Any text is a chunk: what no database stores alike is escaped (``storable_text``).
ANY_TEXT = {
    "not JSON": ("Error: rate limit reached, retrying in 30s\n",) * 2,
    "half a JSON line": ('{"type":"assist',) * 2,
    "second line not JSON": ('{"a":1}\n{nope\n',) * 2,
    "NaN": ('{"n": NaN}',) * 2,
    "NUL": ('{"a":"\x00"}', '{"a":"\\x00"}'),
    "lone surrogate": ('{"a":"\ud800"}', '{"a":"\\ud800"}'),
    "NUL and a surrogate, not ASCII": ("é\x00\udfff.", "é\\x00\\udfff."),
}


@pytest.mark.parametrize("what", list(ANY_TEXT))
@pytest.mark.parametrize("quick", [True, False])
def test_any_text_is_stored_escaped_by_both_paths(what, quick):
    sent, stored = ANY_TEXT[what]
    batch = good(5)
    batch[2]["content"] = sent
    if quick:
        rows = logs._checked_rows(batch, None)  # type: ignore[arg-type]
    else:
        rows = logs._checked_rows(batch, None, quick=False)  # type: ignore[arg-type]
    assert rows[2][3] == stored
    assert len(logs.append_chunks(batch)) == 5  # type: ignore[arg-type]
    assert list(AgentLogChunk.objects.order_by("id").values_list("content", flat=True))[2] == stored


def test_insert_chunk_stores_any_text_and_answers_it_escaped():
    row = logs.insert_chunk(agent_id="a", agent_name="n", session_number=1, content="x\x00{nope")
    assert row.content == "x\\x00{nope" == AgentLogChunk.objects.get(pk=row.pk).content


def test_a_batch_longer_than_one_statement_is_written_whole_in_order():
    batch = good(logs.rows_per_statement * 2 + 7)
    ids = logs.append_chunks(batch)  # type: ignore[arg-type]
    stored = list(AgentLogChunk.objects.order_by("id").values_list("id", "content"))
    assert ids == [id for id, _ in stored]
    assert [content for _, content in stored] == [chunk["content"] for chunk in batch]


def test_one_batch_shares_one_created_at():
    logs.append_chunks(good(3))  # type: ignore[arg-type]
    assert AgentLogChunk.objects.values("created_at").distinct().count() == 1


def test_insert_chunk_answers_the_row_as_stored():
    row = logs.insert_chunk(agent_id="a", agent_name="n", session_number=3, content='{"x":1}')
    stored = AgentLogChunk.objects.get(pk=row.pk)
    assert isinstance(row, LogChunkRow)
    assert row == (
        stored.id,
        stored.agent_id,
        stored.agent_name,
        stored.session_number,
        stored.content,
        stored.created_at,
    )


def test_a_page_reads_the_rows_the_orm_reads():
    logs.append_chunks(good(10))  # type: ignore[arg-type]
    logs.insert_chunk(agent_id="a" * 22, agent_name="brave-otter", session_number=2, content="1")
    page = logs.find_by_agent_id("a" * 22, limit=20)
    orm = list(AgentLogChunk.objects.filter(agent_id="a" * 22).order_by("id"))
    assert [tuple(row) for row in page] == [
        (c.id, c.agent_id, c.agent_name, c.session_number, c.content, c.created_at) for c in orm
    ]
    assert all(row.created_at.tzinfo is not None for row in page)
    second = logs.find_by_agent_id("a" * 22, session_number=2)
    assert [row.content for row in second] == ["1"]


def test_insert_chunk_refuses_like_a_single_write_without_a_batch_index():
    with pytest.raises(InvalidInput) as refused:
        logs.insert_chunk(agent_id="a", agent_name="n", session_number=1, content=" \n")
    assert refused.value.code == "empty_content"
    assert "index" not in refused.value.details
    assert not AgentLogChunk.objects.exists()
