"""Default workflow names are the importable module's name, also when run as __main__."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.unit.named_flows import nightly_report

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_default_name_is_module_and_qualname() -> None:
    assert nightly_report.name == "tests.unit.named_flows.nightly_report"


def test_a_module_run_with_dash_m_keeps_its_importable_name() -> None:
    """``python -m pkg.mod`` runs the module as __main__; its workflows must keep the name
    a worker that imports ``pkg.mod`` registers, or starts by name would not match."""
    out = subprocess.run(
        [sys.executable, "-m", "tests.unit.named_flows"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert out.stdout.strip() == "tests.unit.named_flows.nightly_report"
