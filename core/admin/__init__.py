"""The plan in the admin: initiatives, phases, tasks, pages, projects and their links.

Besides the forms (saved through the repositories) and the lifecycle actions (calling
the services), the plan's pages show what a person needs around a record, read-only:

- an initiative: its phases with their progress, its pages, its projects, and the
  picture of its phase dependency graph (and, with ``?phase=<id>``, of one phase's task
  graph), drawn on the server by ``core.graphs``; the picture alone is served at
  ``<initiative>/graph/`` (``?phase=<id>`` for a phase's tasks);
- a phase: what it depends on and what depends on it, its tasks and their picture;
- a task: its dependencies and dependents, its subtasks, and its context (the summaries
  of the tasks it depends on, ``services.task_context``).

Each page has a button for every lifecycle step that applies to the record's status
(``core.admin_base.service_button``): a POST to ``<record>/do/<step>/`` that calls the
same service as the changelist action and comes back with a message in words.
Everything that belongs to the agents or reviews apps (review comments, request changes,
the agents on a task) is added by ``operations.admin``, since core never imports them.

One module per record's admin (``initiatives``, ``phases``, ``tasks``, ``pages``,
``projects``, ``dependencies``, ``tokens``, ``ratelimits``, ``events``), on what they
share: phase and task choices labelled with their initiative (``choices``), the
changelist filters (``filters``) and the record pages' links, buttons and pictures
(``plan_pages``). What the pages read comes from the repositories: progress and the
pages' read models from ``core.repositories.plans``, whether a task is ready from
``TaskRepository.with_ready`` (the ready queue's own rule).
"""

from core.admin import (  # noqa: F401  (each module registers its admins)
    dependencies,
    events,
    initiatives,
    pages,
    phases,
    projects,
    ratelimits,
    ready,
    tasks,
    tokens,
)
from core.admin.choices import (
    CHOICE_SEPARATOR,
    PlanAutocompleteJsonView,
    PlanAutocompleteSelect,
    PlanChoiceField,
    PlanChoicesAdmin,
    choice_label,
)
from core.admin.dependencies import PhaseDependencyAdmin, TaskDependencyAdmin
from core.admin.events import EventAdmin
from core.admin.filters import InitiativeListFilter, PhaseListFilter, ReadyListFilter
from core.admin.initiatives import InitiativeAdmin
from core.admin.pages import PageAdmin
from core.admin.phases import PhaseAdmin
from core.admin.projects import InitiativeProjectAdmin, ProjectAdmin
from core.admin.ratelimits import ApiRateWindowAdmin
from core.admin.tasks import TaskAdmin
from core.admin.tokens import ApiTokenAdmin

__all__ = [
    "CHOICE_SEPARATOR",
    "ApiRateWindowAdmin",
    "ApiTokenAdmin",
    "EventAdmin",
    "InitiativeAdmin",
    "InitiativeListFilter",
    "InitiativeProjectAdmin",
    "PageAdmin",
    "PhaseAdmin",
    "PhaseDependencyAdmin",
    "PhaseListFilter",
    "PlanAutocompleteJsonView",
    "PlanAutocompleteSelect",
    "PlanChoiceField",
    "PlanChoicesAdmin",
    "ProjectAdmin",
    "ReadyListFilter",
    "TaskAdmin",
    "TaskDependencyAdmin",
    "choice_label",
]
