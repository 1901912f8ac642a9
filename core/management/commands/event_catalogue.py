"""Print, or write into ``docs/api.md``, the section "The event feed": every kind of
event with its subject and data, rendered from ``core.events.EVENT_KINDS``."""

from core.events_doc import api_md, render_section, replace_section
from core.management.commandline import CwCommand


class Command(CwCommand):
    help = (
        "Print the section 'The event feed' of docs/api.md rendered from EVENT_KINDS, or "
        "with --write replace it in docs/api.md."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--write",
            action="store_true",
            help="Replace the section in docs/api.md instead of printing it.",
        )

    def handle(self, *args, **options):
        if not options["write"]:
            self.stdout.write(render_section(), ending="")
            return
        path = api_md()
        path.write_text(replace_section(path.read_text()))
        self.stdout.write(f"Wrote the event feed section of {path}.")
