"""benchmarks/device_check.sh on the CPU at tiny sizes: it runs the domains' public train /
sample / load with a device, writes its table, and reports a failing domain instead of dying."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_quick_cpu_check_writes_a_row_per_step(tmp_path: Path) -> None:
    out = tmp_path / "device.md"
    run = subprocess.run(
        ["bash", str(ROOT / "benchmarks/device_check.sh"), "--quick", "--domains", "toy",
         "climate", "--out", str(out)],
        env={**os.environ, "DEVICE": "cpu"}, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    text = out.read_text()
    assert "Device: cpu" in text and "tiny (--quick)" in text
    rows = [line for line in text.splitlines() if line.startswith("| toy") or
            line.startswith("| climate")]
    assert len(rows) == 3 and all("| cpu |" in row for row in rows)


@pytest.mark.slow
def test_a_bad_device_is_refused_before_any_work(tmp_path: Path) -> None:
    run = subprocess.run(
        ["bash", str(ROOT / "benchmarks/device_check.sh"), "--quick", "--out",
         str(tmp_path / "device.md")],
        env={**os.environ, "DEVICE": "tpu:7"}, capture_output=True, text=True, timeout=600)
    assert run.returncode != 0 and "device" in run.stderr.lower()
    assert not (tmp_path / "device.md").exists()
