import csv

import pytest

from sciflow.cli import main


def test_help_lists_groups(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "demo" in out and "toy" in out


def test_toy_train_then_sample(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["toy", "train", "--steps", "30", "--out", str(run)]) == 0
    ckpts = sorted((run / "checkpoints").glob("*.pt"))
    assert ckpts, "training wrote no checkpoint"
    out_csv = tmp_path / "s.csv"
    assert main(["toy", "sample", "--checkpoint", str(ckpts[-1]), "-n", "50", "-o", str(out_csv)]) == 0
    rows = list(csv.reader(out_csv.open()))
    assert rows[0] == ["x", "y"] and len(rows) == 51


def test_user_errors_are_messages_not_tracebacks(tmp_path, capsys):
    assert main(["toy", "sample", "--checkpoint", str(tmp_path / "missing.pt")]) == 2
    err = capsys.readouterr().err
    assert "missing.pt" in err and "Traceback" not in err


def test_unknown_demo_section(capsys):
    assert main(["demo", "--sections", "nope"]) == 2
    assert "unknown demo section" in capsys.readouterr().err
