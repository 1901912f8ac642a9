"""The logs API (tag ``logs``): batches appended as a JSON array or NDJSON, all or
nothing; the keyset read; the streamed NDJSON; the session count; delete."""

import json
from http import HTTPStatus

import pytest
from django.db import connection
from django.http import StreamingHttpResponse
from django.test.utils import CaptureQueriesContext

from agents import services
from agents.models import AgentLogChunk
from tests.api.helpers import assert_error, post_json, url
from tests.factories import AgentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent():
    return AgentFactory(name="calm-fox")


def append(agent_id: str, count: int, session_number: int = 1) -> list[AgentLogChunk]:
    """Append ``count`` chunks; the stored chunks, in order."""
    ids = services.agent_log_append(
        agent_id=agent_id,
        chunks=[
            {"content": f'{{"n":{i}}}', "session_number": session_number} for i in range(count)
        ],
    )
    return list(AgentLogChunk.objects.filter(pk__in=ids).order_by("id"))


def post_ndjson(client, path: str, text: str):
    return client.post(path, text.encode(), content_type="application/x-ndjson")


def test_append_a_json_array(api_client, agent):
    response = post_json(
        api_client,
        url("append_agent_log", agent_id=agent.id),
        [{"content": '{"a":1}'}, {"content": '{"b":2}\n{"c":3}', "session_number": 2}],
    )
    assert response.status_code == HTTPStatus.CREATED, response.content
    rows = list(AgentLogChunk.objects.order_by("id"))
    assert response.json() == {
        "count": 2,
        "ids": [rows[0].id, rows[1].id],
        "first_id": rows[0].id,
        "last_id": rows[1].id,
    }
    assert [(r.agent_name, r.session_number) for r in rows] == [("calm-fox", 1), ("calm-fox", 2)]


def test_append_ndjson_one_chunk_a_line_in_the_session_given(api_client, agent):
    path = url("append_agent_log", agent_id=agent.id) + "?session_number=3"
    response = post_ndjson(api_client, path, '{"a":1}\n\n{"b":2}\n')
    assert response.status_code == HTTPStatus.CREATED, response.content
    assert response.json()["count"] == 2
    rows = list(AgentLogChunk.objects.order_by("id").values_list("content", "session_number"))
    assert rows == [('{"a":1}', 3), ('{"b":2}', 3)]


def test_ndjson_lines_end_at_newlines_only(api_client, agent):
    # U+2028 and U+0085 may stand raw inside a JSON string: they do not end a line.
    text = '{"text": "a\u2028b"}\r\n{"text": "c\u0085d"}\n'
    response = post_ndjson(api_client, url("append_agent_log", agent_id=agent.id), text)
    assert response.status_code == HTTPStatus.CREATED, response.content
    assert response.json()["count"] == 2
    contents = list(AgentLogChunk.objects.order_by("id").values_list("content", flat=True))
    assert contents == ['{"text": "a\u2028b"}', '{"text": "c\u0085d"}']


def test_an_oversized_batch_is_refused_with_its_code(api_client, agent):
    path = url("append_agent_log", agent_id=agent.id)
    response = post_json(api_client, path, [{"content": "{}"}] * 1001)
    body = assert_error(response, HTTPStatus.BAD_REQUEST, "log_batch_too_large")
    assert body["details"]["max_chunks"] == 1000
    response = post_ndjson(api_client, path, "{}\n" * 1001)
    assert_error(response, HTTPStatus.BAD_REQUEST, "log_batch_too_large")
    assert not AgentLogChunk.objects.exists()


@pytest.mark.parametrize(
    ("chunk", "code"),
    [
        # A field's own code, as the repository gives it, else the chunk's.
        ({"content": ""}, "empty_content"),
        ({"content": "   "}, "empty_content"),
        ({"session_number": 1}, "empty_content"),
        ({"content": "{}", "session_number": 0}, "invalid_session_number"),
        ({"content": "{}", "session_number": "2"}, "invalid_session_number"),
        ({"content": "{}", "colour": "red"}, "invalid_log_chunk"),
        ("just text", "invalid_log_chunk"),
    ],
)
def test_a_bad_chunk_names_its_index_and_writes_nothing(api_client, agent, chunk, code):
    response = post_json(
        api_client,
        url("append_agent_log", agent_id=agent.id),
        [{"content": "{}"}, {"content": "{}"}, chunk],
    )
    body = assert_error(response, HTTPStatus.BAD_REQUEST, code)
    assert body["details"]["index"] == 2
    assert "\x00" not in response.content.decode()
    assert not AgentLogChunk.objects.exists()


#: What an agent prints besides JSON Lines, and how it is stored: plain lines and cut JSON
#: as they are, NUL and a lone surrogate escaped (``core.text.storable_text``).
RAW_LINES = [
    ('{"type":"system","subtype":"init"}', '{"type":"system","subtype":"init"}'),
    ("Error: rate limit reached, retrying in 30s", "Error: rate limit reached, retrying in 30s"),
    ('{"type":"assist', '{"type":"assist'),
    ("a\x00b", "a\\x00b"),
    ("\ud800 alone", "\\ud800 alone"),
    ('{"type":"result","subtype":"success"}', '{"type":"result","subtype":"success"}'),
]


def test_a_json_array_of_any_text_is_stored_in_order_escaped(api_client, agent):
    # json.dumps spells the lone surrogate as the escape "\ud800", as a client would.
    body = json.dumps([{"content": sent} for sent, _ in RAW_LINES])
    response = api_client.post(
        url("append_agent_log", agent_id=agent.id), body, content_type="application/json"
    )
    assert response.status_code == HTTPStatus.CREATED, response.content
    assert response.json()["count"] == len(RAW_LINES)
    stored = list(AgentLogChunk.objects.order_by("id").values_list("content", flat=True))
    assert stored == [kept for _, kept in RAW_LINES]


def test_an_ndjson_body_of_any_bytes_is_stored_in_order_escaped(api_client, agent):
    body = (
        b'{"type":"system","subtype":"init"}\n'
        b"Error: rate limit reached, retrying in 30s\r\n"
        b'{"type":"assist\n'
        b"\n"  # blank: skipped
        b"nul \x00 here\n"
        b"latin-1 caf\xe9, a cut \xe2\x82 and \xff\n"
        b"\xed\xa0\x80 an encoded surrogate\n"
        b'{"type":"result","subtype":"success"}'
    )
    response = api_client.post(
        url("append_agent_log", agent_id=agent.id), body, content_type="application/x-ndjson"
    )
    assert response.status_code == HTTPStatus.CREATED, response.content
    stored = list(AgentLogChunk.objects.order_by("id").values_list("content", flat=True))
    assert stored == [
        '{"type":"system","subtype":"init"}',
        "Error: rate limit reached, retrying in 30s",
        '{"type":"assist',
        "nul \\x00 here",
        "latin-1 caf\\xe9, a cut \\xe2\\x82 and \\xff",
        "\\xed\\xa0\\x80 an encoded surrogate",
        '{"type":"result","subtype":"success"}',
    ]
    assert response.json()["count"] == 7


def test_a_raw_log_reads_back_as_stored(api_client, agent):
    post_ndjson(api_client, url("append_agent_log", agent_id=agent.id), "{}\nplain \x00\n")
    page = api_client.get(url("list_agent_log", agent_id=agent.id)).json()
    assert [item["content"] for item in page["items"]] == ["{}", "plain \\x00"]


@pytest.mark.parametrize(
    ("body", "content_type", "code"),
    [
        (b'{"content": "{}"}', "application/json", "invalid_log_body"),
        (b"[", "application/json", "invalid_log_body"),
        (b"{}", "text/plain", "invalid_log_body"),
        (b"[]", "application/json", "empty_log_batch"),
        (b"\n\n", "application/x-ndjson", "empty_log_batch"),
    ],
)
def test_a_body_that_is_no_batch_is_refused(api_client, agent, body, content_type, code):
    response = api_client.post(
        url("append_agent_log", agent_id=agent.id), body, content_type=content_type
    )
    assert_error(response, HTTPStatus.BAD_REQUEST, code)
    assert not AgentLogChunk.objects.exists()


def test_appending_to_an_unknown_agent_is_404(api_client):
    response = post_json(api_client, url("append_agent_log", agent_id="nope"), [{"content": "{}"}])
    assert_error(response, HTTPStatus.NOT_FOUND, "agent_not_found")


def test_read_the_log_with_the_id_cursor(api_client, agent):
    chunks = append(agent.id, 5)
    path = url("list_agent_log", agent_id=agent.id)
    first = api_client.get(path, {"limit": 3}).json()
    assert [item["id"] for item in first["items"]] == [c.id for c in chunks[:3]]
    assert first["next_after"] == chunks[2].id
    assert first["more"] is True  # a full page: there may be more
    second = api_client.get(path, {"limit": 3, "after": first["next_after"]}).json()
    assert [item["content"] for item in second["items"]] == ['{"n":3}', '{"n":4}']
    assert second["more"] is False
    end = api_client.get(path, {"after": chunks[-1].id}).json()
    assert end == {"items": [], "next_after": chunks[-1].id, "more": False}
    assert_error(api_client.get(path, {"limit": 1001}), 400, "invalid_limit")
    assert_error(api_client.get(path, {"session_number": 0}), 400, "invalid_session_number")


def big_chunk(n: int, size: int) -> str:
    """A one-line JSON chunk of exactly ``size`` bytes of UTF-8 (``é`` is two bytes)."""
    head = f'{{"n":{n},"t":"'
    body = "é" * ((size - len(head) - 2) // 2)
    return head + body + "x" * ((size - len(head) - 2) % 2) + '"}'


def test_a_page_of_big_chunks_stops_at_the_byte_cap_and_the_cursor_goes_on(
    api_client, agent, settings
):
    settings.CW_API_PAGE_MAX_BYTES = 1000
    sizes = [300, 300, 300, 300, 1500, 200, 900, 50, 50]  # bytes, not characters
    contents = [big_chunk(n, size) for n, size in enumerate(sizes)]
    assert [len(c.encode()) for c in contents] == sizes
    services.agent_log_append(agent_id=agent.id, chunks=[{"content": c} for c in contents])
    path = url("list_agent_log", agent_id=agent.id)

    pages, after = [], 0
    while True:
        page = api_client.get(path, {"after": after, "limit": 1000}).json()
        pages.append(([item["content"] for item in page["items"]], page["more"]))
        after = page["next_after"]
        if not page["more"]:
            break

    # 300+300+300 fit; the fourth would pass 1000. A chunk larger than the cap comes
    # alone (a reader always moves on). The last page ends the log: more is false.
    assert [[contents.index(c) for c in items] for items, _ in pages] == [
        [0, 1, 2],
        [3],
        [4],
        [5],
        [6, 7, 8],
    ]
    assert [more for _, more in pages] == [True, True, True, True, False]
    assert [c for items, _ in pages for c in items] == contents  # no loss, no duplicate


def test_the_byte_cap_applies_to_one_session_and_to_the_stream(api_client, agent, settings):
    settings.CW_API_PAGE_MAX_BYTES = 1000
    services.agent_log_append(
        agent_id=agent.id,
        chunks=[{"content": big_chunk(n, 400), "session_number": 1 + n % 2} for n in range(9)],
    )
    page = api_client.get(
        url("list_agent_log", agent_id=agent.id), {"session_number": 2, "limit": 3}
    ).json()
    assert [json.loads(item["content"])["n"] for item in page["items"]] == [1, 3]
    assert page["more"] is True

    # The stream reads capped pages, and reads on until the log ends.
    response = api_client.get(url("stream_agent_log", agent_id=agent.id))
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert [json.loads(line)["n"] for line in lines] == list(range(9))


def test_the_openapi_document_states_the_byte_cap(api_client):
    document = api_client.get("/api/openapi.json").json()
    operation = document["paths"]["/api/agents/{agent_id}/logs"]["get"]
    (limit,) = [p for p in operation["parameters"] if p["name"] == "limit"]
    assert "CW_API_PAGE_MAX_BYTES" in limit["description"]
    assert "4,000,000" in limit["description"]
    page = document["components"]["schemas"]["LogPageOut"]["properties"]
    assert "CW_API_PAGE_MAX_BYTES" in page["items"]["description"]
    assert "byte cap" in page["more"]["description"]
    appended = document["components"]["schemas"]["LogAppendedOut"]["properties"]
    assert "exactly the chunks appended" in appended["ids"]["description"]


def test_read_one_session(api_client, agent):
    append(agent.id, 2, session_number=1)
    wanted = append(agent.id, 2, session_number=2)
    body = api_client.get(url("list_agent_log", agent_id=agent.id), {"session_number": 2}).json()
    assert [item["id"] for item in body["items"]] == [c.id for c in wanted]


def test_reading_an_unknown_agents_log_is_404(api_client):
    assert_error(api_client.get(url("list_agent_log", agent_id="nope")), 404, "agent_not_found")


def test_a_log_page_costs_the_same_queries_at_1_and_100_chunks(api_client, agent):
    append(agent.id, 1)
    path = url("list_agent_log", agent_id=agent.id)
    api_client.get(path)
    with CaptureQueriesContext(connection) as one:
        api_client.get(path)
    append(agent.id, 99)
    with CaptureQueriesContext(connection) as hundred:
        assert len(api_client.get(path).json()["items"]) == 100
    assert len(hundred) == len(one)


def test_stream_the_whole_log_as_ndjson(api_client, agent):
    chunks = append(agent.id, 3)
    response = api_client.get(url("stream_agent_log", agent_id=agent.id))
    assert response.status_code == HTTPStatus.OK
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "application/x-ndjson"
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert [json.loads(line) for line in lines] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert lines == [c.content for c in chunks]


def test_streaming_reads_one_page_at_a_time(api_client, agent, monkeypatch):
    monkeypatch.setattr(services.logs, "STREAM_PAGE_SIZE", 2)
    append(agent.id, 5)
    response = api_client.get(url("stream_agent_log", agent_id=agent.id))
    stream = iter(response.streaming_content)
    with CaptureQueriesContext(connection) as queries:
        first = next(stream)
    # Only the first page has been read for the first line.
    assert first == b'{"n":0}\n'
    assert len(queries) == 1
    with CaptureQueriesContext(connection) as queries:
        rest = b"".join(stream)
    assert rest.decode().splitlines() == ['{"n":1}', '{"n":2}', '{"n":3}', '{"n":4}']
    assert len(queries) == 2


def test_stream_one_session_and_an_unknown_agent(api_client, agent):
    append(agent.id, 1, session_number=1)
    append(agent.id, 1, session_number=2)
    response = api_client.get(url("stream_agent_log", agent_id=agent.id), {"session_number": 2})
    assert b"".join(response.streaming_content) == b'{"n":0}\n'
    assert_error(api_client.get(url("stream_agent_log", agent_id="nope")), 404, "agent_not_found")


def test_session_count_and_delete(api_client, agent):
    path = url("retrieve_agent_log_sessions", agent_id=agent.id)
    assert api_client.get(path).json() == {"count": 0}
    append(agent.id, 1, session_number=3)
    assert api_client.get(path).json() == {"count": 3}
    response = api_client.delete(url("delete_agent_log", agent_id=agent.id))
    assert response.status_code == HTTPStatus.NO_CONTENT
    assert not AgentLogChunk.objects.exists()
    assert_error(
        api_client.delete(url("delete_agent_log", agent_id="nope")), 404, "agent_not_found"
    )


def test_the_log_read_as_records_gives_json_by_kind_and_other_lines_as_text(api_client, agent):
    """``GET /agents/{id}/logs/records``: what the viewer shows, for tools — Claude Code's
    records by kind, stderr and cut lines as plain text, in order, with the cursor."""
    init = json.dumps({"type": "system", "subtype": "init", "session_id": "s", "model": "m"})
    said = json.dumps(
        {
            "type": "assistant",
            "message": {
                "content": [
                    {"type": "text", "text": "Reading the schema."},
                    {"type": "tool_use", "name": "Bash", "input": {"command": "ls"}},
                ]
            },
        }
    )
    result = json.dumps(
        {"type": "result", "subtype": "success", "result": "Done.", "total_cost_usd": 0.01}
    )
    ids = services.agent_log_append(
        agent_id=agent.id,
        chunks=[
            {"content": init},
            {"content": "Error: rate limit reached, retrying in 30s"},
            {"content": said + "\n" + '{"type":"assist'},
            {"content": result, "session_number": 2},
        ],
    )
    path = url("list_agent_log_records", agent_id=agent.id)
    page = api_client.get(path).json()
    kinds = [(item["chunk_id"], item["kind"]) for item in page["items"]]
    assert kinds == [
        (ids[0], "system"),
        (ids[1], "text"),
        (ids[2], "assistant_text"),
        (ids[2], "tool_call"),
        (ids[2], "text"),
        (ids[3], "result"),
    ]
    plain = page["items"][1]
    assert plain["text"] == "Error: rate limit reached, retrying in 30s"
    assert plain["label"] == "Output"
    assert page["items"][3]["tool"] == "Bash"
    assert page["items"][5]["session_number"] == 2 and page["items"][5]["is_error"] is False
    assert page["next_after"] == ids[-1] and page["more"] is False
    # The cursor and bounds are the log's own.
    rest = api_client.get(path, {"after": ids[1], "session_number": 1}).json()
    assert {item["chunk_id"] for item in rest["items"]} == {ids[2]}
    assert_error(api_client.get(path, {"limit": 0}), 400, "invalid_limit")
    assert api_client.get(url("list_agent_log_records", agent_id="nobody")).status_code == 404
