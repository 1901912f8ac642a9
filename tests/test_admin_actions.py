"""Admin actions call the services: transitions happen, refusals become messages."""

import pytest
from django.urls import reverse

from core.models import PhaseStatus, TaskStatus, TaskType
from reviews.models import ChangeSet, ProposalStatus
from tests import factories as f

pytestmark = pytest.mark.django_db


def run_action(client, model: str, action: str, *records):
    url = reverse(f"admin:{model}_changelist")
    response = client.post(
        url, {"action": action, "_selected_action": [r.pk for r in records]}, follow=True
    )
    assert response.status_code == 200
    return [str(m) for m in response.context["messages"]]


def test_approving_plans_approves_the_pending_and_names_the_refused(admin_client):
    pending = f.PhaseFactory(name="Design")
    done = f.PhaseFactory(name="Shipped", status=PhaseStatus.COMPLETED)

    messages = run_action(admin_client, "core_phase", "phase_approve_plan", pending, done)

    pending.refresh_from_db()
    done.refresh_from_db()
    assert (pending.status, done.status) == (PhaseStatus.APPROVED, PhaseStatus.COMPLETED)
    assert "Approve the plan: done for 1 record(s)." in messages
    assert any(m.startswith("Shipped: Cannot approve the plan of phase") for m in messages)


def test_a_person_completes_a_checkpoint_from_the_admin(admin_client):
    phase = f.PhaseFactory(status=PhaseStatus.APPROVED)
    checkpoint = f.TaskFactory(phase=phase, type=TaskType.CHECKPOINT_HUMAN_VERIFY)
    f.TaskFactory(phase=phase)

    run_action(admin_client, "core_task", "task_complete", checkpoint)

    checkpoint.refresh_from_db()
    assert checkpoint.status == TaskStatus.COMPLETED


def test_accepting_and_reverting_a_proposal_from_the_admin(admin_client):
    proposal = f.ProposalFactory(metadata=None)

    run_action(admin_client, "reviews_proposal", "proposal_accept", proposal)
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.ACCEPTED

    run_action(admin_client, "reviews_changeset", "change_set_revert", ChangeSet.objects.get())
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.PENDING


def test_lifecycle_statuses_are_read_only_in_the_forms(admin_client):
    phase = f.PhaseFactory()
    page = admin_client.get(reverse("admin:core_phase_change", args=[phase.pk]))
    assert 'name="status"' not in page.content.decode()
