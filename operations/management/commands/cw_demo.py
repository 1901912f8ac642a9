"""Load a realistic demo, so that a new user sees every screen of cw filled.

    manage.py cw_demo                 # load it (prints what was created)
    manage.py cw_demo --json          # the same, as one JSON document
    manage.py cw_demo --as alice      # make the people's decisions as the user alice

Two initiatives (one ``yolo``, one ``review_per_phase``) with dependent phases and tasks
in every state, a page tree, projects, provider accounts (fake secrets; one exhausted
until tomorrow), agents in several states with their JSONL logs, questions, messages,
pending proposals, a phase in review with comments, and a chat session whose change set
can be reverted. ``operations.demo`` describes it.

Safe to run twice: when the demo is there (its initiatives' branches
``cw/demo-billing-webhooks`` and ``cw/demo-magic-link-sign-in``), it says so and
changes nothing. Everything is written through the services in one transaction, so a
refusal (say, a demo project's name already taken) leaves nothing behind: one line on
standard error, the reason and its code, and exit status 1.
"""

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from core.actors import Actor
from core.errors import DomainError
from core.management.commandline import CwCommand, refusal, write_json
from operations.demo import DemoSummary, load_demo

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
        "Load a realistic demo (two initiatives with phases, tasks, pages, projects, "
        "accounts, agents and their logs, proposals, a review and a chat) so every screen "
        "has something to show. Running it again changes nothing."
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
        if options["json"]:
            write_json(self.stdout, summary.as_dict())
            return
        self.report(summary)

    def report(self, summary: DemoSummary) -> None:
        names = ", ".join(
            f"'{i['name']}' ({i['execution_mode']}, {i['branch']})" for i in summary.initiatives
        )
        if summary.already_loaded:
            self.stdout.write(f"The demo is already loaded: {names}. Nothing changed.")
            return
        self.stdout.write(self.style.SUCCESS(f"Loaded the demo: {names}."))
        for kind, count in summary.created.items():
            self.stdout.write(f"  {kind.replace('_', ' ')}: {count}")
        self.stdout.write("Worth a look first:")
        for what, pk in summary.highlights.items():
            self.stdout.write(f"  {what.removesuffix('_id').replace('_', ' ')}: {pk}")
