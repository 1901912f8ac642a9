"""Re-encrypt every stored secret under the current key (the first of CW_SECRET_KEYS).

Rotation: put the new key first in CW_SECRET_KEYS (keeping the old one after it), run
this command, then drop the old key.
"""

from django.core.management.base import CommandError

from agents.secrets import SecretKeyError
from agents.services import account_rotate_secrets
from core.management.commandline import CwCommand


class Command(CwCommand):
    help = "Re-encrypt every stored secret with the current key of CW_SECRET_KEYS."

    def handle(self, *args, **options):
        try:
            rewritten = account_rotate_secrets()
        except SecretKeyError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted the secrets of {rewritten} row(s)."))
