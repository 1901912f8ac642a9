import os
import sys
from collections.abc import Iterator

import pytest
from django.db import connection
from django.test import override_settings

# A server-sent event stream stays open five minutes in production; the test client reads
# a response whole, so here a stream ends a moment after it has sent what there is.
os.environ.setdefault("CW_SSE_MAX_SECONDS", "0.2")

# --- `make test-fast` skips the tests that start processes: see that none goes unmarked ---

#: Audit events (PEP 578) raised when Python starts another process.
PROCESS_EVENTS = frozenset(
    {"subprocess.Popen", "os.system", "os.posix_spawn", "os.exec", "os.spawn", "os.fork"}
)
#: The processes started during the test that runs now (setup, call and teardown).
_started: list[str] | None = None


def _note_processes(event: str, arguments: tuple) -> None:
    if _started is not None and event in PROCESS_EVENTS:
        _started.append(f"{event} {arguments[:2]!r}"[:200])


def pytest_configure(config: pytest.Config) -> None:
    sys.addaudithook(_note_processes)  # once per process; an audit hook cannot be removed


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    global _started
    _started = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    """Fail a test that started a process without the ``processes`` marker: `make
    test-fast` would run it (and CI's full run is the one that notices)."""
    global _started
    try:
        return (yield)
    finally:
        started, _started = _started, None
        if started and item.get_closest_marker("processes") is None:
            pytest.fail(
                "this test starts processes but is not marked @pytest.mark.processes:\n  "
                + "\n  ".join(started),
                pytrace=False,
            )


# --- the ready queue agrees with the plan after every test -----------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """After each test that used the database, the stored ready queue
    (``core.repositories.readiness``) must hold exactly the tasks its rule computes: every
    write of the suite is a check that the repositories kept it current."""
    result = yield
    from django.db import InterfaceError, OperationalError, ProgrammingError
    from django.db.transaction import TransactionManagementError

    from core.repositories import readiness

    try:
        differences = readiness.drift()
    except RuntimeError:  # this test has no database (pytest-django blocks access)
        return result
    except TransactionManagementError:  # the test ended inside a broken transaction
        return result
    except (InterfaceError, OperationalError, ProgrammingError) as error:
        if "closed" in str(error):  # the test closed its connection on purpose
            return result
        raise
    if differences:
        pytest.fail(
            "the ready queue disagrees with the plan (task, stored, computed):\n  "
            + "\n  ".join(map(str, differences[:20])),
            pytrace=False,
        )
    return result


# --- under pytest-xdist, every collected test must run ---------------------------------
# schemathesis gives each operation's test the same node id; xdist's loadfile, loadscope
# and loadgroup schedulers key their work by node id and silently run one of them. The
# default `--dist load` (what the Makefile and CI use) keeps them all: this makes sure.

_outcomes = 0


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    global _outcomes
    if report.when == "call" or (report.when == "setup" and not report.passed):
        _outcomes += 1


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    distributed = getattr(session.config.option, "dist", "no") != "no"
    is_worker = hasattr(session.config, "workerinput")
    if not distributed or is_worker or exitstatus != 0 or session.shouldstop:
        return
    if _outcomes != session.testscollected:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = (
            f"{session.testscollected} tests were collected but {_outcomes} ran: "
            "use `--dist load` (the others schedule by node id, which some tests share)"
        )
        if reporter is not None:
            reporter.write_sep("=", message, red=True, bold=True)


@pytest.fixture(autouse=True, scope="session")
def static_files_from_the_apps() -> Iterator[None]:
    """Serve static files from the apps, as runserver does, whatever DJANGO_DEBUG says.

    The suite never runs `collectstatic`: the manifest storage used without DEBUG would
    refuse every `{% static %}` it has no manifest entry for, and WhiteNoise would find
    no STATIC_ROOT.
    """
    with override_settings(
        STORAGES={
            "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        },
        WHITENOISE_USE_FINDERS=True,
        WHITENOISE_AUTOREFRESH=True,
    ):
        yield


@pytest.fixture(autouse=True, scope="session")
def read_slots_of_this_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep the read cap's slot files (``core/readlimits.py``) in a directory of this
    test process: xdist's processes each have a database of their own, whose tokens
    share ids, and must not share their slots as a host's workers do."""
    with override_settings(CW_LOCK_DIR=tmp_path_factory.mktemp("locks")):
        yield


@pytest.fixture(autouse=True, scope="session")
def mirrors_of_this_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep the projects' mirrors (``core/mirrors.py``) in a directory of this test
    process, never in the checkout's ``var``: ids repeat across xdist's databases."""
    with override_settings(CW_MIRRORS_DIR=tmp_path_factory.mktemp("mirrors")):
        yield


@pytest.fixture(autouse=True, scope="session")
def demo_repositories_of_this_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep the demo's git repositories (``operations/demo/git_repos.py``) in a directory
    of this test process too, never in the checkout's ``var``."""
    with override_settings(CW_DEMO_REPOS_DIR=tmp_path_factory.mktemp("demo-repos")):
        yield


@pytest.fixture(autouse=True, scope="session")
def cheap_password_hashing() -> Iterator[None]:
    """Hash passwords with MD5 for the test run only: production keeps Django's PBKDF2.

    PBKDF2 is slow on purpose (about 0.3 s a hash here), and the suite hashes hundreds of
    passwords (every ``admin_user``, every login); MD5 checks the same logins, lock-outs
    and password changes in microseconds. Processes the suite starts (``manage.py``,
    gunicorn) read the real settings and hash with PBKDF2.
    """
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


@pytest.fixture
def on_postgres() -> bool:
    return connection.vendor == "postgresql"


@pytest.fixture(autouse=True, scope="session")
def live_hub_stopped_before_the_databases_go(django_db_setup, django_db_blocker) -> Iterator[None]:
    """The waiters' listener (``core.live``) holds a connection while anyone waits; stop
    it before the test databases are dropped."""
    yield
    from core.live import hub

    hub.stop()
