"""The demo data ``manage.py cw_demo`` loads, so that a new user sees every screen filled.

Two initiatives, one per execution mode, each with a plan of dependent phases and tasks,
a page tree, projects, agents with their logs, questions, proposals, a review and a chat:

- *Stripe webhooks for subscription billing* (``yolo``, branch ``cw/demo-billing-webhooks``):
  a completed phase, a phase in progress (a running agent, a crashed one, a ready task,
  a blocked task, a decision checkpoint waiting for a person) and a pending phase; a
  planning agent's pending proposals of a page, a phase and a task; one agent's
  question to another, answered.
- *Passwordless sign-in with magic links* (``review_per_phase``, branch
  ``cw/demo-magic-link-sign-in``): a phase waiting for review with comments on its diff,
  an approved phase waiting for it, and a phase in progress whose agent waits for a
  person's answer; a chat session on a task whose change set can be reverted.

Everything is written the way real use writes it: through the services of ``core``,
``agents`` and ``reviews`` (start a task, register an agent, complete with a summary,
propose, accept, open a chat…), so every rule holds and the event feed tells the story.
A person's decisions (approving plans, completing checkpoints, accepting a proposal,
replying to a message) are made as the ``actor`` the caller gives.

Its projects are real git repositories the demo makes once under ``CW_DEMO_REPOS_DIR``
(``git_repos``, holding what ``codebases`` describes) and fetches into cw's mirrors, so
the phase in review shows a real diff and its comments sit on lines of it.

The demo is recognized by its initiatives' branches (``DEMO_BRANCHES``): ``load_demo``
loads nothing when one of them exists. It loads everything in one transaction, so a
refusal half-way leaves nothing behind.

Modules: ``builder`` writes the demo; ``codebases`` holds what its repositories hold
and ``git_repos`` makes them; ``documents`` holds what its pages say,
``sessions`` what its agents did, and ``stream_json`` turns that into log chunks as
Claude Code writes them.
"""

from dataclasses import dataclass, field
from typing import Any

from django.db import models, transaction

from agents.repositories import AccountRepository
from core.actors import Actor
from core.models import Initiative
from core.repositories import InitiativeRepository, PhaseRepository, TaskRepository
from core.repositories.base import Repository
from operations.demo.builder import BILLING_BRANCH, DEMO_BRANCHES, SIGN_IN_BRANCH, DemoBuilder
from reviews.repositories import ChangeSetRepository, ChatSessionRepository

__all__ = [
    "BILLING_BRANCH",
    "DEMO_BRANCHES",
    "SIGN_IN_BRANCH",
    "DemoSummary",
    "demo_initiatives",
    "demo_is_loaded",
    "highlighted_records",
    "load_demo",
]

initiatives = InitiativeRepository()


def demo_initiatives() -> list[Initiative]:
    """The demo's initiatives that exist, in the order they were created."""
    return list(initiatives.queryset().filter(branch__in=DEMO_BRANCHES).order_by("created_at"))


def demo_is_loaded() -> bool:
    """Whether the demo (any of its initiatives) is in the database."""
    return initiatives.queryset().filter(branch__in=DEMO_BRANCHES).exists()


@dataclass
class DemoSummary:
    """What ``load_demo`` found or created: the initiatives, how many records of each
    kind were created (none when the demo was already loaded), and the ids of the
    records worth opening first."""

    already_loaded: bool
    initiatives: list[dict[str, str]]
    created: dict[str, int] = field(default_factory=dict)
    highlights: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "already_loaded": self.already_loaded,
            "initiatives": self.initiatives,
            "created": self.created,
            "highlights": self.highlights,
        }


#: Where each of the highlights' ids is found.
HIGHLIGHT_RECORDS: dict[str, Repository[Any]] = {
    "ready_task_id": TaskRepository(),
    "waiting_checkpoint_id": TaskRepository(),
    "human_action_checkpoint_id": TaskRepository(),
    "phase_in_review_id": PhaseRepository(),
    "exhausted_account_id": AccountRepository(),
    "chat_session_id": ChatSessionRepository(),
    "revertible_change_set_id": ChangeSetRepository(),
}


def highlighted_records(summary: DemoSummary) -> list[tuple[str, models.Model | None]]:
    """The records worth opening first, in the summary's order, each with what it is
    in words ("ready task"); None for one that is gone since (one query each)."""
    found: list[tuple[str, models.Model | None]] = []
    for key, pk in summary.highlights.items():
        records = HIGHLIGHT_RECORDS.get(key)
        found.append(
            (
                key.removesuffix("_id").replace("_", " "),
                records.find_by_id(pk) if records is not None else None,
            )
        )
    return found


def _describe(initiative: Initiative) -> dict[str, str]:
    return {
        "id": initiative.pk,
        "name": initiative.name,
        "branch": initiative.branch or "",
        "execution_mode": initiative.execution_mode,
        "status": initiative.status,
    }


def load_demo(*, actor: Actor) -> DemoSummary:
    """Load the demo, acting as ``actor`` (a person) for people's decisions; load nothing
    when it is already loaded. One transaction: a domain refusal (e.g. a demo project's
    name already taken) leaves the database as it was and propagates."""
    with transaction.atomic():
        if demo_is_loaded():
            return DemoSummary(
                already_loaded=True, initiatives=[_describe(i) for i in demo_initiatives()]
            )
        builder = DemoBuilder(actor)
        builder.build()
    return DemoSummary(
        already_loaded=False,
        initiatives=[_describe(initiatives.get(i.pk)) for i in builder.initiatives],
        created=dict(sorted(builder.created.items())),
        highlights=builder.highlights,
    )
