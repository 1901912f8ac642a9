"""API requests per second, in-process (Django's test client, no network, no server).

Listing 100 proposals and creating a review comment, each measured over many requests
with a bearer token, the way a tool calls the API.
"""

import time

from bench.harness import Result, count_queries


def _rate(fn, seconds: float) -> float:
    fn()  # warm up
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        done += 1
    return done / (time.perf_counter() - start)


def run(quick: bool) -> Result:
    from django.test import Client
    from django.urls import reverse

    from agents.models import Agent
    from core.models import Initiative, Phase
    from core.tokens import api_token_create
    from reviews.models import Proposal

    result = Result("API (in-process test client)")
    seconds = 1.0 if quick else 3.0
    _token, clear = api_token_create(name="bench")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {clear}")
    initiative = Initiative.objects.create(name="bench api")
    agent = Agent.objects.create(name="bench-api-agent", worktree_id="/srv/bench")
    Proposal.objects.bulk_create(
        Proposal(
            agent=agent,
            initiative=initiative,
            target_type="task",
            title=f"Proposal {i}",
            content="Do the thing.\n" * 20,
            metadata={"priority": "high"},
        )
        for i in range(100)
    )
    phase = Phase.objects.create(initiative=initiative, name="bench phase")
    list_url = reverse("api-1:list_proposals")
    comment_url = reverse("api-1:create_review_comment", kwargs={"phase_id": phase.id})
    body = {"file_path": "src/app.py", "line_number": 12, "line_type": "added", "body": "Why?"}

    def list_100() -> None:
        response = client.get(list_url, {"limit": 100, "agent_id": agent.id})
        assert response.status_code == 200 and len(response.json()["items"]) == 100

    def list_1() -> None:
        assert client.get(list_url, {"limit": 1, "agent_id": agent.id}).status_code == 200

    def create_comment() -> None:
        response = client.post(comment_url, body, content_type="application/json")
        assert response.status_code == 201

    list_100_rate, list_1_rate = _rate(list_100, seconds), _rate(list_1, seconds)
    create_rate = _rate(create_comment, seconds)
    result.figure("GET /api/proposals?limit=100", f"{list_100_rate:,.0f} req/s")
    result.figure("GET /api/proposals?limit=1", f"{list_1_rate:,.0f} req/s")
    result.figure("POST /api/phases/{id}/review-comments", f"{create_rate:,.0f} req/s")
    queries_100, queries_1 = count_queries(list_100), count_queries(list_1)
    result.figure("queries per list request (100 / 1 items)", f"{queries_100} / {queries_1}")
    result.target(queries_100 == queries_1, "list query count independent of page size")
    ratio = list_1_rate / list_100_rate
    result.figure("time of a 100-item page / a 1-item page", f"{ratio:.1f}x")
    result.target(ratio <= 10, "100 items cost at most 10x one item (no per-row queries)")
    return result
