"""``runner.config.load``: the TOML file, the environment over it, and a one-line
``ConfigError`` for every mistake."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from runner.config import ConfigError, load
from tests.runner.command import cw_runner

FULL = """
server = "http://cw.example:8000/"
token = "cw_file"
name = "build-1"
host = "box"
workspace = "{workspace}"
concurrency = 3
heartbeat_seconds = 2.5
grace_seconds = 7

[agents.claude]
command = ["claude", "-p", "@{prompt_file}", "--output-format", "stream-json"]
resume = ["claude", "--resume", "{session_id}", "-p", "Go on."]
format = "claude-stream-json"
env = { CLAUDE_CONFIG_DIR = "{credentials_dir}" }

[agents.codex]
command = ["codex", "{worktree}"]
"""

MINIMAL = """
server = "http://cw.example"
token = "cw_x"
workspace = "{workspace}"
host = "box"
[agents.plain]
command = ["echo", "hi"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "runner.toml"
    path.write_text(text.replace("{workspace}", str(tmp_path / "ws")))
    return path


def error_of(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as raised:
        load(write(tmp_path, text), environ={} if environ is None else environ)
    message = str(raised.value)
    assert "\n" not in message
    return message


def test_a_full_file(tmp_path: Path) -> None:
    config = load(write(tmp_path, FULL), environ={})
    assert config.server == "http://cw.example:8000"
    assert config.token == "cw_file"
    assert (config.name, config.host) == ("build-1", "box")
    assert config.workspace == (tmp_path / "ws").resolve()
    assert config.concurrency == 3
    assert config.heartbeat_seconds == 2.5
    assert config.grace_seconds == 7.0
    assert config.wait_seconds == 10.0  # a default
    assert config.providers == ["claude", "codex"]
    claude = config.agents["claude"]
    assert claude.command[2] == "@{prompt_file}"
    assert claude.resume is not None and claude.resume[2] == "{session_id}"
    assert claude.format == "claude-stream-json"
    assert dict(claude.env) == {"CLAUDE_CONFIG_DIR": "{credentials_dir}"}
    codex = config.agents["codex"]
    assert (codex.format, codex.resume, dict(codex.env)) == ("plain", None, {})


def test_the_environment_wins_over_the_file(tmp_path: Path) -> None:
    config = load(
        write(tmp_path, FULL),
        environ={"CW_RUNNER_TOKEN": "cw_env", "CW_RUNNER_CONCURRENCY": "5", "CW_RUNNER_NAME": ""},
    )
    assert config.token == "cw_env"
    assert config.concurrency == 5
    assert config.name == "build-1"  # an empty variable does not count


def test_everything_but_the_agents_from_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "agents.toml"
    path.write_text('[agents.x]\ncommand = ["x"]\n')
    config = load(
        path,
        environ={
            "CW_RUNNER_SERVER": "https://cw.example",
            "CW_RUNNER_TOKEN": "t",
            "CW_RUNNER_WORKSPACE": str(tmp_path),
            "CW_RUNNER_HOST": "h",
        },
    )
    assert (config.server, config.token, config.name) == ("https://cw.example", "t", "h")


def test_token_file(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("  cw_from_file\n")
    text = MINIMAL.replace('token = "cw_x"', f'token_file = "{secret}"')
    assert load(write(tmp_path, text), environ={}).token == "cw_from_file"


def test_a_missing_token_file(tmp_path: Path) -> None:
    text = MINIMAL.replace('token = "cw_x"', f'token_file = "{tmp_path / "absent"}"')
    assert "token_file" in error_of(tmp_path, text)


def test_name_defaults_to_the_host(tmp_path: Path) -> None:
    assert load(write(tmp_path, MINIMAL), environ={}).name == "box"
    config = load(write(tmp_path, MINIMAL.replace('host = "box"', "")), environ={})
    assert config.host == socket.gethostname()
    assert config.name == config.host


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('server = "http://cw.example"', "", "server is required"),
        ('workspace = "{workspace}"', "", "workspace is required"),
        ('token = "cw_x"', "", "a token is required"),
        ('token = "cw_x"', 'token = "  "', "token must be a non-empty string"),
        ('[agents.plain]\ncommand = ["echo", "hi"]', "", "[agents.<provider>]"),
        ('command = ["echo", "hi"]', 'command = ["echo"]\nformat = "json"', "format must be"),
        ('command = ["echo", "hi"]', 'command = ["echo", "{nope}"]', "unknown placeholder {nope}"),
        ('command = ["echo", "hi"]', 'command = ["echo", "{"]', "not a valid template"),
        ('command = ["echo", "hi"]', 'command = ["x"]\nenv = { A = "{nope}" }', "{nope}"),
        ('command = ["echo", "hi"]', 'command = ["x"]\nenv = { A = 1 }', "env must be"),
        ('command = ["echo", "hi"]', 'command = "echo hi"', "non-empty list of strings"),
        ('command = ["echo", "hi"]', "command = []", "non-empty list of strings"),
        ('command = ["echo", "hi"]', 'command = ["x", 1]', "non-empty list of strings"),
        ('command = ["echo", "hi"]', 'command = ["x"]\nresume = "y"', "resume must be"),
        ('command = ["echo", "hi"]', 'format = "plain"', "needs a command"),
        ('command = ["echo", "hi"]', 'command = ["x"]\nshell = true', "unknown key 'shell'"),
        ('host = "box"', 'host = "box"\ncolour = "red"', "unknown key 'colour'"),
        ('server = "http://cw.example"', 'server = "cw.example"', "http(s) URL"),
        ('server = "http://cw.example"', 'server = "ftp://cw"', "http(s) URL"),
        ('host = "box"', 'host = "box"\nconcurrency = 0', "positive"),
        ('host = "box"', 'host = "box"\nconcurrency = -1', "positive"),
        ('host = "box"', 'host = "box"\nconcurrency = "x"', "must be a number"),
        ('host = "box"', 'host = "box"\nconcurrency = true', "positive"),
        ('host = "box"', 'host = "box"\nconcurrency = 1.5', "whole number"),
        ('host = "box"', 'host = "box"\nheartbeat_timeout_seconds = 2.5', "whole number"),
        ('host = "box"', 'host = "box"\nheartbeat_seconds = 0', "positive"),
    ],
)
def test_each_mistake(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert old in MINIMAL
    assert expected in error_of(tmp_path, MINIMAL.replace(old, new))


def test_agents_must_be_tables(tmp_path: Path) -> None:
    text = MINIMAL.replace('[agents.plain]\ncommand = ["echo", "hi"]', "agents = { plain = 1 }")
    assert "[agents.plain] must be a table" in error_of(tmp_path, text)


@pytest.mark.parametrize("value", ["0", "x", "-3", "2.5"])
def test_a_bad_concurrency_from_the_environment(tmp_path: Path, value: str) -> None:
    message = error_of(tmp_path, MINIMAL, {"CW_RUNNER_CONCURRENCY": value})
    assert "concurrency" in message


def test_not_toml_and_no_file(tmp_path: Path) -> None:
    assert "not valid TOML" in error_of(tmp_path, "server = ")
    with pytest.raises(ConfigError, match="no such file"):
        load(tmp_path / "absent.toml", environ={})


@pytest.mark.processes
def test_the_command_line_says_a_mistake_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('server = "http://cw.example"\nworkspace = "/tmp/w"\ntoken = "t"\n')
    done = cw_runner("--config", str(bad))
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("cw-runner: ")
    assert "[agents.<provider>]" in lines[0]


def test_everything_from_the_environment_agents_too(tmp_path: Path) -> None:
    """No file at all: every key, an agent's included, from ``CW_RUNNER_*``; an agent key
    from the environment wins over the file's."""
    environ = {
        "CW_RUNNER_SERVER": "https://cw.example",
        "CW_RUNNER_TOKEN": "t",
        "CW_RUNNER_WORKSPACE": str(tmp_path),
        "CW_RUNNER_AGENTS__CLAUDE__COMMAND": '["claude", "-p", "{prompt_file}"]',
        "CW_RUNNER_AGENTS__CLAUDE__RESUME": '["claude", "--resume", "{session_id}"]',
        "CW_RUNNER_AGENTS__CLAUDE__FORMAT": "claude-stream-json",
        "CW_RUNNER_AGENTS__CLAUDE__ENV": '{"CLAUDE_CONFIG_DIR": "{credentials_dir}"}',
    }
    config = load(None, environ=environ)
    claude = config.agents["claude"]
    assert claude.command == ("claude", "-p", "{prompt_file}")
    assert claude.resume == ("claude", "--resume", "{session_id}")
    assert claude.format == "claude-stream-json"
    assert claude.env == {"CLAUDE_CONFIG_DIR": "{credentials_dir}"}
    path = tmp_path / "agents.toml"
    path.write_text('[agents.claude]\ncommand = ["from-file"]\nformat = "plain"\n')
    both = load(path, environ={**environ, "CW_RUNNER_AGENTS__CLAUDE__FORMAT": ""})
    assert both.agents["claude"].command[0] == "claude" and both.agents["claude"].format == "plain"


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("CW_RUNNER_AGENTS__CLAUDE__COMMAND", "claude -p", "must be JSON"),
        ("CW_RUNNER_AGENTS__CLAUDE", '["x"]', "<PROVIDER>__<KEY>"),
        ("CW_RUNNER_AGENTS__CLAUDE__COMMAND", '"claude"', "non-empty list"),
        ("CW_RUNNER_AGENTS__CLAUDE__SHELL", "bash", "unknown key 'shell'"),
    ],
)
def test_a_bad_agent_key_from_the_environment(
    tmp_path: Path, variable: str, value: str, says: str
) -> None:
    environ = {
        "CW_RUNNER_SERVER": "https://cw.example",
        "CW_RUNNER_TOKEN": "t",
        "CW_RUNNER_WORKSPACE": str(tmp_path),
        "CW_RUNNER_AGENTS__CLAUDE__COMMAND": '["claude"]',
        variable: value,
    }
    with pytest.raises(ConfigError, match=re.escape(says)):
        load(None, environ=environ)
