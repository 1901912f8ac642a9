"""Account rotation under contention: ``find_next_available`` with 1 and with 8 threads
over a pool of 20 accounts.

Target: "account claim, 8 threads over 20 accounts: 0 double hand-outs in a round;
>= 0.5x the 1-thread rate". Every claim is recorded with the account it got and the
``last_used_at`` stamp it wrote (the returned ``Account`` carries it). Sorted by stamp,
the claims fall into rounds of 20 consecutive claims; a *double hand-out* is an account
that appears more than once in one round (while another account of the pool went
without). Each worker thread opens its own connection, so on SQLite the database must be
a file, not ``:memory:``. Run on its own with ``python -m bench.account_rotation``
(``DATABASE_URL`` for PostgreSQL).
"""

import contextlib
import statistics
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import shortuuid

from bench.harness import Result

POOL = 20
THREADS = 8

#: One claim: the ``last_used_at`` stamp it wrote and the id of the account it got.
Claim = tuple[datetime, str]


@dataclass
class Claims:
    """What one or more timed runs of claimers did."""

    rates: list[float] = field(default_factory=list)
    #: Per run: (stamp, account id) of every claim, in no particular order.
    runs: list[list[Claim]] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return statistics.median(self.rates)

    @property
    def claims(self) -> int:
        return sum(len(run) for run in self.runs)

    @property
    def doubles(self) -> int:
        return sum(double_hand_outs(run) for run in self.runs)

    @property
    def shortest_gap(self) -> int:
        """The fewest claims, in stamp order, from one hand-out of an account to its next
        (``POOL`` in a perfect rotation)."""
        return min(shortest_gap(run) for run in self.runs)

    @property
    def tied_stamps(self) -> int:
        """Claims whose stamp equals another claim's (their order is then unknown)."""
        return sum(
            count for run in self.runs for count in Counter(s for s, _ in run).values() if count > 1
        )


def double_hand_outs(claims: list[Claim], pool: int = POOL) -> int:
    """Claims in stamp order, cut into rounds of ``pool``: how many claims in a round got
    an account that round had already handed out."""
    ordered = [account for _stamp, account in sorted(claims)]
    return sum(
        len(chunk) - len(set(chunk))
        for chunk in (ordered[i : i + pool] for i in range(0, len(ordered), pool))
    )


def shortest_gap(claims: list[Claim]) -> int:
    """The fewest claims, in stamp order, between two hand-outs of one account."""
    last: dict[str, int] = {}
    gaps = []
    for index, (_stamp, account) in enumerate(sorted(claims)):
        if account in last:
            gaps.append(index - last[account])
        last[account] = index
    return min(gaps, default=POOL)


def claim_run(
    threads: int, claims_per_thread: int, accounts: int = POOL
) -> tuple[float, list[Claim]]:
    """One timed run on a fresh pool of ``accounts``: ``threads`` threads, each with its
    own connection, claim ``claims_per_thread`` times, all released together. Returns
    (claims per second, [(stamp, account id)] of every claim). Raises if a claim failed
    or found no account (the pool is never exhausted, so it never should)."""
    from django.db import connection

    from agents.models import Account
    from agents.repositories import AccountRepository

    provider = f"bench-{shortuuid.uuid()[:8]}"
    Account.objects.bulk_create(
        Account(email=f"bench{i}@example.com", provider=provider, sort_order=i)
        for i in range(accounts)
    )
    barrier = threading.Barrier(threads + 1)
    errors: list[BaseException] = []
    recorded: list[list[Claim]] = [[] for _ in range(threads)]

    def worker(mine: list[Claim]) -> None:
        repository = AccountRepository()
        try:
            connection.ensure_connection()  # connect before the clock starts
            barrier.wait()
            for _ in range(claims_per_thread):
                account = repository.find_next_available(provider)
                if account is None:
                    raise RuntimeError("a claim found no account while the pool was free")
                stamp = account.last_used_at
                assert stamp is not None  # a claim always stamps the account
                mine.append((stamp, account.pk))
        except BaseException as error:
            errors.append(error)
            barrier.abort()
        finally:
            connection.close()

    pool = [threading.Thread(target=worker, args=(recorded[i],)) for i in range(threads)]
    try:
        for thread in pool:
            thread.start()
        # A claimer that failed before the start broke the barrier: raised below.
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait()
        start = time.perf_counter()
        for thread in pool:
            thread.join()
        elapsed = time.perf_counter() - start
    finally:
        Account.objects.filter(provider=provider).delete()
    if errors:
        # The first real failure, not the broken barrier it left the others.
        first = next(
            (e for e in errors if not isinstance(e, threading.BrokenBarrierError)), errors[0]
        )
        raise RuntimeError(f"{len(errors)} claimer(s) failed: {first!r}") from first
    claims = [claim for mine in recorded for claim in mine]
    return len(claims) / elapsed, claims


def measure(*, total: int, rounds: int) -> tuple[Claims, Claims]:
    """(1 thread, 8 threads): ``rounds`` alternating runs of ``total`` claims each, so a
    slow moment of the machine falls on both."""
    single, several = Claims(), Claims()
    claim_run(1, POOL)  # warm up: first connection, statement caches
    for round_number in range(rounds):
        order = [(single, 1), (several, THREADS)]
        if round_number % 2:
            order.reverse()
        for claims, threads in order:
            rate, run = claim_run(threads, total // threads)
            claims.rates.append(rate)
            claims.runs.append(run)
    return single, several


def run(quick: bool) -> Result:
    """The benchmark scenario: claim rate with eight threads against one, and no account
    handed out twice in a round by either."""
    result = Result("account claims")
    # Multiples of 8 threads x 20 accounts, so every run is whole rounds.
    total, rounds = (320, 1) if quick else (800, 3)
    single, several = measure(total=total, rounds=rounds)
    result.ratio(
        f"find_next_available, {THREADS} threads / 1 thread, {POOL} accounts",
        several.rate,
        single.rate,
        unit="claims/s",
        minimum=0.5,
        baseline_label="1 thread",
    )
    for label, claims in (("1 thread", single), (f"{THREADS} threads", several)):
        result.check(
            f"double hand-outs in a round of {POOL}, {label} ({claims.claims:,} claims)",
            claims.doubles,
            unit="claims",
            target="0",
            held=claims.doubles == 0,
            kind="rule",
        )
        if claims.tied_stamps:
            result.info(f"claims with a tied stamp, {label}", claims.tied_stamps, unit="claims")
    result.info(
        f"fewest claims between two hand-outs of one account, {THREADS} threads ({POOL} ideally)",
        several.shortest_gap,
        unit="claims",
    )
    return result


if __name__ == "__main__":
    from bench.harness import print_table, setup_django, throwaway_database

    setup_django()
    from django.db import connection

    with throwaway_database():
        print(f"account claims on {connection.vendor}")
        print_table([run(quick=False)], enforce_speed=True)
