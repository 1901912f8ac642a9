"""Delete events older than an age, e.g. from a daily cron job.

    manage.py prune_events --older-than 30d
    manage.py prune_events --older-than 12h --dry-run
    manage.py prune_events --older-than 90m

A reader whose cursor points into the pruned range simply continues with the oldest
event left: ids are never reused.
"""

from django.utils import timezone

from core.events import event_prune, events
from core.management.commandline import CwCommand, parse_duration


class Command(CwCommand):
    help = "Delete the events older than an age (90m, 12h, 30d); --dry-run only counts them."

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than",
            required=True,
            metavar="AGE",
            help="Delete events older than this: Nm, Nh or Nd (minutes, hours, days), e.g. 30d.",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Only count the events that would be deleted.",
        )

    def handle(self, *args, **options):
        age = parse_duration("--older-than", options["older_than"])
        if options["dry_run"]:
            count = events.queryset().filter(created_at__lt=timezone.now() - age).count()
            self.stdout.write(f"Would remove {count} event(s) older than {options['older_than']}.")
            return
        count = event_prune(older_than=age)
        self.stdout.write(
            self.style.SUCCESS(f"Removed {count} event(s) older than {options['older_than']}.")
        )
