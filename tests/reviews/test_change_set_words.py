"""A change set's page says in words what the accept did, with a link to each record."""

from http import HTTPStatus

import pytest
from django.urls import reverse

from core.models import Task
from reviews import services
from reviews.change_set_words import describe_entries
from reviews.models import ChangeSet
from reviews.repositories import ChangeSetRepository
from tests import factories as f
from tests.reviews.helpers import a_person, propose

pytestmark = pytest.mark.django_db


@pytest.fixture
def accepted():
    initiative = f.InitiativeFactory()
    phase = f.PhaseFactory(initiative=initiative, name="Build")
    first = f.TaskFactory(phase=phase, name="Migrate")
    agent = f.AgentFactory(initiative=initiative)
    change_set = services.proposal_accept(
        proposal_id=propose(
            agent,
            initiative,
            title="Deploy",
            metadata={"phase_id": phase.id, "dependencies": [first.id]},
        ).id,
        actor=a_person(),
    )
    return change_set, Task.objects.get(name="Deploy")


def test_each_entry_is_a_sentence_naming_its_record(accepted):
    change_set, task = accepted

    lines = describe_entries(ChangeSetRepository().find_entries(change_set.pk))

    texts = [line.text for line in lines]
    assert "Added the task 'Deploy'" in texts
    assert "Added a dependency: the task 'Deploy' now waits for 'Migrate'" in texts
    assert any(text.startswith("Changed the proposal 'Deploy': status") for text in texts)
    added = next(line for line in lines if line.text == "Added the task 'Deploy'")
    assert (added.model, added.record_id) == (Task, task.pk)


def test_a_record_gone_since_is_named_without_a_link(accepted):
    change_set, task = accepted
    Task.objects.filter(pk=task.pk).delete()

    lines = describe_entries(ChangeSetRepository().find_entries(change_set.pk))

    added = next(line for line in lines if line.text == "Added the task 'Deploy'")
    assert added.model is None


def test_the_change_set_page_lists_the_lines_with_links(admin_client, accepted):
    change_set, task = accepted

    response = admin_client.get(reverse("admin:reviews_changeset_change", args=[change_set.pk]))

    assert response.status_code == HTTPStatus.OK
    page = response.content.decode()
    assert "What accepting the proposal did" in page
    task_url = reverse("admin:core_task_change", args=[task.pk])
    assert f'<a href="{task_url}">Added the task &#x27;Deploy&#x27;</a>' in page
    assert ChangeSet.objects.count() == 1
