"""The core router's project operations: git repositories, and which an initiative uses."""

from http import HTTPStatus
from typing import Any

from django.http import HttpRequest
from ninja import Query, Status

from core import services
from core.api.plans import LIST_ERRORS, READ_ERRORS, TAGS
from core.api.router import router
from core.models import Project
from core.repositories import InitiativeRepository, ProjectRepository, page_max_bytes
from core.schemas import (
    ERRORS,
    Id,
    InitiativeProjectsIn,
    Page,
    PageParams,
    ProjectIn,
    ProjectOut,
    ProjectPatch,
    page_of,
)

initiatives = InitiativeRepository()
projects = ProjectRepository()


@router.post("/projects", response={201: ProjectOut, **ERRORS}, tags=TAGS)
def create_project(request: HttpRequest, payload: ProjectIn) -> Status:
    """Register a git repository (its name and URL are unique: 409 otherwise)."""
    return Status(HTTPStatus.CREATED, services.project_create(**payload.dict()))


@router.get("/projects", response={200: Page[ProjectOut], **LIST_ERRORS}, tags=TAGS)
def list_projects(request: HttpRequest, page: Query[PageParams]) -> dict[str, Any]:
    """Projects by name."""
    found = projects.find_page(limit=page.limit, offset=page.offset, max_bytes=page_max_bytes())
    return page_of(found.items, total=found.total, params=page)


@router.get("/projects/{project_id}", response={200: ProjectOut, **READ_ERRORS}, tags=TAGS)
def retrieve_project(request: HttpRequest, project_id: Id) -> Project:
    """One project by id (404 ``project_not_found``)."""
    return projects.get(project_id)


@router.patch("/projects/{project_id}", response={200: ProjectOut, **ERRORS}, tags=TAGS)
def update_project(request: HttpRequest, project_id: Id, payload: ProjectPatch) -> Project:
    """Change a project (only the fields sent change)."""
    return services.project_update(project_id=project_id, **payload.dict(exclude_unset=True))


@router.delete("/projects/{project_id}", response={204: None, **ERRORS}, tags=TAGS)
def delete_project(request: HttpRequest, project_id: Id) -> Status:
    """Delete a project and its links to initiatives."""
    services.project_delete(project_id=project_id)
    return Status(HTTPStatus.NO_CONTENT, None)


@router.post("/projects/{project_id}/fetched", response={200: ProjectOut, **ERRORS}, tags=TAGS)
def mark_project_fetched(request: HttpRequest, project_id: Id) -> Project:
    """Record that the repository was just fetched (``last_fetched_at``: now)."""
    return services.project_mark_fetched(project_id=project_id)


@router.post("/projects/{project_id}/fetch", response={200: ProjectOut, **ERRORS}, tags=TAGS)
def fetch_project(request: HttpRequest, project_id: Id) -> Project:
    """Fetch the repository into cw's mirror now, which the phases' review pages read
    their diffs from (cw-runner calls it once a run pushed its work); 409
    ``project_fetch_failed`` with git's reason when cw cannot reach it."""
    return services.project_fetch(project_id=project_id)


@router.get(
    "/initiatives/{initiative_id}/projects",
    response={200: list[ProjectOut], **READ_ERRORS},
    tags=TAGS,
)
def list_initiative_projects(request: HttpRequest, initiative_id: Id) -> list[Project]:
    """The projects the initiative works on."""
    initiatives.require(initiative_id)
    return projects.find_projects_by_initiative_id(initiative_id)


@router.put(
    "/initiatives/{initiative_id}/projects",
    response={200: list[ProjectOut], **ERRORS},
    tags=TAGS,
)
def set_initiative_projects(
    request: HttpRequest, initiative_id: Id, payload: InitiativeProjectsIn
) -> list[Project]:
    """Make the initiative's projects exactly ``project_ids`` (links added and removed,
    the others kept; an unknown id is a 404 and changes nothing)."""
    return services.initiative_set_projects(
        initiative_id=initiative_id, project_ids=payload.project_ids
    )
