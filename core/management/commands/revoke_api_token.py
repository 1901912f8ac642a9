"""Revoke an API token by id or by the prefix ``list_api_tokens`` shows.

manage.py revoke_api_token cw_Ab3dE
"""

from django.core.management.base import CommandError

from core.errors import DomainError
from core.management.commandline import CwCommand
from core.text import terminal_safe
from core.tokens import api_token_revoke


class Command(CwCommand):
    help = "Revoke an API token (by id or prefix); it stops authenticating at once."

    def add_arguments(self, parser):
        parser.add_argument("id_or_prefix", help="The token's id, or its 8-character prefix.")

    def handle(self, *args, **options):
        try:
            token = api_token_revoke(token_id_or_prefix=options["id_or_prefix"])
        except DomainError as error:
            raise CommandError(terminal_safe(error.message)) from error
        self.stdout.write(
            self.style.SUCCESS(
                terminal_safe(f"Revoked API token '{token.name}' ({token.prefix}, id {token.pk}).")
            )
        )
