"""Every cw model is in the admin, and its pages open."""

from http import HTTPStatus

import pytest
from django.apps import apps
from django.contrib import admin
from django.urls import reverse

pytestmark = pytest.mark.django_db

CW_MODELS = [
    model
    for app in ("core", "agents", "reviews")
    for model in apps.get_app_config(app).get_models()
]


def test_every_model_is_registered():
    missing = [model._meta.label for model in CW_MODELS if not admin.site.is_registered(model)]
    assert missing == []


@pytest.mark.parametrize("model", CW_MODELS, ids=lambda m: m._meta.label)
def test_changelist_and_add_pages_open(admin_client, model):
    opts = model._meta
    changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    assert admin_client.get(changelist).status_code == HTTPStatus.OK
    add = reverse(f"admin:{opts.app_label}_{opts.model_name}_add")
    can_add = admin.site.get_model_admin(model).has_add_permission(
        admin_client.request().wsgi_request
    )
    expected = HTTPStatus.OK if can_add else HTTPStatus.FORBIDDEN
    assert admin_client.get(add).status_code == expected


def test_api_tokens_are_created_by_command_not_in_the_admin_and_can_be_revoked(admin_client):
    from core.models import ApiToken
    from core.tokens import api_token_create

    token, clear = api_token_create(name="ci")
    changelist = reverse("admin:core_apitoken_changelist")
    page = admin_client.get(changelist).content.decode()
    assert clear not in page
    assert token.token_hash not in page
    response = admin_client.post(
        changelist, {"action": "api_token_revoke", "_selected_action": [token.pk]}, follow=True
    )
    assert "Revoke: done for 1 record(s)." in response.content.decode()
    assert ApiToken.objects.get(pk=token.pk).revoked_at is not None


FACTORIES = {
    "core.Initiative": "InitiativeFactory",
    "core.Phase": "PhaseFactory",
    "core.PhaseDependency": "PhaseDependencyFactory",
    "core.Task": "TaskFactory",
    "core.TaskDependency": "TaskDependencyFactory",
    "core.ReadyTask": "ReadyTaskFactory",
    "core.Page": "PageFactory",
    "core.Project": "ProjectFactory",
    "core.InitiativeProject": "InitiativeProjectFactory",
    "core.ApiRateWindow": "ApiRateWindowFactory",
    "core.ApiToken": "ApiTokenFactory",
    "core.Event": "EventFactory",
    "agents.Account": "AccountFactory",
    "agents.Agent": "AgentFactory",
    "agents.AgentLogChunk": "AgentLogChunkFactory",
    "agents.Message": "MessageFactory",
    "agents.Conversation": "ConversationFactory",
    "reviews.Proposal": "ProposalFactory",
    "reviews.ReviewComment": "ReviewCommentFactory",
    "reviews.ChatSession": "ChatSessionFactory",
    "reviews.ChatMessage": "ChatMessageFactory",
    "reviews.ChangeSet": "ChangeSetFactory",
    "reviews.ChangeSetEntry": "ChangeSetEntryFactory",
    "agents.Run": "RunFactory",
    "agents.RunCommit": "RunCommitFactory",
    "agents.RunUsage": "RunUsageFactory",
    "agents.UsageBucket": "UsageBucketFactory",
    "agents.Budget": "BudgetFactory",
    "agents.RunLimit": "RunLimitFactory",
}


@pytest.mark.parametrize("model", CW_MODELS, ids=lambda m: m._meta.label)
def test_changelists_cost_the_same_queries_at_one_row_and_at_twenty(admin_client, model):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests import factories

    factory = getattr(factories, FACTORIES[model._meta.label])
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            response = admin_client.get(url)
        assert response.status_code == HTTPStatus.OK
        return len(captured.captured_queries)

    factory()
    one = queries()
    factory.create_batch(19)
    assert queries() == one


def test_only_history_log_chunks_and_counters_cannot_be_added_in_the_admin(admin_client):
    # API tokens are made in the admin since issue 23 (core.admin.tokens).
    request = admin_client.request().wsgi_request
    no_add = {
        model._meta.label
        for model in CW_MODELS
        if not admin.site.get_model_admin(model).has_add_permission(request)
    }
    assert no_add == {
        "core.ApiRateWindow",
        "core.Event",
        "core.ReadyTask",
        "agents.AgentLogChunk",
        "reviews.ChangeSet",
        "reviews.ChangeSetEntry",
        # What runners reported (a run is cancelled with its page's button, issue 21).
        "agents.Run",
        "agents.RunCommit",
        "agents.RunUsage",
        "agents.UsageBucket",
    }
