"""Reading an agent's log by cursor: the last page of a long log costs what the first does."""

from bench.harness import Result, best_of, count_queries

PAGE = 500


def run(quick: bool) -> Result:
    from agents.models import AgentLogChunk
    from agents.repositories import LogChunkRepository

    logs = LogChunkRepository()
    total = 20_000 if quick else 100_000
    result = Result("log chunk paging")
    line = '{"type":"assistant","message":{"content":[{"type":"text","text":"working..."}]}}\n'
    for agent_id in ("bench-agent-noise-a", "bench-agent", "bench-agent-noise-b"):
        for start in range(0, total, 10_000):
            logs.insert_chunks(
                [
                    {"agent_id": agent_id, "agent_name": "bench", "content": line}
                    for _ in range(min(10_000, total - start))
                ]
            )
    ids = list(
        AgentLogChunk.objects.filter(agent_id="bench-agent")
        .order_by("id")
        .values_list("id", flat=True)
    )
    before_last_page = ids[-PAGE - 1]

    def first() -> None:
        assert len(logs.find_by_agent_id("bench-agent", limit=PAGE)) == PAGE

    def last() -> None:
        assert len(logs.find_by_agent_id("bench-agent", after=before_last_page, limit=PAGE)) == PAGE

    def last_by_offset() -> None:  # what paging by OFFSET would cost, for contrast
        rows = AgentLogChunk.objects.filter(agent_id="bench-agent").order_by("id")
        assert len(list(rows[total - PAGE : total])) == PAGE

    first_s, last_s, offset_s = best_of(first), best_of(last), best_of(last_by_offset)
    result.figure(f"log of {total:,} chunks (+{2 * total:,} of others)", f"pages of {PAGE}")
    result.figure("first page", f"{first_s * 1000:.2f} ms, {count_queries(first)} query")
    result.figure("last page by cursor", f"{last_s * 1000:.2f} ms, {count_queries(last)} query")
    result.figure("last page by OFFSET (not used; contrast)", f"{offset_s * 1000:.2f} ms")
    ratio = last_s / first_s
    result.figure("last/first page time", f"{ratio:.2f}x")
    result.target(ratio <= 2.0, "the last page costs at most 2x the first")
    return result
