"""``manage.py cw_fetch``: projects' repositories
fetched into cw's mirrors, with a line per project and a clear refusal (the API's
fetch: tests/api/test_project_fetch.py)."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from core import mirrors
from core.models import Event
from tests import factories as f
from tests.runner.gitwork_helpers import make_origin

pytestmark = [pytest.mark.django_db, pytest.mark.processes]


def test_it_fetches_every_project_or_those_named(tmp_path):
    one = f.ProjectFactory(name="one", url=f"file://{make_origin(tmp_path / 'one')}")
    two = f.ProjectFactory(name="two", url=f"file://{make_origin(tmp_path / 'two')}")
    out = StringIO()
    call_command("cw_fetch", "one", stdout=out)
    assert out.getvalue() == f"one: fetched from {one.url}\n"
    assert mirrors.exists(one.pk) and not mirrors.exists(two.pk)
    out = StringIO()
    call_command("cw_fetch", stdout=out)
    assert out.getvalue().splitlines() == [
        f"one: fetched from {one.url}",
        f"two: fetched from {two.url}",
    ]
    event = Event.objects.filter(kind="project.fetched").last()
    assert (event.actor_type, event.actor_name) == ("system", "cw_fetch")


def test_a_failed_fetch_is_named_and_the_exit_is_not_zero(tmp_path):
    good = f.ProjectFactory(name="good", url=f"file://{make_origin(tmp_path)}")
    f.ProjectFactory(name="gone", url=f"file://{tmp_path}/gone.git")
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError, match="1 of 2 fetches failed"):
        call_command("cw_fetch", stdout=out, stderr=err)
    assert err.getvalue().startswith("gone: Could not fetch 'gone'")
    assert mirrors.exists(good.pk)


def test_an_unknown_project_is_refused_before_any_fetch(tmp_path):
    f.ProjectFactory(name="good", url=f"file://{make_origin(tmp_path)}")
    with pytest.raises(CommandError, match="No project is named or has the id 'nope'"):
        call_command("cw_fetch", "good", "nope")
    assert not Event.objects.filter(kind="project.fetched").exists()
