"""Load a realistic demo, so that a new user sees every screen of cw filled.

    manage.py cw_demo                 # load it (prints what was created)
    manage.py cw_demo --json          # the same, as one JSON document
    manage.py cw_demo --as alice      # make the people's decisions as the user alice
    manage.py cw_demo --base-url http://cw.example:8000   # links to another server

Two initiatives (one ``yolo``, one ``review_per_phase``) with dependent phases and tasks
in every state, a page tree, projects, provider accounts (fake secrets; one exhausted
until tomorrow), agents in several states with their JSONL logs, questions, messages,
pending proposals, a phase in review with comments on its real diff, and a chat session
whose change set can be reverted. ``operations.demo`` describes it. The projects are git
repositories the demo makes under ``CW_DEMO_REPOS_DIR`` (default ``var/demo-repos``;
kept and reused by later runs) and fetches into cw's mirrors.

Safe to run twice: when the demo is there (its initiatives' branches
``cw/demo-billing-webhooks`` and ``cw/demo-magic-link-sign-in``), it says so and
changes nothing. Everything is written through the services in one transaction, so a
refusal (say, a demo project's name already taken) leaves nothing behind: one line on
standard error, the reason and its code, and exit status 1 (the same when git cannot
make or fetch the repositories).
"""

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError
from django.urls import reverse

from core.actors import Actor
from core.admin_base import change_url
from core.errors import DomainError
from core.management.commandline import CwCommand, refusal, write_json
from core.models import Initiative
from core.text import terminal_safe
from operations.demo import DemoSummary, highlighted_records, load_demo
from operations.demo.git_repos import DemoRepositoryError

#: Where ``make run`` serves the admin (its HOST and PORT defaults).
DEFAULT_BASE_URL = "http://127.0.0.1:8000"

#: Who makes the people's decisions when ``--as`` is not given: the operator running the
#: command, as a person who exists only for this run (no user is created).
OPERATOR = "cw-demo"


def person(username: str | None) -> Actor:
    """The person the demo acts as: the active user ``username``, or the operator."""
    user_model = get_user_model()
    if username is None:
        return Actor.person(user_model(**{user_model.USERNAME_FIELD: OPERATOR}))
    user = user_model._default_manager.filter(**{user_model.USERNAME_FIELD: username}).first()
    if user is None or not user.is_active:
        raise CommandError(f"--as: there is no active user '{username}'.")
    return Actor.person(user)


class Command(CwCommand):
    help = (
        "Load a realistic demo (two initiatives with phases, tasks, pages, projects on "
        "local git repositories, accounts, agents and their logs, proposals, a review of a "
        "real diff and a chat) so every screen has something to show. Running it again "
        "changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--json",
            action="store_true",
            help=(
                "Print one JSON document: already_loaded, the demo's initiatives, how many "
                "records of each kind were created and the ids worth opening first."
            ),
        )
        parser.add_argument(
            "--base-url",
            default=DEFAULT_BASE_URL,
            metavar="URL",
            help=(
                "Where the admin is served, to print each record's page as a link "
                f"(default {DEFAULT_BASE_URL}, where `make run` serves it)."
            ),
        )
        parser.add_argument(
            "--as",
            dest="username",
            metavar="USERNAME",
            help=(
                "An active user who approves the plans, completes a checkpoint, accepts a "
                "proposal and answers a message in the demo (default: the operator, "
                f"named '{OPERATOR}', without creating a user)."
            ),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        actor = person(options["username"])
        try:
            summary = load_demo(actor=actor)
        except DomainError as error:
            raise refusal(error) from error
        except DemoRepositoryError as error:
            raise CommandError(f"Could not make the demo's git repositories: {error}") from None
        if options["json"]:
            write_json(self.stdout, summary.as_dict())
            return
        self.report(summary, options["base_url"])

    def report(self, summary: DemoSummary, base_url: str) -> None:
        """What was loaded in words, each record named with the address of its admin
        page (``base_url`` and the page's path), so a person can click through."""
        base = base_url.rstrip("/")
        if summary.already_loaded:
            self.stdout.write("The demo is already loaded. Nothing changed. Its initiatives:")
        else:
            self.stdout.write(self.style.SUCCESS("Loaded the demo. Its initiatives:"))
        for initiative in summary.initiatives:
            self.stdout.write(
                terminal_safe(
                    f"  {initiative['name']} ({initiative['execution_mode']}, branch "
                    f"{initiative['branch']}): "
                    f"{base}{change_url(Initiative, initiative['id'])}"
                )
            )
        if summary.already_loaded:
            self.stdout.write(f"Open the admin at {base}{reverse('admin:index')}")
            return
        made = ", ".join(_counted(count, kind) for kind, count in summary.created.items())
        self.stdout.write(f"Created: {made}.")
        self.stdout.write("Worth a look first:")
        for what, record in highlighted_records(summary):
            if record is None:
                continue
            self.stdout.write(terminal_safe(f"  {what.capitalize()}: {record}"))
            self.stdout.write(f"    {base}{change_url(record)}")
        self.stdout.write(f"Open the admin at {base}{reverse('admin:index')}")


def _counted(count: int, kind: str) -> str:
    """``3 log chunks``, ``1 change set``: a kind of record (a plural key) counted."""
    words = kind.replace("_", " ")
    return f"{count} {words.removesuffix('s') if count == 1 else words}"
