"""Account rotation under contention: claims per second of ``find_next_available``.

``measure()`` expects Django to be set up and the configured database to be migrated
(inside ``bench.harness.throwaway_database()``, or any migrated database: it only adds
accounts under a provider name of its own and deletes them afterwards). Worker threads
open their own connections, so on SQLite the database must be a file, not ``:memory:``.
Run on its own with ``python -m bench.account_rotation`` (``DATABASE_URL`` for PostgreSQL).
"""

import threading
import time

import shortuuid

from bench.harness import Result


def measure(threads: int = 8, claims_per_thread: int = 200, accounts: int = 20) -> float:
    """Claims per second when ``threads`` threads each claim ``claims_per_thread`` times
    from a pool of ``accounts``, all released together. Raises if any claim failed."""
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

    def worker() -> None:
        repository = AccountRepository()
        try:
            connection.ensure_connection()  # connect before the clock starts
            barrier.wait()
            for _ in range(claims_per_thread):
                if repository.find_next_available(provider) is None:
                    raise RuntimeError("a claim found no account while the pool was free")
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    try:
        for thread in pool:
            thread.start()
        barrier.wait()
        start = time.perf_counter()
        for thread in pool:
            thread.join()
        elapsed = time.perf_counter() - start
    finally:
        Account.objects.filter(provider=provider).delete()
    if errors:
        raise RuntimeError(f"{len(errors)} claimer(s) failed: {errors[0]!r}") from errors[0]
    return threads * claims_per_thread / elapsed


def run(quick: bool) -> Result:
    """The benchmark scenario: throughput with one claimer and with eight."""
    result = Result("account rotation")
    claims = 50 if quick else 200
    single = measure(threads=1, claims_per_thread=claims * 4)
    several = measure(threads=8, claims_per_thread=claims)
    result.figure("1 thread", f"{single:,.0f} claims/s")
    result.figure("8 threads", f"{several:,.0f} claims/s")
    # Contention may cost throughput, but claims must keep flowing, not collapse.
    result.target(several >= single / 4, "8 contending threads keep >= 1/4 of 1 thread's rate")
    return result


if __name__ == "__main__":
    from bench.harness import setup_django, throwaway_database

    setup_django()
    from django.db import connection

    with throwaway_database():
        print(f"account rotation on {connection.vendor}")
        for label, value in run(quick=False).figures.items():
            print(f"  {label:<56} {value}")
