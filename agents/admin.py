"""The agents app's admin: every add and change form saves through the repositories or
the account services, statuses are read-only (they change through services), log chunks
are read-only history, and an account's secrets are write-only.

What a person does to one of these records is a button on its page: answer an agent's
question, reply to a message, answer a conversation, release or park an account. Each is
a POST form (with its CSRF token, and the fields it posts: an answer, how long to park) to
the record's ``<id>/do/<slug>/`` URL, which checks the change permission, calls one
service and comes back to the page with the outcome in words — a refusal's message,
never a traceback (``core.admin_base.ButtonsAdmin``). An agent's log is read on its own
page, a session and a page of chunks at a time (``AgentAdmin.log_view``).

Runs, budgets and limits have their own module (``agents.admin_runs``); an agent's page
borrows its buttons: cancel the agent's live run, and requeue the task of an agent that
crashed or stopped (or say where that task is now).
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, cast
from urllib.parse import urlencode

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import quote, unquote
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from agents import admin_runs, services
from agents.admin_readable import AGENT_JSON_FIELDS, AgentReadableAdmin
from agents.logformat import LogRecord, parse_chunk
from agents.models import (
    Account,
    Agent,
    AgentLogChunk,
    AgentStatus,
    Conversation,
    ConversationStatus,
    Message,
    MessageType,
    ParticipantType,
    Provider,
    one_line,
)
from agents.repositories import (
    AccountRepository,
    LogChunkRepository,
    LogChunkRow,
    MessageRepository,
)
from agents.services import SECRET_FIELDS
from core.actors import Actor
from core.admin import PlanChoicesAdmin
from core.admin_base import (
    Button,
    ButtonsAdmin,
    Refused,
    ServiceAdmin,
    Writes,
    api_url,
    change_url,
    live,
    service_action,
)
from core.errors import InvalidInput

#: The account columns a person edits on the form (secrets have their own fields).
ACCOUNT_FORM_FIELDS = ("email", "provider", "sort_order")
#: How long a person may park an account from its page: (hours, in words).
PARK_CHOICES = ((1, "an hour"), (5, "5 hours"), (24, "a day"))
#: The chunks one page of the log viewer shows (each holds one record or more).
LOG_PAGE_CHUNKS = 100
#: The newest sessions the log viewer names as tabs (older ones by number).
LOG_SESSION_TABS = 20

logs = LogChunkRepository()
accounts = AccountRepository()
message_records = MessageRepository()


def content_of(request: HttpRequest) -> str:
    """The text a person typed in a button's form."""
    return request.POST.get("content", "")


# --- accounts ------------------------------------------------------------------------------


class SecretTextarea(forms.Textarea):
    """A textarea that never renders a value, not even one just submitted on a form
    that was refused: secrets are write-only."""

    def format_value(self, value):
        return None


class AccountAdminForm(forms.ModelForm):
    """Secrets are write-only here: the form never shows them, only lets a person replace
    or clear them. Saving goes through ``account_create`` / ``account_update``
    (``AccountAdmin.write``), never ``Model.save``."""

    new_config_json = forms.CharField(
        label="Config JSON",
        required=False,
        widget=SecretTextarea(attrs={"rows": 4, "autocomplete": "off"}),
        help_text="Write-only. Paste a new .claude.json to replace the stored one; "
        "leave blank to keep it.",
    )
    clear_config_json = forms.BooleanField(label="Clear config JSON", required=False)
    new_credentials = forms.CharField(
        label="Credentials",
        required=False,
        widget=SecretTextarea(attrs={"rows": 4, "autocomplete": "off"}),
        help_text="Write-only. Paste a new .credentials.json to replace the stored one; "
        "leave blank to keep it.",
    )
    clear_credentials = forms.BooleanField(label="Clear credentials", required=False)
    provider = forms.ChoiceField(
        choices=Provider.choices,
        initial=Provider.CLAUDE,
        help_text="The coding CLI whose login this is: the rotation hands it to the "
        "runners of that provider.",
    )

    class Meta:
        model = Account
        fields = ACCOUNT_FORM_FIELDS

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        for name in SECRET_FIELDS:
            value = cleaned.get(f"new_{name}")
            if value:
                try:
                    services.validate_account_fields({name: value})
                except InvalidInput as error:
                    self.add_error(f"new_{name}", error.message)
            if value and cleaned.get(f"clear_{name}"):
                self.add_error(f"clear_{name}", "Either paste a new value or clear it, not both.")
        return cleaned

    def secret_changes(self) -> dict[str, str | None]:
        """The secrets to write: a pasted value replaces one, a ticked box clears it."""
        changes: dict[str, str | None] = {}
        for name in SECRET_FIELDS:
            if self.cleaned_data.get(f"clear_{name}"):
                changes[name] = None
            elif self.cleaned_data.get(f"new_{name}"):
                changes[name] = self.cleaned_data[f"new_{name}"]
        return changes


def account_park_for_an_hour(*, account_id: str) -> Account:
    """Park an account for an hour (the changelist's action)."""
    return services.account_mark_exhausted(
        account_id=account_id, until=timezone.now() + timedelta(hours=1)
    )


def _release(request: HttpRequest, account: Account) -> str:
    if not account.is_exhausted:
        raise Refused(f"{account} is in the rotation already: there is nothing to release.")
    services.account_release(account_id=account.pk)
    return f"The account {account} is back in the rotation."


def _park(request: HttpRequest, account: Account) -> str:
    """Park the account for the hours its form posts (one of ``PARK_CHOICES``)."""
    hours = dict(PARK_CHOICES)
    try:
        chosen = int(request.POST.get("hours", ""))
    except ValueError:
        chosen = 0
    if chosen not in hours:
        raise Refused("Choose how long to park the account: " + ", ".join(hours.values()))
    until = timezone.now() + timedelta(hours=chosen)
    services.account_mark_exhausted(account_id=account.pk, until=until)
    return f"The account {account} is parked for {hours[chosen]}."


@admin.register(Account)
class AccountAdmin(ButtonsAdmin, ServiceAdmin):
    """Accounts are added and changed through the same services as the API, so a
    duplicate or malformed one is refused on the form; exhaustion is read-only (the API
    parks an account; people release or park it with the buttons and actions)."""

    writes = Writes(
        "account_id",
        create=services.account_create,
        update=services.account_update,
        delete=services.account_delete,
    )
    form = AccountAdminForm
    list_display = (
        "email",
        "provider",
        "sort_order",
        "is_exhausted",
        "exhausted_until",
        "last_used_at",
        "has_config",
        "has_credentials",
    )
    list_filter = ("provider", "is_exhausted")
    search_fields = ("email",)
    readonly_fields = (
        "is_exhausted",
        "exhausted_until",
        "last_used_at",
        "created_at",
        "updated_at",
    )
    actions = (
        service_action(
            services.account_release,
            id_argument="account_id",
            description="Release (not exhausted)",
        ),
        service_action(
            account_park_for_an_hour,
            id_argument="account_id",
            description="Park (exhausted) for an hour",
        ),
    )
    buttons = (
        Button("release", "Release it now", _release, shown=lambda account: account.is_exhausted),
        Button("park", "Park", _park, shown=lambda account: not account.is_exhausted),
    )

    def get_queryset(self, request):
        # Secrets are neither read nor decrypted to render a page; whether they are set
        # comes annotated from the database.
        return accounts.queryset()

    def write(self, form) -> Account:
        data = form.cleaned_data
        secrets: dict[str, Any] = form.secret_changes()
        if form.instance._state.adding:
            fields = {name: data[name] for name in ACCOUNT_FORM_FIELDS}
            return services.account_create(**fields, **secrets)
        changed = {name: data[name] for name in form.changed_data if name in ACCOUNT_FORM_FIELDS}
        return services.account_update(account_id=form.instance.pk, **changed, **secrets)

    def save_model(self, request, obj, form, change) -> None:
        saved = self.write(form)
        # Copy what the write loaded: a secret it left unread is not read (nor decrypted)
        # just to fill in the form's instance.
        for field_ in saved._meta.concrete_fields:
            if field_.attname in saved.__dict__:
                setattr(obj, field_.attname, saved.__dict__[field_.attname])
        obj._state.adding = False
        obj._state.db = saved._state.db

    @admin.display(boolean=True, description="config set")
    def has_config(self, account: Account) -> bool:
        return account.config_is_set  # type: ignore[attr-defined]  # AccountRepository.queryset

    @admin.display(boolean=True, description="credentials set")
    def has_credentials(self, account: Account) -> bool:
        return account.credentials_are_set  # type: ignore[attr-defined]  # see has_config

    def button_context(self, request, record: Account) -> dict[str, Any]:
        return {**super().button_context(request, record), "park_choices": PARK_CHOICES}


# --- agents --------------------------------------------------------------------------------

#: What an agent's process reports, and its status: changed only by the orchestrator's
#: services, never on a form.
AGENT_RUNTIME_FIELDS = ("status", "pid", "exit_code", "session_id", "result", "pending_questions")


@dataclass(frozen=True)
class LogPage:
    """One page of an agent's log: chunks of one session with their records, oldest
    first, and the cursors of the pages either side (None where there is none)."""

    session: int  # 0 when the log is empty
    latest_session: int
    chunks: list[tuple[LogChunkRow, list[LogRecord]]] = field(default_factory=list)
    older: int | None = None  # read on with ?before=<older>
    newer: int | None = None  # read on with ?after=<newer>


def read_log_page(
    agent_id: str,
    *,
    session: int | None = None,
    after: int | None = None,
    before: int | None = None,
    size: int = LOG_PAGE_CHUNKS,
) -> LogPage:
    """A page of ``size`` chunks of one session of an agent's log (the latest session
    when none is named): after the chunk ``after``, before the chunk ``before``, or else
    the session's last ones.

    Two or three short keyset reads on the ``(agent_id, id)`` index whatever the log's
    length: nothing counts or reads the whole log. Sessions follow one another (a
    session's chunks are written after the previous one's), so the latest session is
    the last chunk's, and a session ends where the next begins.
    """
    last = logs.find_last_by_agent_id(agent_id, limit=1)
    if not last:
        return LogPage(session=0, latest_session=0)
    latest = last[0].session_number
    if session is None or not 1 <= session <= latest:
        session = latest

    if after is not None:
        rows = logs.find_by_agent_id(agent_id, after=after, limit=size + 1, session_number=session)
        shown = rows[:size]
        return LogPage(
            session,
            latest,
            _with_records(shown),
            older=shown[0].id if shown and after > 0 else None,
            newer=shown[-1].id if len(rows) > size else None,
        )

    end = before
    if end is None and session != latest:
        following = logs.find_by_agent_id(agent_id, limit=1, session_number=session + 1)
        end = following[0].id if following else None
    rows = logs.find_last_by_agent_id(agent_id, before=end, limit=size + 1)
    page = rows[-size:]
    shown = [row for row in page if row.session_number == session]
    # One more chunk than a page, of this session: there are older ones.
    has_older = len(rows) > size and rows[0].session_number == session
    newer = None
    if before is not None:
        newer = shown[-1].id if shown else before - 1
    return LogPage(
        session,
        latest,
        _with_records(shown),
        older=shown[0].id if has_older and shown else None,
        newer=newer,
    )


def _with_records(rows: list[LogChunkRow]) -> list[tuple[LogChunkRow, list[LogRecord]]]:
    return [(row, parse_chunk(row.content)) for row in rows]


def _cursor(request: HttpRequest, name: str) -> int | None:
    """A whole number from the query string (a session or a chunk id), None if absent
    or not one."""
    value = request.GET.get(name, "")
    if not value.isdigit() or len(value) > 18:
        return None
    return int(value)


def pending_questions_of(agent: Agent) -> list[str]:
    """An agent's pending questions in words: ``[{"question": …}]``, a list of texts, or
    any other JSON shown as it is."""
    if not agent.pending_questions:
        return []
    try:
        value = json.loads(agent.pending_questions)
    except ValueError:
        return [agent.pending_questions]
    items = value if isinstance(value, list) else [value]
    questions = []
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("question"), str):
            questions.append(item["question"])
        elif isinstance(item, str):
            questions.append(item)
        else:
            questions.append(json.dumps(item, ensure_ascii=False, indent=2))
    return questions


def open_questions(agent: Agent) -> QuerySet[Message]:
    """The agent's messages to people that still wait for one, oldest first."""
    return message_records.awaiting_person().filter(
        sender_type=ParticipantType.AGENT, sender_id=agent.pk
    )


def _answer_agent(request: HttpRequest, agent: Agent) -> str:
    """Reply to one of the agent's open messages (``message`` in the form), or, when the
    agent waits with no message open, send it the answer."""
    content = content_of(request)
    question_id = request.POST.get("message")
    if question_id:
        question = message_records.get(question_id)
        if question.sender_type != ParticipantType.AGENT or question.sender_id != agent.pk:
            raise Refused(f"That message is not from {agent.name}.")
        services.message_reply(
            message_id=question.pk,
            sender_type=ParticipantType.USER,
            sender_id=str(request.user.pk),
            content=content,
            actor=Actor.person(request.user),
        )
        return f"Your answer was sent to {agent.name}."
    if agent.status != AgentStatus.WAITING_FOR_INPUT:
        raise Refused(
            f"{agent.name} is {agent.get_status_display().lower()}: it is not waiting "
            "for an answer."
        )
    services.message_send(
        sender_type=ParticipantType.USER,
        sender_id=str(request.user.pk),
        recipient_type=ParticipantType.AGENT,
        recipient_id=agent.pk,
        type=MessageType.RESPONSE,
        content=content,
    )
    return f"Your answer was sent to {agent.name}."


@admin.register(Agent)
class AgentAdmin(AgentReadableAdmin, ButtonsAdmin, PlanChoicesAdmin):
    """Agents are added and changed through the services; their status and runtime
    columns are read-only. A waiting agent's questions are answered on its page; its log
    is read on its own page (``log/``)."""

    writes = Writes(
        "agent_id",
        create=lambda **fields: services.agent_register(**fields)[0],
        update=services.agent_update,
        delete=services.agent_delete,
    )
    list_display = (
        "name",
        "status",
        "mode",
        "task",
        "initiative",
        "account",
        "created_at",
        "log_link",
    )
    list_filter = ("status", ("initiative", admin.RelatedOnlyFieldListFilter), "mode", "provider")
    search_fields = ("name", "session_id", "worktree_id")
    list_select_related = ("task", "initiative", "account")
    autocomplete_fields = ("task", "initiative", "account")
    date_hierarchy = "created_at"
    # The result and questions are JSON: shown in words, not as a field of the form.
    exclude = AGENT_JSON_FIELDS
    readonly_fields = (
        *(name for name in AGENT_RUNTIME_FIELDS if name not in AGENT_JSON_FIELDS),
        "result_in_words",
        "questions_in_words",
        "user_dismissed_at",
        "created_at",
        "updated_at",
    )
    actions = (
        service_action(
            services.agent_dismiss, id_argument="agent_id", description="Dismiss (finished)"
        ),
        service_action(
            services.agent_mark_stopped, id_argument="agent_id", description="Mark stopped"
        ),
    )
    buttons = (
        # Offered in the page's own panel, with the answer's text field.
        Button("answer", "Send the answer", _answer_agent, shown=lambda agent: False),
        admin_runs.REQUEUE_AGENT_TASK,
        admin_runs.CANCEL_AGENT_RUN,
    )

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "provider":
            # One of the providers cw knows (the services refuse any other).
            return forms.ChoiceField(
                choices=Provider.choices, initial=Provider.CLAUDE, label="Provider"
            )
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def get_queryset(self, request):
        # The account column shows the login only: its secrets are not read (nor decrypted).
        return super().get_queryset(request).defer("account__config_json", "account__credentials")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "account":
            # The choices list accounts without reading their secrets.
            kwargs["queryset"] = accounts.queryset()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_urls(self):
        log = path(
            "<path:object_id>/log/",
            self.admin_site.admin_view(self.log_view),
            name="agents_agent_log",
        )
        return [log, *super().get_urls()]

    @admin.display(description="log")
    def log_link(self, agent: Agent) -> str:
        return format_html('<a href="{}">log</a>', log_url(agent.pk))

    # --- the answer to a waiting agent ---------------------------------------------

    def button_context(self, request, record: Agent) -> dict[str, Any]:
        return {
            **super().button_context(request, record),
            "log_url": log_url(record.pk),
            "pending_questions": pending_questions_of(record),
            "open_questions": list(open_questions(record)),
            "is_waiting": record.status == AgentStatus.WAITING_FOR_INPUT,
            "agent_task": admin_runs.agent_task_state(record),
        }

    # --- the log viewer ------------------------------------------------------------

    def log_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """An agent's log, read-only: one session (newest first in the tabs) and one page
        of its chunks, each record shown by kind. The log outlives its agent, so a
        deleted agent's log is shown too (under the name its chunks recorded)."""
        agent_id = unquote(object_id)
        agent = self.get_object(request, agent_id)
        if not self.has_view_permission(request, agent):
            raise PermissionDenied
        page = read_log_page(
            agent_id,
            session=_cursor(request, "session"),
            after=_cursor(request, "after"),
            before=_cursor(request, "before"),
        )
        if agent is None and not page.latest_session:
            return self.record_gone(request, object_id)
        name = agent.name if agent is not None else _recorded_name(page)
        base = log_url(agent_id)

        def link(**params: int) -> str:
            return f"{base}?{urlencode({'session': page.session, **params})}"

        sessions = range(page.latest_session, 0, -1)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Log of {name}",
            "subtitle": f"session {page.session}" if page.session else None,
            "agent": agent,
            "agent_name": name,
            "page": page,
            "sessions": [
                {"number": n, "url": f"{base}?session={n}", "current": n == page.session}
                for n in sessions[:LOG_SESSION_TABS]
            ],
            "more_sessions": len(sessions) > LOG_SESSION_TABS,
            "log_url": base,
            "change_url": change_url(agent) if agent is not None else None,
            "older_url": link(before=page.older) if page.older else None,
            "newer_url": link(after=page.newer) if page.newer else None,
            "latest_url": f"{base}?session={page.session}",
            "first_url": link(after=0),
            "page_size": LOG_PAGE_CHUNKS,
            "live": _live_log(agent_id, page) if agent is not None else None,
        }
        return TemplateResponse(request, "admin/agents/agent/log.html", context)


def _live_log(agent_id: str, page: LogPage) -> dict[str, Any] | None:
    """The log viewer follows the log on its latest page only (the latest session's
    last chunks, or a log not yet written): new chunks are appended below the last; a
    chunk of a newer session says so instead."""
    if page.session != page.latest_session or page.newer is not None:
        return None
    after = page.chunks[-1][0].id if page.chunks else 0
    query = urlencode({"session": page.session}) if page.session else ""
    return live(
        api_url("follow_agent_log", agent_id, after=after),
        events=["chunk"],
        mode="log",
        after=after,
        session=page.session or None,
        page=f"{log_url(agent_id)}?{query}",
        notice="A new session began.",
        reload=f"{log_url(agent_id)}",
    )


def log_url(agent_id: str) -> str:
    """The log viewer's address for an agent (or a deleted agent's log)."""
    return reverse("admin:agents_agent_log", args=[quote(agent_id)])


def _recorded_name(page: LogPage) -> str:
    return page.chunks[0][0].agent_name if page.chunks else "a deleted agent"


# --- messages ------------------------------------------------------------------------------


def _agent_name(id_column: str) -> Subquery:
    return Subquery(Agent.objects.filter(pk=OuterRef(id_column)).order_by().values("name")[:1])


def _reply(request: HttpRequest, message: Message) -> str:
    services.message_reply(
        message_id=message.pk,
        sender_type=ParticipantType.USER,
        sender_id=str(request.user.pk),
        content=content_of(request),
        actor=Actor.person(request.user),
    )
    return "Your reply was sent."


#: The most agents a message's sender and recipient lists offer (the newest; a record's
#: own participant is always offered too).
PARTICIPANT_AGENTS = 500


def participant_choices() -> list[tuple[str, Any]]:
    """Whom a message may be from or to: an agent (by name; the newest
    ``PARTICIPANT_AGENTS``) or a person (by username), or nobody (the team); the services
    check the choice against the participant's type."""
    newest = Agent.objects.order_by("-created_at").values_list("pk", "name")
    agent_choices = sorted(newest[:PARTICIPANT_AGENTS], key=lambda choice: choice[1])
    people = get_user_model()._default_manager.order_by("pk")
    return [
        ("", "— nobody: the team —"),
        ("Agents", agent_choices),
        ("People", [(str(person.pk), person.get_username()) for person in people]),
    ]


def _flat(choices: Any) -> list[tuple[Any, Any]]:
    """A choice list with its groups opened."""
    flat: list[tuple[Any, Any]] = []
    for value, label in choices:
        if isinstance(label, (list, tuple)):
            flat.extend(label)
        else:
            flat.append((value, label))
    return flat


class MessageAdminForm(forms.ModelForm):
    """A message's sender and recipient are chosen among the agents and people, never
    typed: an id that names nobody cannot be saved."""

    sender_id = forms.TypedChoiceField(
        label="Sender",
        choices=participant_choices,
        required=False,
        empty_value=None,
        help_text="An agent when the sender type is agent (required), a person or nobody "
        "when it is user.",
    )
    recipient_id = forms.TypedChoiceField(
        label="Recipient",
        choices=participant_choices,
        required=False,
        empty_value=None,
        help_text="An agent when the recipient type is agent (required), a person or "
        "nobody when it is user.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # What the record names stays a choice, even when it names nobody any more (a
        # deleted agent, an older free-text id): its other fields can still be edited.
        for name in ("sender_id", "recipient_id"):
            current = getattr(self.instance, name, None)
            field = self.fields[name]
            assert isinstance(field, forms.ChoiceField)
            choices = list(cast(Iterable[tuple[Any, Any]], field.choices))
            offered = {str(value) for value, _label in _flat(choices)}
            if current and str(current) not in offered:
                field.choices = [*choices, (current, f"{current} (as recorded)")]

    class Meta:
        model = Message
        fields = (
            "sender_type",
            "sender_id",
            "recipient_type",
            "recipient_id",
            "type",
            "content",
            "requires_response",
            "parent_message",
        )


class RepliedFilter(admin.SimpleListFilter):
    """Whether a message has a reply. Its parameter is the plain lookup the dashboard's
    links use (``replies__isnull``): Django (5.2.20 on) accepts a lookup across a reverse
    relation only from a list filter that names it."""

    title = "reply"
    parameter_name = "replies__isnull"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("True", "No reply yet"), ("False", "Replied")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Message]) -> QuerySet[Message]:
        if self.value() == "True":
            return queryset.filter(replies__isnull=True)
        if self.value() == "False":
            return queryset.filter(replies__isnull=False).distinct()
        return queryset


@admin.register(Message)
class MessageAdmin(ButtonsAdmin, ServiceAdmin):
    """Messages are written through the services; their status changes only
    through the services (the action marks pending messages read, a reply marks the
    message responded). A person replies on the message's page."""

    writes = Writes(
        "message_id",
        create=services.message_send,
        update=services.message_update,
        delete=services.message_delete,
    )
    list_display = (
        "__str__",
        "to",
        "status",
        "requires_response",
        "in_reply_to",
        "created_at",
    )
    list_filter = (
        "status",
        "type",
        "sender_type",
        "recipient_type",
        "requires_response",
        RepliedFilter,
    )
    search_fields = ("content", "sender_id", "recipient_id")
    list_select_related = ("parent_message",)
    autocomplete_fields = ("parent_message",)
    date_hierarchy = "created_at"
    readonly_fields = ("status", "created_at", "updated_at")
    actions = (
        service_action(
            services.message_mark_read, id_argument="message_id", description="Mark read"
        ),
    )
    buttons = (Button("reply", "Send the reply", _reply),)
    form = MessageAdminForm

    def get_queryset(self, request):
        # The agents' names come with the rows, so labels never look one up per row.
        return (
            super()
            .get_queryset(request)
            .annotate(
                sender_name=_agent_name("sender_id"), recipient_name=_agent_name("recipient_id")
            )
        )

    @admin.display(description="to", ordering="recipient_type")
    def to(self, message: Message) -> str:
        if message.recipient_type == ParticipantType.AGENT:
            return message.recipient_name or "an agent"  # type: ignore[attr-defined]
        return "a person"

    @admin.display(description="in reply to", ordering="parent_message")
    def in_reply_to(self, message: Message) -> str:
        parent = message.parent_message
        if parent is None:
            return "—"
        return f"{parent.get_type_display()}: {one_line(parent.content, 40)}"

    def button_context(self, request, record: Message) -> dict[str, Any]:
        return {
            **super().button_context(request, record),
            "replies": message_records.find_replies(record.pk),
        }


# --- log chunks ----------------------------------------------------------------------------


@admin.register(AgentLogChunk)
class AgentLogChunkAdmin(admin.ModelAdmin):
    """Log chunks are the output agents wrote: history, never added or edited here (a
    person may delete them). They are read in the log viewer, linked from each row."""

    list_display = ("id", "agent_name", "agent_id", "session_number", "created_at", "in_log")
    list_filter = ("agent_id", "session_number")
    search_fields = ("agent_name", "agent_id")
    # Logs grow long: do not count the whole table for every page.
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="log")
    def in_log(self, chunk: AgentLogChunk) -> str:
        query = urlencode({"session": chunk.session_number, "after": chunk.id - 1})
        return format_html(
            '<a href="{}?{}#chunk-{}">in the log</a>', log_url(chunk.agent_id), query, chunk.id
        )


# --- conversations -------------------------------------------------------------------------


def _answer_conversation(request: HttpRequest, conversation: Conversation) -> str:
    services.conversation_answer(conversation_id=conversation.pk, answer=content_of(request))
    return f"Your answer was sent to {conversation.from_agent.name}."


@admin.register(Conversation)
class ConversationAdmin(ButtonsAdmin, PlanChoicesAdmin):
    """A question is answered once, by ``conversation_answer`` (the button on a pending
    question's page): the answer and status are read-only on the form."""

    writes = Writes(
        "conversation_id",
        create=services.conversation_ask,
        update=services.conversation_update,
        delete=services.conversation_delete,
    )
    list_display = ("__str__", "status", "initiative", "created_at")
    list_filter = ("status",)
    search_fields = ("question", "answer", "from_agent__name", "to_agent__name")
    list_select_related = ("from_agent", "to_agent", "initiative")
    autocomplete_fields = ("from_agent", "to_agent", "initiative", "phase", "task")
    date_hierarchy = "created_at"
    readonly_fields = ("answer", "status")
    buttons = (
        Button(
            "answer",
            "Send the answer",
            _answer_conversation,
            shown=lambda conversation: conversation.status == ConversationStatus.PENDING,
        ),
    )

    def button_context(self, request, record: Conversation) -> dict[str, Any]:
        return {
            **super().button_context(request, record),
            "is_pending": record.status == ConversationStatus.PENDING,
        }
