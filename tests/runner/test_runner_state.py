"""``runner.state.RunState``: written whole, read back, and a file it cannot read is
no record (never a crash of ``clean`` or of a restart)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from runner.state import Checkout, RunState


def make(run_id: str = "r1") -> RunState:
    return RunState(
        run_id=run_id,
        task_id="t",
        agent_id="a",
        provider="claude",
        session_number=3,
        checkouts=[Checkout("p", "/m.git", "/w", "b-run-r1", "abc")],
        pid=42,
        shipped=17,
    )


def test_save_and_load(tmp_path: Path) -> None:
    state = make()
    state.save(tmp_path)
    assert (tmp_path / "runs" / "r1" / "state.json").is_file()
    assert [p.name for p in (tmp_path / "runs" / "r1").iterdir()] == ["state.json"]
    assert RunState.load(tmp_path, "r1") == state
    state.ended = True
    state.save(tmp_path)
    loaded = RunState.load(tmp_path, "r1")
    assert loaded is not None and loaded.ended
    assert loaded.checkouts[0] == Checkout("p", "/m.git", "/w", "b-run-r1", "abc")


@pytest.mark.parametrize(
    "text",
    ["", "{not json", "[1, 2]", "null", '{"run_id": "r1"}', '{"checkouts": [{"x": 1}]}'],
)
def test_a_file_it_cannot_read_is_no_record(tmp_path: Path, text: str) -> None:
    folder = tmp_path / "runs" / "r1"
    folder.mkdir(parents=True)
    (folder / "state.json").write_text(text)
    assert RunState.load(tmp_path, "r1") is None
    make("r2").save(tmp_path)
    assert [state.run_id for state in RunState.all(tmp_path)] == ["r2"]


def test_saves_from_many_threads_at_once(tmp_path: Path) -> None:
    """The run's thread and its log shipper's both save the state."""
    state = make()
    errors: list[BaseException] = []

    def save_often(n: int) -> None:
        try:
            for _ in range(200):
                state.shipped += 1
                state.save(tmp_path)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=save_often, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    loaded = RunState.load(tmp_path, "r1")
    assert loaded is not None and loaded.shipped == state.shipped


def test_no_runs_folder(tmp_path: Path) -> None:
    assert RunState.all(tmp_path) == []
    assert RunState.load(tmp_path, "absent") is None
