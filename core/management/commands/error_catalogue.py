"""Print ``docs/errors.md``: every error code with its HTTP status and meaning."""

from django.core.management.base import BaseCommand

from core.errors_doc import render_markdown


class Command(BaseCommand):
    help = (
        "Print the error code reference (docs/errors.md) rendered from the catalogue: "
        "manage.py error_catalogue > docs/errors.md"
    )

    def handle(self, *args, **options):
        self.stdout.write(render_markdown(), ending="")
