"""The README's Python tour runs as written (fewer steps), and a second run resumes it."""

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).parents[1] / "README.md"


def test_tour_runs_twice_and_prints_its_w2(tmp_path: Path) -> None:
    tour = re.search(r"## A tour of the Python API\n\n```python\n(.*?)```", README.read_text(),
                     re.S).group(1)
    assert "steps=2000" in tour
    quick = "import torch\ntorch.set_num_threads(1)\n" + tour.replace("steps=2000", "steps=40")
    runs = [subprocess.run([sys.executable, "-c", quick], cwd=tmp_path, capture_output=True,
                           text=True, check=True).stdout.strip().splitlines()[-1] for _ in range(2)]
    assert re.fullmatch(r"W2 \d+\.\d\d", runs[0]) and runs[1] == runs[0]
    assert list((tmp_path / "runs" / "toy" / "checkpoints").glob("*.pt"))
