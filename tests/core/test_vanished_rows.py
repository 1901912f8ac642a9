"""A repository's write to a record deleted since it was read (by a DELETE that committed
in between) is the record's ``<slug>_not_found``, never Django's bare ``DatabaseError``
("Save with update_fields did not affect any rows", a 500 at the door): one rule in the
base repository's save, for every repository that updates a loaded record."""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import models
from django.utils import timezone

from agents.repositories import (
    AccountRepository,
    AgentRepository,
    ConversationRepository,
    MessageRepository,
)
from core.errors import NotFound
from core.repositories import (
    InitiativeRepository,
    PageRepository,
    PhaseRepository,
    ProjectRepository,
    TaskRepository,
)
from reviews.repositories import ChatSessionRepository, ProposalRepository
from tests import factories as f

pytestmark = pytest.mark.django_db

#: (factory, repository, the write of a loaded record) for each repository that updates
#: a record it was handed.
UPDATES: dict[str, tuple[Callable[[], models.Model], Any, Callable[[Any, Any], Any]]] = {
    "initiative": (f.InitiativeFactory, InitiativeRepository(), lambda r, o: r.update(o, name="N")),
    "phase": (f.PhaseFactory, PhaseRepository(), lambda r, o: r.update(o, name="N")),
    "task": (f.TaskFactory, TaskRepository(), lambda r, o: r.update(o, name="N")),
    "page": (f.PageFactory, PageRepository(), lambda r, o: r.update(o, title="N")),
    "project": (f.ProjectFactory, ProjectRepository(), lambda r, o: r.update(o, name="N")),
    "account": (f.AccountFactory, AccountRepository(), lambda r, o: r.update(o, sort_order=3)),
    "agent": (f.AgentFactory, AgentRepository(), lambda r, o: r.update(o, name="n-n")),
    "message": (f.MessageFactory, MessageRepository(), lambda r, o: r.update(o, content="N")),
    "conversation": (
        f.ConversationFactory,
        ConversationRepository(),
        lambda r, o: r.update(o, question="N?"),
    ),
    "proposal": (f.ProposalFactory, ProposalRepository(), lambda r, o: r.update(o, title="N")),
    "chat_session": (
        f.ChatSessionFactory,
        ChatSessionRepository(),
        lambda r, o: r.update_session(o, agent_id=None),
    ),
}


@pytest.mark.parametrize("slug", sorted(UPDATES))
def test_updating_a_record_deleted_since_it_was_read_is_not_found(slug):
    factory, repository, update = UPDATES[slug]
    record = repository.get(factory().pk)
    type(record)._default_manager.filter(pk=record.pk).delete()

    with pytest.raises(NotFound) as refused:
        update(repository, record)

    assert refused.value.code == f"{slug}_not_found"
    assert refused.value.details == {"id": str(record.pk)}


@pytest.mark.parametrize("write", ["mark_exhausted", "release"])
def test_parking_or_releasing_an_account_deleted_after_its_read_is_not_found(monkeypatch, write):
    repository = AccountRepository()
    account = f.AccountFactory()
    read = repository.get

    def read_then_delete(id: str) -> Any:
        found = read(id)
        type(found)._default_manager.filter(pk=found.pk).delete()
        return found

    monkeypatch.setattr(repository, "get", read_then_delete)

    with pytest.raises(NotFound) as refused:
        if write == "release":
            repository.release(account.pk)
        else:
            repository.mark_exhausted(account.pk, timezone.now() + timedelta(hours=1))

    assert refused.value.code == "account_not_found"
