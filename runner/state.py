"""What the runner keeps of each run on its disk, so a restarted runner can pick up
where a killed one stopped: ``<workspace>/runs/<run id>/state.json``, written whole
and atomically (a temporary file renamed over it)."""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

#: A run's state is saved from its run's thread and from its log shipper's: one at a time,
#: or one's rename finds the other's temporary file gone (and a stale copy could win).
_saving = threading.Lock()


@dataclass
class Checkout:
    project_id: str
    mirror: str
    path: str
    branch: str
    start: str


@dataclass
class RunState:
    run_id: str
    task_id: str
    agent_id: str
    provider: str
    session_number: int
    initiative_branch: str = ""
    cwd: str = ""
    checkouts: list[Checkout] = field(default_factory=list)
    pid: int | None = None
    boot_id: str = ""
    pid_started: str = ""  # the process's start time (/proc), so a reused pid is not it
    session_id: str | None = None
    shipped: int = 0  # spool bytes cw acknowledged
    spool: str = ""
    ended: bool = False

    def unshipped(self) -> bool:
        """Whether the spool holds output cw has not acknowledged."""
        try:
            return bool(self.spool) and os.path.getsize(self.spool) > self.shipped
        except OSError:
            return False

    @staticmethod
    def folder(workspace: Path, run_id: str) -> Path:
        return workspace / "runs" / run_id

    def save(self, workspace: Path) -> None:
        folder = self.folder(workspace, self.run_id)
        with _saving:
            folder.mkdir(parents=True, exist_ok=True)
            temporary = folder / f"state.json.{os.getpid()}.tmp"
            temporary.write_text(json.dumps(asdict(self), indent=1))
            os.replace(temporary, folder / "state.json")

    @classmethod
    def load(cls, workspace: Path, run_id: str) -> RunState | None:
        path = cls.folder(workspace, run_id) / "state.json"
        try:
            raw: Any = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(raw, dict):
            return None
        try:
            raw["checkouts"] = [Checkout(**c) for c in raw.get("checkouts", [])]
            return cls(**raw)
        except TypeError:  # a file of another version: unknown (nothing is removed)
            return None

    @classmethod
    def all(cls, workspace: Path) -> list[RunState]:
        folder = workspace / "runs"
        if not folder.is_dir():
            return []
        found = [cls.load(workspace, entry.name) for entry in sorted(folder.iterdir())]
        return [state for state in found if state is not None]
