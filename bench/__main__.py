"""Run the benchmark: ``python -m bench [--quick]``.

Each scenario prints its figures and checks its targets, which are ratios measured in
this one run (never absolute times, which depend on the machine). Exits non-zero when a
target is missed.
"""

import argparse
import sys

from bench.harness import setup_django, throwaway_database


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for CI")
    args = parser.parse_args(argv)

    setup_django()
    from django.db import connection

    from bench import account_rotation, api_throughput, log_paging, ready_tasks

    scenarios = [ready_tasks, log_paging, account_rotation, api_throughput]
    failures = []
    with throwaway_database():
        print(f"cw benchmark on {connection.vendor}{' (quick)' if args.quick else ''}")
        for scenario in scenarios:
            result = scenario.run(args.quick)
            print(f"\n{result.name}")
            for label, value in result.figures.items():
                print(f"  {label:<48} {value}")
            failures += [f"{result.name}: {f}" for f in result.failures]
    if failures:
        print("\nMISSED TARGETS:\n  " + "\n  ".join(failures))
        return 1
    print("\nall targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
