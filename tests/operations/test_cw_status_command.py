"""The ``cw_status`` operator command: one screen of what needs attention now."""

import io
import json
import subprocess
import sys
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from agents.models import AgentStatus, MessageStatus, MessageType, ParticipantType
from core.models import InitiativeStatus, PhaseStatus, TaskStatus, TaskType
from operations.management.commands import cw_status
from reviews.models import ProposalStatus
from tests import factories as f

pytestmark = pytest.mark.django_db

SECTIONS = [
    "proposals",
    "phases_pending_review",
    "initiatives_pending_review",
    "checkpoints",
    "messages",
    "questions",
]


def run(*args: str) -> str:
    """Run ``cw_status`` with ``args``; its standard output."""
    out = io.StringIO()
    call_command("cw_status", *args, stdout=out)
    return out.getvalue()


def run_json(*args: str) -> dict[str, Any]:
    return json.loads(run("--json", *args))


def ids(section: dict[str, Any], key: str = "id") -> set[str]:
    return {item[key] for item in section["items"]}


# --- an empty database -----------------------------------------------------------------


def test_an_empty_database_needs_no_attention():
    out = run()

    lines = out.strip().splitlines()
    assert lines[0].startswith("cw status at ")
    assert lines[1:] == ["", "Nothing needs attention."]


def test_an_empty_database_as_json_has_every_key_with_nothing_in_it():
    status = run_json()

    assert list(status) == [
        "generated_at",
        "initiative",
        "limit",
        "needs_attention",
        *SECTIONS,
        "agents",
        "accounts",
        "initiatives",
        "runs",
        "budgets",
        "queue",
    ]
    assert status["initiative"] is None
    assert status["limit"] == 10
    assert status["needs_attention"] is False
    for key in SECTIONS:
        assert status[key]["total"] == 0
        assert status[key]["items"] == []
    assert status["proposals"]["proposals"] == 0
    assert status["agents"] == {
        "running": {"total": 0, "items": []},
        "crashed": {"total": 0, "items": []},
    }
    assert status["accounts"] == {"providers": [], "exhausted": {"total": 0, "items": []}}
    assert status["initiatives"] == {"total": 0, "items": []}


# --- each section ----------------------------------------------------------------------


def test_pending_proposals_are_counted_per_agent_most_first():
    busy = f.AgentFactory(name="brave-otter")
    quiet = f.AgentFactory(name="calm-heron")
    initiative = f.InitiativeFactory()
    f.ProposalFactory.create_batch(3, agent=busy, initiative=initiative)
    f.ProposalFactory(agent=quiet, initiative=initiative)
    f.ProposalFactory(agent=quiet, initiative=initiative, status=ProposalStatus.ACCEPTED)
    f.ProposalFactory(agent=f.AgentFactory(), status=ProposalStatus.DISMISSED)

    status = run_json()
    out = run()

    section = status["proposals"]
    assert section["total"] == 2
    assert section["proposals"] == 4
    assert [(row["agent_name"], row["pending"]) for row in section["items"]] == [
        ("brave-otter", 3),
        ("calm-heron", 1),
    ]
    assert section["items"][0]["agent_id"] == busy.id
    assert status["needs_attention"] is True
    assert "Pending proposals: 4 from 2 agents" in out
    assert f"brave-otter ({busy.id}): 3 pending, oldest <1m ago" in out
    assert "Nothing needs attention." not in out


def test_phases_and_initiatives_waiting_for_review_are_listed():
    initiative = f.InitiativeFactory(name="Auth")
    waiting = f.PhaseFactory(initiative=initiative, name="API", status=PhaseStatus.PENDING_REVIEW)
    f.PhaseFactory(initiative=initiative, status=PhaseStatus.IN_PROGRESS)
    done = f.InitiativeFactory(name="Billing", status=InitiativeStatus.PENDING_REVIEW)

    status = run_json()
    out = run()

    [phase] = status["phases_pending_review"]["items"]
    assert phase["id"] == waiting.id
    assert phase["initiative_id"] == initiative.id
    assert phase["initiative_name"] == "Auth"
    assert ids(status["initiatives_pending_review"]) == {done.id}
    assert "Phases waiting for review: 1" in out
    assert f"API ({waiting.id}) in Auth ({initiative.id}), waiting <1m" in out
    assert "Initiatives waiting for approval: 1" in out
    assert f"Billing ({done.id}), waiting <1m" in out


def test_checkpoints_waiting_for_a_person_are_the_ready_checkpoint_tasks():
    phase = f.PhaseFactory(status=PhaseStatus.APPROVED, initiative__name="Auth")
    ready = f.TaskFactory(
        phase=phase, name="Check the login page", type=TaskType.CHECKPOINT_HUMAN_VERIFY
    )
    f.TaskFactory(phase=phase, type=TaskType.AUTO)
    # Not ready: its phase's plan is not approved yet, or it is done.
    f.TaskFactory(
        phase=f.PhaseFactory(status=PhaseStatus.PENDING), type=TaskType.CHECKPOINT_DECISION
    )
    f.TaskFactory(phase=phase, type=TaskType.CHECKPOINT_HUMAN_ACTION, status=TaskStatus.COMPLETED)

    status = run_json()
    out = run()

    assert status["checkpoints"]["total"] == 1
    [item] = status["checkpoints"]["items"]
    assert item["id"] == ready.id
    assert item["type"] == "checkpoint:human-verify"
    assert item["initiative_name"] == "Auth"
    assert "Checkpoints waiting for a person: 1" in out
    assert f"Check the login page ({ready.id}, checkpoint:human-verify, medium) in Auth" in out


def test_unanswered_messages_to_people_are_listed():
    agent = f.AgentFactory(name="brave-otter")
    unread = f.MessageFactory(
        sender_id=agent.id, type=MessageType.QUESTION, content="Which database?"
    )
    read_but_needs_answer = f.MessageFactory(
        sender_id=agent.id, status=MessageStatus.READ, requires_response=True
    )
    # Not waiting: read and needing nothing, responded, answered by a reply, to an agent.
    f.MessageFactory(sender_id=agent.id, status=MessageStatus.READ)
    f.MessageFactory(sender_id=agent.id, status=MessageStatus.RESPONDED, requires_response=True)
    answered = f.MessageFactory(sender_id=agent.id, requires_response=True)
    f.MessageFactory(
        parent_message=answered,
        sender_type=ParticipantType.USER,
        recipient_type=ParticipantType.AGENT,
        recipient_id=agent.id,
    )

    status = run_json()
    out = run()

    assert ids(status["messages"]) == {unread.id, read_but_needs_answer.id}
    first = status["messages"]["items"][0]
    assert first["id"] == unread.id
    assert first["sender_name"] == "brave-otter"
    assert first["content"] == "Which database?"
    assert "Unanswered messages: 2" in out
    assert f'{unread.id} question from brave-otter, <1m ago: "Which database?"' in out
    assert "response required" in out


def test_agents_waiting_for_an_answer_show_their_questions():
    task = f.TaskFactory(name="Add login")
    waiting = f.AgentFactory(
        name="brave-otter",
        task=task,
        status=AgentStatus.WAITING_FOR_INPUT,
        pending_questions='["Which database?"]',
    )

    status = run_json()
    out = run()

    [item] = status["questions"]["items"]
    assert item["id"] == waiting.id
    assert item["pending_questions"] == ["Which database?"]
    assert item["task_name"] == "Add login"
    assert "Agents waiting for an answer: 1" in out
    assert f"  brave-otter ({waiting.id}) on Add login ({task.id}), waiting <1m:\n" in out
    assert "    1. Which database?\n" in out


def test_questions_with_options_are_printed_as_text_not_json():
    questions = {
        "questions": [
            {
                "question": "Which database?",
                "header": "Storage",
                "options": [
                    {"label": "PostgreSQL", "description": "several workers"},
                    {"label": "SQLite", "description": "one machine"},
                ],
                "multiSelect": False,
            }
        ]
    }
    f.AgentFactory(
        name="calm-heron",
        status=AgentStatus.WAITING_FOR_INPUT,
        pending_questions=json.dumps(questions),
    )

    out = run()

    lines = out.splitlines()
    at = lines.index("    1. [Storage] Which database?")
    assert lines[at + 1 : at + 3] == [
        "       - PostgreSQL: several workers",
        "       - SQLite: one machine",
    ]
    assert '"question"' not in out and "{" not in out


def test_running_and_crashed_agents_are_listed_but_not_dismissed_ones():
    running = f.AgentFactory(name="swift-fox", status=AgentStatus.RUNNING)
    crashed = f.AgentFactory(name="bold-owl", status=AgentStatus.CRASHED, exit_code=137)
    f.AgentFactory(status=AgentStatus.CRASHED, user_dismissed_at=timezone.now())
    f.AgentFactory(status=AgentStatus.IDLE)
    f.AgentFactory(status=AgentStatus.STOPPED)

    status = run_json()
    out = run()

    assert ids(status["agents"]["running"]) == {running.id}
    assert ids(status["agents"]["crashed"]) == {crashed.id}
    assert status["agents"]["crashed"]["items"][0]["exit_code"] == 137
    assert "Crashed agents: 1" in out
    assert f"bold-owl ({crashed.id}), exit code 137, <1m ago" in out
    assert "Running agents: 1" in out
    assert f"swift-fox ({running.id}), for <1m" in out


def test_running_agents_alone_need_no_attention():
    f.AgentFactory(status=AgentStatus.RUNNING)

    status = run_json()
    out = run()

    assert status["needs_attention"] is False
    assert "Nothing needs attention." in out
    assert "Running agents: 1" in out


def test_exhausted_accounts_say_when_they_return_and_a_passed_exhaustion_is_available():
    now = timezone.now()
    soon = f.AccountFactory(
        email="soon@example.com",
        is_exhausted=True,
        exhausted_until=now + timedelta(hours=3, minutes=12),
    )
    parked = f.AccountFactory(email="parked@example.com", is_exhausted=True)
    lapsed = f.AccountFactory(
        email="lapsed@example.com", is_exhausted=True, exhausted_until=now - timedelta(minutes=5)
    )
    f.AccountFactory(email="free@example.com")
    f.AccountFactory(provider="codex", email="other@example.com")

    status = run_json()
    out = run()

    exhausted = status["accounts"]["exhausted"]
    assert exhausted["total"] == 2
    assert [item["id"] for item in exhausted["items"]] == [soon.id, parked.id]
    assert exhausted["items"][1]["exhausted_until"] is None
    assert lapsed.id not in ids(exhausted)
    assert status["accounts"]["providers"] == [
        {"provider": "claude", "total": 4, "available": 2},
        {"provider": "codex", "total": 1, "available": 1},
    ]
    assert "Exhausted accounts: 2 (claude: 2 of 4 available, codex: 1 of 1 available)" in out
    assert f"soon@example.com ({soon.id}, claude) returns in 3h 12m" in out
    assert f"parked@example.com ({parked.id}, claude) parked until a person releases it" in out
    assert "lapsed@example.com" not in out


def test_active_initiatives_show_tasks_by_status_and_what_is_ready():
    initiative = f.InitiativeFactory(name="Auth")
    phase = f.PhaseFactory(initiative=initiative, status=PhaseStatus.IN_PROGRESS)
    high = f.TaskFactory(phase=phase, name="Schema", priority="high")
    f.TaskFactory(phase=phase, name="Views")
    f.TaskFactory(phase=phase, status=TaskStatus.IN_PROGRESS)
    f.TaskFactory(phase=phase, status=TaskStatus.COMPLETED)
    f.TaskFactory(phase=phase, status=TaskStatus.BLOCKED)
    blocked_by = f.TaskFactory(phase=phase, name="Blocked by views")
    f.TaskDependencyFactory(task=blocked_by, depends_on_task=high)
    f.TaskFactory(phase=phase, type=TaskType.CHECKPOINT_DECISION)  # for a person, not agents
    f.InitiativeFactory(status=InitiativeStatus.COMPLETED)
    f.InitiativeFactory(status=InitiativeStatus.ARCHIVED)

    status = run_json()
    out = run()

    [item] = status["initiatives"]["items"]
    assert item["id"] == initiative.id
    assert item["tasks"] == {
        "pending": 4,
        "in_progress": 1,
        "completed": 1,
        "blocked": 1,
        "total": 7,
    }
    assert item["ready"]["total"] == 2
    assert [task["name"] for task in item["ready"]["items"]] == ["Schema", "Views"]
    assert "Active initiatives: 1" in out
    assert (
        f"Auth ({initiative.id}): 7 tasks (4 pending, 1 in progress, 1 blocked, "
        f"1 completed); 2 ready" in out
    )
    assert f"    ready: Schema ({high.id}, high)" in out


# --- --limit ---------------------------------------------------------------------------


def test_limit_caps_every_list_and_says_how_many_more():
    initiative = f.InitiativeFactory()
    phase = f.PhaseFactory(initiative=initiative, status=PhaseStatus.APPROVED)
    f.TaskFactory.create_batch(5, phase=phase)
    f.PhaseFactory.create_batch(4, initiative=initiative, status=PhaseStatus.PENDING_REVIEW)
    for _ in range(3):
        f.ProposalFactory(initiative=initiative)

    status = run_json("--limit", "2")
    out = run("--limit", "2")

    assert status["limit"] == 2
    assert status["phases_pending_review"]["total"] == 4
    assert len(status["phases_pending_review"]["items"]) == 2
    assert status["proposals"]["total"] == 3
    assert len(status["proposals"]["items"]) == 2
    [item] = status["initiatives"]["items"]
    assert item["ready"]["total"] == 5
    assert len(item["ready"]["items"]) == 2
    assert "  and 2 more" in out  # phases
    assert "  and 1 more" in out  # agents with proposals
    assert "    and 3 more" in out  # ready tasks


@pytest.mark.parametrize("limit", ["0", "201"])
def test_a_limit_out_of_range_is_refused(limit):
    with pytest.raises(CommandError, match=r"\(invalid_limit\)$"):
        run("--limit", limit)


# --- --initiative ----------------------------------------------------------------------


def populate(initiative_name: str) -> dict[str, Any]:
    """One initiative with an item in every section that belongs to an initiative."""
    initiative = f.InitiativeFactory(name=initiative_name)
    phase = f.PhaseFactory(initiative=initiative, status=PhaseStatus.APPROVED)
    agent = f.AgentFactory(initiative=initiative, status=AgentStatus.CRASHED)
    return {
        "initiative": initiative,
        "proposal_agent": f.ProposalFactory(initiative=initiative, agent=agent).agent,
        "review": f.PhaseFactory(initiative=initiative, status=PhaseStatus.PENDING_REVIEW),
        "checkpoint": f.TaskFactory(phase=phase, type=TaskType.CHECKPOINT_HUMAN_ACTION),
        "ready": f.TaskFactory(phase=phase),
        "message": f.MessageFactory(sender_id=agent.id),
        "crashed": agent,
        "waiting": f.AgentFactory(
            initiative=initiative,
            status=AgentStatus.WAITING_FOR_INPUT,
            pending_questions='"Which?"',
        ),
        "running": f.AgentFactory(initiative=initiative, status=AgentStatus.RUNNING),
    }


def test_initiative_focuses_every_section_on_it():
    mine, other = populate("Mine"), populate("Other")
    account = f.AccountFactory(is_exhausted=True)

    for found, excluded in ((mine, other), (other, mine)):
        initiative = found["initiative"]
        status = run_json("--initiative", initiative.id)

        assert status["initiative"] == {
            "id": initiative.id,
            "name": initiative.name,
            "status": "active",
        }
        assert ids(status["proposals"], "agent_id") == {found["proposal_agent"].id}
        assert ids(status["phases_pending_review"]) == {found["review"].id}
        assert ids(status["checkpoints"]) == {found["checkpoint"].id}
        assert ids(status["messages"]) == {found["message"].id}
        assert ids(status["questions"]) == {found["waiting"].id}
        assert ids(status["agents"]["crashed"]) == {found["crashed"].id}
        assert ids(status["agents"]["running"]) == {found["running"].id}
        assert ids(status["initiatives"]) == {initiative.id}
        assert [t["id"] for t in status["initiatives"]["items"][0]["ready"]["items"]] == [
            found["ready"].id
        ]
        # Accounts belong to no initiative: always shown.
        assert ids(status["accounts"]["exhausted"]) == {account.id}

        out = run("--initiative", initiative.id)
        assert f"Initiative {initiative.name} ({initiative.id}), active" in out
        for record in excluded.values():
            assert record.id not in out


def test_initiative_shows_a_focused_initiative_whatever_its_status():
    waiting = f.InitiativeFactory(status=InitiativeStatus.PENDING_REVIEW, name="Billing")
    f.InitiativeFactory(status=InitiativeStatus.PENDING_REVIEW)

    status = run_json("--initiative", waiting.id)
    out = run("--initiative", waiting.id)

    assert ids(status["initiatives_pending_review"]) == {waiting.id}
    assert status["initiatives"]["items"][0]["status"] == "pending_review"
    assert "Initiatives waiting for approval: 1" in out
    assert f"Billing ({waiting.id}): 0 tasks" in out


def test_an_unknown_initiative_is_refused_with_its_code():
    with pytest.raises(CommandError, match=r"\(initiative_not_found\)$") as refused:
        run("--initiative", "nope")

    assert "Initiative 'nope' does not exist." in str(refused.value)


@pytest.mark.processes
def test_a_refusal_exits_with_status_1_and_one_line_on_stderr():
    """A refusal made before any database access, so the process needs no test database
    (it would not see this test's one)."""
    process = subprocess.run(
        [sys.executable, "manage.py", "cw_status", "--limit", "0"],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert process.returncode == 1
    assert process.stdout == ""
    assert len(process.stderr.strip().splitlines()) == 1
    assert "(invalid_limit)" in process.stderr


# --- cost ------------------------------------------------------------------------------


def populate_many(count: int) -> None:
    """``count`` items in every section, spread over ``count`` active initiatives."""
    now = timezone.now()
    for n in range(count):
        initiative = f.InitiativeFactory()
        phase = f.PhaseFactory(initiative=initiative, status=PhaseStatus.APPROVED)
        f.TaskFactory(phase=phase, type=TaskType.CHECKPOINT_HUMAN_VERIFY)
        f.TaskFactory.create_batch(2, phase=phase)
        f.TaskFactory(phase=phase, status=TaskStatus.COMPLETED)
        f.PhaseFactory(initiative=initiative, status=PhaseStatus.PENDING_REVIEW)
        f.InitiativeFactory(status=InitiativeStatus.PENDING_REVIEW)
        agent = f.AgentFactory(
            initiative=initiative, task=f.TaskFactory(phase=phase), status=AgentStatus.CRASHED
        )
        f.ProposalFactory.create_batch(2, initiative=initiative, agent=agent)
        f.MessageFactory(sender_id=agent.id)
        f.AgentFactory(initiative=initiative, status=AgentStatus.RUNNING)
        f.AgentFactory(
            initiative=initiative,
            status=AgentStatus.WAITING_FOR_INPUT,
            pending_questions='["?"]',
        )
        f.AccountFactory(is_exhausted=True, exhausted_until=now + timedelta(hours=n + 1))


def queries_of(*args: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        run(*args)
    return len(captured)


@pytest.mark.parametrize("args", [(), ("--json",)])
def test_the_number_of_queries_does_not_grow_with_the_rows(args, django_assert_max_num_queries):
    populate_many(2)
    few = queries_of(*args, "--limit", "3")
    populate_many(25)

    with django_assert_max_num_queries(40):
        run(*args, "--limit", "3")
    assert queries_of(*args, "--limit", "3") == few
    status = run_json("--limit", "3")
    assert status["proposals"]["total"] == 27
    assert len(status["proposals"]["items"]) == 3
    assert status["initiatives"]["total"] == 27
    assert all(len(item["ready"]["items"]) == 3 for item in status["initiatives"]["items"])


def test_the_focused_status_costs_as_few_queries(django_assert_max_num_queries):
    populate_many(3)
    initiative = f.InitiativeFactory()

    with django_assert_max_num_queries(40):
        run("--initiative", initiative.id)


# --- the screen's times ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("delta", "round_up", "text"),
    [
        (timedelta(seconds=20), False, "<1m"),
        (timedelta(minutes=12, seconds=59), False, "12m"),
        (timedelta(hours=3, minutes=12), False, "3h 12m"),
        (timedelta(days=2, hours=5, minutes=59), False, "2d 5h"),
        (timedelta(hours=2, minutes=59, seconds=59), True, "3h 0m"),
        (timedelta(seconds=-5), False, "<1m"),
    ],
)
def test_durations_read_the_way_people_say_them(delta, round_up, text):
    assert cw_status._duration(delta, round_up=round_up) == text
