"""The ``cw_logs`` operator command: tail (and follow), export, prune."""

import io
import json
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from agents import services
from agents.management.commands.cw_logs import describe_record
from agents.models import AgentLogChunk
from tests import factories as f

pytestmark = pytest.mark.django_db

AT = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)

INIT = '{"type":"system","subtype":"init","model":"claude-sonnet-4","cwd":"/srv/wt/a","tools":[]}'
ASSISTANT = json.dumps(
    {
        "type": "assistant",
        "message": {
            "content": [
                {"type": "text", "text": "Let me look.\nFirst the tree."},
                {"type": "tool_use", "name": "Bash", "input": {"command": "ls -la src"}},
            ]
        },
    }
)
TOOL_RESULT = json.dumps(
    {
        "type": "user",
        "message": {
            "content": [{"type": "tool_result", "content": "a.py\nb.py\nc.py", "is_error": False}]
        },
    }
)
RESULT = (
    '{"type":"result","subtype":"success","is_error":false,'
    '"duration_ms":12345,"total_cost_usd":0.0412}'
)
OTHER = '{"type":"rate_limit","retry_in":30}'


def run(*args: str) -> tuple[str, str]:
    """Run ``cw_logs`` with ``args``; its standard output and error."""
    out, err = io.StringIO(), io.StringIO()
    call_command("cw_logs", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def chunk(agent, content: str, *, at: datetime = AT, session: int = 1) -> AgentLogChunk:
    return f.AgentLogChunkFactory(
        agent_id=agent.id,
        agent_name=agent.name,
        content=content,
        created_at=at,
        session_number=session,
    )


@pytest.fixture
def agent():
    return f.AgentFactory(name="calm-fox")


@pytest.fixture
def session_log(agent):
    """A short Claude Code session: four chunks, one of them of two records."""
    return [
        chunk(agent, INIT + "\n"),
        chunk(agent, ASSISTANT + "\n" + TOOL_RESULT + "\n"),
        chunk(agent, OTHER),
        chunk(agent, RESULT + "\n"),
    ]


# --- tail ------------------------------------------------------------------------------


def test_tail_prints_the_records_readably_behind_their_time(agent, session_log):
    out, err = run("tail", "calm-fox")

    assert out.splitlines() == [
        "05:06:07 session started (model claude-sonnet-4, cwd /srv/wt/a)",
        "05:06:07 Let me look.",
        "         First the tree.",
        "05:06:07 → Bash: ls -la src",
        "05:06:07 ← result (3 lines): a.py…",
        f"05:06:07 {OTHER}",
        "05:06:07 done in 12.3s, cost $0.04",
    ]
    assert err == ""


def test_tail_colours_only_on_a_terminal_or_when_forced(agent, session_log):
    plain, _ = run("tail", "calm-fox")
    out = io.StringIO()
    call_command("cw_logs", "tail", "calm-fox", force_color=True, stdout=out)

    assert "\x1b[" not in plain
    assert "\x1b[" in out.getvalue()
    assert "done in 12.3s, cost $0.04" in out.getvalue()


def test_tail_finds_the_agent_by_id_too_and_counts_records_not_chunks(agent, session_log):
    out, _ = run("tail", agent.id, "-n", "3", "--raw")

    # The last three records: the second chunk's second record, then two chunks.
    assert out.splitlines() == [TOOL_RESULT, OTHER, RESULT]


def test_tail_raw_prints_every_line_as_stored(agent, session_log):
    out, _ = run("tail", "calm-fox", "--raw")

    assert out.splitlines() == [INIT, ASSISTANT, TOOL_RESULT, OTHER, RESULT]


def test_tail_prints_plain_lines_as_text_between_the_records(agent):
    services.agent_log_append(
        agent_id=agent.id,
        chunks=[
            {
                "content": INIT
                + "\nError: rate limit reached, retrying in 30s\n"
                + '{"type":"assist\n'
                + "nul \x00 and \x1b[2J\n"
                + RESULT
            }
        ],
    )

    out, _ = run("tail", "calm-fox")
    raw, _ = run("tail", "calm-fox", "--raw")

    assert [line[9:] for line in out.splitlines()] == [
        "session started (model claude-sonnet-4, cwd /srv/wt/a)",
        "Error: rate limit reached, retrying in 30s",
        '{"type":"assist',
        "nul \\x00 and \\x1b[2J",  # stored escaped; the terminal's escape made visible
        "done in 12.3s, cost $0.04",
    ]
    assert raw.splitlines()[1:4] == [
        "Error: rate limit reached, retrying in 30s",
        '{"type":"assist',
        "nul \\x00 and \\x1b[2J",
    ]


def test_tail_reads_back_over_several_pages_for_many_records(agent):
    AgentLogChunk.objects.bulk_create(
        AgentLogChunk(agent_id=agent.id, agent_name=agent.name, content=f'{{"n":{n}}}')
        for n in range(1205)
    )

    out, _ = run("tail", "calm-fox", "-n", "1100", "--raw")

    lines = out.splitlines()
    assert len(lines) == 1100
    assert lines[0] == '{"n":105}' and lines[-1] == '{"n":1204}'


def test_tail_of_an_empty_log_or_zero_lines_prints_nothing(agent, session_log):
    assert run("tail", "calm-fox", "-n", "0") == ("", "")
    assert run("tail", f.AgentFactory().name) == ("", "")


def test_tail_of_an_unknown_agent_is_refused_with_the_repositorys_code():
    with pytest.raises(CommandError) as error:
        run("tail", "no-such-agent")

    assert str(error.value) == "Agent 'no-such-agent' does not exist. (agent_not_found)"


@pytest.mark.parametrize(
    "args",
    [
        ("--timeout", "5"),  # only with -f
        ("-f", "--interval", "0"),
        ("-f", "--timeout", "-1"),
        ("-n", "-3"),
    ],
)
def test_tail_refuses_bad_options(agent, args):
    with pytest.raises(CommandError):
        run("tail", "calm-fox", *args)


def test_describe_record_reads_a_failed_run_an_error_result_and_anything_else():
    assert describe_record(
        '{"type":"result","subtype":"error_max_turns","is_error":true,"duration_ms":2000}'
    ) == [("error", "failed (error_max_turns) in 2.0s")]
    tool_error = {
        "type": "user",
        "message": {
            "content": [
                {
                    "type": "tool_result",
                    "is_error": True,
                    "content": [{"type": "text", "text": "x"}],
                }
            ]
        },
    }
    assert describe_record(json.dumps(tool_error)) == [("error", "← error (1 line): x")]
    long_input = {"type": "tool_use", "name": "Read", "input": {"file_path": "/" + "a" * 300}}
    [(kind, text)] = describe_record(
        json.dumps({"type": "assistant", "message": {"content": [long_input]}})
    )
    assert kind == "tool" and text.startswith("→ Read: /aaa") and len(text) < 120
    assert describe_record("[1, 2]") == [("raw", "[1, 2]")]
    assert describe_record("not json") == [("output", "not json")]
    assert describe_record('{"type":"assist') == [("output", '{"type":"assist')]


@pytest.mark.django_db(transaction=True)
@pytest.mark.concurrency
def test_tail_follow_prints_new_chunks_as_they_are_written():
    """The command follows in a thread (its own connection) while this test appends
    through the service; bounded by ``--timeout``."""
    agent = f.AgentFactory(name="busy-owl")
    services.agent_log_append(agent_id=agent.id, chunks=[{"content": '{"n":1}'}])
    out = io.StringIO()
    failures: list[BaseException] = []

    def follow() -> None:
        try:
            call_command(
                "cw_logs",
                "tail",
                "busy-owl",
                "-f",
                "--raw",
                "--interval",
                "0.1",
                "--timeout",
                "2",
                stdout=out,
                stderr=io.StringIO(),
            )
        except BaseException as error:
            failures.append(error)
        finally:
            connection.close()

    thread = threading.Thread(target=follow)
    started = time.monotonic()
    thread.start()
    time.sleep(0.5)
    services.agent_log_append(
        agent_id=agent.id, chunks=[{"content": '{"n":2}'}, {"content": '{"n":3}\n{"n":4}'}]
    )
    time.sleep(0.5)
    services.agent_log_append(agent_id=agent.id, chunks=[{"content": '{"n":5}'}])
    thread.join(timeout=15)

    assert not thread.is_alive(), "tail -f did not stop at its timeout"
    assert failures == []
    assert out.getvalue().splitlines() == [f'{{"n":{n}}}' for n in range(1, 6)]
    assert time.monotonic() - started < 10


# --- export ----------------------------------------------------------------------------


def test_export_writes_every_chunk_in_order_as_ndjson(agent, session_log):
    other = f.AgentFactory()
    chunk(other, '{"not":"mine"}')

    out, err = run("export", "calm-fox")

    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["id"] for line in lines] == [c.id for c in session_log]
    assert lines[1] == {
        "id": session_log[1].id,
        "agent_id": agent.id,
        "agent_name": "calm-fox",
        "session_number": 1,
        "created_at": "2025-03-04T05:06:07+00:00",
        "content": ASSISTANT + "\n" + TOOL_RESULT + "\n",
    }
    assert err == ""


def test_export_after_id_resumes_where_an_export_stopped(agent, session_log):
    out, _ = run("export", agent.id, "--after-id", str(session_log[1].id))

    assert [json.loads(line)["id"] for line in out.splitlines()] == [c.id for c in session_log[2:]]


def test_export_reads_page_by_page(agent):
    AgentLogChunk.objects.bulk_create(
        AgentLogChunk(agent_id=agent.id, agent_name=agent.name, content=f'{{"n":{n}}}')
        for n in range(10)
    )

    def page_queries(page_size: int) -> tuple[int, list[int]]:
        with CaptureQueriesContext(connection) as captured:
            out, _ = run("export", "calm-fox", "--page-size", str(page_size))
        selects = [q for q in captured.captured_queries if "agent_log_chunks" in q["sql"]]
        contents = [json.loads(line)["content"] for line in out.splitlines()]
        return len(selects), [json.loads(content)["n"] for content in contents]

    # Pages of 3 are 3, 3, 3 and 1 chunks; one page of 10 is followed by an empty one.
    assert page_queries(3) == (4, list(range(10)))
    assert page_queries(10) == (2, list(range(10)))


def test_export_of_an_unknown_agent_is_refused():
    with pytest.raises(CommandError, match=r"\(agent_not_found\)$"):
        run("export", "nobody")


# --- prune -----------------------------------------------------------------------------


@pytest.fixture
def aged_logs():
    """Two agents, each with old chunks (40 days) and recent ones."""
    old, recent = timezone.now() - timedelta(days=40), timezone.now() - timedelta(days=2)
    a, b = f.AgentFactory(name="a-ant"), f.AgentFactory(name="b-bee")
    made = {
        (agent.name, age): [chunk(agent, "{}", at=at) for _ in range(count)]
        for agent, age, at, count in (
            (a, "old", old, 3),
            (a, "recent", recent, 2),
            (b, "old", old, 1),
            (b, "recent", recent, 1),
        )
    }
    return a, b, made


def remaining(agent) -> int:
    return AgentLogChunk.objects.filter(agent_id=agent.id).count()


def test_prune_removes_only_the_old_chunks_of_the_chosen_agent(aged_logs):
    a, b, made = aged_logs

    out, _ = run("prune", "--older-than", "30d", "--agent", "a-ant")

    lines = out.splitlines()
    assert lines[0] == f"a-ant ({a.id}): removed 3 chunks"
    assert lines[1].startswith("Total: removed 3 chunks older than 30d (written before ")
    assert len(lines) == 2
    assert set(AgentLogChunk.objects.filter(agent_id=a.id).values_list("id", flat=True)) == {
        c.id for c in made["a-ant", "recent"]
    }
    assert remaining(b) == 2


def test_prune_of_every_agent_reports_each_and_the_total(aged_logs):
    a, b, _ = aged_logs

    out, _ = run("prune", "--older-than", "720h")

    assert out.splitlines()[:2] == [
        f"a-ant ({a.id}): removed 3 chunks",
        f"b-bee ({b.id}): removed 1 chunk",
    ]
    assert out.splitlines()[2].startswith("Total: removed 4 chunks older than 720h")
    assert (remaining(a), remaining(b)) == (2, 1)


def test_prune_dry_run_removes_nothing_and_reports_the_same_counts(aged_logs):
    a, b, _ = aged_logs

    dry, _ = run("prune", "--older-than", "30d", "--dry-run")
    assert (remaining(a), remaining(b)) == (5, 2)
    real, _ = run("prune", "--older-than", "30d")

    assert dry.replace("would remove", "removed").splitlines()[:2] == real.splitlines()[:2]
    assert dry.splitlines()[0] == f"a-ant ({a.id}): would remove 3 chunks"
    assert dry.splitlines()[2].startswith("Total: would remove 4 chunks")


def test_prune_json_is_one_document(aged_logs):
    a, b, _ = aged_logs

    out, _ = run("prune", "--older-than", "30d", "--json", "--dry-run")
    report = json.loads(out)

    assert report["older_than"] == "30d"
    assert report["dry_run"] is True
    cutoff = datetime.fromisoformat(report["before"])
    assert abs(cutoff - (timezone.now() - timedelta(days=30))) < timedelta(minutes=1)
    assert report["agents"] == [
        {"agent_id": a.id, "agent_name": "a-ant", "chunks": 3},
        {"agent_id": b.id, "agent_name": "b-bee", "chunks": 1},
    ]
    assert report["total"] == 4

    out, _ = run("prune", "--older-than", "30d", "--json", "--agent", b.id)
    assert json.loads(out)["agents"] == [{"agent_id": b.id, "agent_name": "b-bee", "chunks": 1}]
    assert json.loads(out)["dry_run"] is False
    assert remaining(b) == 1


def test_prune_with_nothing_to_remove_says_so(aged_logs):
    out, _ = run("prune", "--older-than", "90d")

    assert out.startswith("No chunks older than 90d (written before ")


def test_prune_deletes_in_batches(aged_logs):
    a, b, _ = aged_logs
    batches: list[int] = []

    pruned = services.agent_log_prune(
        older_than=timezone.now() - timedelta(days=30), batch_size=2, on_batch=batches.append
    )

    assert [(p.agent_name, p.chunks) for p in pruned] == [("a-ant", 3), ("b-bee", 1)]
    assert batches == [2, 1, 1]
    assert (remaining(a), remaining(b)) == (2, 1)


def test_an_interrupted_prune_has_removed_the_oldest_chunks_and_kept_them_removed(aged_logs):
    a, _, made = aged_logs

    def interrupt(_count: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        services.agent_log_prune(
            older_than=timezone.now() - timedelta(days=30),
            agent_id=a.id,
            batch_size=2,
            on_batch=interrupt,
        )

    kept = set(AgentLogChunk.objects.filter(agent_id=a.id).values_list("id", flat=True))
    assert kept == {made["a-ant", "old"][2].id} | {c.id for c in made["a-ant", "recent"]}


@pytest.mark.parametrize("older_than", ["30", "0d", "1w", "3 days", "soon"])
def test_prune_refuses_a_bad_duration(aged_logs, older_than):
    with pytest.raises(CommandError, match="--older-than must be a positive duration"):
        run("prune", "--older-than", older_than)

    assert AgentLogChunk.objects.count() == 7


def test_prune_of_an_unknown_agent_is_refused(aged_logs):
    with pytest.raises(CommandError, match=r"\(agent_not_found\)$"):
        run("prune", "--older-than", "30d", "--agent", "nobody")

    assert AgentLogChunk.objects.count() == 7


@pytest.mark.processes
def test_a_refusal_exits_with_status_1_and_one_line_on_stderr():
    """A refusal made before any database access, so the process needs no test database
    (it would not see this test's one)."""
    run_ = subprocess.run(
        [sys.executable, "manage.py", "cw_logs", "prune", "--older-than", "soon"],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert run_.returncode == 1
    assert run_.stdout == ""
    assert len(run_.stderr.strip().splitlines()) == 1
    assert "--older-than" in run_.stderr
