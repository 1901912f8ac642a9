"""Print ``docs/errors.md``: every error code with its HTTP status and meaning."""

from core.errors_doc import render_markdown
from core.management.commandline import CwCommand


class Command(CwCommand):
    help = (
        "Print the error code reference (docs/errors.md) rendered from the catalogue: "
        "manage.py error_catalogue > docs/errors.md"
    )

    def handle(self, *args, **options):
        self.stdout.write(render_markdown(), ending="")
