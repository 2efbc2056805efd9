"""Copy the pages that live elsewhere in the repository into docs/generated/ for mkdocs.

The domain shape (domains/README.md), the reaction-data README and every benchmark result (with
their figures) stay where their scripts write them; `make docs` runs this first so the site shows
the committed files, not copies that drift.
"""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "generated"


def main() -> None:
    shutil.rmtree(OUT, ignore_errors=True)
    (OUT / "domains").mkdir(parents=True)
    shutil.copy(ROOT / "domains" / "README.md", OUT / "domains" / "README.md")
    shutil.copy(ROOT / "datasets" / "reactions" / "README.md", OUT / "reactions.md")
    shutil.copytree(ROOT / "benchmarks" / "results", OUT / "benchmarks",
                    ignore=shutil.ignore_patterns("cache", "*.pt", "*.csv"))
    pages = sorted(p.stem for p in (OUT / "benchmarks").glob("*.md"))
    index = ["# Benchmarks", "",
             "Each page is written by its script in `benchmarks/` (`make bench` runs them all) and "
             "says what it measured, on which machine, with which command.", ""]
    index += [f"- [{name}](benchmarks/{name}.md)" for name in pages]
    (OUT / "benchmarks.md").write_text("\n".join(index) + "\n")


if __name__ == "__main__":
    main()
