"""Helpers the reviews' service tests share."""

from django.contrib.auth import get_user_model

from core.actors import Actor
from core.models import Initiative, Page, Phase, PhaseDependency, Task, TaskDependency
from reviews import services
from reviews.models import Proposal

PLANNING_MODELS = (Initiative, Phase, PhaseDependency, Task, TaskDependency, Page, Proposal)


def database_state():
    """Every planning row and every proposal, as plain values, for before/after comparisons."""
    return {
        model._meta.db_table: sorted(
            (services.snapshot(row) for row in model.objects.all()), key=lambda r: r["id"]
        )
        for model in PLANNING_MODELS
    }


def propose(agent, initiative, **fields):
    fields.setdefault("target_type", "task")
    fields.setdefault("title", "Proposed")
    return services.proposal_create(agent_id=agent.id, initiative_id=initiative.id, **fields)


def a_person(username: str = "reviewer") -> Actor:
    """A person (an active, saved user) who passes the people's gates."""
    user, _ = get_user_model().objects.get_or_create(username=username)
    return Actor.person(user)
