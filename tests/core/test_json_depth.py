"""The shared checks of JSON values (``core.repositories.validation``): the depth bound
``MAX_JSON_DEPTH`` and the walks of nested values, which use an explicit stack so that no
depth can exhaust Python's stack; and the repositories refusing a value past the bound."""

import sys
from typing import Any

import pytest

from core.errors import InvalidInput
from core.repositories.validation import (
    MAX_JSON_DEPTH,
    check_json_depth,
    json_depth_exceeds,
    unstorable_text,
)
from reviews.models import Proposal, ProposalTargetType
from reviews.repositories import ProposalRepository
from tests import factories as f

#: Far past Python's recursion limit: a recursive walk would raise RecursionError.
VERY_DEEP = 100_000


def nested_lists(depth: int, leaf: Any = None) -> Any:
    """``leaf`` inside ``depth`` lists: ``nested_lists(2) == [[None]]``."""
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


def nested_dicts(depth: int, leaf: Any = None) -> Any:
    """``leaf`` inside ``depth`` objects: ``nested_dicts(2) == {"k": {"k": None}}``."""
    value = leaf
    for _ in range(depth):
        value = {"k": value}
    return value


NESTERS = [nested_lists, nested_dicts]


def test_very_deep_is_beyond_the_recursion_limit():
    assert sys.getrecursionlimit() < VERY_DEEP


# --- json_depth_exceeds ----------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, 1, 1.5, "text", True, [], {}, [1, "a"], {"a": 1}])
def test_flat_values_are_within_the_bound(value):
    assert not json_depth_exceeds(value)


@pytest.mark.parametrize("nest", NESTERS)
def test_depth_counts_every_object_and_array_the_outermost_included(nest):
    assert not json_depth_exceeds(nest(3), limit=3)
    assert json_depth_exceeds(nest(4), limit=3)


@pytest.mark.parametrize("nest", NESTERS)
def test_the_bound_itself_is_allowed_and_one_more_is_not(nest):
    assert not json_depth_exceeds(nest(MAX_JSON_DEPTH, leaf="x"))
    assert json_depth_exceeds(nest(MAX_JSON_DEPTH + 1, leaf="x"))


def test_a_deep_branch_beside_shallow_ones_is_found():
    value = {"a": [1, 2, {"b": "c"}], "z": [nested_dicts(MAX_JSON_DEPTH)], "y": "shallow"}
    assert json_depth_exceeds(value)


def test_tuples_count_like_lists():
    assert json_depth_exceeds(((("x",),),), limit=2)


@pytest.mark.parametrize("nest", NESTERS)
def test_a_very_deep_value_is_refused_without_recursion_error(nest):
    assert json_depth_exceeds(nest(VERY_DEEP))


def test_a_value_containing_itself_is_refused_rather_than_walked_forever():
    looped: list[Any] = []
    looped.append(looped)
    assert json_depth_exceeds(looped)


# --- check_json_depth ------------------------------------------------------------------------


@pytest.mark.parametrize("nest", NESTERS)
def test_check_json_depth_refuses_with_json_too_deep(nest):
    with pytest.raises(InvalidInput) as caught:
        check_json_depth(nest(VERY_DEEP), "metadata")
    assert caught.value.code == "json_too_deep"
    assert caught.value.details == {"field": "metadata", "max_depth": MAX_JSON_DEPTH}


def test_check_json_depth_lets_a_value_within_the_bound_pass():
    check_json_depth(nested_dicts(MAX_JSON_DEPTH), "metadata")


# --- unstorable_text at any depth --------------------------------------------------------------


@pytest.mark.parametrize("nest", NESTERS)
def test_unstorable_text_walks_a_very_deep_value_without_recursion_error(nest):
    assert not unstorable_text(nest(VERY_DEEP, leaf="fine"))


@pytest.mark.parametrize("nest", NESTERS)
@pytest.mark.parametrize("bad", ["a\x00b", "\ud800"])
def test_unstorable_text_finds_bad_text_at_the_bottom_of_a_very_deep_value(nest, bad):
    assert unstorable_text(nest(VERY_DEEP, leaf=bad))


def test_unstorable_text_finds_a_nul_in_a_key_deep_inside():
    assert unstorable_text(nested_dicts(VERY_DEEP, leaf={"k\x00": 1}))


# --- the repositories --------------------------------------------------------------------------


@pytest.fixture
def proposal_fields() -> dict[str, Any]:
    return {
        "agent": f.AgentFactory(),
        "initiative": f.InitiativeFactory(),
        "target_type": ProposalTargetType.TASK,
        "title": "Deep",
    }


@pytest.mark.django_db
@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 1_000, VERY_DEEP])
def test_creating_a_proposal_with_metadata_too_deep_is_json_too_deep(proposal_fields, depth):
    with pytest.raises(InvalidInput) as caught:
        ProposalRepository().create(**proposal_fields, metadata=nested_dicts(depth))
    assert caught.value.code == "json_too_deep"
    assert caught.value.details == {"field": "metadata", "max_depth": MAX_JSON_DEPTH}
    assert not Proposal.objects.exists()


@pytest.mark.django_db
def test_metadata_as_deep_as_the_bound_is_stored(proposal_fields):
    metadata = nested_dicts(MAX_JSON_DEPTH, leaf="x")
    proposal = ProposalRepository().create(**proposal_fields, metadata=metadata)
    proposal.refresh_from_db()
    assert proposal.metadata == metadata


@pytest.mark.django_db
def test_a_nul_deep_inside_metadata_is_invalid_value(proposal_fields):
    with pytest.raises(InvalidInput) as caught:
        ProposalRepository().create(
            **proposal_fields, metadata=nested_dicts(MAX_JSON_DEPTH, leaf="a\x00b")
        )
    assert caught.value.code == "invalid_value"
    assert not Proposal.objects.exists()


@pytest.mark.django_db
def test_updating_metadata_too_deep_is_json_too_deep_and_changes_nothing(proposal_fields):
    proposals = ProposalRepository()
    proposal = proposals.create(**proposal_fields, metadata={"category": "research"})
    with pytest.raises(InvalidInput) as caught:
        proposals.update(proposal.id, metadata=nested_dicts(VERY_DEEP))
    assert caught.value.code == "json_too_deep"
    proposal.refresh_from_db()
    assert proposal.metadata == {"category": "research"}


@pytest.mark.django_db
def test_restoring_a_proposal_with_metadata_too_deep_names_its_row(proposal_fields):
    row = {
        "id": "deep-proposal",
        "agent_id": proposal_fields["agent"].id,
        "initiative_id": proposal_fields["initiative"].id,
        "target_type": ProposalTargetType.TASK,
        "title": "Deep",
        "metadata": nested_dicts(VERY_DEEP),
    }
    with pytest.raises(InvalidInput) as caught:
        ProposalRepository().restore([row])
    assert caught.value.code == "json_too_deep"
    assert caught.value.details["index"] == 0
    assert caught.value.details["id"] == "deep-proposal"
    assert not Proposal.objects.exists()
