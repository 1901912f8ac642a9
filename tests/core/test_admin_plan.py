"""The plan's pages in the admin (``core/admin/``, ``operations/admin.py``): the
initiative, phase and task pages with their dependency pictures, their lifecycle
buttons, the task changelist's filters and ready column, and labels in words."""

import itertools
import re
import xml.etree.ElementTree as ET
from http import HTTPStatus

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core.models import PhaseDependency, PhaseStatus, Task, TaskDependency, TaskStatus, TaskType
from core.repositories import readiness
from tests import factories as f

pytestmark = pytest.mark.django_db

SVG = "{http://www.w3.org/2000/svg}"


def _url(name: str, *args: str) -> str:
    return reverse(f"admin:{name}", args=args)


def _svgs(html: str) -> list[ET.Element]:
    """Every dependency picture of a page, parsed (so each must be well-formed XML)."""
    return [
        ET.fromstring(found)  # noqa: S314 - our own output, parsed to check it is XML
        for found in re.findall(r'<svg [^>]*class="cw-graph".*?</svg>', html, flags=re.DOTALL)
    ]


def _node_links(svg: ET.Element) -> dict[str, str]:
    return {
        a.find(f"{SVG}g").get("data-id"): a.get("href")  # type: ignore[union-attr]
        for a in svg.iter(f"{SVG}a")
    }


def _edges(svg: ET.Element) -> set[tuple[str, str]]:
    return {
        (p.get("data-from"), p.get("data-to"))
        for p in svg.iter(f"{SVG}path")
        if p.get("class") == "edge"
    }


def _queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == HTTPStatus.OK, url
    return len(captured.captured_queries)


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


@pytest.fixture
def plan():
    """An initiative of three phases (design <- build <- ship, design <- ship) and the
    tasks of build (write <- test)."""
    initiative = f.InitiativeFactory(name="Payments rewrite")
    design = f.PhaseFactory(initiative=initiative, name="Design", status=PhaseStatus.COMPLETED)
    build = f.PhaseFactory(initiative=initiative, name="Build", status=PhaseStatus.APPROVED)
    ship = f.PhaseFactory(initiative=initiative, name="Ship")
    for phase, depends_on in ((build, design), (ship, build), (ship, design)):
        f.PhaseDependencyFactory(phase=phase, depends_on_phase=depends_on)
    write = f.TaskFactory(phase=build, name="Write the API", status=TaskStatus.COMPLETED)
    test = f.TaskFactory(phase=build, name="Test the API")
    f.TaskDependencyFactory(task=test, depends_on_task=write)
    return {"initiative": initiative, "design": design, "build": build, "ship": ship,
            "write": write, "test": test}  # fmt: skip


# --- the initiative page and its pictures --------------------------------------------------


def test_the_initiative_page_shows_phases_pages_projects_and_the_phase_graph(admin_client, plan):
    initiative = plan["initiative"]
    f.PageFactory(initiative=initiative, title="Architecture notes")
    f.InitiativeProjectFactory(initiative=initiative, project=f.ProjectFactory(name="api-server"))

    response = admin_client.get(_url("core_initiative_change", initiative.pk))

    html = response.content.decode()
    assert response.status_code == HTTPStatus.OK
    assert "Architecture notes" in html and "api-server" in html
    assert "1 / 2" in html  # build: one of its two tasks done
    (graph,) = _svgs(html)
    phases = {plan[name].pk: plan[name] for name in ("design", "build", "ship")}
    assert _node_links(graph) == {pk: _url("core_phase_change", pk) for pk in phases}
    assert _edges(graph) == {
        (plan["design"].pk, plan["build"].pk),
        (plan["build"].pk, plan["ship"].pk),
        (plan["design"].pk, plan["ship"].pk),
    }


def test_a_chosen_phase_shows_its_task_graph_on_the_initiative_page(admin_client, plan):
    url = _url("core_initiative_change", plan["initiative"].pk) + f"?phase={plan['build'].pk}"
    _phase_graph, task_graph = _svgs(admin_client.get(url).content.decode())
    assert _node_links(task_graph) == {
        plan["write"].pk: _url("core_task_change", plan["write"].pk),
        plan["test"].pk: _url("core_task_change", plan["test"].pk),
    }
    assert _edges(task_graph) == {(plan["write"].pk, plan["test"].pk)}


def test_the_graph_is_served_on_its_own_and_its_nodes_lead_to_their_records(admin_client, plan):
    url = _url("core_initiative_graph", plan["initiative"].pk)
    response = admin_client.get(url)
    assert response["Content-Type"].startswith("image/svg+xml")
    graph = ET.fromstring(response.content)  # noqa: S314
    assert len(_node_links(graph)) == 3 and len(_edges(graph)) == 3
    build_page = admin_client.get(_node_links(graph)[plan["build"].pk])
    assert build_page.status_code == HTTPStatus.OK
    assert build_page.context["original"] == plan["build"]

    tasks = ET.fromstring(admin_client.get(url, {"phase": plan["build"].pk}).content)  # noqa: S314
    assert set(_node_links(tasks)) == {plan["write"].pk, plan["test"].pk}
    elsewhere = f.PhaseFactory()
    assert admin_client.get(url, {"phase": elsewhere.pk}).status_code == HTTPStatus.NOT_FOUND


def test_the_graph_needs_a_staff_login(client, plan):
    response = client.get(_url("core_initiative_graph", plan["initiative"].pk))
    assert response.status_code == HTTPStatus.FOUND
    assert reverse("admin:login") in response["Location"]


def _big_plan(phase_count: int, task_count: int):
    initiative = f.InitiativeFactory()
    phases = f.PhaseFactory.create_batch(phase_count, initiative=initiative)
    for earlier, later in itertools.pairwise(phases):
        f.PhaseDependencyFactory(phase=later, depends_on_phase=earlier)
    root = f.PageFactory(initiative=initiative)
    f.PageFactory.create_batch(3, initiative=initiative, parent_page=root)
    tasks = f.TaskFactory.create_batch(task_count, phase=phases[0])
    for earlier, later in itertools.pairwise(tasks):
        f.TaskDependencyFactory(task=later, depends_on_task=earlier)
    return initiative, phases[0], tasks


def test_the_plan_pages_cost_the_same_queries_at_ten_and_at_a_hundred_rows(admin_client):
    small, small_phase, small_tasks = _big_plan(10, 10)
    big, big_phase, big_tasks = _big_plan(100, 100)
    for agent_task in (small_tasks[5], big_tasks[50]):
        f.AgentFactory(task=agent_task)
    f.ReviewCommentFactory.create_batch(3, phase=small_phase)
    f.ReviewCommentFactory.create_batch(30, phase=big_phase)

    pairs = [
        ("core_initiative_change", small.pk, big.pk, ""),
        ("core_initiative_change", small.pk, big.pk, "phase"),
        ("core_initiative_graph", small.pk, big.pk, ""),
        ("core_phase_change", small_phase.pk, big_phase.pk, ""),
        ("core_task_change", small_tasks[5].pk, big_tasks[50].pk, ""),
    ]
    for name, few, many, query in pairs:
        suffix = {"phase": f"?phase={small_phase.pk}"}.get(query, "")
        suffix_big = {"phase": f"?phase={big_phase.pk}"}.get(query, "")
        _queries(admin_client, _url(name, few) + suffix)  # warm the per-process caches
        counted = (
            _queries(admin_client, _url(name, few) + suffix),
            _queries(admin_client, _url(name, many) + suffix_big),
        )
        assert counted[0] == counted[1], (name, query, counted)
        assert counted[1] <= 25, (name, counted)


def test_the_task_changelist_costs_the_same_queries_at_ten_and_at_a_hundred_rows(admin_client):
    phase = f.PhaseFactory(status=PhaseStatus.APPROVED)
    f.TaskFactory.create_batch(10, phase=phase)
    url = _url("core_task_changelist") + f"?initiative__id__exact={phase.initiative_id}"
    few = _queries(admin_client, url)
    f.TaskFactory.create_batch(90, phase=phase)
    assert _queries(admin_client, url) == few
    assert _queries(admin_client, _url("core_phase_changelist")) <= 10
    assert _queries(admin_client, _url("core_initiative_changelist")) <= 10


# --- the phase and task pages --------------------------------------------------------------


def test_the_phase_page_shows_both_directions_its_tasks_review_and_agents(admin_client, plan):
    build = plan["build"]
    f.ReviewCommentFactory(phase=build, file_path="api/views.py", body="Name this better.")
    f.ReviewCommentFactory(phase=build, file_path="api/urls.py", body="Missing route.")
    f.AgentFactory(name="brave-otter", task=plan["write"])

    html = admin_client.get(_url("core_phase_change", build.pk)).content.decode()

    assert _url("core_phase_change", plan["design"].pk) in html  # depends on
    assert _url("core_phase_change", plan["ship"].pk) in html  # needed by
    assert "Write the API" in html and "Test the API" in html
    assert html.index("api/urls.py") < html.index("api/views.py")  # grouped by file
    assert "2 unresolved comments in 2 files" in html  # the review brief
    assert "brave-otter" in html
    (graph,) = _svgs(html)
    assert _edges(graph) == {(plan["write"].pk, plan["test"].pk)}


def test_the_task_page_shows_its_neighbours_subtasks_context_and_agents(admin_client, plan):
    task = plan["test"]
    Task.objects.filter(pk=plan["write"].pk).update(summary="Wrote views and serializers.")
    sub = f.TaskFactory(phase=plan["build"], parent_task=task, name="Edge cases")
    after = f.TaskFactory(phase=plan["build"], name="Document the API")
    f.TaskDependencyFactory(task=after, depends_on_task=task)
    f.AgentFactory(name="calm-heron", task=task)

    html = admin_client.get(_url("core_task_change", task.pk)).content.decode()

    for record in (plan["write"], after, sub):
        assert _url("core_task_change", record.pk) in html
    assert "Wrote views and serializers." in html
    assert "calm-heron" in html
    assert "ready now" in html


def test_only_the_steps_that_apply_to_a_status_have_a_button(admin_client, plan):
    def buttons(name: str, record) -> set[str]:
        html = admin_client.get(_url(f"{name}_change", record.pk)).content.decode()
        return set(re.findall(r'action="[^"]*/do/([a-z-]+)/"', html))

    assert buttons("core_phase", plan["ship"]) == {"approve-plan", "block"}
    # Build's task "Test the API" is open: its Complete is offered disabled, with why.
    assert buttons("core_phase", plan["build"]) == {"start", "block"}
    assert buttons("core_phase", plan["design"]) == set()
    assert buttons("core_task", plan["test"]) == {"start", "block"}
    review = f.PhaseFactory(status=PhaseStatus.PENDING_REVIEW)
    # Request changes waits for an open comment (offered disabled until then).
    assert buttons("core_phase", review) == {"approve", "block"}
    f.ReviewCommentFactory(phase=review)
    assert buttons("core_phase", review) == {"approve", "request-changes", "block"}


def _refused_buttons(html: str) -> dict[str, str]:
    """The buttons a page shows disabled, by slug, with the reason it gives."""
    return dict(
        re.findall(
            r'<span class="cw-button-refused" data-slug="([a-z-]+)".*?'
            r'class="cw-refusal-reason"[^>]*>(.*?)</span>',
            html,
            flags=re.DOTALL,
        )
    )


def test_a_task_waiting_for_others_offers_no_start_but_says_what_it_waits_for(admin_client, plan):
    later = f.TaskFactory(phase=plan["build"], name="Ship the API")
    f.TaskDependencyFactory(task=later, depends_on_task=plan["test"])

    html = admin_client.get(_url("core_task_change", later.pk)).content.decode()

    assert _url("core_task_do", later.pk, "start") not in html
    reason = _refused_buttons(html)["start"]
    assert "it waits for the task &#x27;Test the API&#x27; (pending)" in reason


def test_a_task_of_a_phase_whose_plan_is_not_approved_says_so(admin_client, plan):
    early = f.TaskFactory(phase=plan["ship"], name="Announce")
    html = admin_client.get(_url("core_task_change", early.pk)).content.decode()
    reason = _refused_buttons(html)["start"]
    assert "the plan of its phase &#x27;Ship&#x27; is not approved yet" in reason
    assert "waits for the phase &#x27;Build&#x27; (approved)" in reason


def test_a_phase_waiting_for_another_offers_no_start_and_names_it(admin_client, plan):
    ship = plan["ship"]
    ship.status = PhaseStatus.APPROVED
    ship.save(update_fields=["status"])
    html = admin_client.get(_url("core_phase_change", ship.pk)).content.decode()
    assert _url("core_phase_do", ship.pk, "start") not in html
    assert "cannot start before &#x27;Build&#x27; completed" in _refused_buttons(html)["start"]
    # Complete is refused too: its tasks are done (it has none) but Build is not.
    assert "complete" in _refused_buttons(html)


def test_an_initiative_with_open_phases_offers_no_approve(admin_client, plan):
    initiative = plan["initiative"]
    initiative.status = "pending_review"
    initiative.save(update_fields=["status"])
    html = admin_client.get(_url("core_initiative_change", initiative.pk)).content.decode()
    assert _url("core_initiative_do", initiative.pk, "approve") not in html
    assert "still has 2 phase(s)" in _refused_buttons(html)["approve"]


def test_a_ready_task_offers_its_start_button(admin_client, plan):
    html = admin_client.get(_url("core_task_change", plan["test"].pk)).content.decode()
    assert _url("core_task_do", plan["test"].pk, "start") in html
    assert "start" not in _refused_buttons(html)


def test_a_person_starts_a_ready_task_from_its_page(admin_client, plan):
    task = plan["test"]
    response = admin_client.post(_url("core_task_do", task.pk, "start"), follow=True)
    task.refresh_from_db()
    plan["build"].refresh_from_db()
    assert task.status == TaskStatus.IN_PROGRESS
    assert plan["build"].status == PhaseStatus.IN_PROGRESS
    assert "Start: done for task 'Test the API'." in _messages(response)


def test_a_refused_start_comes_back_as_a_message_in_words(admin_client, plan):
    blocked_on = f.TaskFactory(phase=plan["build"], name="Later")
    f.TaskDependencyFactory(task=blocked_on, depends_on_task=plan["test"])
    response = admin_client.post(_url("core_task_do", blocked_on.pk, "start"), follow=True)
    assert response.status_code == HTTPStatus.OK
    assert (
        "Task 'Later' is not ready: it waits for the task 'Test the API' (pending)."
        in _messages(response)
    )
    blocked_on.refresh_from_db()
    assert blocked_on.status == TaskStatus.PENDING


def test_a_checkpoint_is_completed_by_a_person_from_its_page(admin_client, plan):
    checkpoint = f.TaskFactory(phase=plan["build"], type=TaskType.CHECKPOINT_HUMAN_VERIFY)
    admin_client.post(_url("core_task_do", checkpoint.pk, "complete"))
    checkpoint.refresh_from_db()
    assert checkpoint.status == TaskStatus.COMPLETED


def test_a_checkpoints_page_asks_for_the_decision_with_the_complete_button(admin_client, plan):
    checkpoint = f.TaskFactory(phase=plan["build"], type=TaskType.CHECKPOINT_DECISION)

    html = admin_client.get(_url("core_task_change", checkpoint.pk)).content.decode()

    form = re.search(r'<form [^>]*action="([^"]*/do/complete/)".*?</form>', html, re.DOTALL)
    assert form is not None
    assert "Decision / summary" in form.group(0)
    assert '<textarea id="cw-complete-summary" name="summary"' in form.group(0)


def test_the_decision_typed_with_complete_is_the_tasks_summary_and_its_dependents_context(
    admin_client, plan
):
    checkpoint = f.TaskFactory(phase=plan["build"], type=TaskType.CHECKPOINT_DECISION)
    after = f.TaskFactory(phase=plan["build"], name="Build it")
    f.TaskDependencyFactory(task=after, depends_on_task=checkpoint)

    admin_client.post(
        _url("core_task_do", checkpoint.pk, "complete"), {"summary": "Use PostgreSQL.\n"}
    )

    checkpoint.refresh_from_db()
    assert (checkpoint.status, checkpoint.summary) == (TaskStatus.COMPLETED, "Use PostgreSQL.")
    html = admin_client.get(_url("core_task_change", after.pk)).content.decode()
    assert "Use PostgreSQL." in html


def test_a_refused_complete_keeps_the_typed_decision_on_the_page(admin_client, plan):
    # Not ready: it depends on a task that is not completed.
    checkpoint = f.TaskFactory(phase=plan["build"], type=TaskType.CHECKPOINT_DECISION)
    f.TaskDependencyFactory(task=checkpoint, depends_on_task=plan["test"])

    response = admin_client.post(
        _url("core_task_do", checkpoint.pk, "complete"), {"summary": "Ship on Monday."}, follow=True
    )

    assert any("is not ready" in m for m in _messages(response))
    checkpoint.refresh_from_db()
    assert (checkpoint.status, checkpoint.summary) == (TaskStatus.PENDING, None)
    assert ">Ship on Monday.</textarea>" in response.content.decode()


def test_the_start_action_is_on_the_task_changelist(admin_client, plan):
    from tests.admin_actions import run_admin_action

    messages = run_admin_action(admin_client, "core_task", "task_start", plan["test"])
    assert "Start: done for 1 record(s)." in messages


def test_requesting_changes_turns_the_comments_into_a_task_and_reopens_the_phase(admin_client):
    phase = f.PhaseFactory(name="Review me", status=PhaseStatus.PENDING_REVIEW)
    f.ReviewCommentFactory(phase=phase, body="Handle the timeout.")

    button = _url("core_phase_do", phase.pk, "request-changes")
    asked = admin_client.post(button)
    assert "Are you sure?" in asked.content.decode()  # it asks first: nothing done yet
    phase.refresh_from_db()
    assert phase.status == PhaseStatus.PENDING_REVIEW
    response = admin_client.post(button, {"confirmed": "yes"}, follow=True)

    phase.refresh_from_db()
    assert phase.status == PhaseStatus.IN_PROGRESS
    review_task = Task.objects.get(phase=phase, category="review")
    assert "Handle the timeout." in review_task.description
    assert response.redirect_chain[-1][0] == _url("core_phase_change", phase.pk)
    assert any(m.startswith("Changes requested on 'Review me'") for m in _messages(response))


def test_requesting_changes_asks_first_and_changes_nothing_until_confirmed(admin_client):
    phase = f.PhaseFactory(name="Review me", status=PhaseStatus.PENDING_REVIEW)
    f.ReviewCommentFactory(phase=phase, body="Handle the timeout.")

    response = admin_client.post(_url("core_phase_do", phase.pk, "request-changes"))

    assert response.status_code == HTTPStatus.OK
    assert "Request changes on &#x27;Review me&#x27;?" in response.content.decode()
    assert 'name="confirmed" value="yes"' in response.content.decode()
    phase.refresh_from_db()
    assert phase.status == PhaseStatus.PENDING_REVIEW
    assert not Task.objects.filter(phase=phase).exists()


def test_requesting_changes_without_comments_is_refused_in_words(admin_client):
    phase = f.PhaseFactory(status=PhaseStatus.PENDING_REVIEW)
    response = admin_client.post(
        _url("core_phase_do", phase.pk, "request-changes"), {"confirmed": "yes"}, follow=True
    )
    assert any("no unresolved review comments" in m for m in _messages(response))
    phase.refresh_from_db()
    assert phase.status == PhaseStatus.PENDING_REVIEW


def test_the_approve_review_button_completes_a_phase_in_review(admin_client):
    phase = f.PhaseFactory(status=PhaseStatus.PENDING_REVIEW)
    admin_client.post(_url("core_phase_do", phase.pk, "approve"))
    phase.refresh_from_db()
    assert phase.status == PhaseStatus.COMPLETED


def test_buttons_answer_only_posts_with_a_csrf_token_from_staff(
    admin_client, plan, django_user_model
):
    url = _url("core_task_do", plan["test"].pk, "start")
    assert admin_client.get(url).status_code == HTTPStatus.METHOD_NOT_ALLOWED
    assert admin_client.post(_url("core_task_do", plan["test"].pk, "explode")).status_code == 404

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(django_user_model.objects.get(username="admin"))
    assert strict.post(url).status_code == HTTPStatus.FORBIDDEN

    anonymous = Client().post(url)
    assert anonymous.status_code == HTTPStatus.FOUND
    plan["test"].refresh_from_db()
    assert plan["test"].status == TaskStatus.PENDING


# --- changelists ---------------------------------------------------------------------------


def _listed(admin_client, url_name: str, **params: str) -> set[str]:
    response = admin_client.get(_url(url_name), params)
    assert response.status_code == HTTPStatus.OK
    return {row.pk for row in response.context["cl"].result_list}


def test_tasks_filter_by_initiative_phase_and_readiness(admin_client, plan):
    other = f.TaskFactory(name="Elsewhere")
    everything = {plan["write"].pk, plan["test"].pk}

    by_initiative = _listed(
        admin_client, "core_task_changelist", initiative__id__exact=plan["initiative"].pk
    )
    assert by_initiative == everything
    by_phase = _listed(admin_client, "core_task_changelist", phase__id__exact=plan["build"].pk)
    assert by_phase == everything
    assert _listed(admin_client, "core_task_changelist", ready="yes") == {plan["test"].pk}
    assert _listed(admin_client, "core_task_changelist", ready="no") == {plan["write"].pk, other.pk}


def test_the_phase_filter_lists_the_phases_of_the_chosen_initiative_only(admin_client, plan):
    f.PhaseFactory(name="Phase of another initiative")
    response = admin_client.get(
        _url("core_task_changelist"), {"initiative__id__exact": plan["initiative"].pk}
    )
    html = response.content.decode()
    assert "Phase of another initiative" not in html
    assert f"phase__id__exact={plan['ship'].pk}" in html


def test_the_ready_column_says_which_tasks_are_ready(admin_client, plan):
    response = admin_client.get(_url("core_task_changelist"))
    ready = {task.pk: task.is_ready for task in response.context["cl"].result_list}
    assert ready == {plan["write"].pk: False, plan["test"].pk: True}


def test_phases_filter_by_initiative_and_status(admin_client, plan):
    f.PhaseFactory()
    by_initiative = _listed(
        admin_client, "core_phase_changelist", initiative__id__exact=plan["initiative"].pk
    )
    assert by_initiative == {plan[name].pk for name in ("design", "build", "ship")}
    assert _listed(admin_client, "core_phase_changelist", status="approved") == {plan["build"].pk}


# --- records people can tell apart ---------------------------------------------------------


def test_links_and_dependencies_read_in_words(plan):
    link = f.InitiativeProjectFactory(
        initiative=plan["initiative"], project=f.ProjectFactory(name="api-server")
    )
    assert str(link) == "Payments rewrite uses api-server"
    edge = PhaseDependency.objects.get(phase=plan["build"])
    assert str(edge) == "Build depends on Design"
    assert str(TaskDependency.objects.get()) == "Test the API depends on Write the API"


def test_a_tasks_phase_choices_are_its_initiatives_phases_labelled_with_it(admin_client, plan):
    f.PhaseFactory(name="Phase of another initiative")
    response = admin_client.get(_url("core_task_change", plan["test"].pk))
    field = response.context["adminform"].form.fields["phase"]
    labels = {label for _value, label in field.choices if _value}
    assert labels == {f"Payments rewrite \N{SINGLE RIGHT-POINTING ANGLE QUOTATION MARK} {n}"
                      for n in ("Design", "Build", "Ship")}  # fmt: skip


def test_autocomplete_choices_are_labelled_with_their_initiative(admin_client, plan):
    response = admin_client.get(
        _url("core_phase_choices"),
        {
            "term": "Bui",
            "app_label": "core",
            "model_name": "phasedependency",
            "field_name": "phase",
        },
    )
    assert response.status_code == HTTPStatus.OK
    assert [r["text"] for r in response.json()["results"]] == [
        "Payments rewrite \N{SINGLE RIGHT-POINTING ANGLE QUOTATION MARK} Build"
    ]


def test_long_names_are_truncated_in_lists(admin_client):
    f.TaskFactory(name="x" * 200)
    html = admin_client.get(_url("core_task_changelist")).content.decode()
    shown = re.findall(r'field-short_name"><a [^>]*>([^<]*)</a>', html)
    assert shown == ["x" * 59 + "…"]


@pytest.mark.parametrize(
    ("app_label", "model_name", "field_name", "choices"),
    [
        ("reviews", "reviewcomment", "phase", "core_phase_choices"),
        ("agents", "agent", "task", "core_task_choices"),
        ("agents", "conversation", "phase", "core_phase_choices"),
    ],
)
def test_other_apps_phase_and_task_choices_name_their_initiative(
    admin_client, plan, app_label, model_name, field_name, choices
):
    form = admin_client.get(_url(f"{app_label}_{model_name}_add")).content.decode()
    assert f'data-ajax--url="{_url(choices)}"' in form
    response = admin_client.get(
        _url(choices),
        {"term": "", "app_label": app_label, "model_name": model_name, "field_name": field_name},
    )
    texts = [r["text"] for r in response.json()["results"]]
    assert texts and all(
        t.startswith("Payments rewrite \N{SINGLE RIGHT-POINTING ANGLE QUOTATION MARK} ")
        for t in texts
    )


# --- adding to the plan from its pages -----------------------------------------------------


def _links(html: str) -> list[str]:
    """The page's links that open a form with values filled in."""
    found = (link.replace("&amp;", "&") for link in re.findall(r'href="([^"]+)"', html))
    return [link for link in found if "?" in link and "_popup" not in link]


def test_the_phase_page_offers_to_add_a_task_to_it_prefilled(admin_client, plan):
    build = plan["build"]
    html = admin_client.get(_url("core_phase_change", build.pk)).content.decode()
    [add] = [link for link in _links(html) if link.startswith(_url("core_task_add"))]

    form = admin_client.get(add)

    initial = form.context["adminform"].form.initial
    assert (initial["phase"], initial["initiative"]) == (build.pk, plan["initiative"].pk)
    assert "Payments rewrite \N{SINGLE RIGHT-POINTING ANGLE QUOTATION MARK} Build" in (
        form.content.decode()
    )

    response = admin_client.post(
        add,
        {
            "name": "Write the docs",
            "initiative": plan["initiative"].pk,
            "phase": build.pk,
            "type": TaskType.AUTO,
            "category": "execute",
            "priority": "medium",
            "order": 0,
        },
    )
    assert Task.objects.filter(phase=build, name="Write the docs").exists()
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == _url("core_phase_change", build.pk)


def test_the_phase_page_offers_to_add_dependencies_prefilled(admin_client, plan):
    build, test = plan["build"], plan["test"]
    links = _links(admin_client.get(_url("core_phase_change", build.pk)).content.decode())

    [phase_edge] = [link for link in links if link.startswith(_url("core_phasedependency_add"))]
    form = admin_client.get(phase_edge).context["adminform"].form
    assert form.initial["phase"] == build.pk

    task_edges = [link for link in links if link.startswith(_url("core_taskdependency_add"))]
    assert len(task_edges) == 2  # one per task of the phase
    [for_test] = [link for link in task_edges if f"task={test.pk}" in link]
    response = admin_client.post(
        for_test, {"task": test.pk, "depends_on_task": f.TaskFactory(phase=build).pk}
    )
    assert response["Location"] == _url("core_phase_change", build.pk)
    assert TaskDependency.objects.filter(task=test).count() == 2


def test_an_add_form_does_not_send_a_person_to_another_site(admin_client, plan):
    add = _url("core_phasedependency_add") + "?_return_to=https://evil.example/"
    later = f.PhaseFactory(initiative=plan["initiative"])
    response = admin_client.post(add, {"phase": later.pk, "depends_on_phase": plan["ship"].pk})
    assert response.status_code == HTTPStatus.FOUND
    assert "evil.example" not in response["Location"]


def test_the_task_page_offers_a_dependency_and_a_subtask_prefilled(admin_client, plan):
    test = plan["test"]
    links = _links(admin_client.get(_url("core_task_change", test.pk)).content.decode())
    [edge] = [link for link in links if link.startswith(_url("core_taskdependency_add"))]
    assert admin_client.get(edge).context["adminform"].form.initial["task"] == test.pk
    [sub] = [link for link in links if link.startswith(_url("core_task_add"))]
    assert admin_client.get(sub).context["adminform"].form.initial["parent_task"] == test.pk


def test_task_choices_name_their_phase_so_namesakes_read_apart(admin_client, plan):
    f.TaskFactory(phase=plan["ship"], name="Test the API")
    response = admin_client.get(
        _url("core_task_choices"),
        {"term": "Test", "app_label": "core", "model_name": "taskdependency", "field_name": "task"},
    )
    angle = " \N{SINGLE RIGHT-POINTING ANGLE QUOTATION MARK} "
    assert sorted(r["text"] for r in response.json()["results"]) == [
        angle.join(("Payments rewrite", "Build", "Test the API")),
        angle.join(("Payments rewrite", "Ship", "Test the API")),
    ]


def test_the_dependency_pickers_are_wide(admin_client):
    for name in ("core_taskdependency_add", "core_phasedependency_add"):
        html = admin_client.get(_url(name)).content.decode()
        pickers = re.findall(r"<select [^>]*admin-autocomplete[^>]*>", html)
        assert len(pickers) == 2 and all('style="width: 42em"' in p for p in pickers), name


@pytest.mark.parametrize(
    ("status", "says"),
    [
        (PhaseStatus.PENDING, "its tasks may start once it is approved"),
        (PhaseStatus.APPROVED, "its tasks may start, once &#x27;Design&#x27; is completed"),
        (PhaseStatus.IN_PROGRESS, "Its tasks are under way"),
        (PhaseStatus.PENDING_REVIEW, "it waits for a person to review it"),
        (PhaseStatus.COMPLETED, "It is completed."),
    ],
)
def test_the_phase_page_says_where_it_stands_in_words_fit_for_its_status(
    admin_client, plan, status, says
):
    design = plan["design"]
    design.status = PhaseStatus.IN_PROGRESS
    design.save(update_fields=["status"])
    build = plan["build"]
    build.status = status
    build.save(update_fields=["status"])
    readiness.rebuild()
    html = admin_client.get(_url("core_phase_change", build.pk)).content.decode()
    assert says in html
    if status != PhaseStatus.PENDING:
        assert "once its plan is approved" not in html and "once it is approved" not in html
