"""The runner's configuration: a TOML file, any key also from the environment.

    server = "http://cw.example:8000"
    token_file = "~/.config/cw/runner.token"   # or token = "cw_..."
    name = "build-1"                           # default: the host's name
    workspace = "~/cw-runner"                  # a folder the runner owns
    concurrency = 2

    [agents.claude]
    command = ["claude", "-p", "@{prompt_file}", "--output-format", "stream-json", "--verbose"]
    resume = ["claude", "--resume", "{session_id}", "-p", "Go on.",
              "--output-format", "stream-json", "--verbose"]
    format = "claude-stream-json"
    env = { CLAUDE_CONFIG_DIR = "{credentials_dir}" }

A top-level key comes from ``CW_RUNNER_<KEY>`` when set (``CW_RUNNER_TOKEN``,
``CW_RUNNER_CONCURRENCY``...), and an agent's from ``CW_RUNNER_AGENTS__<PROVIDER>__<KEY>``
(JSON for ``command``, ``resume`` and ``env``); the environment wins over the file.
Every mistake is a ``ConfigError`` with a one-line reason.
"""

from __future__ import annotations

import json
import os
import socket
import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMATS = ("claude-stream-json", "plain")
PLACEHOLDERS = frozenset(
    {"prompt_file", "session_id", "worktree", "credentials_dir", "run_id", "task_id"}
)
ENV_PREFIX = "CW_RUNNER_"
_TOP_KEYS = {
    "server": str,
    "token": str,
    "token_file": str,
    "name": str,
    "host": str,
    "workspace": str,
    "concurrency": int,
    "heartbeat_seconds": float,
    "heartbeat_timeout_seconds": int,
    "grace_seconds": float,
    "wait_seconds": float,
    "log_flush_seconds": float,
}


class ConfigError(Exception):
    """The configuration cannot be used; the message says why, in one line."""


@dataclass(frozen=True)
class AgentConfig:
    provider: str
    command: tuple[str, ...]
    resume: tuple[str, ...] | None = None
    format: str = "plain"
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Config:
    server: str
    token: str
    name: str
    host: str
    workspace: Path
    agents: Mapping[str, AgentConfig]
    concurrency: int = 1
    #: Seconds between heartbeats; the run is lost after ``heartbeat_timeout_seconds``.
    heartbeat_seconds: float = 10.0
    heartbeat_timeout_seconds: int = 120
    #: After SIGTERM, how long runs may go on before they are stopped.
    grace_seconds: float = 60.0
    #: How long one take-next waits for work when nothing fits.
    wait_seconds: float = 10.0
    #: Lines go to the log at least this often (and at once past a batch's size).
    log_flush_seconds: float = 0.5

    @property
    def providers(self) -> list[str]:
        return list(self.agents)


def _template(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where} must be a non-empty list of strings (the argument list).")
    for argument in value:
        _check_placeholders(argument, where)
    return tuple(value)


def _check_placeholders(text: str, where: str) -> None:
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    except ValueError as error:
        raise ConfigError(f"{where}: {text!r} is not a valid template ({error}).") from None
    unknown = names - PLACEHOLDERS
    if unknown:
        raise ConfigError(
            f"{where}: unknown placeholder {{{sorted(unknown)[0]}}} "
            f"(known: {', '.join('{' + p + '}' for p in sorted(PLACEHOLDERS))})."
        )


def _agent(provider: str, raw: Any) -> AgentConfig:
    where = f"[agents.{provider}]"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a table.")
    unknown = set(raw) - {"command", "resume", "format", "env"}
    if unknown:
        raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r}.")
    if "command" not in raw:
        raise ConfigError(f"{where} needs a command (an argument list).")
    fmt = raw.get("format", "plain")
    if fmt not in FORMATS:
        raise ConfigError(f"{where}: format must be one of {', '.join(FORMATS)}, not {fmt!r}.")
    env = raw.get("env", {})
    if not isinstance(env, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in env.items()
    ):
        raise ConfigError(f"{where}: env must be a table of strings.")
    for value in env.values():
        _check_placeholders(value, f"{where} env")
    resume = raw.get("resume")
    return AgentConfig(
        provider=provider,
        command=_template(raw["command"], f"{where} command"),
        resume=None if resume is None else _template(resume, f"{where} resume"),
        format=fmt,
        env=dict(env),
    )


def _coerce(key: str, value: Any, kind: type) -> Any:
    if kind is str:
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{key} must be a non-empty string.")
        return value.strip()
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key} must be a number, not {value!r}.") from None
    if isinstance(value, bool) or number <= 0:
        raise ConfigError(f"{key} must be a positive number, not {value!r}.")
    if kind is int and isinstance(value, float) and value != number:
        # int(1.5) is 1: a fraction must not be cut off without a word.
        raise ConfigError(f"{key} must be a whole number, not {value!r}.")
    return number


def _agents_from_environment(agents: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """``[agents.<provider>]`` keys from ``CW_RUNNER_AGENTS__<PROVIDER>__<KEY>``: a JSON
    list for ``command`` and ``resume``, a JSON table for ``env``, text for ``format``
    (provider and key in lower case)."""
    prefix = ENV_PREFIX + "AGENTS__"
    for variable, value in sorted(environ.items()):
        if not variable.startswith(prefix) or value == "":
            continue
        provider, _, key = variable.removeprefix(prefix).lower().partition("__")
        if not provider or not key:
            raise ConfigError(f"{variable}: name it {prefix}<PROVIDER>__<KEY>.")
        table = agents.setdefault(provider, {})
        if not isinstance(table, dict):
            raise ConfigError(f"[agents.{provider}] must be a table.")
        if key in ("command", "resume", "env"):
            try:
                table[key] = json.loads(value)
            except ValueError:
                raise ConfigError(
                    f"{variable} must be JSON (a list, or a table for env)."
                ) from None
        else:
            table[key] = value
    return agents


def load(path: str | Path | None, environ: Mapping[str, str] | None = None) -> Config:
    """The configuration in ``path`` (optional when the environment has it all) with
    ``CW_RUNNER_*`` variables over it."""
    environ = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            with open(Path(path).expanduser(), "rb") as file:
                raw = tomllib.load(file)
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such file.") from None
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{path}: not valid TOML ({error}).") from None
    unknown = set(raw) - set(_TOP_KEYS) - {"agents"}
    if unknown:
        raise ConfigError(f"unknown key {sorted(unknown)[0]!r} in the configuration.")
    values: dict[str, Any] = {}
    for key, kind in _TOP_KEYS.items():
        from_env = environ.get(ENV_PREFIX + key.upper())
        value = from_env if from_env not in (None, "") else raw.get(key)
        if value is not None:
            values[key] = _coerce(key, value, kind)
    for key in ("server", "workspace"):
        if key not in values:
            raise ConfigError(f"{key} is required (in the file or {ENV_PREFIX}{key.upper()}).")
    token = values.pop("token", None)
    token_file = values.pop("token_file", None)
    if token is None and token_file is not None:
        try:
            token = Path(token_file).expanduser().read_text().strip()
        except OSError as error:
            raise ConfigError(f"token_file {token_file}: {error.strerror}.") from None
    if not token:
        raise ConfigError("a token is required (token, token_file or CW_RUNNER_TOKEN).")
    agents_raw = raw.get("agents", {})
    if isinstance(agents_raw, dict):
        agents_raw = _agents_from_environment(
            {
                name: dict(table) if isinstance(table, dict) else table
                for name, table in agents_raw.items()
            },
            environ,
        )
    if not isinstance(agents_raw, dict) or not agents_raw:
        raise ConfigError("at least one [agents.<provider>] table is required.")
    agents = {provider: _agent(provider, spec) for provider, spec in agents_raw.items()}
    server = values.pop("server").rstrip("/")
    if not server.startswith(("http://", "https://")):
        raise ConfigError(f"server must be an http(s) URL, not {server!r}.")
    host = values.pop("host", None) or socket.gethostname()
    name = values.pop("name", None) or host
    concurrency = values.pop("concurrency", 1)
    return Config(
        server=server,
        token=token,
        name=name,
        host=host,
        workspace=Path(values.pop("workspace")).expanduser().resolve(),
        agents=agents,
        concurrency=concurrency,
        **values,
    )
