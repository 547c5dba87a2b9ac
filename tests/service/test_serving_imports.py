"""The serving path must not pull PyTorch in."""

from __future__ import annotations

import subprocess
import sys


def test_serving_path_does_not_import_torch() -> None:
    code = (
        "import sys\n"
        "import service.__main__, service.app, service.stores.redis, service.stores.embedded\n"
        "import service.stores.redis_writer, kernels.target_attention\n"
        "service.app.create_app(service.app.Settings())\n"
        "assert 'torch' not in sys.modules, 'the serving path imported torch'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
