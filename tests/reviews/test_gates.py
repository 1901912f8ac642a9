"""People's gates in the reviews services: only a person accepts or dismisses proposals and
requests changes; a tool, or nobody, gets 403 ``person_required`` and nothing is written."""

from collections.abc import Callable

import pytest
from django.contrib.auth import get_user_model

from core.actors import Actor
from core.errors import PermissionRequired
from core.models import Event
from reviews import services
from tests import factories as f
from tests.reviews.helpers import a_person, database_state

pytestmark = pytest.mark.django_db


def gates() -> dict[str, Callable[[Actor | None], object]]:
    """Each gated service, called on a record that would pass every other check."""
    proposal = f.ProposalFactory(metadata=None)
    agent = f.ProposalFactory(metadata=None).agent
    phase = f.ReviewCommentFactory(phase=f.PhaseFactory(status="pending_review")).phase
    return {
        "accept": lambda actor: services.proposal_accept(proposal_id=proposal.id, actor=actor),
        "dismiss": lambda actor: services.proposal_dismiss(proposal_id=proposal.id, actor=actor),
        "accept_all": lambda actor: services.proposal_accept_all(agent_id=agent.id, actor=actor),
        "dismiss_all": lambda actor: services.proposal_dismiss_all(agent_id=agent.id, actor=actor),
        "request_changes": lambda actor: services.phase_request_changes(
            phase_id=phase.id, actor=actor
        ),
    }


GATES = ["accept", "dismiss", "accept_all", "dismiss_all", "request_changes"]


def inactive_person() -> Actor:
    user = get_user_model().objects.create_user(username="gone", is_active=False)
    return Actor.person(user)


@pytest.mark.parametrize("gate", GATES)
@pytest.mark.parametrize(
    ("who", "make_actor"),
    [
        ("nobody", lambda: None),
        ("tool", lambda: Actor.tool("orchestrator")),
        ("inactive person", inactive_person),
    ],
)
def test_only_a_person_passes_the_gate_and_a_refusal_writes_nothing(gate, who, make_actor):
    call = gates()[gate]
    actor = make_actor()
    before = database_state()

    with pytest.raises(PermissionRequired) as error:
        call(actor)

    assert error.value.code == "person_required"
    assert error.value.details["actor"] == (None if actor is None else actor.kind)
    assert database_state() == before
    assert not Event.objects.exists()


@pytest.mark.parametrize("gate", GATES)
def test_a_person_passes_the_gate(gate):
    gates()[gate](a_person())
    assert Event.objects.exists()
