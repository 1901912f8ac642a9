"""Projects (git repositories) and the links that say which an initiative uses."""

from collections.abc import Iterable
from datetime import datetime
from typing import NotRequired, TypedDict

from django.db import transaction
from typing_extensions import Unpack

from core.errors import InvalidInput, NotFound
from core.models import InitiativeProject, Project
from core.repositories.base import Repository
from core.repositories.initiatives import InitiativeRepository
from core.repositories.pagination import DEFAULT_PAGE_SIZE, OffsetPage, offset_page


class ProjectFields(TypedDict):
    name: str
    url: str
    default_branch: NotRequired[str]


class ProjectChanges(TypedDict, total=False):
    name: str
    url: str
    default_branch: str
    last_fetched_at: datetime | None


class ProjectRepository(Repository[Project]):
    model = Project
    slug = "project"
    label = "Project"

    def create(self, **fields: Unpack[ProjectFields]) -> Project:
        """Register a repository (its name and URL are unique)."""
        return self._create(**fields)

    def update(self, project: Project | str, /, **changes: Unpack[ProjectChanges]) -> Project:
        return self._update(project, **changes)

    def delete(self, id: str) -> bool:
        """Delete a project and its links to initiatives."""
        return self._delete(id)

    def find_page(
        self, *, limit: int = DEFAULT_PAGE_SIZE, offset: int = 0, max_bytes: int | None = None
    ) -> OffsetPage[Project]:
        """One offset page of the projects by name, with the total: two queries."""
        return offset_page(
            self.queryset().order_by("name", "id"), limit=limit, offset=offset, max_bytes=max_bytes
        )

    def find_every(self) -> list[Project]:
        """Every project, by name (there are tens, not thousands: ``cw_fetch``)."""
        return list(self.queryset().order_by("name", "id"))

    def find_by_name(self, name: str) -> Project | None:
        return self.queryset().filter(name=name).first()

    def initiative_ids_of(self, project_id: str) -> list[str]:
        """The ids of the initiatives a project is linked to, in id order."""
        return list(
            InitiativeProject.objects.filter(project_id=project_id)
            .order_by("initiative_id")
            .values_list("initiative_id", flat=True)
        )

    def find_projects_by_initiative_id(self, initiative_id: str) -> list[Project]:
        return list(self.queryset().filter(initiative_links__initiative_id=initiative_id))

    def set_initiative_projects(
        self, initiative_id: str, project_ids: Iterable[str]
    ) -> list[Project]:
        """Make the initiative's projects exactly ``project_ids``, touching only the diff.

        Missing links are inserted and extra links deleted; links already there keep
        their rows (and ids). Unknown ids are refused before anything is written.
        """
        try:
            ids = None if isinstance(project_ids, str | None) else list(project_ids)
        except TypeError:
            ids = None
        if ids is None or not all(isinstance(pk, str) for pk in ids):
            raise InvalidInput(
                "project_ids must be a list of project ids.", code="invalid_project_ids"
            )
        wanted = list(dict.fromkeys(ids))
        with transaction.atomic():
            InitiativeRepository().get_for_update(initiative_id)
            known = set(Project.objects.filter(pk__in=wanted).values_list("pk", flat=True))
            unknown = [pk for pk in wanted if pk not in known]
            if unknown:
                raise NotFound(
                    f"Unknown project(s): {', '.join(unknown)}.",
                    code="project_not_found",
                    details={"ids": unknown},
                )
            links = InitiativeProject.objects.filter(initiative_id=initiative_id)
            existing = set(links.values_list("project_id", flat=True))
            links.exclude(project_id__in=wanted).delete()
            InitiativeProject.objects.bulk_create(
                [
                    InitiativeProject(initiative_id=initiative_id, project_id=pk)
                    for pk in wanted
                    if pk not in existing
                ],
                ignore_conflicts=True,
            )
        return self.find_projects_by_initiative_id(initiative_id)


class InitiativeProjectRepository(Repository[InitiativeProject]):
    """The links between initiatives and projects (one per pair)."""

    model = InitiativeProject
    slug = "initiative_project"
    label = "Project link"
    select_related = ("initiative", "project")

    def create(self, *, initiative_id: str, project_id: str) -> InitiativeProject:
        """Link a project to an initiative (a second link of the same pair is a 409)."""
        InitiativeRepository().require(initiative_id)
        ProjectRepository().require(project_id)
        return self._create(initiative_id=initiative_id, project_id=project_id)

    def delete(self, id: str) -> bool:
        return self._delete(id)
