"""The ``live`` bench: its quick form keeps its rules against make serve's uvicorn on a
fresh database of the suite's kind, and its accounting notices what a follower or a
long-poller did not see (a dropped line is a missed line, a repeated one is wrong)."""

import dataclasses
import math

import pytest

from bench import live

#: The quick form, smaller still: a few seconds of load.
SMALL = dataclasses.replace(
    live.QUICK, agents=4, followers=8, pollers=4, slow=2, duration=3.0, whoami_idle=20
)


def rows_by_path(result):
    return {row.path.split(" (")[0]: row for row in result.rows}


# --- the accounting ------------------------------------------------------------------------


def appended_lines(agents: int, lines: int) -> list[list[tuple[int, int, float]]]:
    """Agent ``a``'s line ``n`` has id ``n * agents + a + 1``, answered at ``n`` s."""
    return [[(n * agents + a + 1, n, float(n)) for n in range(lines)] for a in range(agents)]


def seen(appended, *, delay: float = 0.25):
    """What perfect followers (two per agent) see, ``delay`` after each answer."""
    return [[(i, n, at + delay) for i, n, at in appended[f % len(appended)]] for f in range(4)]


def test_followers_that_see_every_line_once_miss_nothing():
    appended = appended_lines(2, 10)

    followed = live.account_followers(appended, seen(appended))

    assert (followed.expected, followed.received, followed.missed, followed.wrong) == (
        40,
        40,
        0,
        0,
    )
    assert followed.delivery == [0.25] * 40


def test_a_follower_that_drops_a_line_has_missed_it():
    appended = appended_lines(2, 10)
    received = seen(appended)
    del received[3][4]

    followed = live.account_followers(appended, received)

    assert (followed.missed, followed.wrong) == (1, 0)


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(lambda lines: lines.insert(5, lines[4]), id="a line twice"),
        pytest.param(lambda lines: lines.insert(2, lines.pop(6)), id="out of order"),
        pytest.param(lambda lines: lines.append((10**6, 0, 0.0)), id="a line never appended"),
        pytest.param(lambda lines: lines.__setitem__(3, (lines[3][0], 99, 0.0)), id="other text"),
    ],
)
def test_a_follower_that_sees_a_line_twice_out_of_order_or_foreign_is_wrong(spoil):
    appended = appended_lines(2, 10)
    received = seen(appended)
    spoil(received[1])

    followed = live.account_followers(appended, received)

    assert followed.wrong >= 1


def test_a_follower_of_another_agents_log_is_wrong_and_misses_its_own():
    appended = appended_lines(2, 5)
    received = seen(appended)
    received[0] = list(received[1])  # follower 0 follows agent 0, but saw agent 1's lines

    followed = live.account_followers(appended, received)

    assert (followed.missed, followed.wrong) == (5, 5)


def test_long_pollers_that_miss_or_repeat_an_event_are_counted():
    events = [1, 2, 3, 5, 8]

    assert live.account_pollers(events, [events, list(events)]) == (0, 0)
    assert live.account_pollers(events, [[1, 2, 5, 8]]) == (1, 0)
    assert live.account_pollers(events, [[1, 2, 3, 3, 5, 8]]) == (0, 2)
    assert live.account_pollers(events, [[1, 3, 2, 5, 8]]) == (0, 1)


def test_percentiles():
    values = [float(n) for n in range(1, 101)]

    assert live.percentile(values, 0.5) == 51.0
    assert live.percentile(values, 0.99) == 100.0
    assert math.isnan(live.percentile([], 0.99))


# --- the quick form, against make serve ------------------------------------------------------


@pytest.mark.processes
def test_the_bench_serves_what_make_serve_runs():
    commands = live.serve_commands(8123)

    assert "uvicorn cw_project.asgi:application" in commands["serve"]
    assert "--http cw_project.server:HttpProtocol" in commands["serve"]
    assert "--port 8123" in commands["serve"]
    assert "DJANGO_DEBUG=false" in commands["serve"]
    assert "manage.py migrate" in commands["migrate"]


@pytest.mark.processes
def test_the_quick_form_keeps_its_rules():
    # Streams end every second, so followers reconnect with Last-Event-ID as they go.
    config = dataclasses.replace(SMALL, server_env={"CW_SSE_MAX_SECONDS": "1"})

    result = live.run(True, config)

    rows = rows_by_path(result)
    rules = [row for row in result.rows if row.kind == "rule"]
    assert len(rules) == 4
    assert all(row.held for row in rules), [(r.path, r.cw) for r in rules]
    owed = rows["lines missed by SSE followers"]
    assert owed.cw == 0 and "of 0 owed" not in owed.path
    assert rows["appends answered / intended"].cw > 0
    assert rows["long polls answered"].cw > 0


@pytest.mark.processes
def test_the_quick_form_notices_a_follower_that_drops_a_line():
    config = dataclasses.replace(SMALL, drop_a_line=True)

    result = live.run(True, config)

    rows = rows_by_path(result)
    missed = rows["lines missed by SSE followers"]
    # Each follower threw away its third line: one each, nothing else wrong.
    assert missed.cw == SMALL.followers
    assert not missed.held
    assert rows["lines seen twice, out of order or not appended, by SSE followers"].cw == 0
    assert rows["errors"].held
