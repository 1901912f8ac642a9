"""The core router's planning operations: initiatives, phases, tasks, their dependencies
and transitions, the ready queue, the checkpoints waiting for a person, and who is
calling. (Pages and projects are in ``pages`` and ``projects`` beside this module.)

Handlers only parse, call a service or a repository's read, and return a schema; the
people's gates (approving a plan, a phase review, an initiative; completing a
checkpoint) pass the request's actor to the service, which refuses a tool's token
(403 ``person_required``).
"""

from http import HTTPStatus
from typing import Any

from django.http import HttpRequest
from ninja import Query, Status

from core import services
from core.actors import actor_from_auth
from core.api.router import router
from core.models import ApiToken, Initiative, Phase, Task
from core.repositories import (
    InitiativeRepository,
    PhaseRepository,
    TaskRepository,
    page_max_bytes,
)
from core.schemas import (
    AUTH_ERRORS,
    ERRORS,
    PAGE_BYTES,
    CheckpointFilters,
    DependencyIn,
    DependencyOut,
    ErrorOut,
    ExecutionModeIn,
    Id,
    InitiativeFilters,
    InitiativeIn,
    InitiativeOut,
    InitiativePatch,
    Page,
    PhaseFilters,
    PhaseIn,
    PhaseOut,
    PhasePatch,
    ReadyTaskFilters,
    TaskCompleteIn,
    TaskContextEntryOut,
    TaskFilters,
    TaskIn,
    TaskOut,
    TaskPatch,
    WhoamiOut,
    page_of,
)

initiatives = InitiativeRepository()
phases = PhaseRepository()
tasks = TaskRepository()

#: What a read of one record by id may answer besides its success.
READ_ERRORS = {404: ErrorOut, 422: ErrorOut, **AUTH_ERRORS}
#: What a list may answer besides its success (a filter value refused).
LIST_ERRORS = {400: ErrorOut, 422: ErrorOut, **AUTH_ERRORS}
TAGS = ["plans"]


@router.get("/whoami", response={200: WhoamiOut, **AUTH_ERRORS})
def retrieve_whoami(request: HttpRequest) -> dict[str, Any]:
    """Who the API thinks is calling — a token (by name) or a staff user (by username) —
    and whom the events of its changes name (the person a personal token acts for)."""
    auth = request.auth  # type: ignore[attr-defined]
    actor = actor_from_auth(auth).as_dict()
    if isinstance(auth, ApiToken):
        return {"kind": "token", "name": auth.name, "actor": actor}
    return {"kind": "user", "name": auth.get_username(), "actor": actor}


def _actor(request: HttpRequest) -> Any:
    return actor_from_auth(request.auth)  # type: ignore[attr-defined]


# --- initiatives -----------------------------------------------------------------------


@router.post("/initiatives", response={201: InitiativeOut, **ERRORS}, tags=TAGS)
def create_initiative(request: HttpRequest, payload: InitiativeIn) -> Status:
    """Create an active initiative (its branch defaults to ``cw/<slug of the name>``)."""
    return Status(HTTPStatus.CREATED, services.initiative_create(**payload.dict()))


@router.get("/initiatives", response={200: Page[InitiativeOut], **LIST_ERRORS}, tags=TAGS)
def list_initiatives(request: HttpRequest, filters: Query[InitiativeFilters]) -> dict[str, Any]:
    """Initiatives, optionally in one status; oldest first."""
    page = initiatives.find_page(
        status=filters.status,
        limit=filters.limit,
        offset=filters.offset,
        max_bytes=page_max_bytes(),
    )
    return page_of(page.items, total=page.total, params=filters)


@router.get("/initiatives/{initiative_id}", response={200: InitiativeOut, **READ_ERRORS}, tags=TAGS)
def retrieve_initiative(request: HttpRequest, initiative_id: Id) -> Initiative:
    """One initiative by id (404 ``initiative_not_found``)."""
    return initiatives.get(initiative_id)


@router.patch("/initiatives/{initiative_id}", response={200: InitiativeOut, **ERRORS}, tags=TAGS)
def update_initiative(
    request: HttpRequest, initiative_id: Id, payload: InitiativePatch
) -> Initiative:
    """Rename an initiative or change its branch (only the fields sent change)."""
    return services.initiative_update(
        initiative_id=initiative_id, **payload.dict(exclude_unset=True)
    )


@router.post(
    "/initiatives/{initiative_id}/archive", response={200: InitiativeOut, **ERRORS}, tags=TAGS
)
def archive_initiative(request: HttpRequest, initiative_id: Id) -> Initiative:
    """Archive an initiative: its tasks are never ready again (409 when already archived)."""
    return services.initiative_archive(initiative_id=initiative_id)


@router.post(
    "/initiatives/{initiative_id}/execution-mode",
    response={200: InitiativeOut, **ERRORS},
    tags=TAGS,
)
def set_execution_mode(
    request: HttpRequest, initiative_id: Id, payload: ExecutionModeIn
) -> Initiative:
    """Switch how finished phases are handled: ``yolo`` or ``review_per_phase``."""
    return services.initiative_set_execution_mode(
        initiative_id=initiative_id, execution_mode=payload.execution_mode
    )


@router.post(
    "/initiatives/{initiative_id}/approve", response={200: InitiativeOut, **ERRORS}, tags=TAGS
)
def approve_initiative(request: HttpRequest, initiative_id: Id) -> Initiative:
    """A person approves an initiative in review whose phases are all completed
    (a tool's token: 403 ``person_required``)."""
    return services.initiative_approve(initiative_id=initiative_id, actor=_actor(request))


# --- phases ----------------------------------------------------------------------------


@router.post("/initiatives/{initiative_id}/phases", response={201: PhaseOut, **ERRORS}, tags=TAGS)
def create_phase(request: HttpRequest, initiative_id: Id, payload: PhaseIn) -> Status:
    """Add a pending phase to an initiative; content as Tiptap JSON or as markdown."""
    phase = services.phase_create(
        initiative_id=initiative_id, name=payload.name, **payload.content_changes()
    )
    return Status(HTTPStatus.CREATED, phase)


@router.get("/phases", response={200: Page[PhaseOut], **LIST_ERRORS}, tags=TAGS)
def list_phases(request: HttpRequest, filters: Query[PhaseFilters]) -> dict[str, Any]:
    """Phases, optionally of one initiative and in one status; oldest first."""
    page = phases.find_page(
        initiative_id=filters.initiative_id,
        status=filters.status,
        limit=filters.limit,
        offset=filters.offset,
        max_bytes=page_max_bytes(),
    )
    return page_of(page.items, total=page.total, params=filters)


@router.get("/phases/{phase_id}", response={200: PhaseOut, **READ_ERRORS}, tags=TAGS)
def retrieve_phase(request: HttpRequest, phase_id: Id) -> Phase:
    """One phase by id (404 ``phase_not_found``)."""
    return phases.get(phase_id)


@router.patch("/phases/{phase_id}", response={200: PhaseOut, **ERRORS}, tags=TAGS)
def update_phase(request: HttpRequest, phase_id: Id, payload: PhasePatch) -> Phase:
    """Rename a phase or replace its content (only the fields sent change)."""
    changes: dict[str, Any] = payload.dict(exclude_unset=True, include={"name"})
    return services.phase_update(phase_id=phase_id, **changes, **payload.content_changes())


@router.delete("/phases/{phase_id}", response={204: None, **ERRORS}, tags=TAGS)
def delete_phase(request: HttpRequest, phase_id: Id) -> Status:
    """Delete a phase with its tasks and dependency edges."""
    services.phase_delete(phase_id=phase_id)
    return Status(HTTPStatus.NO_CONTENT, None)


@router.get(
    "/phases/{phase_id}/dependencies", response={200: list[PhaseOut], **READ_ERRORS}, tags=TAGS
)
def list_phase_dependencies(request: HttpRequest, phase_id: Id) -> list[Phase]:
    """The phases this phase waits for (direct dependencies)."""
    phases.require(phase_id)
    return phases.get_dependencies(phase_id)


@router.post("/phases/{phase_id}/dependencies", response={201: DependencyOut, **ERRORS}, tags=TAGS)
def add_phase_dependency(request: HttpRequest, phase_id: Id, payload: DependencyIn) -> Status:
    """The phase may not start before ``depends_on_id`` completes (a phase of the same
    initiative: 400 otherwise; 409 ``dependency_cycle`` when it would close a cycle)."""
    services.phase_add_dependency(phase_id=phase_id, depends_on_id=payload.depends_on_id)
    return Status(HTTPStatus.CREATED, {"id": phase_id, "depends_on_id": payload.depends_on_id})


@router.delete(
    "/phases/{phase_id}/dependencies/{depends_on_id}",
    response={204: None, **ERRORS},
    tags=TAGS,
)
def remove_phase_dependency(request: HttpRequest, phase_id: Id, depends_on_id: Id) -> Status:
    """Remove a dependency (404 ``dependency_not_found`` when there is none)."""
    services.phase_remove_dependency(phase_id=phase_id, depends_on_id=depends_on_id)
    return Status(HTTPStatus.NO_CONTENT, None)


@router.post("/phases/{phase_id}/approve-plan", response={200: PhaseOut, **ERRORS}, tags=TAGS)
def approve_phase_plan(request: HttpRequest, phase_id: Id) -> Phase:
    """A person approves a pending phase's plan; its tasks may then start."""
    return services.phase_approve_plan(phase_id=phase_id, actor=_actor(request))


@router.post("/phases/{phase_id}/start", response={200: PhaseOut, **ERRORS}, tags=TAGS)
def start_phase(request: HttpRequest, phase_id: Id) -> Phase:
    """Move an approved phase to in progress (409 while a phase it depends on is open)."""
    return services.phase_start(phase_id=phase_id)


@router.post("/phases/{phase_id}/block", response={200: PhaseOut, **ERRORS}, tags=TAGS)
def block_phase(request: HttpRequest, phase_id: Id) -> Phase:
    """Block a phase that is not completed; unblocking returns it to where it was."""
    return services.phase_block(phase_id=phase_id)


@router.post("/phases/{phase_id}/unblock", response={200: PhaseOut, **ERRORS}, tags=TAGS)
def unblock_phase(request: HttpRequest, phase_id: Id) -> Phase:
    """Return a blocked phase to where it was (finished if its tasks all completed)."""
    return services.phase_unblock(phase_id=phase_id)


@router.post("/phases/{phase_id}/complete", response={200: PhaseOut, **ERRORS}, tags=TAGS)
def complete_phase(request: HttpRequest, phase_id: Id) -> Phase:
    """Finish an approved or in-progress phase whose tasks are all completed."""
    return services.phase_complete(phase_id=phase_id)


@router.post("/phases/{phase_id}/approve", response={200: PhaseOut, **ERRORS}, tags=TAGS)
def approve_phase(request: HttpRequest, phase_id: Id) -> Phase:
    """A person approves a phase waiting for review: it becomes completed."""
    return services.phase_approve(phase_id=phase_id, actor=_actor(request))


# --- tasks -----------------------------------------------------------------------------


@router.post("/phases/{phase_id}/tasks", response={201: TaskOut, **ERRORS}, tags=TAGS)
def create_task(request: HttpRequest, phase_id: Id, payload: TaskIn) -> Status:
    """Add a pending task to a phase."""
    return Status(HTTPStatus.CREATED, services.task_create(phase_id=phase_id, **payload.dict()))


@router.post("/initiatives/{initiative_id}/tasks", response={201: TaskOut, **ERRORS}, tags=TAGS)
def create_initiative_task(request: HttpRequest, initiative_id: Id, payload: TaskIn) -> Status:
    """Add a pending task to an initiative, in no phase."""
    task = services.task_create(initiative_id=initiative_id, **payload.dict())
    return Status(HTTPStatus.CREATED, task)


@router.post("/tasks/{task_id}/subtasks", response={201: TaskOut, **ERRORS}, tags=TAGS)
def create_subtask(request: HttpRequest, task_id: Id, payload: TaskIn) -> Status:
    """Add a pending task under another, in its phase and initiative."""
    task = services.task_create(parent_task_id=task_id, **payload.dict())
    return Status(HTTPStatus.CREATED, task)


@router.get("/tasks", response={200: Page[TaskOut], **LIST_ERRORS}, tags=TAGS)
def list_tasks(request: HttpRequest, filters: Query[TaskFilters]) -> dict[str, Any]:
    """Tasks matching every filter given, by ``order`` then oldest first."""
    criteria = filters.dict(exclude={"limit", "offset"})
    page = tasks.find_page(
        **criteria, limit=filters.limit, offset=filters.offset, max_bytes=page_max_bytes()
    )
    return page_of(page.items, total=page.total, params=filters)


@router.get("/tasks/{task_id}", response={200: TaskOut, **READ_ERRORS}, tags=TAGS)
def retrieve_task(request: HttpRequest, task_id: Id) -> Task:
    """One task by id (404 ``task_not_found``)."""
    return tasks.get(task_id)


@router.patch("/tasks/{task_id}", response={200: TaskOut, **ERRORS}, tags=TAGS)
def update_task(request: HttpRequest, task_id: Id, payload: TaskPatch) -> Task:
    """Change a task (only the fields sent change); it may move between its
    initiative's phases only (400 ``task_phase_other_initiative``)."""
    return services.task_update(task_id=task_id, **payload.dict(exclude_unset=True))


@router.delete("/tasks/{task_id}", response={204: None, **ERRORS}, tags=TAGS)
def delete_task(request: HttpRequest, task_id: Id) -> Status:
    """Delete a task with its subtasks and dependency edges."""
    services.task_delete(task_id=task_id)
    return Status(HTTPStatus.NO_CONTENT, None)


@router.get(
    "/tasks/{task_id}/dependencies", response={200: list[TaskOut], **READ_ERRORS}, tags=TAGS
)
def list_task_dependencies(request: HttpRequest, task_id: Id) -> list[Task]:
    """The tasks this task waits for (direct dependencies)."""
    tasks.require(task_id)
    return tasks.get_dependencies(task_id)


@router.post("/tasks/{task_id}/dependencies", response={201: DependencyOut, **ERRORS}, tags=TAGS)
def add_task_dependency(request: HttpRequest, task_id: Id, payload: DependencyIn) -> Status:
    """The task may not start before ``depends_on_id`` completes (a task of the same
    initiative: 400 otherwise; 409 ``dependency_cycle`` when it would close a cycle)."""
    services.task_add_dependency(task_id=task_id, depends_on_id=payload.depends_on_id)
    return Status(HTTPStatus.CREATED, {"id": task_id, "depends_on_id": payload.depends_on_id})


@router.delete(
    "/tasks/{task_id}/dependencies/{depends_on_id}", response={204: None, **ERRORS}, tags=TAGS
)
def remove_task_dependency(request: HttpRequest, task_id: Id, depends_on_id: Id) -> Status:
    """Remove a dependency (404 ``dependency_not_found`` when there is none)."""
    services.task_remove_dependency(task_id=task_id, depends_on_id=depends_on_id)
    return Status(HTTPStatus.NO_CONTENT, None)


@router.post("/tasks/{task_id}/start", response={200: TaskOut, **ERRORS}, tags=TAGS)
def start_task(request: HttpRequest, task_id: Id) -> Task:
    """Start a ready task (409 ``task_not_ready`` otherwise); a checkpoint only by a
    person (403 ``person_required`` for a tool's token)."""
    return services.task_start(task_id=task_id, actor=_actor(request))


@router.post("/tasks/{task_id}/block", response={200: TaskOut, **ERRORS}, tags=TAGS)
def block_task(request: HttpRequest, task_id: Id) -> Task:
    """Block a pending or in-progress task; unblocking returns it to that status."""
    return services.task_block(task_id=task_id)


@router.post("/tasks/{task_id}/unblock", response={200: TaskOut, **ERRORS}, tags=TAGS)
def unblock_task(request: HttpRequest, task_id: Id) -> Task:
    """Return a blocked task to the status it was blocked from."""
    return services.task_unblock(task_id=task_id)


@router.post("/tasks/{task_id}/complete", response={200: TaskOut, **ERRORS}, tags=TAGS)
def complete_task(request: HttpRequest, task_id: Id, payload: TaskCompleteIn) -> Task:
    """Complete a task with a summary; a checkpoint only by a person (403
    ``person_required`` for a tool's token). Finishing a phase's last task finishes it."""
    return services.task_complete(task_id=task_id, summary=payload.summary, actor=_actor(request))


@router.get(
    "/tasks/{task_id}/context",
    response={200: list[TaskContextEntryOut], **READ_ERRORS},
    tags=TAGS,
)
def retrieve_task_context(request: HttpRequest, task_id: Id) -> list[Any]:
    """The summaries of every task this task depends on, directly or not, in dependency
    order."""
    return services.task_context(task_id=task_id)


@router.get(
    "/ready-tasks",
    response={200: list[TaskOut], **LIST_ERRORS},
    tags=TAGS,
    description=(
        "The `auto` tasks an agent may start now, overall or of one initiative: high "
        "priority first, then oldest. At most `limit` tasks, and at most "
        f"{PAGE_BYTES} of their names, descriptions and summaries (always at least one "
        "task when any is ready): the first tasks of the queue, never a page of it."
    ),
)
def list_ready_tasks(request: HttpRequest, filters: Query[ReadyTaskFilters]) -> list[Task]:
    return services.task_list_ready(
        initiative_id=filters.initiative_id, limit=filters.limit, max_bytes=page_max_bytes()
    )


@router.get("/checkpoints", response={200: list[TaskOut], **LIST_ERRORS}, tags=TAGS)
def list_waiting_checkpoints(request: HttpRequest, filters: Query[CheckpointFilters]) -> list[Task]:
    """The checkpoint tasks that are ready and wait for a person, in the same order."""
    return services.task_list_waiting_checkpoints(initiative_id=filters.initiative_id)
