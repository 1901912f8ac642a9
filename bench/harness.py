"""Set-up shared by the benchmark's scenarios: Django, a throwaway database, timing."""

import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import django


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cw_project.settings")
    django.setup()


@contextmanager
def throwaway_database() -> Iterator[None]:
    """A fresh, migrated database (``bench_`` + the configured name), dropped afterwards.

    Uses the same engine as the application: SQLite by default, PostgreSQL when
    ``DATABASE_URL`` is set.
    """
    from django.db import connection
    from django.test.utils import setup_test_environment, teardown_test_environment

    settings_dict = connection.settings_dict
    if connection.vendor == "sqlite":
        name = settings_dict["NAME"]
        settings_dict["TEST"]["NAME"] = str(name).replace(".sqlite3", "") + "_bench.sqlite3"
    else:
        settings_dict["TEST"]["NAME"] = f"bench_{settings_dict['NAME']}"
    setup_test_environment(debug=False)
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        yield
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        teardown_test_environment()


def best_of(fn: Callable[[], object], repeat: int = 5) -> float:
    """Median wall time of ``fn`` over ``repeat`` runs, in seconds."""
    timings = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def count_queries(fn: Callable[[], object]) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        fn()
    return len(captured.captured_queries)


@dataclass
class Result:
    """One scenario's figures, and the targets (ratios) it must meet."""

    name: str
    figures: dict[str, str] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def figure(self, label: str, value: str) -> None:
        self.figures[label] = value

    def target(self, ok: bool, description: str) -> None:
        self.figures[f"target: {description}"] = "met" if ok else "MISSED"
        if not ok:
            self.failures.append(description)
