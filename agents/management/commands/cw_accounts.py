"""Add, list, park and release the provider accounts agents run under.

    manage.py cw_accounts add --provider claude --email a@example.com \\
        --credentials-file ~/.claude/.credentials.json --config-file ~/.claude.json
    cat .credentials.json | manage.py cw_accounts add --provider claude \\
        --email a@example.com --credentials-file -
    manage.py cw_accounts list [--provider claude] [--json]
    manage.py cw_accounts exhaust <id> --until 2h          # or 90m, 1d, or an ISO time
    manage.py cw_accounts release <id>
    manage.py cw_accounts clear-expired                   # e.g. from a cron job

Secrets (the credentials and the config) are read only from files or standard input
(``-``), never from arguments, where they would end up in the shell's history and the
process list. Nothing here prints a secret: listings say only whether one is set, and
read through ``AccountRepository``, which never decrypts them.

Every change goes through the ``agents.services`` account functions; a refusal exits
with status 1 and one line on standard error: the reason and its code.
"""

import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError
from django.utils import timezone

from agents.models import Account
from agents.repositories import AccountRepository
from agents.services import (
    account_clear_expired_exhaustion,
    account_create,
    account_mark_exhausted,
    account_release,
)
from core.errors import DomainError
from core.management.commandline import (
    DURATION_PATTERN,
    CwCommand,
    parse_duration,
    refusal,
    write_json,
)
from core.text import terminal_safe

accounts = AccountRepository()


#: Standard input's name where a file's path is expected.
STDIN = "-"


def parse_until(text: str) -> datetime:
    """``--until`` as a date and time: now plus a duration (``90m``, ``2h``, ``1d``), or
    an ISO 8601 date and time.

    An ISO time without a zone is returned as it is: the service refuses it with its own
    code (``exhausted_until_naive``), as it refuses a past one. Anything else is a
    ``CommandError`` naming the accepted forms.
    """
    value = text.strip()
    if DURATION_PATTERN.fullmatch(value) is not None:
        return timezone.now() + parse_duration("--until", value)
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(
            f"--until must be an ISO 8601 date and time with a zone (e.g. "
            f"2030-01-31T18:00:00+00:00) or a duration like 90m, 2h or 1d (got '{text}')."
        ) from None


def read_secret(option: str, path: str | None) -> str | None:
    """The text of the file ``path`` (standard input for ``-``; None when not given); a
    ``CommandError`` naming the option and the file when it cannot be read."""
    if path is None:
        return None
    if path == STDIN:
        return sys.stdin.read()
    try:
        return Path(path).expanduser().read_text(encoding="utf-8")
    except OSError as error:
        raise CommandError(f"Cannot read {option} '{path}': {error.strerror or error}.") from error
    except UnicodeDecodeError as error:
        raise CommandError(f"Cannot read {option} '{path}': it is not UTF-8 text.") from error


def account_data(account: Account) -> dict[str, Any]:
    """What may be shown of an account read through ``AccountRepository``: never a
    secret, only whether each is set."""
    return {
        "id": account.pk,
        "provider": account.provider,
        "email": account.email,
        "sort_order": account.sort_order,
        "is_exhausted": account.is_exhausted,
        "exhausted_until": _iso(account.exhausted_until),
        "last_used_at": _iso(account.last_used_at),
        "config_is_set": bool(getattr(account, "config_is_set", False)),
        "credentials_are_set": bool(getattr(account, "credentials_are_set", False)),
        "created_at": _iso(account.created_at),
    }


def account_state(account: Account, now: datetime) -> str:
    """``available``, ``exhausted until <time>`` or ``parked`` (until a person releases
    it). An exhaustion that has passed counts as available: the next claim clears it."""
    if not account.is_exhausted:
        return "available"
    if account.exhausted_until is None:
        return "parked"
    if account.exhausted_until <= now:
        return "available"
    return f"exhausted until {account.exhausted_until.isoformat()}"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


class Command(CwCommand):
    help = (
        "Manage the provider accounts agents run under: add, list, exhaust, release, "
        "clear-expired. Secrets are read from files or standard input, never printed."
    )

    def add_arguments(self, parser):
        actions = parser.add_subparsers(
            dest="action", required=True, metavar="{add,list,exhaust,release,clear-expired}"
        )

        add = actions.add_parser(
            "add",
            # No abbreviations: '--credentials <secret>' must be refused, not taken
            # for '--credentials-file'.
            allow_abbrev=False,
            help="Add an account to the rotation (secrets from files or standard input).",
            description=(
                "Add an account to the rotation. Secrets are read from files, or from "
                "standard input for '-' (one of the two at most); never from arguments."
            ),
        )
        add.add_argument(
            "--provider", required=True, help="The provider the account logs in to, e.g. claude."
        )
        add.add_argument("--email", required=True, help="The account's login email.")
        add.add_argument(
            "--credentials-file",
            metavar="PATH",
            help="File holding the credentials JSON (.credentials.json); '-' for stdin.",
        )
        add.add_argument(
            "--config-file",
            metavar="PATH",
            help="File holding the config JSON (.claude.json); '-' for stdin.",
        )
        add.add_argument(
            "--sort-order",
            type=int,
            default=0,
            metavar="N",
            help="Place in the rotation among never-used accounts (lower first; default 0).",
        )
        add.add_argument(
            "--json", action="store_true", help="Print the new account as JSON (no secrets)."
        )

        listing = actions.add_parser(
            "list",
            help="List the accounts and their state (never their secrets).",
            description="List the accounts in rotation order; secrets show only as set or not.",
        )
        listing.add_argument("--provider", help="Only the accounts of this provider.")
        listing.add_argument(
            "--json", action="store_true", help="Print a JSON array instead of a table."
        )

        exhaust = actions.add_parser(
            "exhaust",
            help="Park an account (rate-limited) until a time.",
            description="Park an account (rate-limited): no claim hands it out until WHEN.",
        )
        exhaust.add_argument("account_id", metavar="ID", help="The account's id.")
        exhaust.add_argument(
            "--until",
            required=True,
            metavar="WHEN",
            help=(
                "When it may be used again: an ISO 8601 time with a zone "
                "(2030-01-31T18:00:00+00:00) or a duration from now: 90m, 2h, 1d."
            ),
        )
        exhaust.add_argument(
            "--json", action="store_true", help="Print the account as JSON (no secrets)."
        )

        release = actions.add_parser(
            "release",
            help="Put a parked account back in the rotation now.",
            description="Put a parked (exhausted) account back in the rotation now.",
        )
        release.add_argument("account_id", metavar="ID", help="The account's id.")

        actions.add_parser(
            "clear-expired",
            help="Release every account whose exhaustion has passed (for cron).",
            description="Release every account whose exhaustion has passed; prints how many.",
        )

    def handle(self, *args, **options):
        handlers = {
            "add": self.add_account,
            "list": self.list_accounts,
            "exhaust": self.exhaust_account,
            "release": self.release_account,
            "clear-expired": self.clear_expired,
        }
        try:
            handlers[options["action"]](options)
        except DomainError as error:
            raise refusal(error) from error

    # --- subcommands -------------------------------------------------------------------

    def add_account(self, options: dict[str, Any]) -> None:
        """Create the account from the secrets' files; print its id (or it, as JSON)."""
        if options["credentials_file"] == STDIN and options["config_file"] == STDIN:
            raise CommandError(
                "Only one of --credentials-file and --config-file can be read from "
                "standard input ('-')."
            )
        credentials = read_secret("--credentials-file", options["credentials_file"])
        config_json = read_secret("--config-file", options["config_file"])
        account = account_create(
            email=options["email"],
            provider=options["provider"],
            credentials=credentials,
            config_json=config_json,
            sort_order=options["sort_order"],
        )
        if options["json"]:
            # Read back through the repository: what is set, without the secrets.
            self._json(account_data(accounts.get(account.pk)))
            return
        self.stdout.write(account.pk)

    def list_accounts(self, options: dict[str, Any]) -> None:
        """Every account (of ``--provider``) in rotation order, as a table or JSON."""
        provider = options["provider"]
        found = (
            accounts.find_by_provider(provider)
            if provider is not None
            else list(accounts.queryset())
        )
        if options["json"]:
            self._json([account_data(account) for account in found])
            return
        if not found:
            self.stdout.write(
                "No accounts." if provider is None else terminal_safe(f"No '{provider}' accounts.")
            )
            return
        now = timezone.now()
        header = ("ID", "PROVIDER", "EMAIL", "STATE", "LAST USED", "CREDENTIALS", "CONFIG")
        rows = [header] + [
            (
                account.pk,
                terminal_safe(account.provider),
                terminal_safe(account.email),
                account_state(account, now),
                _iso(account.last_used_at) or "never",
                "set" if getattr(account, "credentials_are_set", False) else "-",
                "set" if getattr(account, "config_is_set", False) else "-",
            )
            for account in found
        ]
        widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
        for row in rows:
            line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            self.stdout.write(line.rstrip())

    def exhaust_account(self, options: dict[str, Any]) -> None:
        """Park the account until ``--until``."""
        until = parse_until(options["until"])
        account = account_mark_exhausted(account_id=options["account_id"], until=until)
        if options["json"]:
            self._json(account_data(account))
            return
        self.stdout.write(
            self.style.SUCCESS(
                terminal_safe(
                    f"Account {account.pk} ({account.email}) is exhausted until "
                    f"{until.isoformat()}."
                )
            )
        )

    def release_account(self, options: dict[str, Any]) -> None:
        """Put the account back in the rotation now."""
        account = account_release(account_id=options["account_id"])
        self.stdout.write(
            self.style.SUCCESS(
                terminal_safe(f"Account {account.pk} ({account.email}) is available again.")
            )
        )

    def clear_expired(self, options: dict[str, Any]) -> None:
        """Release the accounts whose exhaustion has passed; print how many."""
        released = account_clear_expired_exhaustion()
        noun = "account" if released == 1 else "accounts"
        self.stdout.write(f"Released {released} {noun}.")

    def _json(self, data: Any) -> None:
        write_json(self.stdout, data)
