"""Run the benchmark: ``python -m bench [--quick] [--only NAME ...] [--output PATH]``.

Each scenario measures cw against a baseline taken in this same run (the raw driver on
the same database, the start of a log, one thread) and checks its target, a ratio. The
table is printed and written as JSON (``bench/results/<engine>.json`` by default).

A full run exits non-zero when any target is missed. ``--quick`` runs every scenario at
small sizes in seconds, for CI: it still fails when a rule is broken (a bad chunk
written, an account handed out twice, the query count growing with the data) but only
reports timings, which a loaded shared machine cannot promise at small sizes.
"""

import argparse
import logging
import sys
import time
from pathlib import Path

from bench.harness import Result, print_table, setup_django, throwaway_database, write_json

SCENARIOS = ("rules", "logs", "lists", "claims", "ready", "runs", "graphs", "live", "review")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, in seconds (CI)")
    parser.add_argument(
        "--only", nargs="+", choices=SCENARIOS, metavar="NAME", help=f"of {', '.join(SCENARIOS)}"
    )
    parser.add_argument("--output", type=Path, help="where to write the JSON table")
    args = parser.parse_args(argv)

    setup_django()
    # The rules scenario sends bad batches on purpose: their 400s are not news.
    logging.getLogger("django.request").setLevel(logging.ERROR)
    from django.db import connection

    from bench import (
        account_rotation,
        graphs,
        lists,
        live,
        logs,
        ready_tasks,
        review,
        rules,
        runs,
    )

    modules = {
        "rules": rules,
        "logs": logs,
        "lists": lists,
        "claims": account_rotation,
        "ready": ready_tasks,
        "runs": runs,
        "graphs": graphs,
        "live": live,
        "review": review,
    }
    chosen = args.only or SCENARIOS
    results: list[Result] = []
    started = time.perf_counter()
    with throwaway_database():
        vendor = connection.vendor
        print(f"cw benchmark on {vendor}{' (quick)' if args.quick else ''}", flush=True)
        for name in chosen:
            scenario_start = time.perf_counter()
            produced = modules[name].run(args.quick)
            results += produced if isinstance(produced, list) else [produced]
            print(f"  {name}: {time.perf_counter() - scenario_start:.1f} s", flush=True)
    print()
    print_table(results, enforce_speed=not args.quick)
    output = args.output or Path("bench/results") / (
        f"{vendor}{'-quick' if args.quick else ''}.json"
    )
    write_json(results, output, vendor=vendor, quick=args.quick)
    print(f"\n{time.perf_counter() - started:.0f} s; table written to {output}")

    missed = [
        row
        for result in results
        for row in result.rows
        if not row.held and row.kind != "info" and (row.kind == "rule" or not args.quick)
    ]
    if missed:
        print("\nMISSED TARGETS:\n  " + "\n  ".join(f"{r.scenario}: {r.path}" for r in missed))
        return 1
    print("every target held" if not args.quick else "every rule held (timings reported only)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
