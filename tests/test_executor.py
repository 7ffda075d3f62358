"""The executor interface of the sweep's phases: results in the items' order, each task's progress tagged
with its item."""

from __future__ import annotations

from edgekit.executor import Serial


def test_serial_runs_each_task_in_turn_and_tags_its_progress():
    notes = []

    def task(item, note):
        note(f"working on {item}")
        return item * 2

    assert list(Serial().map("export", task, [1, 2, 3], lambda item, text: notes.append((item, text)))) == [2, 4, 6]
    assert notes == [(1, "working on 1"), (2, "working on 2"), (3, "working on 3")]
