"""The command line: groups from entry points, one error format, no torch at start-up."""

import subprocess
import sys

import pytest

from sciflow.cli import main
from sciflow.cli_args import SOLVER_NAMES
from sciflow.plugins import domains


def test_help_lists_every_registered_group_with_its_aliases(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "demo" in out
    for d in domains().values():
        assert d.name in out and all(a in out for a in d.aliases)


def test_aliases_reach_the_same_group(capsys):
    for d in domains().values():
        for name in d.names():
            with pytest.raises(SystemExit) as exc:
                main([name, "--help"])
            assert exc.value.code == 0
    capsys.readouterr()


def test_user_errors_are_messages_not_tracebacks(tmp_path, capsys):
    code = main(["toy", "sample", "--checkpoint", str(tmp_path / "missing.pt"),
                 "-o", str(tmp_path / "s.csv")])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("sciflow toy: error:") and "missing.pt" in err
    assert "Traceback" not in err and not (tmp_path / "s.csv").exists()


def test_unknown_demo_section(capsys):
    assert main(["demo", "--sections", "nope"]) == 2
    assert "unknown demo section" in capsys.readouterr().err


def test_solver_names_match_the_solver_registry():
    from sciflow.solvers import SOLVERS

    assert set(SOLVER_NAMES) == set(SOLVERS) | {"dopri5"}


@pytest.mark.parametrize("argv", [["--help"]] + [[d.name, "--help"] for d in domains().values()],
                         ids=lambda a: a[0])
def test_help_imports_no_torch(argv):
    """`sciflow --help` and `sciflow GROUP --help` must not import torch (start-up cost)."""
    code = ("import sys\nfrom sciflow.cli import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('torch', 'torch_geometric', 'ot', 'e3nn', 'rdkit', 'scanpy', "
            "'anndata', 'xarray', 'dask', 'matplotlib', 'tblite', 'sella') if m in sys.modules]\n"
            "print('HEAVY', heavy)\n")
    out = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                         check=True).stdout
    assert "HEAVY []" in out, out[-400:]


def test_sciflow_warnings_are_printed_with_the_group(capsys, monkeypatch):
    import argparse
    import warnings

    from sciflow.errors import WorseThanBaselineWarning

    def handler(args: argparse.Namespace) -> int:
        warnings.warn("model W1 0.30 is not below the baseline's 0.28", WorseThanBaselineWarning)
        warnings.warn("an ordinary warning", UserWarning)
        return 0

    import sciflow.cli as cli

    real = cli.build_parser

    def build():
        parser, unavailable = real()
        parser.set_defaults(func=handler)
        return parser, unavailable

    monkeypatch.setattr(cli, "build_parser", build)
    assert cli.main(["toy"]) == 0
    err = capsys.readouterr().err
    assert "sciflow toy: warning: model W1 0.30 is not below the baseline's 0.28" in err
    assert "sciflow toy: warning: an ordinary" not in err  # other warnings keep their format


def test_provenance_is_json_clean():
    import json

    from sciflow.provenance import history_line, provenance

    rec = provenance(checkpoint="m.pt", digest="ab" * 32, seed=3, score=float("nan"))
    assert json.loads(json.dumps(rec, allow_nan=False))["score"] is None
    assert rec["checkpoint_sha256"] == "ab" * 32 and rec["seed"] == 3
    assert history_line("filled clouds", rec).endswith(f"sciflow {rec['sciflow']}: filled clouds")
