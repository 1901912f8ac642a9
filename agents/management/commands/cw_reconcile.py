"""Take back the runs whose runner went silent, e.g. every minute from cron.

    manage.py cw_reconcile
    manage.py cw_reconcile --limit 500

Each live run whose last heartbeat is older than its timeout is marked lost, its agent
crashed, and its task returned to the ready queue (or blocked once its attempts are
spent): ``agents.services.run_sweep``. Safe to run twice at once, and beside the
runners' own sweeps: a run is taken back exactly once. Prints one line per run taken
back and a total; exits 0 when there was nothing to do.
"""

from django.core.management.base import CommandError

from agents.repositories import RunRepository
from agents.services import run_sweep
from core.management.commandline import CwCommand


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 10_000:
        raise CommandError(f"--limit must be a whole number from 1 to 10,000 (got '{text}').")
    return value


class Command(CwCommand):
    help = "Mark lost the runs with no heartbeat within their timeout, and requeue their tasks."

    def add_arguments(self, parser):
        parser.add_argument(
            "--limit",
            default=str(RunRepository.stale_batch),
            metavar="N",
            help=f"Take back at most N runs (default {RunRepository.stale_batch}).",
        )

    def handle(self, *args, **options):
        limit = _positive(options["limit"])
        swept = run_sweep(limit=limit)
        for run in swept:
            self.stdout.write(
                f"run {run.run_id}: lost (no heartbeat since {run.heartbeat_at.isoformat()}); "
                f"task {run.task_id} {run.task_status}"
            )
        self.stdout.write(self.style.SUCCESS(f"Took back {len(swept)} lost run(s)."))
