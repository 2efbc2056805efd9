"""The `sciflow demo` section runs (here with a token training budget) and returns markdown
that links the PNG it wrote."""

from __future__ import annotations

from sciflow.domains.remote_sensing.demo import demo


def test_demo_section_writes_markdown_and_picture(tmp_path):
    md = demo(tmp_path, steps=4, n_train=8)
    assert md.startswith("## Remote sensing")
    assert "| linear interpolation |" in md and "S2 + SAR" in md
    png = tmp_path / "remote_sensing_cloud_removal.png"
    assert png.read_bytes()[:4] == b"\x89PNG" and f"({png.name})" in md
