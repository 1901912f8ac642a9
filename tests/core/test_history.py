"""A record's history in words: each event said as a sentence, on the admin's History page."""

from http import HTTPStatus

import pytest
from django.urls import reverse

from core import services
from core.actors import Actor, acting_as
from core.events import EVENT_KINDS
from core.history import PHRASES, event_sentence, record_history, subject_type_of
from core.models import Event
from reviews.models import ReviewComment
from tests import factories as f

pytestmark = pytest.mark.django_db


def test_every_kind_of_event_has_its_words():
    assert set(PHRASES) == set(EVENT_KINDS)


def test_a_person_a_tool_a_command_and_cw_are_each_named_as_such(django_user_model):
    alice = django_user_model.objects.create_user(username="alice")
    initiative = f.InitiativeFactory()
    phase = f.PhaseFactory(initiative=initiative)
    actors = [
        (Actor.person(alice), "alice approved the plan"),
        (Actor.tool("ci-runner", token_id="t1"), "tool ci-runner approved the plan"),
        (Actor.system("cw_demo (bob)", via="command"), "command cw_demo (bob) approved the plan"),
    ]
    for actor, sentence in actors:
        with acting_as(actor):
            event = f.EventFactory(
                kind="phase.status_changed",
                subject_type="phase",
                subject_id=phase.pk,
                data={"from": "pending", "to": "approved"},
                **actor.as_fields(),
            )
        assert event_sentence(event) == sentence


@pytest.mark.parametrize(
    ("kind", "data", "words"),
    [
        ("phase.status_changed", {"from": "pending_review", "to": "in_progress"},
         "cw requested changes on the phase"),
        ("phase.status_changed", {"from": "in_progress", "to": "blocked"}, "cw blocked the phase"),
        ("task.completed", {"summary": "Shipped"}, "cw completed the task: Shipped"),
        ("task.created", {"change_set_id": "c1"}, "cw added the task (through a change set)"),
        ("agent.status_changed", {"from": "running", "to": "crashed"},
         "cw marked the agent crashed"),
        ("initiative.status_changed", {"from": "pending_review", "to": "completed"},
         "cw approved the initiative"),
    ],
)  # fmt: skip
def test_a_sentence_says_what_the_data_says(kind, data, words):
    event = f.EventFactory(kind=kind, subject_type=kind.split(".")[0], subject_id="x", data=data)
    assert event_sentence(event) == words


def test_subject_types_are_the_models_in_snake_case():
    assert subject_type_of(ReviewComment) == "review_comment"


def test_a_records_history_is_its_events_newest_first(django_user_model):
    alice = django_user_model.objects.create_user(username="alice")
    with acting_as(Actor.person(alice)):
        initiative = services.initiative_create(name="Payments")
        services.initiative_archive(initiative_id=initiative.pk)

    assert [line["sentence"] for line in record_history(initiative)] == [
        "alice archived the initiative",
        "alice created the initiative",
    ]


def test_the_history_page_lists_the_events_in_words(admin_client, admin_user):
    initiative = f.InitiativeFactory()
    with acting_as(Actor.person(admin_user)):
        services.initiative_archive(initiative_id=initiative.pk)
    Event.objects.filter(subject_id=initiative.pk).update(actor_via="admin")

    response = admin_client.get(reverse("admin:core_initiative_history", args=[initiative.pk]))

    assert response.status_code == HTTPStatus.OK
    page = response.content.decode()
    assert f"{admin_user.username} archived the initiative" in page
    assert "change history" not in page
