"""Commands never write the terminal escape sequences they were sent: a name, an email, a
log record holding ``ESC ] 0 ; pwned BEL`` (retitle the window) or ``ESC [ 2 J`` (clear
the screen) is printed with the controls written out (``core.text.terminal_safe``),
in text and in JSON alike."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from core.models import ApiToken
from core.text import json_terminal_safe, terminal_safe
from core.tokens import api_token_create
from tests import factories as f

pytestmark = pytest.mark.django_db

TITLE = "\x1b]0;pwned\x07"
CLEAR = "\x1b[2J"
#: A name that would retitle the window and clear the screen, with a C1 CSI and a
#: right-to-left override for good measure.
HOSTILE = f"{TITLE}evil{CLEAR}\x9b31m\u202eexe.txt"
#: What each control of ``HOSTILE`` is printed as.
SHOWN = ["\\x1b]0;pwned\\x07", "\\x1b[2J", "\\x9b31m", "\\u202e"]


def assert_safe(output: str) -> None:
    """Nothing a terminal acts on but line ends (and the colours a command adds itself:
    none, the tests' output is no terminal)."""
    assert not any(c in output for c in "\x1b\x07\x9b\u202e\r"), repr(output)


def run(*arguments: str) -> str:
    out, err = StringIO(), StringIO()
    call_command(*arguments, stdout=out, stderr=err)
    return out.getvalue() + err.getvalue()


# --- the helper ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (TITLE, "\\x1b]0;pwned\\x07"),
        (CLEAR, "\\x1b[2J"),
        ("a\rb", "a\\x0db"),
        ("a\nb\tc", "a\\x0ab\\x09c"),
        ("\x00\x7f\x85\x9b", "\\x00\\x7f\\x85\\x9b"),
        ("\u202eexe.txt\u2066\u200f", "\\u202eexe.txt\\u2066\\u200f"),
        ("plain text, é, 漢字, emoji 👩‍💻", "plain text, é, 漢字, emoji 👩‍💻"),
    ],
)
def test_terminal_safe_writes_out_every_control(text, shown):
    assert terminal_safe(text) == shown


def test_terminal_safe_keeps_line_feeds_and_tabs_of_text_that_spans_lines():
    assert terminal_safe(f"one\ttwo\nthree{CLEAR}\r", lines=True) == "one\ttwo\nthree\\x1b[2J\\x0d"


def test_json_terminal_safe_is_the_same_json_value():
    value = {"name": HOSTILE, "del": "\x7f"}
    text = json_terminal_safe(json.dumps(value, ensure_ascii=False))

    assert_safe(text)
    assert "\x7f" not in text
    assert json.loads(text) == value


# --- the commands ----------------------------------------------------------------------------


def test_cw_status_shows_hostile_names_written_out():
    initiative = f.InitiativeFactory(name=HOSTILE)
    f.PhaseFactory(initiative=initiative, name=HOSTILE, status="pending_review")
    agent = f.AgentFactory(name=f"agent{CLEAR}", status="crashed", initiative=initiative)
    f.MessageFactory(content=HOSTILE, sender_id=agent.pk)

    output = run("cw_status")

    assert_safe(output)
    assert all(shown in output for shown in SHOWN)


def test_cw_status_json_is_safe_and_the_same_value():
    f.InitiativeFactory(name=HOSTILE)

    output = run("cw_status", "--json")

    assert_safe(output)
    names = [i["name"] for i in json.loads(output)["initiatives"]["items"]]
    assert names == [HOSTILE]


@pytest.fixture
def hostile_log():
    agent = f.AgentFactory(name="agent-x")
    records = [
        {"type": "assistant", "message": {"content": [{"type": "text", "text": HOSTILE}]}},
        {"type": "result", "subtype": "error", "is_error": True, "result": CLEAR},
        {"type": "unknown", "title": f"{TITLE}\u009b"},
    ]
    content = "\n".join(json.dumps(record, ensure_ascii=False) for record in records)
    f.AgentLogChunkFactory(agent_id=agent.pk, agent_name=agent.name, content=content)
    return agent, content


@pytest.mark.parametrize("raw", [[], ["--raw"]], ids=["readable", "raw"])
def test_cw_logs_tail_shows_escapes_a_log_was_sent_written_out(hostile_log, raw):
    agent, _ = hostile_log

    output = run("cw_logs", "tail", agent.pk, *raw)

    assert_safe(output)
    assert "\\x1b[2J" in output or "\\u001b[2J" in output


def test_cw_logs_export_is_safe_and_loses_nothing(hostile_log):
    agent, content = hostile_log

    output = run("cw_logs", "export", agent.pk)

    assert_safe(output)
    assert [json.loads(line)["content"] for line in output.splitlines()] == [content]


def test_cw_logs_prune_and_refusals_show_names_written_out():
    agent = f.AgentFactory(name=HOSTILE)
    f.AgentLogChunkFactory(agent_id=agent.pk, agent_name=agent.name)

    output = run("cw_logs", "prune", "--older-than", "1m", "--dry-run")

    assert_safe(output)
    with pytest.raises(CommandError) as refused:
        run("cw_logs", "tail", f"nobody{CLEAR}")
    assert_safe(str(refused.value))
    assert "\\x1b[2J" in str(refused.value)


@pytest.mark.parametrize("json_output", [[], ["--json"]], ids=["table", "json"])
def test_cw_accounts_list_shows_hostile_emails_written_out(json_output):
    f.AccountFactory(email=f"{TITLE}x@example.com", provider=f"p{CLEAR}")

    output = run("cw_accounts", "list", *json_output)

    assert_safe(output)


def test_list_create_and_revoke_api_token_show_hostile_names_written_out():
    created = run("create_api_token", f"tool{TITLE}")
    token = ApiToken.objects.get()
    api_token_create(name=f"other{CLEAR}")

    listed = run("list_api_tokens")
    revoked = run("revoke_api_token", token.pk)

    for output in (created, listed, revoked):
        assert_safe(output)
    assert "tool\\x1b]0;pwned\\x07" in listed


def test_cw_import_shows_names_from_the_file_written_out(tmp_path):
    initiative = f.InitiativeFactory(name="Imported")
    f.AgentFactory(initiative=initiative, name=f"agent{TITLE}")
    path = tmp_path / "export.json"
    run("cw_export", initiative.pk, "-o", str(path))

    # Under fresh ids the agent's name is taken, and the renaming says both names.
    output = run("cw_import", str(path), "--as-new")

    assert_safe(output)
    assert "agent\\x1b]0;pwned\\x07" in output
