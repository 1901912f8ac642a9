"""The catalogue of error codes (``core.errors``): every code raised is declared once,
with the status the API answers, and ``docs/errors.md`` is the catalogue rendered."""

import ast
import importlib
import itertools
import json
import pkgutil
import re
from collections.abc import Iterator
from io import StringIO
from pathlib import Path

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import models

from core import errors
from core.errors import (
    Conflict,
    DependencyCycle,
    DomainError,
    DuplicateErrorCode,
    ErrorClassMismatch,
    InvalidInput,
    NotFound,
    PermissionRequired,
    TransitionNotAllowed,
    UndeclaredErrorCode,
    catalogue,
    constraint_error_class,
    declare,
    explicitly_declared,
    lookup,
)
from core.errors_doc import load_catalogue, render_markdown
from core.repositories.base import Repository
from core.schemas.base import BLANK_FIELD_CODES, FIELD_CODES

ROOT = Path(__file__).resolve().parents[2]
#: The packages whose source is scanned for codes.
PACKAGES = ("core", "agents", "reviews", "operations", "cw_project")
APPS = ("core", "agents", "reviews")
REGENERATE = "`.venv/bin/python manage.py error_catalogue > docs/errors.md`"


# --- reading the source ---------------------------------------------------------------------


def _source_files() -> list[Path]:
    return sorted(
        path
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if "migrations" not in path.parts
    )


def _trees() -> Iterator[tuple[str, ast.AST]]:
    for path in _source_files():
        yield str(path.relative_to(ROOT)), ast.parse(path.read_text(), filename=str(path))


def _calls_with_bindings() -> Iterator[tuple[str, ast.Call, dict[str, tuple[str, ...]]]]:
    """Every call, with the names bound by enclosing ``for name in ("a", "b"):`` loops."""

    def walk(node: ast.AST, bindings: dict[str, tuple[str, ...]]) -> Iterator[tuple]:
        if (
            isinstance(node, ast.For)
            and isinstance(node.target, ast.Name)
            and isinstance(node.iter, ast.Tuple | ast.List)
            and all(
                isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.iter.elts
            )
        ):
            values = tuple(e.value for e in node.iter.elts)  # type: ignore[attr-defined]
            bindings = {**bindings, node.target.id: values}
        if isinstance(node, ast.Call):
            yield node, bindings
        for child in ast.iter_child_nodes(node):
            yield from walk(child, bindings)

    for where, tree in _trees():
        for call, bindings in walk(tree, {}):
            yield where, call, bindings


def _calls() -> Iterator[tuple[str, ast.Call]]:
    for where, call, _ in _calls_with_bindings():
        yield where, call


def _callee(call: ast.Call) -> str | None:
    func = call.func
    return func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)


def _normalised(source: str) -> str:
    return ast.unparse(ast.parse(source, mode="eval").body)


def _argument(
    call: ast.Call, bindings: dict[str, tuple[str, ...]], position: int, name: str
) -> tuple[str, ...] | None:
    """The literal strings a parameter can take at this call (a literal, or a loop
    variable over literals), else None."""
    keywords = {k.arg: k.value for k in call.keywords}
    node = call.args[position] if position < len(call.args) else keywords.get(name)
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return (node.value,)
    if isinstance(node, ast.Name) and node.id in bindings:
        return bindings[node.id]
    return None


def _repositories() -> list[type[Repository]]:
    """Every repository class with a slug, once the apps' repository modules are imported."""
    for app in APPS:
        package = importlib.import_module(f"{app}.repositories")
        prefix = f"{package.__name__}."
        for module in pkgutil.walk_packages(getattr(package, "__path__", []), prefix):
            importlib.import_module(module.name)
    found: list[type[Repository]] = []
    pending = list(Repository.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if getattr(cls, "slug", None) and getattr(cls, "model", None):
            found.append(cls)
    return sorted(found, key=lambda cls: cls.slug)


def _has_unnamed_unique_rule(model: type[models.Model]) -> bool:
    """Whether the database can refuse a duplicate of ``model`` without a constraint code
    (the repository base then answers ``<slug>_conflict``)."""
    return (
        any(f.unique and not f.primary_key for f in model._meta.concrete_fields)
        or bool(model._meta.unique_together)
        or any(
            isinstance(c, models.UniqueConstraint) and not c.violation_error_code
            for c in model._meta.constraints
        )
    )


def _call_site_codes(function: str, template: str, *params: tuple[int, str]) -> set[str]:
    codes = set()
    for where, call, bindings in _calls_with_bindings():
        if _callee(call) != function:
            continue
        values = [_argument(call, bindings, position, name) for position, name in params]
        assert None not in values, (
            f"{where}:{call.lineno}: {function}() is called with a computed name, so the "
            "test cannot tell which code it raises; pass a literal (or loop over literals)."
        )
        codes |= {template.format(*combo) for combo in itertools.product(*values)}  # type: ignore[arg-type]
    return codes


#: Each code built at run time (an f-string or a call as ``code=``), with the concrete codes
#: it builds.
#: A new one must be added here, with its codes declared in the catalogue.
FAMILIES = {
    _normalised('f"{self.slug}_not_found"'): lambda: {
        f"{repo.slug}_not_found" for repo in _repositories()
    },
    _normalised('f"{self.slug}_conflict"'): lambda: {
        f"{repo.slug}_conflict" for repo in _repositories() if _has_unnamed_unique_rule(repo.model)
    },
    _normalised('f"invalid_{field}"'): lambda: _call_site_codes(
        "check_choice", "invalid_{}", (2, "field")
    ),
    _normalised('f"empty_{field}"'): lambda: _call_site_codes(
        "require_text", "empty_{}", (1, "field")
    ),
    _normalised('f"invalid_{name}"'): lambda: _call_site_codes(
        "_check_whole", "invalid_{}", (0, "name")
    ),
    _normalised('f"{kind}_{children}_incomplete"'): lambda: _call_site_codes(
        "_refuse_open_children", "{}_{}_incomplete", (1, "kind"), (2, "children")
    ),
    # A bad log chunk: its field's own code (the API's table of field codes), else its own.
    _normalised("_chunk_refusal_code(found)"): lambda: {
        *FIELD_CODES.values(),
        *BLANK_FIELD_CODES.values(),
        "invalid_log_chunk",
    },
}

#: ``code=`` arguments that pass on a code chosen elsewhere: ``require_int(code=…)``'s
#: callers pass literals (scanned), and a constraint's code is declared on the constraint.
PASSED_ON = {"code", "constraint.violation_error_code"}


def _code_arguments() -> Iterator[tuple[str, str, ast.expr]]:
    """Every ``code=`` argument in the source, except Django ``ValidationError``'s: those
    are a form field's own codes, which the API reports under ``validation_failed``."""
    for where, call in _calls():
        if _callee(call) == "ValidationError":
            continue
        for keyword in call.keywords:
            if keyword.arg == "code":
                yield f"{where}:{call.lineno}", _callee(call) or "?", keyword.value


def _domain_error_classes() -> dict[str, type[DomainError]]:
    classes: dict[str, type[DomainError]] = {}
    pending: list[type[DomainError]] = [DomainError]
    while pending:
        cls = pending.pop()
        classes[cls.__name__] = cls
        pending.extend(cls.__subclasses__())
    return classes


def _codes_raised_with_default() -> dict[str, str]:
    """The default code of each domain error raised without ``code=``, by where."""
    classes = _domain_error_classes()
    return {
        f"{where}:{call.lineno}": classes[name].default_code
        for where, call in _calls()
        if (name := _callee(call)) in classes and not any(k.arg == "code" for k in call.keywords)
    }


def _codes_the_source_raises() -> set[str]:
    codes = set(_codes_raised_with_default().values())
    for _, _, value in _code_arguments():
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            codes.add(value.value)
        elif ast.unparse(value) in FAMILIES:
            codes |= FAMILIES[ast.unparse(value)]()
    return codes


def _constraint_codes() -> dict[str, list[tuple[str, models.BaseConstraint]]]:
    return errors._constraint_carriers()


# --- every code raised is declared ----------------------------------------------------------


def test_every_code_literal_in_the_source_is_declared():
    undeclared = sorted(
        f"{where} {callee}(code={value.value!r})"
        for where, callee, value in _code_arguments()
        if isinstance(value, ast.Constant) and value.value not in load_catalogue()
    )
    assert not undeclared, (
        "Codes raised but not in the catalogue; declare each (code, error class, meaning) "
        "in its app's errors module, or on its model constraint, then regenerate "
        f"docs/errors.md with {REGENERATE}:\n" + "\n".join(undeclared)
    )


def test_every_code_built_at_run_time_is_a_known_family_whose_codes_are_declared():
    unknown = []
    undeclared = []
    for where, callee, value in _code_arguments():
        if isinstance(value, ast.Constant):
            continue
        source = ast.unparse(value)
        if source in FAMILIES:
            missing = sorted(FAMILIES[source]() - set(catalogue()))
            undeclared += [f"{where} {source}: {code}" for code in missing]
        elif source not in PASSED_ON:
            unknown.append(f"{where} {callee}(code={source})")
    assert not unknown, (
        "Codes computed in a way this test does not know: declare the concrete codes and "
        "teach FAMILIES (or PASSED_ON) in tests/core/test_errors.py how to list them:\n"
        + "\n".join(unknown)
    )
    assert not undeclared, "Codes of a family not in the catalogue:\n" + "\n".join(undeclared)


def test_a_domain_error_raised_without_a_code_has_a_declared_default():
    undeclared = sorted(
        f"{where}: {code}"
        for where, code in _codes_raised_with_default().items()
        if code not in catalogue()
    )
    assert not undeclared, (
        "Raised without code= and the class's default is not declared; pass a specific "
        "code:\n" + "\n".join(undeclared)
    )


@pytest.mark.parametrize("repository", _repositories(), ids=lambda repo: repo.__name__)
def test_each_repository_slug_has_its_not_found_code(repository):
    entry = lookup(f"{repository.slug}_not_found")
    assert entry.error is NotFound
    assert entry.status == 404
    if _has_unnamed_unique_rule(repository.model):
        assert lookup(f"{repository.slug}_conflict").status == 409


def test_every_declared_domain_code_is_raised_somewhere():
    raised = _codes_the_source_raises() | set(_constraint_codes())
    dead = sorted(
        f"{entry.app}: {code}"
        for code, entry in explicitly_declared().items()
        if entry.error is not None and code not in raised
    )
    assert not dead, (
        "Declared but raised nowhere (renamed or removed?): drop them from the catalogue "
        f"and regenerate docs/errors.md with {REGENERATE}:\n" + "\n".join(dead)
    )


# --- the constraints' codes ------------------------------------------------------------------


def test_every_constraint_of_the_apps_declares_its_code_and_message():
    default = models.BaseConstraint.default_violation_error_message
    missing = sorted(
        f"{model._meta.label}.{constraint.name}"
        for app in APPS
        for model in apps.get_app_config(app).get_models()
        for constraint in model._meta.constraints
        if not constraint.violation_error_code or str(constraint.violation_error_message) == default
    )
    assert not missing, (
        "Constraints without violation_error_code and violation_error_message (a refusal "
        "would show the constraint's name):\n" + "\n".join(missing)
    )


def test_a_constraint_code_is_catalogued_with_the_constraints_status_and_message():
    for code, carried in _constraint_codes().items():
        entry = lookup(code)
        assert entry.constraints == tuple(name for name, _ in carried)
        for name, constraint in carried:
            assert entry.status == constraint_error_class(constraint).http_status, name
        messages = {str(constraint.violation_error_message) for _, constraint in carried}
        if code not in explicitly_declared():
            assert messages == {entry.meaning}


def test_a_constraint_code_is_declared_again_only_to_give_constraints_one_meaning():
    declared = explicitly_declared()
    problems = []
    for code, carried in _constraint_codes().items():
        messages = {str(constraint.violation_error_message) for _, constraint in carried}
        names = ", ".join(name for name, _ in carried)
        if code in declared and len(messages) == 1:
            problems.append(
                f"{code}: declared by {declared[code].app}.errors and by its constraint "
                f"({names}); keep only the constraint's"
            )
        if code not in declared and len(messages) > 1:
            problems.append(
                f"{code}: shared by {names} with different messages; declare the meaning "
                "they share once, in core.errors (or the app's errors)"
            )
    assert not problems, "\n".join(problems)


# --- the catalogue refuses what is not in it ------------------------------------------------


def test_a_domain_error_with_an_undeclared_code_is_a_programming_error():
    with pytest.raises(UndeclaredErrorCode, match="error_catalogue"):
        InvalidInput("Refused.", code="no_such_code_anywhere")


def test_a_base_class_default_is_no_code_of_its_own():
    # Every refusal names what was refused: a bare InvalidInput has no code to answer.
    for cls in (DomainError, InvalidInput, Conflict, NotFound, PermissionRequired):
        with pytest.raises((UndeclaredErrorCode, ErrorClassMismatch)):
            cls("Refused.")


def test_the_specific_classes_defaults_are_declared():
    assert TransitionNotAllowed("Refused.").error_code.status == 409
    assert DependencyCycle("Refused.").error_code.status == 409


def test_a_code_raised_with_a_class_of_another_status_is_refused():
    with pytest.raises(ErrorClassMismatch, match="task_not_found"):
        InvalidInput("Refused.", code="task_not_found")
    with pytest.raises(ErrorClassMismatch, match="invalid_value"):
        Conflict("Refused.", code="invalid_value")


def test_a_subclass_of_the_declared_class_status_may_raise_it():
    assert DependencyCycle("Refused.", code="dependency_taken").code == "dependency_taken"
    assert DomainError("Refused.", code="invalid_value").error_code.status == 400


def test_an_api_only_code_is_never_a_domain_error():
    load_catalogue()
    with pytest.raises(ErrorClassMismatch, match="API-only"):
        InvalidInput("Refused.", code="validation_error")


@pytest.fixture
def scratch_catalogue(monkeypatch):
    """Declarations made in the test are forgotten after it."""
    monkeypatch.setattr(errors, "_declared", dict(errors._declared))
    monkeypatch.setattr(errors, "_complete", None)


@pytest.mark.usefixtures("scratch_catalogue")
def test_a_code_is_declared_once():
    entry = declare("core", "scratch_refusal", InvalidInput, "A scratch refusal.")
    assert declare("core", "scratch_refusal", InvalidInput, "A scratch refusal.") == entry
    assert InvalidInput("Refused.", code="scratch_refusal").error_code == entry
    with pytest.raises(DuplicateErrorCode):
        declare("reviews", "scratch_refusal", InvalidInput, "A scratch refusal.")
    with pytest.raises(DuplicateErrorCode):
        declare("core", "scratch_refusal", Conflict, "A scratch refusal.")


@pytest.mark.usefixtures("scratch_catalogue")
@pytest.mark.parametrize(
    ("code", "meaning"),
    [("Scratch", "Fine."), ("scratch-code", "Fine."), ("scratch", ""), ("scratch", "Two\nlines.")],
)
def test_a_code_is_snake_case_with_a_one_line_meaning(code, meaning):
    with pytest.raises(ValueError, match=r"(?i)scratch"):
        declare("core", code, InvalidInput, meaning)


@pytest.mark.usefixtures("scratch_catalogue")
def test_a_declared_code_conflicting_with_its_constraints_status_is_refused():
    code, carried = next(iter(_constraint_codes().items()))
    other = InvalidInput if constraint_error_class(carried[0][1]) is Conflict else Conflict
    errors._declared[code] = errors.ErrorCode(code, other.http_status, "Clash.", other, "core")
    with pytest.raises(ErrorClassMismatch, match=code):
        catalogue()


def test_every_meaning_is_one_sentence():
    for entry in load_catalogue().values():
        assert entry.meaning.strip() == entry.meaning, entry.code
        assert entry.meaning.endswith((".", ")")), entry.code
        assert "\n" not in entry.meaning, entry.code


# --- the API answers each code with its catalogued status ------------------------------------


def test_each_error_class_keeps_its_http_status():
    assert {cls: cls.http_status for cls in _domain_error_classes().values()} == {
        DomainError: 400,
        NotFound: 404,
        InvalidInput: 400,
        Conflict: 409,
        TransitionNotAllowed: 409,
        DependencyCycle: 409,
        PermissionRequired: 403,
    }


def _domain_codes() -> list[errors.ErrorCode]:
    return sorted(
        (entry for entry in load_catalogue().values() if entry.error is not None),
        key=lambda entry: entry.code,
    )


@pytest.mark.parametrize("entry", _domain_codes(), ids=lambda entry: entry.code)
def test_the_api_answers_each_domain_code_with_its_catalogued_status(rf, entry):
    from cw_project.api import api

    assert entry.error is not None
    response = api.on_exception(rf.get("/api/"), entry.error("Refused.", code=entry.code))
    assert response.status_code == entry.status
    former = {"deprecated_codes": list(entry.replaces)} if entry.replaces else {}
    assert json.loads(response.content) == {
        "code": entry.code,
        "message": "Refused.",
        "details": {},
        **former,
    }


def test_the_apis_own_codes_are_declared_by_the_api():
    from cw_project import errors as api_errors

    for status, entry in api_errors._HTTP_ERROR_CODES.items():
        assert lookup(entry.code) == entry
        assert entry.status == status
    api_codes = {code for code, entry in load_catalogue().items() if entry.app == "api"}
    assert {"validation_error", "malformed_json", "not_authenticated", "internal_error"} <= (
        api_codes
    )
    assert all(load_catalogue()[code].error is None for code in api_codes)


# --- renamed codes: aliases for one release ---------------------------------------------------


def test_a_former_code_is_an_alias_listed_under_the_code_that_replaced_it():
    codes = load_catalogue()
    assert errors.renamed(), "no renamed code left: drop this test's subject, not the test"
    for old, new in errors.renamed().items():
        assert old not in codes, old
        assert old in codes[new].replaces, (old, new)
    assert sorted(old for entry in codes.values() for old in entry.replaces) == sorted(
        errors.renamed()
    )


def test_raising_a_former_code_is_refused_with_the_new_one_named():
    old, new = next(iter(errors.renamed().items()))
    with pytest.raises(UndeclaredErrorCode, match=f"renamed to '{new}'"):
        lookup(old)
    with pytest.raises(UndeclaredErrorCode, match=f"renamed to '{new}'"):
        DomainError("Refused.", code=old)


def test_no_source_outside_the_catalogue_names_a_former_code():
    # The old spellings live on only as aliases: in rename() calls, old migrations and
    # the tests of the aliases themselves.
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, errors.renamed())) + r")\b")
    found = []
    for path in _source_files():
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line) and "rename(" not in line:
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not found, "Former codes still raised or named:\n" + "\n".join(found)


@pytest.mark.usefixtures("scratch_catalogue")
def test_a_rename_must_name_a_declared_code_and_retire_the_old_one(monkeypatch):
    monkeypatch.setattr(errors, "_renamed", dict(errors._renamed))
    declare("core", "scratch_refusal", InvalidInput, "A scratch refusal.")
    errors.rename("scratch_former", "scratch_refusal")
    assert lookup("scratch_refusal").replaces == ("scratch_former",)
    with pytest.raises(DuplicateErrorCode):
        errors.rename("scratch_former", "scratch_other")
    with pytest.raises(ValueError, match="two different"):
        errors.rename("scratch_refusal", "scratch_refusal")
    errors.rename("scratch_ghost", "scratch_undeclared")
    with pytest.raises(UndeclaredErrorCode, match="scratch_undeclared"):
        catalogue()
    del errors._renamed["scratch_ghost"]
    declare("core", "scratch_former", InvalidInput, "A scratch refusal.")
    with pytest.raises(DuplicateErrorCode, match="still declared"):
        catalogue()


def test_the_reference_pairs_each_former_code_with_its_code():
    text = render_markdown()
    for old, new in errors.renamed().items():
        assert f"| `{old}` | `{new}` | {lookup(new).status} |" in text
        assert f"Replaces `{old}`." in text


# --- docs/errors.md is the catalogue ---------------------------------------------------------


def test_docs_errors_md_is_the_catalogue_rendered():
    committed = (ROOT / "docs" / "errors.md").read_text()
    assert committed == render_markdown(), (
        "docs/errors.md is not the catalogue rendered: a code, status or meaning changed. "
        f"If that is meant, regenerate it with {REGENERATE} and commit it with the change."
    )


def test_the_reference_lists_every_code_once_sorted_by_section():
    text = render_markdown()
    for code, entry in load_catalogue().items():
        assert text.count(f"\n| `{code}` | {entry.status} |") == 1, code
    assert render_markdown() == text


def test_the_error_catalogue_command_prints_the_reference():
    out = StringIO()
    call_command("error_catalogue", stdout=out)
    assert out.getvalue() == render_markdown()
