"""The admin's log viewer: an agent's log by session (newest first), a page of chunks at
a time by the id cursor, each record shown by kind and escaped, at the same cost however
long the log; and ``agents.logformat``, the one reading of the records it shares with
``cw_logs tail``."""

import json
import re
from http import HTTPStatus

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from agents import services
from agents.admin import LOG_PAGE_CHUNKS, log_url
from agents.logformat import DETAIL_WIDTH, describe, parse_chunk, parse_line
from agents.models import Account, AgentLogChunk
from tests import factories as f

pytestmark = pytest.mark.django_db

INIT = {"type": "system", "subtype": "init", "model": "claude-sonnet-4", "cwd": "/srv/wt/a"}
SAY = {"type": "assistant", "message": {"content": [{"type": "text", "text": "Reading it."}]}}
CALL = {
    "type": "assistant",
    "message": {
        "content": [{"type": "tool_use", "name": "Bash", "input": {"command": "ls -la src"}}]
    },
}
ANSWER = {
    "type": "user",
    "message": {"content": [{"type": "tool_result", "content": "a.py\nb.py", "is_error": False}]},
}
TOOL_ERROR = {
    "type": "user",
    "message": {"content": [{"type": "tool_result", "content": "no such file", "is_error": True}]},
}
DONE = {
    "type": "result",
    "subtype": "success",
    "is_error": False,
    "duration_ms": 12345,
    "total_cost_usd": 0.0412,
    "num_turns": 3,
    "result": "All done.",
}
ODD = {"type": "rate_limit", "retry_in": 30}


def jsonl(*records: dict) -> str:
    return "".join(json.dumps(record) + "\n" for record in records)


def write_log(agent, count: int, *, session: int = 1, content: str | None = None) -> None:
    """``count`` chunks of one session, in one statement."""
    AgentLogChunk.objects.bulk_create(
        AgentLogChunk(
            agent_id=agent.pk,
            agent_name=agent.name,
            session_number=session,
            content=content or jsonl({**SAY, "n": n}),
        )
        for n in range(count)
    )


def ids_on(page: str) -> list[int]:
    return [int(n) for n in re.findall(r'<li class="cw-chunk" id="chunk-(\d+)"', page)]


def link(page: str, css_class: str) -> str | None:
    found = re.search(rf'<a href="([^"]+)"[^>]*class="{css_class}"', page)
    return found.group(1).replace("&amp;", "&") if found else None


@pytest.fixture
def agent():
    return f.AgentFactory(name="calm-fox", status="crashed")


def open_log(client, agent, **params):
    response = client.get(log_url(agent.pk), params)
    assert response.status_code == HTTPStatus.OK
    return response.content.decode()


# --- the page ------------------------------------------------------------------------------


def test_each_kind_of_record_is_shown_recognisably(admin_client, agent):
    f.AgentLogChunkFactory(
        agent_id=agent.pk,
        agent_name=agent.name,
        content=jsonl(INIT, SAY, CALL, ANSWER, TOOL_ERROR, DONE, ODD) + "not json\n",
    )

    page = open_log(admin_client, agent)

    for kind, label in (
        ("system", "Session"),
        ("assistant_text", "Assistant"),
        ("tool_call", "Tool call"),
        ("tool_result", "Tool result"),
        ("error", "Tool error"),
        ("result", "Result"),
        ("other", "Other"),
        ("text", "Output"),
    ):
        assert f'class="cw-record kind-{kind}' in page, kind
        assert f'<span class="cw-label">{label}</span>' in page, label
    assert '<span class="cw-tool">Bash</span> <span class="cw-summary">ls -la src</span>' in page
    assert "<details><summary>2 lines: a.py…</summary><pre>a.py\nb.py</pre>" in page
    assert "done · in 12.3s · cost $0.04 · 3 turns" in page
    assert "model claude-sonnet-4 · cwd /srv/wt/a" in page
    assert '<pre class="cw-output">not json</pre>' in page


def test_a_chunk_mixing_json_and_plain_lines_shows_each_line_by_what_it_is(admin_client, agent):
    services.agent_log_append(
        agent_id=agent.pk,
        chunks=[
            {
                "content": json.dumps(SAY)
                + "\nError: rate limit reached, retrying in 30s\n"
                + '{"type":"assist\n'
                + "a <b>\x00</b> \ud800\n"
                + json.dumps(DONE)
            }
        ],
    )

    page = open_log(admin_client, agent)
    records = re.findall(r'class="cw-record kind-([a-z_]+)', page)

    assert records == ["assistant_text", "text", "text", "text", "result"]
    assert '<pre class="cw-output">Error: rate limit reached, retrying in 30s</pre>' in page
    assert '<pre class="cw-output">{&quot;type&quot;:&quot;assist</pre>' in page
    assert '<pre class="cw-output">a &lt;b&gt;\\x00&lt;/b&gt; \\ud800</pre>' in page
    assert "Reading it." in page and "done · in 12.3s" in page


def test_a_failed_run_is_shown_as_a_failure(admin_client, agent):
    failed = {"type": "result", "subtype": "error_max_turns", "is_error": True, "result": "Out."}
    f.AgentLogChunkFactory(agent_id=agent.pk, agent_name=agent.name, content=jsonl(failed))

    page = open_log(admin_client, agent)

    assert 'class="cw-record kind-result cw-failed"' in page
    assert '<span class="cw-label">Failed</span>' in page
    assert "failed (error_max_turns)" in page


def test_agent_text_is_escaped_never_run(admin_client, agent):
    attack = "<script>alert('x')</script>"
    say = {"type": "assistant", "message": {"content": [{"type": "text", "text": attack}]}}
    call = {
        "type": "assistant",
        "message": {"content": [{"type": "tool_use", "name": attack, "input": {"a": attack}}]},
    }
    answer = {"type": "user", "message": {"content": [{"type": "tool_result", "content": attack}]}}
    f.AgentLogChunkFactory(
        agent_id=agent.pk, agent_name=agent.name, content=jsonl(say, call, answer) + attack
    )

    page = open_log(admin_client, agent)

    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page


def test_a_long_tool_result_is_cut_and_says_how_much_is_left_out(admin_client, agent):
    long = {
        "type": "user",
        "message": {"content": [{"type": "tool_result", "content": "x" * 9000}]},
    }
    f.AgentLogChunkFactory(agent_id=agent.pk, agent_name=agent.name, content=jsonl(long))

    page = open_log(admin_client, agent)

    assert f"… {9000 - DETAIL_WIDTH} more characters not shown" in page
    assert "x" * (DETAIL_WIDTH + 1) not in page


def test_sessions_are_listed_newest_first_and_the_latest_opens(admin_client, agent):
    for session in (1, 2, 3):
        write_log(agent, 2, session=session, content=jsonl({**SAY, "session": session}))

    page = open_log(admin_client, agent)

    tabs = re.findall(r'class="cw-session[^"]*"[^>]*>Session (\d)<', page)
    assert tabs == ["3", "2", "1"]
    assert 'class="cw-session cw-current" aria-current="page">Session 3<' in page
    latest = list(AgentLogChunk.objects.filter(session_number=3).values_list("id", flat=True))
    assert ids_on(page) == latest


def test_an_earlier_session_shows_its_own_chunks_only(admin_client, agent):
    write_log(agent, 3, session=1)
    write_log(agent, 2, session=2)

    page = open_log(admin_client, agent, session=1)

    first = list(AgentLogChunk.objects.filter(session_number=1).values_list("id", flat=True))
    assert ids_on(page) == first
    assert 'aria-current="page">Session 1<' in page


def test_pages_follow_the_cursor_older_then_newer(admin_client, agent):
    write_log(agent, 5, session=1)
    write_log(agent, LOG_PAGE_CHUNKS * 2 + 30, session=2)
    ids = list(AgentLogChunk.objects.filter(session_number=2).values_list("id", flat=True))

    latest = open_log(admin_client, agent)
    assert ids_on(latest) == ids[-LOG_PAGE_CHUNKS:]
    assert link(latest, "cw-newer") is None

    older = admin_client.get(link(latest, "cw-older")).content.decode()
    assert ids_on(older) == ids[-2 * LOG_PAGE_CHUNKS : -LOG_PAGE_CHUNKS]

    oldest = admin_client.get(link(older, "cw-older")).content.decode()
    # The session's first 30 chunks: session 1's are not on its page, and none is older.
    assert ids_on(oldest) == ids[:30]
    assert link(oldest, "cw-older") is None
    assert "The session starts here" in oldest

    newer = admin_client.get(link(oldest, "cw-newer")).content.decode()
    assert ids_on(newer) == ids_on(older)
    back = admin_client.get(link(newer, "cw-newer")).content.decode()
    assert ids_on(back) == ids_on(latest)
    assert link(back, "cw-newer") is None


def test_the_first_page_reads_a_session_from_its_start(admin_client, agent):
    write_log(agent, 3, session=1)
    write_log(agent, LOG_PAGE_CHUNKS + 5, session=2)
    ids = list(AgentLogChunk.objects.filter(session_number=2).values_list("id", flat=True))

    first = admin_client.get(link(open_log(admin_client, agent), "cw-first")).content.decode()

    assert ids_on(first) == ids[:LOG_PAGE_CHUNKS]
    assert link(first, "cw-older") is None
    rest = admin_client.get(link(first, "cw-newer")).content.decode()
    assert ids_on(rest) == ids[LOG_PAGE_CHUNKS:]


@pytest.mark.parametrize("params", [{"after": "x"}, {"before": "-3"}, {"session": "99"}])
def test_a_bad_cursor_or_session_opens_the_latest_page(admin_client, agent, params):
    write_log(agent, 2, session=1)

    page = open_log(admin_client, agent, **params)

    assert len(ids_on(page)) == 2


def queries_to_open(client, agent) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(log_url(agent.pk))
    assert response.status_code == HTTPStatus.OK
    return len(captured.captured_queries)


def test_a_long_log_opens_with_as_many_queries_as_a_short_one(admin_client, agent):
    """Nothing counts or reads the whole log: the same few keyset reads at 100 chunks and
    at 10,000 (of which a page is shown)."""
    write_log(agent, 100)
    short = queries_to_open(admin_client, agent)
    write_log(agent, 9_900)
    long = queries_to_open(admin_client, agent)

    assert short == long
    assert long <= 6
    assert len(ids_on(admin_client.get(log_url(agent.pk)).content.decode())) == LOG_PAGE_CHUNKS


def test_an_empty_log_says_so(admin_client, agent):
    assert "This agent has written no log yet." in open_log(admin_client, agent)


def test_a_deleted_agents_log_is_still_shown(admin_client):
    gone = f.AgentFactory(name="gone-gnu")
    write_log(gone, 2)
    agent_id = gone.pk
    gone.delete()

    response = admin_client.get(log_url(agent_id))

    assert response.status_code == HTTPStatus.OK
    page = response.content.decode()
    assert "gone-gnu" in page
    assert "The agent was deleted; its log is kept." in page
    assert len(ids_on(page)) == 2


def test_an_unknown_agent_goes_back_to_the_list_with_a_message(admin_client):
    response = admin_client.get(log_url("nobody"), follow=True)

    assert response.redirect_chain[-1][0] == reverse("admin:agents_agent_changelist")
    assert any("nobody" in str(m) for m in response.context["messages"])


def test_the_log_is_linked_from_the_agent_list_its_page_and_each_chunk(admin_client, agent):
    write_log(agent, 1)
    chunk = AgentLogChunk.objects.get()
    url = log_url(agent.pk)

    assert (
        f'href="{url}"'
        in admin_client.get(reverse("admin:agents_agent_changelist")).content.decode()
    )
    change = reverse("admin:agents_agent_change", args=[agent.pk])
    assert f'href="{url}"' in admin_client.get(change).content.decode()
    chunks = admin_client.get(reverse("admin:agents_agentlogchunk_changelist")).content.decode()
    assert f"{url}?session=1&amp;after={chunk.id - 1}#chunk-{chunk.id}" in chunks


def test_the_log_never_shows_the_agents_account_secrets(admin_client):
    account = Account.objects.create(email="a@example.com", credentials='{"k": "SECRET-77"}')
    agent = f.AgentFactory(account=account)
    write_log(agent, 1)

    assert "SECRET-77" not in open_log(admin_client, agent)


def test_people_who_are_not_staff_are_sent_to_log_in(agent, client):
    write_log(agent, 1)
    url = log_url(agent.pk)
    assert client.get(url).status_code == HTTPStatus.FOUND

    guest = Client()
    guest.force_login(User.objects.create_user("guest", password="pw"))
    response = guest.get(url)
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"].startswith(reverse("admin:login"))


def test_staff_without_the_view_permission_are_refused(agent):
    staff = Client()
    staff.force_login(User.objects.create_user("staff", password="pw", is_staff=True))

    assert staff.get(log_url(agent.pk)).status_code == HTTPStatus.FORBIDDEN


# --- the records (agents.logformat) --------------------------------------------------------


def test_a_chunk_is_read_into_typed_records_in_order():
    records = parse_chunk(jsonl(INIT, SAY, CALL, ANSWER, TOOL_ERROR, DONE, ODD))

    assert [r["kind"] for r in records] == [
        "system",
        "assistant_text",
        "tool_call",
        "tool_result",
        "error",
        "result",
        "other",
    ]
    assert [describe(r) for r in records] == [
        "session started (model claude-sonnet-4, cwd /srv/wt/a)",
        "Reading it.",
        "→ Bash: ls -la src",
        "← result (2 lines): a.py…",
        "← error (1 line): no such file",
        "done in 12.3s, cost $0.04",
        json.dumps(ODD),
    ]


def test_a_line_that_is_not_json_is_plain_output_and_a_json_value_is_other():
    records = parse_chunk(jsonl(SAY) + 'Error: rate limit\n{"type":"assist\n[1, 2]\n')

    assert [(r["kind"], r["label"]) for r in records] == [
        ("assistant_text", "Assistant"),
        ("text", "Output"),
        ("text", "Output"),
        ("other", "Other"),
    ]
    assert [describe(r) for r in records[1:]] == ["Error: rate limit", '{"type":"assist', "[1, 2]"]


def test_an_error_record_and_thinking_are_read():
    [error] = parse_line('{"type":"error","error":{"message":"Overloaded"}}')
    assert (error["kind"], describe(error)) == ("error", "error: Overloaded")
    thinking = {
        "type": "assistant",
        "message": {"content": [{"type": "thinking", "thinking": "h"}]},
    }
    [thought] = parse_line(json.dumps(thinking))
    assert (thought["kind"], thought["label"], describe(thought)) == (
        "other",
        "Thinking",
        "(thinking) h",
    )


def test_a_tool_input_is_summarised_by_its_most_telling_key_and_kept_whole_when_longer():
    read = {"type": "tool_use", "name": "Read", "input": {"file_path": "/a.py", "limit": 30}}
    [call] = parse_line(json.dumps({"type": "assistant", "message": {"content": [read]}}))

    assert call["summary"] == "/a.py"
    assert json.loads(call["input"]) == read["input"]
