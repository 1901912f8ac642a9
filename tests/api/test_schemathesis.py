"""The API keeps its OpenAPI contract under a fuzzer: schemathesis, in process, against the
WSGI application, every operation, every check.

Each operation gets its own test (its examples and fuzzed cases, valid and invalid), with
every schemathesis check: no 5xx, statuses/content types/bodies/headers as documented,
everything the document allows accepted and everything it forbids refused,
authentication enforced. The stateful test
chains operations through the document's links (``cw_project.openapi``) so every
operation is reached with real ids, and checks a deleted record stays gone
(``use_after_free``) and a created one can be read (``ensure_resource_availability``).

A failure here is a gap between the document and the server: state the constraint in
the document, or make the server accept what the document allows; never exclude the
operation or the check.

Bounded for CI: a fixed seed (``derandomize``) and small example counts; the long polls'
``wait`` is shortened (a test-speed choice, not a contract change: see ``_no_long_polls``),
and the fuzzer's token writes without a rate limit (``CW_API_WRITE_RATE_LIMIT = 0``).
"""

import json
import re
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import Failure
from schemathesis.specs.openapi.checks import is_unexpected_http_status_case

from core.tokens import api_token_create
from cw_project.api import api
from cw_project.wsgi import application

#: Fuzzed cases per operation (besides its examples).
MAX_EXAMPLES = 10
#: Scenarios of the stateful test, and the most calls in one.
STATEFUL_SCENARIOS = 40
STATEFUL_MAX_STEPS = 12

#: The 400 refusals a request the document allows may still meet: each depends on other
#: records (or on the path and the body together), which no JSON Schema of one request
#: can state. Any other 400 (or 422) to a schema-valid request is a gap in the document,
#: reported by ``refusals_of_valid_data_depend_on_state`` below.
STATE_DEPENDENT_REFUSALS = frozenset(
    {
        "invalid_change_set",  # a change set's entries, as stored
        "chat_change_set_other_initiative",  # the change set's initiative vs the session's
        "chat_target_without_initiative",  # the task's initiative, as stored
        "dependency_other_initiative",  # the two records' initiatives
        "dependency_self_edge",  # the path's id and the body's: equal
        "invalid_cursor",  # the cursor names no item of this list
        "invalid_reference",  # a field names a record that does not exist
        "message_parent_cycle",  # the thread, as stored
        "page_parent_cycle",  # the page tree, as stored
        "page_parent_other_initiative",  # the parent's initiative
        "page_root_fixed",  # which page is the root
        "proposal_target_other_initiative",  # the target's initiative
        "review_no_comments",  # the phase's comments
        "chat_target_other_initiative",  # the target's initiative
        "task_phase_other_initiative",  # the phase's initiative
        "task_parent_cycle",  # the task tree, as stored
        "task_parent_other_initiative",  # the parent's initiative
        "unknown_provider",  # a runner's provider has no account, as stored
        "run_commit_other_initiative",  # the projects linked to the run's initiative
    }
)

#: The 400 refusals of a value the document states but JSON Schema cannot check: an
#: account secret is JSON text (``contentMediaType: application/json``, which validators
#: and generators take as an annotation only), and free-form JSON nests at most 64 deep
#: (said in the descriptions). (A log chunk's content is any text.)
STATED_BUT_UNCHECKABLE_REFUSALS = frozenset({"invalid_json", "json_too_deep"})

CONFIG = SchemathesisConfig.from_dict(
    {
        "seed": 13,
        "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
        # Only the health checks about slowness: a case that takes a while to generate
        # or send is expected with a database behind the API.
        "suppress-health-check": ["too_slow", "large_base_example", "data_too_large"],
        "phases": {
            # The coverage phase (every boundary of every keyword, worked out up front for
            # every operation) takes minutes on this document's patterns, over the time
            # this test has: run it with `schemathesis run --phases coverage` instead.
            "coverage": {"enabled": False},
            "stateful": {"max-steps": STATEFUL_MAX_STEPS},
        },
        "checks": {
            # Every check is on (schemathesis's default); this one also lets a valid
            # request meet a 400, which the check below admits only for the refusals
            # that depend on state (STATE_DEPENDENT_REFUSALS).
            # Schemathesis's own list, plus 413: a body over the 2.5 MB the API reads
            # (a generated million-character string) is refused as payload_too_large,
            # which every write declares; that is a refusal too.
            "negative_data_rejection": {
                "expected-statuses": [
                    *("400", "401", "403", "404", "405", "406", "409", "413", "415"),
                    *("422", "428", "429", "5xx"),
                ]
            },
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "3xx", "400", "401", "403", "404", "409", "429", "5xx"]
            },
        },
    }
)


class RefusedValidData(Failure):
    code = "ST990"
    kind_title = "Schema-valid request refused for a reason the document could state"


@schemathesis.check
def refusals_of_valid_data_depend_on_state(ctx: Any, response: Any, case: Any) -> bool | None:
    """A request the document allows is refused with 400 only for a reason that depends on
    other records (``STATE_DEPENDENT_REFUSALS``): ``positive_data_acceptance`` with 400,
    not among its expected statuses, narrowed to those codes."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 400:
        return None
    if is_unexpected_http_status_case(case):
        return None  # a probe of the HTTP layer (an unexpected method), not of the data
    body = json.loads(response.content)
    code = body.get("code") if isinstance(body, dict) else None
    if code in STATE_DEPENDENT_REFUSALS | STATED_BUT_UNCHECKABLE_REFUSALS:
        return None
    raise RefusedValidData(
        operation=case.operation.label,
        message=f"Valid data refused with 400 {code!r}: state the rule in the document.",
    )


schema = schemathesis.openapi.from_dict(api.get_openapi_schema(), config=CONFIG)
schema.app = application

#: The clear value of the current test's token (a token lives in one test's transaction).
_current_token: dict[str, str] = {}


@schema.auth(refresh_interval=None)
class BearerToken:
    """``Authorization: Bearer <token>`` on every call, with the current test's token."""

    def get(self, case: Any, context: Any) -> str:
        # Outside a test (schemathesis inspects the provider while collecting) there is
        # no token: nothing is sent then.
        return _current_token.get("clear", "")

    def set(self, case: Any, data: str, context: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


_SECONDS = re.compile(r"\d+(\.\d+)?")


def _no_long_polls(case: Any) -> None:
    """A valid ``wait`` (a long poll: up to 30 s when nothing arrives) becomes 0.

    A test-speed choice only: what the server answers is the same shape whether it waited
    or not, and a ``wait`` the document refuses (negative, above 30, not a number) is sent
    as generated, so its refusal is still checked.
    """
    query = case.query
    if query and "wait" in query and _is_long_poll(query["wait"]):
        case.query = {**query, "wait": 0}
    body = case.body
    if isinstance(body, dict) and "wait" in body and _is_long_poll(body["wait"]):
        case.body = {**body, "wait": 0}  # take-next's wait, in its body


def _is_long_poll(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return False
    text = str(value)
    return bool(_SECONDS.fullmatch(text)) and 0 < float(text) <= 30


@pytest.fixture
def fuzz_token(db, settings) -> Iterator[str]:
    """A tool's token for the fuzzer, with no write rate limit, valid while the test runs.

    The WSGI handler closes the database connection at the end of each request
    (``close_old_connections``), which would end the test's transaction: disconnected
    while the test runs, as Django's test client does.
    """
    settings.CW_API_WRITE_RATE_LIMIT = 0
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    _, clear = api_token_create(name="schemathesis")
    _current_token["clear"] = clear
    try:
        yield clear
    finally:
        _current_token.pop("clear", None)
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@schema.parametrize()
# The token fixture (and the database) outlive each generated case: meant, they are the
# server's state for the whole operation's run.
@hypothesis.settings(
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.large_base_example,
        HealthCheck.data_too_large,
    ]
)
def test_every_operation_keeps_its_contract(case, fuzz_token):
    _no_long_polls(case)
    case.call_and_validate()


class Scenarios(schema.as_state_machine()):  # type: ignore[misc]
    """The stateful test's scenarios, each from the same database (the test's, rolled back
    to a savepoint after each): Hypothesis replays a scenario to shrink it, and a replay
    must meet the state the first run met."""

    def setup(self) -> None:
        super().setup()
        self._scenario = transaction.atomic()
        self._scenario.__enter__()

    def teardown(self) -> None:
        transaction.set_rollback(True)
        self._scenario.__exit__(None, None, None)
        super().teardown()

    def before_call(self, case: Any) -> None:
        _no_long_polls(case)


def test_stateful_scenarios_keep_the_contract(fuzz_token):
    Scenarios.run(
        settings=hypothesis.settings(
            max_examples=STATEFUL_SCENARIOS,
            stateful_step_count=STATEFUL_MAX_STEPS,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
    )
