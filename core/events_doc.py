"""The section "The event feed" of ``docs/api.md``: every kind of event with its subject
and data, and the actor object, rendered from ``core.events.EVENT_KINDS`` and
``core.actors``.

Regenerate it with ``manage.py event_catalogue --write`` (it replaces the section
between its markers); a test compares the committed file with a fresh rendering, so
the documentation and the code cannot drift apart.
"""

from pathlib import Path
from typing import get_args

from django.conf import settings

from core.actors import ActorKind, ActorVia
from core.events import CHANGE_SET_ID, EVENT_KINDS, REVERTED, EventKind

START = "<!-- event-feed:start -->"
END = "<!-- event-feed:end -->"
REGENERATE = "`.venv/bin/python manage.py event_catalogue --write`"


def api_md() -> Path:
    return Path(settings.BASE_DIR) / "docs" / "api.md"


def _code_list(values: tuple[str, ...]) -> str:
    """``a``, ``b`` or ``c``."""
    codes = [f"`{value}`" for value in values]
    return f"{', '.join(codes[:-1])} or {codes[-1]}" if len(codes) > 1 else "".join(codes)


_INTRO = f"""\
## The event feed

<!-- Generated from EVENT_KINDS in core/events.py: do not edit by hand.
     Regenerate with {REGENERATE}. -->

`GET /events` (`list_events`) answers every state change the services made, oldest
first, in commit order: `{{items, next_after}}`, each item
`{{id, kind, subject_type, subject_id, initiative_id, data, actor, created_at}}`.
A reader sends back each answer's `next_after` as `after` and so sees every committed
change exactly once. Every service records its events in the transaction of the change
(a refused or rolled back change records none), whichever door called it: the API, the
admin or a command. A change that changes nothing (an edit to the same values,
resolving a resolved comment) writes nothing and records nothing.

- `subject_type` / `subject_id`: the record the event is about (events outlive it);
  `initiative_id`: its initiative, when it has one.
- `actor`: who made the change, `{{type, id, name, via}}`:
  - `type`: {_code_list(get_args(ActorKind))}: a person (a staff session, a personal token
    or the admin's user), a tool (any other token) or the system (a command such as
    `cw_reconcile`); a lost run swept by a runner's take-next is that runner's change;
  - `id`: the person's user id or the tool's token id (null for the system);
  - `name`: the person's username, the token's name (a run's token: `agent:<agent
    name>`, the run's agent), or the command's name;
  - `via`: {_code_list(get_args(ActorVia))}: the door it came through.
- `data`: what the kind carries, below (a key marked *sometimes* is there only when it
  applies).
- Accepting a proposal records an event for each record it created or changed (a
  `task.created` per task, a `dependency.added` per edge, …) and then
  `proposal.accepted`; reverting a change set records the reverse of each (a
  `task.deleted` for a task the accept created, a `dependency.removed` per edge, …) and
  then `change_set.reverted`. These events have the same data as when the change is made
  directly, plus `{CHANGE_SET_ID}` (and `{REVERTED}: true` for a revert).
- Not on the feed: the chunks of an agent's log (appended and pruned by age): output,
  not state, read forward through their own cursor (`list_agent_log`). Deleting a whole
  log is `agent.log_deleted`.
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _data(spec: EventKind) -> str:
    keys = [f"`{key}`: {meaning}" for key, meaning in spec.data.items()]
    keys += [f"`{key}` (*sometimes*): {meaning}" for key, meaning in spec.optional.items()]
    return "; ".join(keys) or "—"


def render_section() -> str:
    """The section, markers included: the introduction, then one row per kind in the
    catalogue's order (grouped by what it is about)."""
    rows = [
        f"| `{kind}` | {' or '.join(spec.subject)} | {_cell(spec.summary)} | {_cell(_data(spec))} |"
        for kind, spec in EVENT_KINDS.items()
    ]
    table = "\n".join(["| kind | subject | what happened | data |", "|---|---|---|---|", *rows])
    return f"{START}\n{_INTRO}\n{table}\n{END}\n"


def replace_section(text: str) -> str:
    """``text`` (``docs/api.md``) with the section replaced by a fresh rendering, or
    appended when it has none."""
    if START in text and END in text:
        before, rest = text.split(START, 1)
        after = rest.split(END, 1)[1].removeprefix("\n")
        return before + render_section() + after
    return text.rstrip("\n") + "\n\n" + render_section()


def committed_section(text: str) -> str | None:
    """The section as ``text`` has it, markers included (None when it has none)."""
    if START not in text or END not in text:
        return None
    return START + text.split(START, 1)[1].split(END, 1)[0] + END + "\n"
