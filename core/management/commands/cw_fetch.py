"""Fetch projects' repositories into cw's mirrors, which the phases' review pages read
their diffs from.

    manage.py cw_fetch                 every project
    manage.py cw_fetch storefront api  the projects named (by name or id)

One line per project: fetched, or why not. Exit 1 when a project named does not exist
or any fetch failed (the others are still fetched); cron-safe (one fetch of a mirror at
a time, across processes).
"""

from django.core.management.base import CommandError

from core import mirrors, services
from core.errors import DomainError
from core.management.commandline import CwCommand
from core.models import Project
from core.repositories import ProjectRepository
from core.text import terminal_safe

projects = ProjectRepository()


class Command(CwCommand):
    help = "Fetch projects' repositories into cw's mirrors (every project, or those named)."

    def add_arguments(self, parser):
        parser.add_argument("projects", nargs="*", metavar="PROJECT", help="A name or an id.")

    def handle(self, *args, **options):
        chosen = self._chosen(options["projects"])
        failed = 0
        for project in chosen:
            try:
                services.project_fetch(project_id=project.pk)
            except DomainError as error:
                failed += 1
                self.stderr.write(terminal_safe(f"{project.name}: {error.message}"))
            else:
                url = mirrors.shown_url(project.url)
                self.stdout.write(terminal_safe(f"{project.name}: fetched from {url}"))
        if not chosen:
            self.stdout.write("No project to fetch.")
        if failed:
            raise CommandError(f"{failed} of {len(chosen)} fetches failed (see above).")

    @staticmethod
    def _chosen(names: list[str]) -> list[Project]:
        if not names:
            return projects.find_every()
        chosen = []
        for name in names:
            project = projects.find_by_name(name) or projects.find_by_id(name)
            if project is None:
                raise CommandError(terminal_safe(f"No project is named or has the id '{name}'."))
            chosen.append(project)
        return chosen
