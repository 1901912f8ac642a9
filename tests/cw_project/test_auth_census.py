"""Who may call what: a census of every API operation and every admin URL, and of every
place a secret could leak to.

Both lists come from the code, not from this file: the API's operations from its OpenAPI
document (and every URL the API serves is checked to be in that document), the admin's
URLs from the admin site's ``get_urls()`` (every model's pages, its record buttons one
by one, the graph, log and choices pages, the site's own pages). A route added tomorrow
is in the census at once, and a URL parameter this file cannot fill fails it.

- Every API operation refuses a caller without credentials, with a revoked token, with
  a token that never existed (401 ``not_authenticated``), a logged-in person who is not
  staff (403 ``staff_required``; 401 on the operations only tools may call) and a staff
  session sending an unsafe method without its CSRF token (403 ``csrf_failed``;
  ``tool_token_required`` on those tools-only operations).
- Every admin URL sends an anonymous caller and a logged-in person who is not staff to
  the login page (GET and POST), and refuses a staff POST without a CSRF token (403).
- No refused request writes anything: every table is read before and after.
- Canaries (an account's config and credentials, API tokens' clear values, a person's
  password) appear in no response of the census, no log record (root and Django loggers
  at DEBUG, SQL included), no admin page a superuser opens, no error answering a bad
  request, no ``dumpdata`` and no database column. The one response that answers a
  secret in clear, an account claimed with a bearer token, is checked to hold them (so
  the search is shown able to find them).
"""

import functools
import json
import logging
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from io import StringIO
from typing import Any

import pytest
from django.apps import apps as django_apps
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import connection, models
from django.test import Client
from django.urls import URLPattern, URLResolver, resolve, reverse

from agents import services as agent_services
from agents.models import Account, Agent
from agents.repositories import UsageRepository
from core.admin_base import ButtonsAdmin
from core.models import ApiToken, Event, Initiative
from core.tokens import api_token_create, api_token_revoke, hash_token
from cw_project.api import api
from tests import factories as f
from tests.api.helpers import assert_error
from tests.api.openapi_calls import (
    call,
    document,
    fill_path,
    operations,
    plausible_records,
    response_text,
)

pytestmark = pytest.mark.django_db

UNSAFE = {"post", "put", "patch", "delete"}
#: The API's URLs that answer without credentials: the documents, and the JSON 404 of a
#: path no operation has (it says only that nothing is there).
API_OPEN_URL_NAMES = {"openapi-json", "openapi-view", "api-root", "unknown"}
LOGIN_URL = reverse("admin:login")


# --- the canaries and the records ------------------------------------------------------------


def marker(kind: str) -> str:
    return f"CANARY-{kind}-{uuid.uuid4().hex}"


@functools.cache
def password_and_hash() -> tuple[str, str]:
    """A canary password and its hash, hashed once (the hasher is slow on purpose)."""
    password = marker("PASSWORD")
    return password, make_password(password)


@dataclass
class World:
    """One record of every kind, and every canary secret they hold."""

    config: str
    credentials: str
    password: str
    live_token: str
    revoked_token: str
    unknown_token: str
    account: Account
    person: Any  # a logged-in user who is not staff; their password is a canary
    staff: Any  # a superuser
    api_ids: dict[str, str]
    extra_canaries: list[str] = field(default_factory=list)

    def canaries(self) -> list[str]:
        tokens = [self.live_token, self.revoked_token, self.unknown_token]
        return [
            *re.findall(r"CANARY-[A-Z]+-[0-9a-f]{32}", self.config + self.credentials),
            self.password,
            *tokens,
            *(token.removeprefix("cw_") for token in tokens),
            *self.extra_canaries,
        ]

    def new_canary(self, kind: str) -> str:
        self.extra_canaries.append(marker(kind))
        return self.extra_canaries[-1]

    def found_in(self, text: str) -> list[str]:
        return [canary for canary in self.canaries() if canary in text]


@pytest.fixture
def world() -> World:
    config = json.dumps({"token": marker("CONFIG")})
    credentials = json.dumps({"oauth": marker("CREDENTIALS")})
    account = agent_services.account_create(
        email="canary@example.com", provider="claude", config_json=config, credentials=credentials
    )
    password, password_hash = password_and_hash()
    user_model = get_user_model()
    person = user_model.objects.create(username="visitor", password=password_hash)
    staff = user_model.objects.create_superuser(username="census-admin", password=None)
    _, live = api_token_create(name="census-tool", created_by=staff)
    revoked, revoked_clear = api_token_create(name="census-revoked")
    api_token_revoke(token_id_or_prefix=revoked.pk)
    api_ids = plausible_records(account)
    api_ids["name"] = Agent.objects.get(pk=api_ids["agent"]).name
    api_ids["depends_on"] = f.PhaseFactory().id
    # One record of each kind the API does not reach by id (the admin census needs them).
    f.PhaseDependencyFactory()
    f.TaskDependencyFactory()
    f.ReadyTaskFactory()
    f.ChangeSetEntryFactory()
    run = f.RunCommitFactory().run  # a run, its commits, its usage and the buckets
    UsageRepository().record(run, [{"model": "census", "input_tokens": 1}])
    f.BudgetFactory()
    f.RunLimitFactory()
    if not Event.objects.exists():
        f.EventFactory()
    Group.objects.create(name="census-group")
    # A login mistyped and a login (django-axes records both, with their own admin pages).
    failed = Client().post(LOGIN_URL, {"username": person.username, "password": password + "!"})
    assert failed.status_code != HTTPStatus.FOUND
    Client().force_login(staff)
    # A tool's write (counted in the API's rate windows).
    write = Client(HTTP_AUTHORIZATION=f"Bearer {live}").post(
        "/api/accounts/clear-expired-exhaustion", content_type="application/json"
    )
    assert write.status_code == HTTPStatus.OK, write.content
    if django_apps.is_installed("axes"):  # a lockout's record, which the above does not make
        django_apps.get_model("axes", "AccessFailureLog").objects.create(
            username=person.username, user_agent="census", http_accept="*/*", path_info=LOGIN_URL
        )
    return World(
        config=config,
        credentials=credentials,
        password=password,
        live_token=live,
        revoked_token=revoked_clear,
        unknown_token="cw_" + marker("TOKEN"),
        account=account,
        person=person,
        staff=staff,
        api_ids=api_ids,
    )


def logged_in(user, **defaults: Any) -> Client:
    client = Client(**defaults)
    client.force_login(user)
    return client


# --- what nothing may change, and where nothing may leak -------------------------------------


def database_contents() -> dict[str, list[str]]:
    """Every row of every table, as text: a refused request must change none."""
    contents = {}
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            contents[table] = sorted(repr(row) for row in cursor.fetchall())
    return contents


def assert_unchanged(before: dict[str, list[str]]) -> None:
    after = database_contents()
    changed = sorted(
        table for table in before.keys() | after.keys() if before.get(table) != after.get(table)
    )
    assert changed == [], f"refused requests wrote to {changed}"


@pytest.fixture
def logs(caplog) -> Iterator[pytest.LogCaptureFixture]:
    """Every log record at DEBUG: the root logger and Django's (request, server, SQL)."""
    caplog.set_level(logging.DEBUG)
    for name in ("django", "django.request", "django.server", "django.db.backends"):
        caplog.set_level(logging.DEBUG, logger=name)
    server = logging.getLogger("django.server")  # does not propagate to the root
    server.addHandler(caplog.handler)
    yield caplog
    server.removeHandler(caplog.handler)


def log_text(caplog: pytest.LogCaptureFixture) -> str:
    """Each record formatted (its traceback included) with every attribute it carries."""
    return "\n".join(
        caplog.handler.format(record)
        + " "
        + " ".join(str(value) for value in vars(record).values())
        for record in caplog.records
    )


def assert_no_canary(world: World, texts: dict[str, str], caplog) -> None:
    texts = {**texts, "logs": log_text(caplog)}
    leaks = {where: found for where, text in texts.items() if (found := world.found_in(text))}
    assert leaks == {}


# --- the API ---------------------------------------------------------------------------------


def bearer_only(operation: dict[str, Any]) -> bool:
    """Whether only a bearer token may call the operation (no session scheme)."""
    schemes = {name for requirement in operation.get("security", []) for name in requirement}
    assert schemes, "an operation without security would answer anyone"
    return schemes == {"BearerTokenAuth"}


@dataclass(frozen=True)
class Caller:
    """A caller the API must refuse, and what it must answer for an operation."""

    name: str
    only_unsafe: bool = False

    def client(self, world: World) -> tuple[Client, dict[str, str]]:
        if self.name == "no-credentials":
            return Client(), {}
        if self.name == "revoked-token":
            return Client(), {"HTTP_AUTHORIZATION": f"Bearer {world.revoked_token}"}
        if self.name == "unknown-token":
            return Client(), {"HTTP_AUTHORIZATION": f"Bearer {world.unknown_token}"}
        if self.name == "non-staff-session":
            return logged_in(world.person), {}
        assert self.name == "staff-session-without-csrf"
        return logged_in(world.staff, enforce_csrf_checks=True), {}

    def expected(self, operation: dict[str, Any]) -> tuple[int, str]:
        if self.name == "non-staff-session":
            if bearer_only(operation):
                return HTTPStatus.UNAUTHORIZED, "not_authenticated"
            return HTTPStatus.FORBIDDEN, "staff_required"
        if self.name == "staff-session-without-csrf":
            if bearer_only(operation):
                return HTTPStatus.FORBIDDEN, "tool_token_required"
            return HTTPStatus.FORBIDDEN, "csrf_failed"
        return HTTPStatus.UNAUTHORIZED, "not_authenticated"


API_CALLERS = [
    Caller("no-credentials"),
    Caller("revoked-token"),
    Caller("unknown-token"),
    Caller("non-staff-session"),
    Caller("staff-session-without-csrf", only_unsafe=True),
]


class CanaryBodies:
    """Secret fields of the bodies the census sends: fresh canaries of the world."""

    def __init__(self, world: World) -> None:
        self.world = world

    def new(self, key: str = "token") -> str:
        return json.dumps({key: self.world.new_canary("BODY")})


def test_every_api_url_is_an_operation_of_the_document():
    """The census walks the document, so every URL the API serves must be in it."""
    documented = {
        path
        for path, item in document()["paths"].items()
        for method in item
        if method in UNSAFE | {"get"}
    }
    patterns, _, _ = api.urls
    served = {
        "/api/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", str(pattern.pattern))
        for pattern in patterns
        if pattern.name not in API_OPEN_URL_NAMES
    }
    assert served == documented
    # Nor is any operation left out of the document (where it would escape the census).
    hidden = [
        (path, operation.methods)
        for _, router in api._routers
        for path, path_view in router.path_operations.items()
        for operation in path_view.operations
        if not operation.include_in_schema
    ]
    assert hidden == []
    assert sum(1 for _ in operations()) >= 100  # the document really is walked


def test_only_the_documents_and_the_not_found_answer_without_credentials():
    client = Client()
    for path in ("/api/docs", "/api/openapi.json"):
        assert client.get(path).status_code == HTTPStatus.OK
    for path in ("/api/", "/api/no-such-endpoint"):
        assert_error(client.get(path), HTTPStatus.NOT_FOUND, "not_found")


@pytest.mark.parametrize("caller", API_CALLERS, ids=lambda caller: caller.name)
def test_every_api_operation_refuses_the_caller_and_writes_nothing(world, logs, caller):
    client, headers = caller.client(world)
    secrets = CanaryBodies(world)
    before = database_contents()
    wrong: dict[str, Any] = {}
    texts: dict[str, str] = {}
    walked = 0
    for method, path, operation in operations():
        if caller.only_unsafe and method not in UNSAFE:
            continue
        walked += 1
        response = call(client, method, path, operation, world.api_ids, secrets, **headers)
        status, code = caller.expected(operation)
        where = f"{method.upper()} {fill_path(path, operation, world.api_ids)}"
        texts[where] = response_text(response)
        try:
            body = assert_error(response, status, code)
        except AssertionError:
            wrong[where] = (response.status_code, response.content[:200])
            continue
        if status == HTTPStatus.UNAUTHORIZED and not response["WWW-Authenticate"].startswith(
            "Bearer"
        ):
            wrong[where] = "no WWW-Authenticate: Bearer"
        assert world.found_in(body["message"] + json.dumps(body["details"])) == []
    assert wrong == {}
    assert walked >= (40 if caller.only_unsafe else 100)
    assert_unchanged(before)
    assert_no_canary(world, texts, logs)


# --- the admin ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AdminUrl:
    name: str  # the URL name, or the route when it has none
    url: str


def _fill_admin_route(route: str, values: dict[str, list[str]]) -> list[str]:
    """The route with each ``<converter:name>`` filled, once per value of ``name``."""
    urls = [route]
    for name in re.findall(r"<(?:\w+:)?(\w+)>", route):
        assert name in values, f"the census cannot fill <{name}> of admin route {route!r}"
        urls = [
            re.sub(rf"<(?:\w+:)?{name}>", lambda _, value=value: value, url, count=1)
            for url in urls
            for value in values[name]
        ]
    return urls


def _object_for(model: type[models.Model], world: World) -> models.Model:
    preferred = {Account: world.account, get_user_model(): world.person}
    if model is ApiToken:
        return ApiToken.objects.get(name="census-tool")
    if model in preferred:
        return preferred[model]
    obj = model._default_manager.order_by("pk").first()
    assert obj is not None, f"the census made no {model._meta.label}: add it to world()"
    return obj


def admin_urls(world: World) -> list[AdminUrl]:
    """Every URL of the admin site, each parameter filled with a real record's id (a
    record's buttons one by one)."""
    found = []
    registered = {
        f"{model._meta.app_label}/{model._meta.model_name}/": (model, model_admin)
        for model, model_admin in admin.site._registry.items()
    }
    for entry in admin.site.get_urls():
        if isinstance(entry, URLResolver):
            model, model_admin = registered[str(entry.pattern)]
            obj = _object_for(model, world)
            values = {
                "object_id": [quote(str(obj.pk))],
                "id": [quote(str(obj.pk))],
                "slug": [button.slug for button in model_admin.buttons]
                if isinstance(model_admin, ButtonsAdmin)
                else [],
            }
            leaves = [(str(entry.pattern), leaf) for leaf in entry.url_patterns]
        else:
            values = {
                "content_type_id": [str(ContentType.objects.get_for_model(Initiative).pk)],
                "object_id": [world.api_ids["initiative"]],
            }
            leaves = [("", entry)]
        for prefix, leaf in leaves:
            assert isinstance(leaf, URLPattern)
            route = str(leaf.pattern)
            if leaf.name == "app_list":
                route = "core/"
            elif route == "(?P<url>.*)$":
                route = "no-such-page/"
            paths = _fill_admin_route(route, values)
            assert paths, f"the census has no value for a parameter of {prefix}{route}"
            for path in paths:
                url = "/admin/" + prefix + path
                match = resolve(url)  # the URL reaches the view it is filled for
                assert match.url_name == leaf.name, (url, match)
                assert match.route == f"admin/{prefix}{str(leaf.pattern).lstrip('^')}", url
                found.append(AdminUrl(leaf.name or f"{prefix}{route}", url))
    return found


def _is_login_redirect(response) -> bool:
    return response.status_code == HTTPStatus.FOUND and response["Location"].startswith(
        f"{LOGIN_URL}?next="
    )


@pytest.mark.parametrize("who", ["anonymous", "non-staff"])
def test_every_admin_url_sends_a_non_staff_caller_to_the_login(world, logs, who):
    # CSRF is not enforced: the login check itself must refuse, not the missing token.
    client = Client() if who == "anonymous" else logged_in(world.person)
    urls = admin_urls(world)
    before = database_contents()
    wrong: dict[str, Any] = {}
    texts: dict[str, str] = {}
    for admin_url in urls:
        for method in ("get", "post"):
            response = getattr(client, method)(admin_url.url)
            texts[f"{method} {admin_url.url}"] = response_text(response)
            if admin_url.name == "login":
                # The one page open to all: the form (a person not staff is told so).
                expected_ok = response.status_code == HTTPStatus.OK
            elif admin_url.name == "logout":
                # Django's admin sends a caller who is not logged in to its index.
                expected_ok = response.status_code == HTTPStatus.FOUND and response[
                    "Location"
                ] == reverse("admin:index")
            else:
                expected_ok = _is_login_redirect(response)
            if not expected_ok:
                wrong[f"{method.upper()} {admin_url.url}"] = response.status_code
    assert wrong == {}
    assert len(urls) >= 150
    assert_unchanged(before)
    assert_no_canary(world, texts, logs)


def test_every_admin_url_refuses_a_staff_post_without_csrf_token(world, logs):
    client = logged_in(world.staff, enforce_csrf_checks=True)
    urls = admin_urls(world)
    before = database_contents()
    wrong: dict[str, Any] = {}
    texts: dict[str, str] = {}
    for admin_url in urls:
        response = client.post(admin_url.url, {"confirm": "yes", "post": "yes"})
        texts[admin_url.url] = response_text(response)
        if response.status_code != HTTPStatus.FORBIDDEN or b"CSRF" not in response.content:
            wrong[admin_url.url] = response.status_code
    assert wrong == {}
    assert_unchanged(before)
    assert_no_canary(world, texts, logs)


# --- the canaries ---------------------------------------------------------------------------


@contextmanager
def sql_logged() -> Iterator[None]:
    """Log every SQL statement with its parameters (as DEBUG does), to search them too."""
    connection.force_debug_cursor = True
    try:
        yield
    finally:
        connection.force_debug_cursor = False


def admin_pages(client: Client, world: World) -> dict[str, str]:
    """Every admin URL opened by a superuser: none may fail, each is searched."""
    texts, failed = {}, {}
    for admin_url in admin_urls(world):
        response = client.get(admin_url.url)
        texts[f"GET {admin_url.url}"] = response_text(response)
        if response.status_code >= HTTPStatus.INTERNAL_SERVER_ERROR:
            failed[admin_url.url] = response.status_code
    assert failed == {}
    return texts


def bad_requests(world: World) -> dict[str, str]:
    """Requests refused for their input, each carrying a canary."""
    token = Client(HTTP_AUTHORIZATION=f"Bearer {world.live_token}")
    account_url = reverse("api-1:update_account", kwargs={"account_id": world.account.pk})
    canary = world.new_canary("BAD")
    answers = {
        "malformed JSON": token.post(
            reverse("api-1:create_account"),
            '{"email": "a@example.com", "credentials": "' + canary + '",',
            content_type="application/json",
        ),
        "secret not JSON": token.patch(
            account_url, {"credentials": f"not json {canary}"}, content_type="application/json"
        ),
        "Basic credentials": Client(HTTP_AUTHORIZATION=f"Basic {canary}").get("/api/whoami"),
        "token without scheme": Client(HTTP_AUTHORIZATION=world.unknown_token).get("/api/whoami"),
    }
    for what, response in answers.items():
        assert 400 <= response.status_code < 500, (what, response.status_code)
    admin = logged_in(world.staff)
    change = reverse("admin:agents_account_change", args=[world.account.pk])
    answers["admin form refused"] = refused = admin.post(
        change,
        {
            "email": "canary@example.com",
            "provider": "claude",
            "sort_order": 0,
            "new_credentials": "{" + canary,
        },
    )
    assert refused.status_code == HTTPStatus.OK and refused.context["adminform"].form.errors
    answers["admin login refused"] = Client().post(
        LOGIN_URL, {"username": world.person.username, "password": world.password}
    )
    assert answers["admin login refused"].status_code != HTTPStatus.FOUND
    return {what: response_text(response) for what, response in answers.items()}


def secret_changes(world: World) -> None:
    """New secrets written through the admin's form and the API, so their paths (and
    their logs and SQL) are searched too; the account's history then has an entry."""
    admin = logged_in(world.staff)
    response = admin.post(
        reverse("admin:agents_account_change", args=[world.account.pk]),
        {
            "email": "canary@example.com",
            "provider": "claude",
            "sort_order": 0,
            "new_config_json": world.config,
            "new_credentials": json.dumps({"oauth": world.new_canary("ADMIN")}),
        },
    )
    assert response.status_code == HTTPStatus.FOUND
    response = Client(HTTP_AUTHORIZATION=f"Bearer {world.live_token}").patch(
        reverse("api-1:update_account", kwargs={"account_id": world.account.pk}),
        {"credentials": world.credentials},
        content_type="application/json",
    )
    assert response.status_code == HTTPStatus.OK
    assert world.found_in(response_text(response)) == []


def raw_columns(table: str) -> dict[str, list[Any]]:
    """Every column of ``table`` as the database stores it, by column name."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
        names = [column[0] for column in cursor.description]
        rows = cursor.fetchall()
    return {name: [row[index] for row in rows] for index, name in enumerate(names)}


def test_canaries_appear_nowhere_but_in_the_claim(world, logs):
    with sql_logged():  # the statements that carry secrets: writes and refused writes
        secret_changes(world)
        bad = bad_requests(world)
    texts = admin_pages(logged_in(world.staff), world)
    assert any(world.account.email in text for text in texts.values())
    texts.update(bad)
    out = StringIO()
    call_command("dumpdata", stdout=out)
    texts["dumpdata"] = out.getvalue()
    assert "fernet:" in texts["dumpdata"]
    assert hash_token(world.live_token) in texts["dumpdata"]

    accounts, tokens = raw_columns("accounts"), raw_columns("api_tokens")
    users = raw_columns(get_user_model()._meta.db_table)
    texts["accounts table"] = repr(accounts)
    texts["api_tokens table"] = repr(tokens)
    texts["users table"] = repr(users)
    assert all(value.startswith("fernet:") for value in accounts["config_json"])
    assert all(value.startswith("fernet:") for value in accounts["credentials"])
    assert {hash_token(world.live_token), hash_token(world.revoked_token)} <= set(
        tokens["token_hash"]
    )

    # The one place a secret is answered in clear: a tool claiming the account.
    with sql_logged():
        claim = Client(HTTP_AUTHORIZATION=f"Bearer {world.live_token}").post(
            reverse("api-1:claim_account"), {"provider": "claude"}, content_type="application/json"
        )
    assert claim.status_code == HTTPStatus.OK, claim.content
    claimed = response_text(claim)
    assert world.config in claim.json()["config_json"]
    assert world.credentials in claim.json()["credentials"]
    assert len(world.found_in(claimed)) == 2  # the config's and the credentials' markers

    # The SQL was logged (so it is searched), the claim's answer was not.
    assert any(record.name == "django.db.backends" for record in logs.records)
    assert_no_canary(world, texts, logs)
