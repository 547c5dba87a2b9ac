"""The pointer files of a bundle root, beside the immutable bundle folders; every reader and
writer of them goes through this module.

* ``CURRENT`` names the version to serve when ``REASEQ_BUNDLE_VERSION`` does not: one line,
  the version (a folder of the root). Exporters write it (:func:`activate`, :func:`write_current`);
  the service, the CLI, the load test and the chaos run read it (:func:`read_current`).
* ``<version>.users`` names the embedded user snapshot published with that bundle (the users'
  sequences of the dataset it was trained on), so the embedded store serves the users that go
  with the bundle. ``reaseq build`` writes it; the service reads it when
  ``REASEQ_EMBEDDED_USERS_PATH`` is unset. The path inside is relative to the bundle root
  (absolute when the snapshot lies on another drive), so a root moved together with its
  snapshot keeps working.
"""

from __future__ import annotations

import os
from pathlib import Path

CURRENT_FILE = "CURRENT"
USERS_POINTER_SUFFIX = ".users"


def current_pointer(root: Path) -> Path:
    """The ``CURRENT`` file of the bundle root ``root``."""
    return root / CURRENT_FILE


def read_current(root: Path) -> str:
    """The version the root's ``CURRENT`` names; raises ``FileNotFoundError`` when it has none."""
    return current_pointer(root).read_text().strip()


def current_bundle_dir(root: Path) -> Path:
    """The folder of the version the root's ``CURRENT`` names (not checked to exist)."""
    return root / read_current(root)


def write_current(root: Path, version: str) -> Path:
    """Point the root's ``CURRENT`` at ``version``; returns the pointer file."""
    pointer = current_pointer(root)
    pointer.write_text(version + "\n")
    return pointer


def activate(bundle_dir: Path) -> Path:
    """Point the root's ``CURRENT`` at ``bundle_dir``; returns the pointer file."""
    return write_current(bundle_dir.parent, bundle_dir.name)


def users_pointer(bundle_dir: Path) -> Path:
    """The file that names the user snapshot of the bundle in ``bundle_dir``."""
    return bundle_dir.parent / (bundle_dir.name + USERS_POINTER_SUFFIX)


def record_user_snapshot(bundle_dir: Path, snapshot: Path) -> Path:
    """Name ``snapshot`` as the bundle's user snapshot; returns the pointer file."""
    root = bundle_dir.parent.resolve()
    try:
        named = os.path.relpath(snapshot.resolve(), root)
    except ValueError:  # another drive (Windows): no relative path exists
        named = str(snapshot.resolve())
    pointer = users_pointer(bundle_dir)
    pointer.write_text(named + "\n")
    return pointer


def recorded_user_snapshot(bundle_dir: Path) -> Path | None:
    """The user snapshot recorded for the bundle in ``bundle_dir``, or None when none is."""
    pointer = users_pointer(bundle_dir)
    named = pointer.read_text().strip() if pointer.is_file() else ""
    return bundle_dir.parent / named if named else None
