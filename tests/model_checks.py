"""Checks the model tests of every app share."""

import re

from django.apps import apps
from django.db import models

from core.errors import InvalidInput

CW_APPS = ("core", "agents", "reviews")

CODE = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")


def constraints_of(*app_labels: str) -> list[tuple[type[models.Model], models.BaseConstraint]]:
    return [
        (model, constraint)
        for app_label in app_labels
        for model in apps.get_app_config(app_label).get_models()
        for constraint in model._meta.constraints
    ]


def assert_constraint_speaks_in_words(constraint: models.BaseConstraint) -> None:
    """A code in snake_case and a message of its own that never names the constraint."""
    assert constraint.violation_error_code
    assert CODE.fullmatch(constraint.violation_error_code)
    message = constraint.get_violation_error_message()
    assert message.strip()
    assert constraint.violation_error_message != constraint.default_violation_error_message
    assert constraint.name not in message
    assert "constraint" not in message.lower()


def assert_no_unique_field(model: type[models.Model]) -> None:
    """Uniqueness is a named constraint (with a code), never a field's ``unique=True``."""
    assert [f.name for f in model._meta.fields if f.unique and not f.primary_key] == []


def assert_validation_failed(error: InvalidInput, field: str) -> None:
    assert error.code == "validation_failed"
    assert field in error.details["fields"]
    assert error.details["fields"][field]
