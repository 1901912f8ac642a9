"""Create an API token for a tool and print it, once.

    manage.py create_api_token orchestrator [--created-by alice]
    manage.py create_api_token alice-laptop --person alice

A tool's token by default; ``--person`` makes a personal token that acts for that user
and passes the gates only people may pass (approving, accepting proposals, …).

The clear token is printed on its own line and never stored: only its sha256 is. Lose
it and you revoke it and create another.
"""

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from core.errors import DomainError
from core.management.commandline import CwCommand
from core.text import terminal_safe
from core.tokens import api_token_create


class Command(CwCommand):
    help = "Create a named API token and print it once (it cannot be shown again)."

    def add_arguments(self, parser):
        parser.add_argument("name", help="What the token is for, e.g. 'orchestrator'.")
        parser.add_argument(
            "--created-by", metavar="USERNAME", help="The user recorded as the token's creator."
        )
        parser.add_argument(
            "--person",
            metavar="USERNAME",
            help="Make a personal token that acts for this user (default: a tool's token).",
        )

    def handle(self, *args, **options):
        creator = _user(options["created_by"])
        person = _user(options["person"])
        try:
            token, clear = api_token_create(name=options["name"], created_by=creator, person=person)
        except DomainError as error:
            raise CommandError(terminal_safe(error.message)) from error
        self.stdout.write(
            self.style.SUCCESS(
                terminal_safe(f"Created {token.kind} API token '{token.name}' (id {token.pk}).")
            )
        )
        self.stdout.write(clear)
        self.stdout.write(
            "Store it now: it is shown only this once and cannot be shown again. "
            "Send it as 'Authorization: Bearer <token>'."
        )


def _user(username: str | None):
    """The user named ``username`` (None when not given); a one-line refusal otherwise."""
    if not username:
        return None
    user_model = get_user_model()
    user = user_model._default_manager.filter(**{user_model.USERNAME_FIELD: username}).first()
    if user is None:
        raise CommandError(terminal_safe(f"No user is named '{username}'."))
    return user
