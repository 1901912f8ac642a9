"""``docs/orchestrator_example.py`` drives a live server over HTTP only, in both execution
modes, and the events it followed are exactly the initiative's committed events.

The script runs in a subprocess: like any tool, it knows the server only over HTTP."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection

from core.models import Event, Initiative, InitiativeStatus
from core.tokens import api_token_create

pytestmark = [
    pytest.mark.concurrency,
    pytest.mark.processes,
    pytest.mark.django_db(transaction=True),
]

SCRIPT = Path(settings.BASE_DIR) / "docs" / "orchestrator_example.py"
SUMMARY = re.compile(r"^initiative (\S+) completed: operations=(\d+) events=(\d+)$", re.MULTILINE)
EVENT_LINE = re.compile(r"^event (\d+) ", re.MULTILINE)


@pytest.mark.parametrize("mode", ["yolo", "review_per_phase"])
def test_the_example_orchestrates_an_initiative_to_completion(live_server, mode):
    person = get_user_model().objects.create_user(username="alice")
    _token, clear = api_token_create(name=f"alice-{mode}", person=person)

    arguments = ["--base-url", live_server.url, "--token", clear, "--mode", mode]
    run = subprocess.run(  # noqa: S603  (our own script, with arguments we chose)
        [sys.executable, str(SCRIPT), *arguments],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )

    assert run.returncode == 0, run.stderr + run.stdout
    summary = SUMMARY.search(run.stdout)
    assert summary, run.stdout
    initiative_id, operations, reported = summary[1], int(summary[2]), int(summary[3])
    seen = [int(found) for found in EVENT_LINE.findall(run.stdout)]
    committed = list(
        Event.objects.filter(initiative_id=initiative_id)
        .order_by("id")
        .values_list("id", flat=True)
    )
    print(  # the figures, for the record (pytest -s)
        f"{mode} on {connection.vendor}: operations={operations} events seen={len(seen)} "
        f"missed={len(set(committed) - set(seen))} duplicates={len(seen) - len(set(seen))}"
    )

    assert Initiative.objects.get(pk=initiative_id).status == InitiativeStatus.COMPLETED
    assert seen == committed  # every committed event, once, in commit order
    assert reported == len(seen)
    kinds = set(Event.objects.filter(id__in=seen).values_list("kind", flat=True))
    assert {"task.completed", "initiative.status_changed"} <= kinds


def test_with_a_tools_token_the_example_stops_at_the_first_gate_and_prints_why(live_server):
    _token, clear = api_token_create(name="orchestrator")
    arguments = ["--base-url", live_server.url, "--token", clear, "--mode", "yolo"]

    run = subprocess.run(  # noqa: S603  (our own script, with arguments we chose)
        [sys.executable, str(SCRIPT), *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert run.returncode == 1, run.stdout
    assert "/approve-plan answered 403" in run.stderr
    assert '"code": "person_required"' in run.stderr
