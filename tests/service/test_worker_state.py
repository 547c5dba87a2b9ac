"""The folder the workers of one service share: emptied for a new service, and the bundle
version the admin endpoints activated last, kept in it."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.errors import StoreUnavailable
from service.worker_state import (
    BUNDLE_FILE,
    EVENTS_FILE,
    EXPERIMENT_FILE,
    FileVersionPointer,
    clear_worker_state,
)

pytestmark = pytest.mark.anyio


def test_a_new_service_starts_without_the_last_ones_changes(tmp_path: Path) -> None:
    folder = tmp_path / "workers"
    folder.mkdir()
    for name in (EXPERIMENT_FILE, BUNDLE_FILE, EVENTS_FILE):
        (folder / name).write_text("from an earlier run")
    (folder / "other").write_text("not the service's")
    clear_worker_state(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["other"]
    clear_worker_state(tmp_path / "new")
    assert (tmp_path / "new").is_dir()


async def test_the_version_pointer_names_the_last_version_written(tmp_path: Path) -> None:
    pointer, other = FileVersionPointer(tmp_path), FileVersionPointer(tmp_path)
    assert await pointer.read() is None
    await pointer.write("v1")
    await other.write("v2")
    assert await pointer.read() == "v2"
    assert [p.name for p in tmp_path.iterdir()] == [BUNDLE_FILE]  # nothing left aside
    await pointer.close()


async def test_an_unwritable_folder_is_a_store_error(tmp_path: Path) -> None:
    pointer = FileVersionPointer(tmp_path / "missing")
    with pytest.raises(StoreUnavailable, match="cannot write the workers' bundle version"):
        await pointer.write("v1")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / BUNDLE_FILE).mkdir()
    with pytest.raises(StoreUnavailable, match="cannot read"):
        await FileVersionPointer(tmp_path / "dir").read()
