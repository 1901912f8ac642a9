"""``cw-runner`` run as a person runs it: ``python -m runner …`` from the repository's
root, with none of the suite's ``CW_RUNNER_*`` variables."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def cw_runner(*arguments: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CW_RUNNER_")}
    return subprocess.run(  # noqa: S603  (this Python, the runner's module)
        [sys.executable, "-m", "runner", *arguments],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
