"""``POST /api/projects/{id}/fetch``: cw fetches the repository into its mirror."""

import pytest

from core import mirrors
from tests import factories as f
from tests.runner.gitwork_helpers import make_origin

pytestmark = [pytest.mark.django_db, pytest.mark.processes]


def test_the_api_fetches_into_the_mirror(api_client, tmp_path):
    project = f.ProjectFactory(url=f"file://{make_origin(tmp_path)}")
    answer = api_client.post(f"/api/projects/{project.pk}/fetch")
    assert answer.status_code == 200
    assert answer.json()["last_fetched_at"] is not None
    assert mirrors.commit_of(project.pk, "main") is not None
    gone = f.ProjectFactory(url=f"file://{tmp_path}/gone.git")
    refused = api_client.post(f"/api/projects/{gone.pk}/fetch")
    assert refused.status_code == 409
    assert refused.json()["code"] == "project_fetch_failed"
