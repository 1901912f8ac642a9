"""The lists tools read most: a page of 100 proposals and of 100 review comments through
the API (in-process client, bearer token), against a raw ``SELECT`` of the same rows and
columns in the same order plus ``json.dumps`` of them."""

import json
from typing import Any

from bench.harness import Result, count_queries, paired_rates
from bench.raw import RawConnection

PAGE = 100

PROPOSAL_COLUMNS = (
    "id",
    "agent_id",
    "initiative_id",
    "target_type",
    "target_id",
    "title",
    "summary",
    "content",
    "metadata",
    "status",
    "sort_order",
    "created_at",
    "updated_at",
)
COMMENT_COLUMNS = (
    "id",
    "phase_id",
    "file_path",
    "line_number",
    "line_type",
    "body",
    "author",
    "resolved",
    "created_at",
    "updated_at",
)


def seed(total: int) -> tuple[str, str]:
    """An agent with ``total`` proposals and a phase with ``total`` review comments,
    written through the repositories; (agent id, phase id)."""
    from agents.repositories import AgentRepository
    from core.repositories import InitiativeRepository, PhaseRepository
    from reviews.repositories import ProposalRepository, ReviewCommentRepository

    initiative = InitiativeRepository().create(name="bench lists")
    phase = PhaseRepository().create(initiative=initiative, name="bench phase")
    agent = AgentRepository().create(name="bench-lists", worktree_id="/srv/bench/lists")
    proposals, comments = ProposalRepository(), ReviewCommentRepository()
    for i in range(total):
        proposals.create(
            agent=agent,
            initiative=initiative,
            target_type="task",
            title=f"Split the importer, part {i}",
            summary="Smaller tasks review faster.",
            content="Do the thing, then the next thing.\n" * 8,
            metadata={"priority": "high", "estimate": i % 5},
        )
        comments.create(
            phase=phase,
            file_path=f"src/cw/module_{i % 7}.py",
            line_number=10 + i,
            line_type="added",
            body="Why does this branch swallow the error? Log it, at least.",
        )
    return agent.id, phase.id


def run(quick: bool) -> Result:
    from django.test import Client
    from django.urls import reverse

    from core.tokens import api_token_create

    result = Result("API lists")
    rounds, calls = (3, 10) if quick else (7, 40)
    agent_id, phase_id = seed(PAGE + 20)
    _token, clear = api_token_create(name="bench lists")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {clear}")
    raw = RawConnection()

    cases: list[tuple[str, str, dict[str, Any], str, tuple[str, ...], str, str]] = [
        (
            "GET /api/proposals?limit=100",
            reverse("api-1:list_proposals"),
            {"limit": PAGE, "agent_id": agent_id},
            "proposals",
            PROPOSAL_COLUMNS,
            "agent_id",
            "sort_order, created_at, id",
        ),
        (
            "GET /api/phases/{id}/review-comments?limit=100",
            reverse("api-1:list_review_comments", kwargs={"phase_id": phase_id}),
            {"limit": PAGE},
            "review_comments",
            COMMENT_COLUMNS,
            "phase_id",
            "file_path, line_number, created_at, id",
        ),
    ]
    for path, url, query, table, columns, key, order in cases:
        sql = raw.sql(
            f"SELECT {', '.join(columns)} FROM {table} "  # noqa: S608 - the bench's own names
            f"WHERE {key} = %s ORDER BY {order} LIMIT %s"
        )
        value = query.get("agent_id") or phase_id

        def cw(url: str = url, query: dict[str, Any] = query) -> None:
            response = client.get(url, query)
            assert response.status_code == 200 and len(response.json()["items"]) == PAGE

        def baseline(
            sql: str = sql, value: str = value, columns: tuple[str, ...] = columns
        ) -> None:
            rows = raw.fetchall(sql, (value, PAGE))
            body = json.dumps([dict(zip(columns, row, strict=True)) for row in rows], default=str)
            assert len(rows) == PAGE and body

        cw_rate, raw_rate = paired_rates(cw, baseline, calls=calls, rounds=rounds)
        result.ratio(
            path,
            cw_rate,
            raw_rate,
            unit="req/s",
            minimum=0.25,
            baseline_label="raw SELECT + json.dumps",
        )
        small = {**query, "limit": 1}
        queries_100 = count_queries(cw)
        queries_1 = count_queries(lambda url=url, small=small: client.get(url, small))
        result.check(
            f"{path}: queries for 100 items / for 1",
            queries_100,
            unit="queries",
            target="the same",
            held=queries_100 == queries_1,
            baseline=queries_1,
            kind="rule",
        )
    raw.close()
    return result
