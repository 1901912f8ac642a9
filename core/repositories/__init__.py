"""How planning records are found and stored: the seed's Initiative, Phase, Task, Page and
Project repositories, one module each, on the shared ``Repository`` base.

The base (``base``), the shared checks (``validation``) and the pagination contract
(``pagination``) are what every app's repositories build on; the names below are the
public ones, importable from ``core.repositories``.
"""

from core.repositories import hot
from core.repositories.base import (
    Repository,
    RevertibleRecords,
    integrity_error_kind,
    record_store,
    relation_id,
    validation_error_details,
)
from core.repositories.dependencies import DependencyRepository, find_cycle, topological_order
from core.repositories.initiatives import InitiativeRepository
from core.repositories.pages import PageRepository
from core.repositories.pagination import (
    DEFAULT_KEYSET_PAGE_SIZE,
    DEFAULT_PAGE_MAX_BYTES,
    DEFAULT_PAGE_SIZE,
    MAX_KEYSET_PAGE_SIZE,
    MAX_OFFSET,
    MAX_PAGE_SIZE,
    KeysetPage,
    OffsetPage,
    byte_capped_page,
    check_keyset_page,
    check_offset_page,
    invalid_cursor,
    offset_page,
    offset_slice,
    page_max_bytes,
)
from core.repositories.people import PersonRepository
from core.repositories.phases import PhaseRepository
from core.repositories.projects import InitiativeProjectRepository, ProjectRepository
from core.repositories.tasks import TaskRepository
from core.repositories.tokens import ApiTokenRepository
from core.repositories.validation import (
    INT32,
    check_choice,
    is_int32,
    require_int,
    require_text,
    text_problem,
    unstorable_text,
)

__all__ = [
    "DEFAULT_KEYSET_PAGE_SIZE",
    "DEFAULT_PAGE_MAX_BYTES",
    "DEFAULT_PAGE_SIZE",
    "INT32",
    "MAX_KEYSET_PAGE_SIZE",
    "MAX_OFFSET",
    "MAX_PAGE_SIZE",
    "ApiTokenRepository",
    "DependencyRepository",
    "InitiativeProjectRepository",
    "InitiativeRepository",
    "KeysetPage",
    "OffsetPage",
    "PageRepository",
    "PersonRepository",
    "PhaseRepository",
    "ProjectRepository",
    "Repository",
    "RevertibleRecords",
    "TaskRepository",
    "byte_capped_page",
    "check_choice",
    "check_keyset_page",
    "check_offset_page",
    "find_cycle",
    "hot",
    "integrity_error_kind",
    "invalid_cursor",
    "is_int32",
    "offset_page",
    "offset_slice",
    "page_max_bytes",
    "record_store",
    "relation_id",
    "require_int",
    "require_text",
    "text_problem",
    "topological_order",
    "unstorable_text",
    "validation_error_details",
]
