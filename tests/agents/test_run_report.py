"""The runner reports its run's facts (pid, worktree, CLI session, start commits): the
run and its agent take them, ``run.reported`` names the actor; refused like a heartbeat
for a run that is over or held by another runner, and for a project outside the run's
initiative, writing nothing."""

import pytest

from agents.models import Agent, Run, RunCommit
from agents.services import run_cancel, run_finish, run_report
from core.actors import Actor, acting_as
from core.errors import Conflict, InvalidInput
from core.models import Event
from tests import factories as f
from tests.agents.test_run_services import RUNNER, live_run, person

pytestmark = pytest.mark.django_db

START = "b" * 40
START_SHA256 = "c" * 64


def linked_project(run: Run):
    return f.InitiativeProjectFactory(initiative=run.task.initiative).project


def test_a_report_sets_the_run_and_its_agent_and_records_who_reported():
    run = live_run()
    project, other = linked_project(run), linked_project(run)
    tool = Actor.tool("runner-token")

    with acting_as(tool):
        reported = run_report(
            run_id=run.pk,
            runner_name=RUNNER,
            pid=4242,
            worktree_path="/srv/cw/worktrees/run-1",
            session_id="sess-1",
            start_commits={project.pk: START, other.pk: START_SHA256},
        )

    assert (reported.pid, reported.worktree_path, reported.session_id) == (
        4242,
        "/srv/cw/worktrees/run-1",
        "sess-1",
    )
    run.refresh_from_db()
    assert (run.pid, run.worktree_path, run.session_id) == (
        4242,
        "/srv/cw/worktrees/run-1",
        "sess-1",
    )
    agent = Agent.objects.get(pk=run.agent_id)
    assert (agent.worktree_id, agent.pid, agent.session_id) == (
        "/srv/cw/worktrees/run-1",
        4242,
        "sess-1",
    )
    commits = dict(RunCommit.objects.filter(run=run).values_list("project_id", "start_commit"))
    assert commits == {project.pk: START, other.pk: START_SHA256}
    event = Event.objects.get(kind="run.reported")
    assert event.subject_id == run.pk and event.actor_name == "runner-token"
    assert event.data == {
        "task_id": run.task_id,
        "fields": ["pid", "worktree_path", "session_id"],
        "start_commits": {project.pk: START, other.pk: START_SHA256},
    }
    updated = Event.objects.get(kind="agent.updated")
    assert sorted(updated.data["fields"]) == ["pid", "session_id", "worktree_id"]


def test_a_report_keeps_what_it_does_not_send_and_a_repeat_records_nothing():
    run = live_run(pid=1, worktree_path="/w/1")
    run_report(run_id=run.pk, runner_name=RUNNER, session_id="sess-2")
    run_report(run_id=run.pk, runner_name=RUNNER, session_id="sess-2")

    run.refresh_from_db()
    assert (run.pid, run.worktree_path, run.session_id) == (1, "/w/1", "sess-2")
    assert Event.objects.filter(kind="run.reported").count() == 1


def test_a_start_commit_then_the_end_commit_share_the_project_row():
    run = live_run()
    project = linked_project(run)
    run_report(run_id=run.pk, runner_name=RUNNER, start_commits={project.pk: START})

    run_finish(
        run_id=run.pk, runner_name=RUNNER, outcome="succeeded", end_commits={project.pk: "d" * 40}
    )

    row = RunCommit.objects.get(run=run)
    assert (row.start_commit, row.end_commit) == (START, "d" * 40)


def test_a_commit_of_a_project_outside_the_initiative_is_refused_writing_nothing():
    run = live_run()
    linked = linked_project(run)
    outsider = f.ProjectFactory()

    with pytest.raises(InvalidInput) as error:
        run_report(
            run_id=run.pk,
            runner_name=RUNNER,
            pid=7,
            start_commits={linked.pk: START, outsider.pk: START, "prj_nope": START},
        )

    assert error.value.code == "run_commit_other_initiative"
    assert error.value.details["project_ids"] == sorted([outsider.pk, "prj_nope"])
    run.refresh_from_db()
    assert run.pid is None
    assert not RunCommit.objects.exists()
    assert not Event.objects.filter(kind="run.reported").exists()


def test_a_report_from_another_runner_is_refused_writing_nothing():
    run = live_run()

    with pytest.raises(Conflict) as error:
        run_report(run_id=run.pk, runner_name="runner-2", pid=9)

    assert error.value.code == "run_not_held"
    run.refresh_from_db()
    assert run.pid is None


def test_a_report_of_a_run_that_is_over_is_refused():
    run = live_run()
    run_cancel(run_id=run.pk, actor=person())

    with pytest.raises(Conflict) as error:
        run_report(run_id=run.pk, runner_name=RUNNER, pid=9)

    assert error.value.code == "run_not_live"
    assert error.value.details["reason"] == "cancelled"
