"""The bundles of the chaos run, in their own bundle root: the demo bundle, a second version
exported from the same trained run, and a corrupt copy of the second (one flipped byte)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from service.contracts.bundle_root import current_pointer, read_current, write_current

REASEQ = [sys.executable, "-m", "cli.main"]


@dataclass(frozen=True)
class ChaosBundles:
    root: Path
    first: str
    second: str
    corrupt: str


def reaseq(*args: str) -> None:
    """Run a ``reaseq`` subcommand; its output goes to ours."""
    subprocess.run([*REASEQ, *args], check=True)


def prepare(root: Path, demo_bundles: Path, demo_dir: Path) -> ChaosBundles:
    """Build the demo when missing, then the chaos root (reused by later runs)."""
    if not current_pointer(demo_bundles).is_file() or not (demo_dir / "model").is_dir():
        reaseq("demo", "--bundles", str(demo_bundles), "--out", str(demo_dir))
    first = read_current(demo_bundles)
    second, corrupt = f"{first}-b", f"{first}-b-corrupt"
    root.mkdir(parents=True, exist_ok=True)
    if not (root / first).is_dir():
        shutil.copytree(demo_bundles / first, root / first)
    if not (root / second).is_dir():
        reaseq(
            "export", "--model", str(demo_dir / "model"), "--data", str(demo_dir / "data"),
            "--bundles", str(root), "--version", second, "--no-activate",
        )  # fmt: skip
    shutil.rmtree(root / corrupt, ignore_errors=True)
    shutil.copytree(root / second, root / corrupt)
    _restamp(root / corrupt, corrupt)
    _flip_last_byte(root / corrupt / "item_vectors.npy")
    write_current(root, first)
    return ChaosBundles(root, first, second, corrupt)


def _restamp(bundle_dir: Path, version: str) -> None:
    manifest_path = bundle_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["version"] = version
    manifest_path.write_text(json.dumps(manifest, indent=2))


def _flip_last_byte(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0xFF
    path.write_bytes(bytes(raw))
