"""The core router's planning operations: initiatives, phases, tasks, pages, projects,
the ready queue, and who is calling."""

from django.http import HttpRequest

from core.api.router import router
from core.models import ApiToken, Phase, Task
from core.repositories import PhaseRepository, TaskRepository
from core.schemas import AUTH_ERRORS, ErrorOut, Id, PhaseOut, TaskOut, WhoamiOut

phases = PhaseRepository()
tasks = TaskRepository()

#: What a read of one record by id may answer besides its success.
READ_ERRORS = {404: ErrorOut, 422: ErrorOut, **AUTH_ERRORS}


@router.get("/whoami", response={200: WhoamiOut, **AUTH_ERRORS})
def retrieve_whoami(request: HttpRequest) -> dict[str, str]:
    """Who the API thinks is calling: a token (by name) or a staff user (by username)."""
    auth = request.auth  # type: ignore[attr-defined]
    if isinstance(auth, ApiToken):
        return {"kind": "token", "name": auth.name}
    return {"kind": "user", "name": auth.get_username()}


@router.get("/phases/{phase_id}", response={200: PhaseOut, **READ_ERRORS}, tags=["plans"])
def retrieve_phase(request: HttpRequest, phase_id: Id) -> Phase:
    """One phase by id (404 ``phase_not_found``)."""
    return phases.get(phase_id)


@router.get("/tasks/{task_id}", response={200: TaskOut, **READ_ERRORS}, tags=["plans"])
def retrieve_task(request: HttpRequest, task_id: Id) -> Task:
    """One task by id (404 ``task_not_found``)."""
    return tasks.get(task_id)
