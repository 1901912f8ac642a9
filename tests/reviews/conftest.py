"""Fixtures the reviews' tests share."""

import pytest

from core.models import PhaseStatus
from tests import factories as f


@pytest.fixture
def initiative():
    return f.InitiativeFactory()


@pytest.fixture
def agent():
    return f.AgentFactory()


@pytest.fixture
def phase_in_review():
    return f.PhaseFactory(status=PhaseStatus.PENDING_REVIEW, name="API")
