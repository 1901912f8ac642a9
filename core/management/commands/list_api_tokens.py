"""List API tokens: name, kind (a tool's or a person's), prefix, creation, last use and
revocation. Never a secret."""

from datetime import datetime

from django.core.management.base import BaseCommand

from core.text import terminal_safe
from core.tokens import api_token_list


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z") if moment else "-"


class Command(BaseCommand):
    help = "List API tokens (the clear token and its hash are never shown)."

    def handle(self, *args, **options):
        tokens = api_token_list()
        if not tokens:
            self.stdout.write("No API tokens. Create one with: manage.py create_api_token NAME")
            return
        header = ("ID", "NAME", "KIND", "PREFIX", "CREATED", "LAST USED", "REVOKED")
        rows = [
            (
                token.pk,
                terminal_safe(token.name),
                terminal_safe(f"person:{token.person.get_username()}") if token.person else "tool",
                token.prefix,
                _when(token.created_at),
                _when(token.last_used_at),
                _when(token.revoked_at),
            )
            for token in tokens
        ]
        widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            line = "  ".join(
                str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)
            )
            self.stdout.write(line.rstrip())
