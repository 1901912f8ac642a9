"""Delete events older than an age, e.g. from a daily cron job.

    manage.py prune_events --older-than 30d
    manage.py prune_events --older-than 12h --dry-run

A reader whose cursor points into the pruned range simply continues with the oldest
event left: ids are never reused.
"""

import re
from datetime import timedelta

from django.core.management.base import CommandError
from django.utils import timezone

from core.events import event_prune, events
from core.management.commandline import CwCommand

#: ``<whole number><unit>``: ``d`` for days, ``h`` for hours.
AGE_PATTERN = re.compile(r"(?P<count>\d{1,6})(?P<unit>[dh])")
UNITS = {"d": "days", "h": "hours"}


def parse_age(text: str) -> timedelta:
    """``30d`` or ``12h`` as a duration; a ``CommandError`` naming the format otherwise."""
    match = AGE_PATTERN.fullmatch(text.strip())
    if match is None or int(match["count"]) == 0:
        raise CommandError(
            f"--older-than must be a positive whole number of days or hours, like 30d or "
            f"12h (got '{text}')."
        )
    return timedelta(**{UNITS[match["unit"]]: int(match["count"])})


class Command(CwCommand):
    help = "Delete the events older than an age (Nd or Nh); --dry-run only counts them."

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than",
            required=True,
            metavar="AGE",
            help="Delete events older than this: Nd (days) or Nh (hours), e.g. 30d.",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Only count the events that would be deleted.",
        )

    def handle(self, *args, **options):
        age = parse_age(options["older_than"])
        if options["dry_run"]:
            count = events.queryset().filter(created_at__lt=timezone.now() - age).count()
            self.stdout.write(f"Would remove {count} event(s) older than {options['older_than']}.")
            return
        count = event_prune(older_than=age)
        self.stdout.write(
            self.style.SUCCESS(f"Removed {count} event(s) older than {options['older_than']}.")
        )
