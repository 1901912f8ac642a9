"""core's models: every constraint refuses in words with a stable code, and every column
takes only what it is documented to hold, through every door (repositories, forms)."""

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from core.errors import Conflict, InvalidInput
from core.models import PhaseDependency, Project, TaskDependency
from core.repositories import (
    InitiativeProjectRepository,
    InitiativeRepository,
    PageRepository,
    PhaseRepository,
    ProjectRepository,
    Repository,
    TaskRepository,
)
from core.tiptap import markdown_to_tiptap_json
from core.validators import NAME_MAX_LENGTH, TEXT_MAX_LENGTH, validate_git_url
from tests import factories as f
from tests.model_checks import assert_validation_failed

pytestmark = pytest.mark.django_db

initiatives = InitiativeRepository()
phases = PhaseRepository()
tasks = TaskRepository()
pages = PageRepository()
projects = ProjectRepository()
links = InitiativeProjectRepository()


def test_an_enum_check_refuses_with_the_code_check_choice_gives():
    initiative = f.InitiativeFactory()
    initiative.status = "nope"
    with pytest.raises(ValidationError) as error:
        initiative.validate_constraints()
    (refusal,) = error.value.error_dict["__all__"]
    assert refusal.code == "invalid_status"
    assert refusal.messages == [
        "Status must be one of: active, pending_review, completed, archived."
    ]


# --- dependencies: the model, the database and the repository say the same thing ----------


@pytest.mark.parametrize(
    ("edge_model", "factory", "repository", "fields"),
    [
        (PhaseDependency, f.PhaseFactory, phases, ("phase", "depends_on_phase")),
        (TaskDependency, f.TaskFactory, tasks, ("task", "depends_on_task")),
    ],
    ids=["phase", "task"],
)
def test_a_self_edge_is_refused_with_one_code_by_every_door(
    edge_model, factory, repository, fields
):
    node = factory()
    edge = edge_model(**dict.fromkeys(fields, node))
    noun = edge_model.__name__.removesuffix("Dependency").lower()

    with pytest.raises(ValidationError) as form_refusal:  # what a model form runs
        edge.full_clean()
    (refusal,) = form_refusal.value.error_dict["__all__"]
    assert refusal.code == "dependency_self_edge"
    assert refusal.messages == [f"A {noun} cannot depend on itself."]

    with pytest.raises(IntegrityError), transaction.atomic():  # the database itself
        edge.save()

    class RawEdges(Repository):  # the repository base's answer to the database's refusal
        model = edge_model
        slug = f"{noun}_dependency"
        label = "Dependency"

    with pytest.raises(InvalidInput) as raw:
        RawEdges()._create(**dict.fromkeys(fields, node))
    assert (raw.value.code, raw.value.message) == (
        "dependency_self_edge",
        f"A {noun} cannot depend on itself.",
    )

    with pytest.raises(InvalidInput) as checked:  # the repository's own check, first
        repository.create_dependency(node.id, node.id)
    assert checked.value.code == "dependency_self_edge"
    assert not edge_model.objects.exists()


def test_a_duplicate_dependency_is_refused_with_one_code_by_every_door():
    dependency = f.PhaseDependencyFactory()
    twin = PhaseDependency(phase=dependency.phase, depends_on_phase=dependency.depends_on_phase)
    with pytest.raises(ValidationError) as form_refusal:
        twin.full_clean()
    (refusal,) = form_refusal.value.error_dict["__all__"]
    assert (refusal.code, refusal.messages) == (
        "dependency_taken",
        ["This phase already depends on that phase."],
    )
    with pytest.raises(Conflict) as checked:
        phases.create_dependency(dependency.phase_id, dependency.depends_on_phase_id)
    assert checked.value.code == "dependency_taken"


# --- unique rules through the repositories ------------------------------------------------


def test_a_taken_project_name_or_url_is_a_conflict_in_words():
    project = projects.create(name="api", url="git@github.com:acme/api.git")
    with pytest.raises(Conflict) as name_taken:
        projects.create(name="api", url="https://github.com/acme/other.git")
    assert (name_taken.value.code, name_taken.value.message) == (
        "project_name_taken",
        "A project with this name already exists.",
    )
    with pytest.raises(Conflict) as url_taken:
        projects.create(name="other", url=project.url)
    assert (url_taken.value.code, url_taken.value.message) == (
        "project_url_taken",
        "A project with this URL already exists.",
    )
    assert Project.objects.count() == 1


def test_a_taken_branch_is_a_conflict_in_words():
    initiatives.create(name="A", branch="cw/auth")
    with pytest.raises(Conflict) as error:
        initiatives.create(name="B", branch="cw/auth")
    assert (error.value.code, error.value.message) == (
        "initiative_branch_taken",
        "Another initiative already uses this branch.",
    )


def test_a_generated_branch_still_moves_past_a_taken_one():
    initiatives.create(name="Auth", branch="cw/auth")
    assert initiatives.create(name="Auth").branch == "cw/auth-2"


def test_linking_a_project_twice_is_a_conflict_in_words():
    link = f.InitiativeProjectFactory()
    with pytest.raises(Conflict) as error:
        links.create(initiative_id=link.initiative_id, project_id=link.project_id)
    assert (error.value.code, error.value.message) == (
        "initiative_project_taken",
        "This project is already linked to this initiative.",
    )


def test_a_second_root_page_is_refused_with_the_constraints_code():
    root = f.PageFactory()
    with pytest.raises(Conflict) as error:
        pages.create(initiative_id=root.initiative_id, title="Another root")
    assert error.value.code == "page_root_taken"
    second = f.PageFactory.build(initiative=root.initiative)
    with pytest.raises(ValidationError) as form_refusal:
        second.validate_constraints()
    assert [e.code for e in form_refusal.value.error_dict["__all__"]] == ["page_root_taken"]


def test_a_second_active_token_name_is_refused_in_words_by_a_form():
    token = f.ApiTokenFactory()
    twin = f.ApiTokenFactory.build(name=token.name, created_by=token.created_by)
    with pytest.raises(ValidationError) as error:
        twin.validate_constraints()
    (refusal,) = error.value.error_dict["__all__"]
    assert refusal.code == "token_name_taken"
    assert "api_tokens_active_name_unique" not in refusal.messages[0]


# --- what each column holds ---------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda i: initiatives.create(name="x" * (NAME_MAX_LENGTH + 1)),
        lambda i: phases.create(initiative_id=i.id, name="x" * (NAME_MAX_LENGTH + 1)),
        lambda i: tasks.create(initiative_id=i.id, name="x" * (NAME_MAX_LENGTH + 1)),
        lambda i: pages.create(initiative_id=i.id, title="x" * (NAME_MAX_LENGTH + 1)),
    ],
    ids=["initiative", "phase", "task", "page"],
)
def test_a_name_one_character_too_long_is_refused(call):
    initiative = f.InitiativeFactory()
    with pytest.raises(InvalidInput) as error:
        call(initiative)
    field = "title" if "title" in error.value.details["fields"] else "name"
    assert_validation_failed(error.value, field)
    assert str(NAME_MAX_LENGTH) in error.value.details["fields"][field][0]


def test_a_name_of_the_longest_length_is_accepted():
    name = "x" * NAME_MAX_LENGTH
    initiative = initiatives.create(name=name)
    assert phases.create(initiative_id=initiative.id, name=name).name == name
    assert tasks.create(initiative_id=initiative.id, name=name).name == name
    assert pages.create(initiative_id=initiative.id, title=name).title == name


def test_long_text_is_refused_past_the_shared_limit():
    task = f.TaskFactory()
    with pytest.raises(InvalidInput) as error:
        tasks.update(task.id, description="x" * (TEXT_MAX_LENGTH + 1))
    assert_validation_failed(error.value, "description")
    assert tasks.update(task.id, description="x" * TEXT_MAX_LENGTH).description


def test_forms_show_the_length_limits():
    from core.models import Initiative, Phase, Task

    assert Initiative._meta.get_field("name").formfield().max_length == NAME_MAX_LENGTH
    assert Task._meta.get_field("description").formfield().max_length == TEXT_MAX_LENGTH
    assert Phase._meta.get_field("content").formfield().max_length == TEXT_MAX_LENGTH


@pytest.mark.parametrize(
    "content",
    ["x", "{}", "[]", '{"type": "paragraph"}', '{"type": "doc", "content": "text"}'],
    ids=["not-json", "no-type", "array", "not-a-doc", "content-not-a-list"],
)
def test_phase_and_page_content_that_is_not_a_tiptap_document_is_refused(content):
    initiative = f.InitiativeFactory()
    phase = f.PhaseFactory(initiative=initiative)
    with pytest.raises(InvalidInput) as error:
        phases.update(phase.id, content=content)
    assert_validation_failed(error.value, "content")
    with pytest.raises(InvalidInput) as error:
        phases.create(initiative_id=initiative.id, name="P", content=content)
    assert_validation_failed(error.value, "content")
    with pytest.raises(InvalidInput) as error:
        pages.create(initiative_id=initiative.id, title="Root", content=content)
    assert_validation_failed(error.value, "content")


@pytest.mark.parametrize(
    "content",
    [
        None,
        '{"type": "doc", "content": []}',
        markdown_to_tiptap_json("# Auth\n\n**JWT** and `code`, a [link](https://x.y)"),
        markdown_to_tiptap_json(
            "- a\n- b\n\n> quote\n\n```py\nx = 1\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |"
        ),
        markdown_to_tiptap_json(""),
    ],
    ids=["none", "empty-doc", "inline-marks", "blocks", "empty-markdown"],
)
def test_tiptap_documents_are_accepted(content):
    initiative = f.InitiativeFactory()
    assert phases.create(initiative_id=initiative.id, name="P", content=content).content == content
    assert pages.create(initiative_id=initiative.id, title="R", content=content).content == content


def test_a_project_url_that_is_not_a_url_is_refused():
    with pytest.raises(InvalidInput) as error:
        projects.create(name="api", url="not a url")
    assert_validation_failed(error.value, "url")
    project = projects.create(name="api", url="git@github.com:org/repo.git")
    with pytest.raises(InvalidInput) as error:
        projects.update(project.id, url="ftp://example.com/repo.git")
    assert_validation_failed(error.value, "url")


GIT_URLS = [
    "git@github.com:org/repo.git",
    "github.com:org/repo",
    "deploy.bot@[::1]:repo.git",
    "https://github.com/org/repo.git",
    "http://git.local/repo",
    "ssh://git@host.example:2222/org/repo.git",
    "git://host.example/repo.git",
    "git+ssh://git@host.example/repo.git",
    "file:///srv/git/repo.git",
]
NOT_GIT_URLS = [
    "not a url",
    "repo",
    "/srv/git/repo.git",
    "ftp://host.example/repo.git",
    "https://",
    "https://host.example",
    "https://host.example:port/repo",
    "file://",
    "git@host:",
    "git@host://x",
    "host:org/repo\n",
    "",
]


@pytest.mark.parametrize("url", GIT_URLS)
def test_git_urls_are_accepted(url):
    validate_git_url(url)
    assert projects.create(name="p", url=url).url == url


@pytest.mark.parametrize("url", NOT_GIT_URLS)
def test_what_git_cannot_clone_is_refused(url):
    with pytest.raises(ValidationError) as error:
        validate_git_url(url)
    assert error.value.code == "invalid_git_url"
    assert error.value.messages[0].startswith("Enter a git repository URL")
