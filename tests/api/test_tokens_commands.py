"""Tokens: the services in ``core/tokens.py`` and the three management commands."""

import hashlib
import re
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from core.errors import Conflict, InvalidInput, NotFound
from core.management.commands.create_api_token import Command as CreateApiTokenCommand
from core.models import ApiToken
from core.tokens import (
    api_token_authenticate,
    api_token_create,
    api_token_list,
    api_token_revoke,
)

pytestmark = pytest.mark.django_db

TOKEN_PATTERN = re.compile(r"^cw_[A-Za-z0-9_-]{43}$")


def run(command: str, *args: str) -> str:
    out = StringIO()
    call_command(command, *args, stdout=out)
    return out.getvalue()


def created_token(output: str) -> str:
    [clear] = [line for line in output.splitlines() if TOKEN_PATTERN.match(line)]
    return clear


# --- services ------------------------------------------------------------------------------


def test_create_stores_only_the_hash_and_the_display_prefix():
    token, clear = api_token_create(name=" orchestrator ")
    assert TOKEN_PATTERN.match(clear)
    token.refresh_from_db()
    assert token.name == "orchestrator"
    assert token.token_hash == hashlib.sha256(clear.encode()).hexdigest()
    assert token.prefix == clear[:8]
    assert token.revoked_at is None and token.last_used_at is None


def test_each_token_is_different():
    clears = {api_token_create(name=f"tool-{i}")[1] for i in range(20)}
    assert len(clears) == 20


@pytest.mark.parametrize("name", ["", "   ", "x" * 101])
def test_create_refuses_a_blank_or_overlong_name(name):
    with pytest.raises(InvalidInput):
        api_token_create(name=name)
    assert not ApiToken.objects.exists()


def test_create_refuses_the_name_of_an_active_token_but_not_of_a_revoked_one():
    first, _ = api_token_create(name="ci")
    with pytest.raises(Conflict) as refused:
        api_token_create(name="ci")
    assert refused.value.code == "token_name_taken"
    api_token_revoke(token_id_or_prefix=first.pk)
    second, _ = api_token_create(name="ci")
    assert second.pk != first.pk


def test_create_records_its_creator():
    user = get_user_model().objects.create_user(username="alice", password="unused-password")
    token, _ = api_token_create(name="ci", created_by=user)
    assert ApiToken.objects.get(pk=token.pk).created_by == user


def test_authenticate_finds_the_active_token_only():
    token, clear = api_token_create(name="ci")
    assert api_token_authenticate(clear) == token
    assert api_token_authenticate(clear + "x") is None
    assert api_token_authenticate("") is None
    assert api_token_authenticate(token.token_hash) is None  # the hash is not a credential
    api_token_revoke(token_id_or_prefix=token.prefix)
    assert api_token_authenticate(clear) is None


def test_revoke_refuses_unknown_already_revoked_and_ambiguous():
    token, _ = api_token_create(name="ci")
    with pytest.raises(NotFound) as missing:
        api_token_revoke(token_id_or_prefix="cw_nope0")
    assert missing.value.code == "token_not_found"
    api_token_revoke(token_id_or_prefix=token.pk)
    with pytest.raises(Conflict) as again:
        api_token_revoke(token_id_or_prefix=token.pk)
    assert again.value.code == "token_already_revoked"
    ApiToken.objects.create(name="twin-a", token_hash="a" * 64, prefix="cw_same0")
    ApiToken.objects.create(name="twin-b", token_hash="b" * 64, prefix="cw_same0")
    with pytest.raises(InvalidInput) as ambiguous:
        api_token_revoke(token_id_or_prefix="cw_same0")
    assert ambiguous.value.code == "token_prefix_ambiguous"


def test_list_returns_every_token_oldest_first():
    names = ["a", "b", "c"]
    for name in names:
        api_token_create(name=name)
    api_token_revoke(token_id_or_prefix=ApiToken.objects.get(name="b").pk)
    assert [token.name for token in api_token_list()] == names


# --- create_api_token ----------------------------------------------------------------------


def test_create_command_prints_the_token_once_and_it_authenticates():
    output = run("create_api_token", "orchestrator")
    clear = created_token(output)
    assert output.count(clear) == 1
    assert "cannot be shown again" in output
    response = Client(HTTP_AUTHORIZATION=f"Bearer {clear}").get("/api/whoami")
    assert response.json()["name"] == "orchestrator"
    assert response.json()["actor"]["type"] == "tool"


def test_create_command_records_the_creator():
    get_user_model().objects.create_user(username="alice", password="unused-password")
    run("create_api_token", "ci", "--created-by", "alice")
    assert ApiToken.objects.get(name="ci").created_by.username == "alice"


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["  "], "must not be empty"),
        (["dup"], "already named 'dup'"),
        (["ci", "--created-by", "nobody"], "No user is named 'nobody'"),
    ],
)
def test_create_command_refusals_raise_command_error(args, reason):
    api_token_create(name="dup")
    with pytest.raises(CommandError, match=reason):
        run("create_api_token", *args)
    assert ApiToken.objects.count() == 1


def test_create_command_refusal_exits_non_zero_with_a_one_line_reason(capsys):
    api_token_create(name="dup")
    with pytest.raises(SystemExit) as exited:
        CreateApiTokenCommand().run_from_argv(["manage.py", "create_api_token", "dup"])
    assert exited.value.code != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "already named 'dup'" in err


# --- revoke_api_token ----------------------------------------------------------------------


@pytest.mark.parametrize("by", ["pk", "prefix"])
def test_revoke_command_revokes_by_id_or_prefix(by):
    token, clear = api_token_create(name="ci")
    output = run("revoke_api_token", getattr(token, by))
    assert "Revoked API token 'ci'" in output
    assert api_token_authenticate(clear) is None


@pytest.mark.parametrize("reason", ["already revoked", "No API token"])
def test_revoke_command_refusals_raise_command_error(reason):
    token, _ = api_token_create(name="ci")
    api_token_revoke(token_id_or_prefix=token.pk)
    key = token.pk if reason == "already revoked" else "unknown"
    with pytest.raises(CommandError, match=reason):
        run("revoke_api_token", key)


# --- list_api_tokens -----------------------------------------------------------------------


def test_list_command_shows_names_prefixes_and_dates_but_never_a_secret():
    active, active_clear = api_token_create(name="orchestrator")
    revoked, revoked_clear = api_token_create(name="old-ci")
    api_token_revoke(token_id_or_prefix=revoked.pk)
    api_token_authenticate(active_clear)
    output = run("list_api_tokens")
    lines = output.splitlines()
    assert lines[0].split() == [
        "ID", "NAME", "KIND", "PREFIX", "CREATED", "LAST", "USED", "REVOKED"
    ]  # fmt: skip
    active_line = next(line for line in lines if "orchestrator" in line)
    revoked_line = next(line for line in lines if "old-ci" in line)
    assert active.prefix in active_line and active_line.rstrip().endswith("-")
    assert " tool " in active_line
    assert revoked.prefix in revoked_line and revoked_line.rstrip().endswith("UTC")
    for secret in (active_clear, revoked_clear, active.token_hash, revoked.token_hash):
        assert secret not in output
        assert secret[8:20] not in output  # not even a fragment past the display prefix


def test_list_command_with_no_tokens_says_how_to_create_one():
    assert "create_api_token" in run("list_api_tokens")


def test_a_personal_token_acts_for_its_person_and_says_so_in_the_list(django_user_model):
    from core.actors import actor_from_auth

    alice = django_user_model.objects.create_user(username="alice", password="x" * 12)
    output = run("create_api_token", "alice-laptop", "--person", "alice")
    clear = output.splitlines()[1]
    token = api_token_authenticate(clear)

    assert "Created person API token" in output
    assert token.kind == "person"
    assert actor_from_auth(token).is_person and actor_from_auth(token).user == alice
    assert "person:alice" in run("list_api_tokens")


def test_a_tools_token_is_a_tool_actor():
    from core.actors import actor_from_auth

    token, _ = api_token_create(name="orchestrator")

    assert token.kind == "tool"
    assert not actor_from_auth(token).is_person
