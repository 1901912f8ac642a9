"""The schemathesis CLI's settings (``schemathesis.toml``) give each long poll a response
time limit above the longest ``wait`` its document allows: ``--checks all`` holds every
operation to 10 s, which a long poll that meets nothing exceeds by design. And they count
a 413 as a refusal of a request the document forbids, as the in-process fuzzer does."""

from pathlib import Path

import schemathesis
from schemathesis.config import SchemathesisConfig

from cw_project.api import api

SETTINGS = Path(__file__).resolve().parents[2] / "schemathesis.toml"


def _long_polls(document: dict) -> list[tuple[str, str, float]]:
    """Each operation with a ``wait`` query parameter: method, path, its maximum."""
    found = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "query" and parameter["name"] == "wait":
                    found.append((method.upper(), path, parameter["schema"]["maximum"]))
    return found


def test_each_long_poll_may_take_its_longest_wait():
    document = api.get_openapi_schema()
    schema = schemathesis.openapi.from_dict(
        document, config=SchemathesisConfig.from_path(str(SETTINGS))
    )
    long_polls = _long_polls(document)

    assert long_polls
    for method, path, longest_wait in long_polls:
        operation = schema[path][method]
        limit = schema.config.checks_config_for(operation=operation).max_response_time.limit
        assert limit is not None and limit > longest_wait, (method, path, limit)


def test_a_413_refuses_invalid_data_on_every_operation():
    # The CLI's fuzzer sent POST /tasks/{id}/complete a summary over its 1,000,000
    # characters (6 MB once its non-ASCII characters were escaped), which the server
    # refused with 413 payload_too_large; the check's default statuses leave 413 out.
    schema = schemathesis.openapi.from_dict(
        api.get_openapi_schema(), config=SchemathesisConfig.from_path(str(SETTINGS))
    )
    default = SchemathesisConfig.from_dict({}).projects.default.checks
    refusals = {*default.negative_data_rejection.expected_statuses, "413"}

    operations = [result.ok() for result in schema.get_all_operations()]
    assert operations
    for operation in operations:
        checks = schema.config.checks_config_for(operation=operation)
        assert set(checks.negative_data_rejection.expected_statuses) == refusals, operation.label
