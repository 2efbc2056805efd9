"""The shared flag helpers of sciflow.cli_args: argparse types and flags named after fields."""

import argparse
import dataclasses

import pytest

from sciflow.cli_args import (
    add_config_flags,
    field_defaults,
    nonnegative_int,
    positive_float,
    positive_int,
)


@pytest.mark.parametrize("parse, text, message", [
    (positive_int, "0", "expected an integer >= 1, got 0"),
    (positive_int, "x", "expected an integer >= 1, got 'x'"),
    (nonnegative_int, "-1", "expected an integer >= 0, got -1"),
    (nonnegative_int, "1.5", "expected an integer >= 0, got '1.5'"),
    (positive_float, "0", "expected a finite number > 0, got 0"),
    (positive_float, "1e400", "expected a finite number > 0, got 1e400"),
    (positive_float, "nan", "expected a finite number > 0, got nan"),
    (positive_float, "one", "expected a number > 0, got 'one'"),
])
def test_types_refuse_with_the_value_named(parse, text, message):
    with pytest.raises(argparse.ArgumentTypeError) as err:
        parse(text)
    assert str(err.value) == message


def test_types_accept_their_range():
    assert positive_int("3") == 3 and nonnegative_int("0") == 0 and positive_float("2.5") == 2.5


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Config:
    batch_size: int = 32
    solver: str = "euler"
    rows: tuple[int, ...] = dataclasses.field(default_factory=tuple)


_ROWS = (("batch_size", {"type": positive_int}, "windows per update (default {default})"),
         ("solver", {"choices": ("euler", "rk4")}, "ODE solver"))


def _parser(**kwargs):
    p = argparse.ArgumentParser()
    add_config_flags(p, _ROWS, **kwargs)
    return p


def test_field_defaults_leave_out_factories():
    assert field_defaults(_Config) == {"batch_size": 32, "solver": "euler"}


def test_config_flags_are_named_after_fields_and_default_to_them():
    p = _parser(defaults=field_defaults(_Config))
    assert vars(p.parse_args([])) == {"batch_size": 32, "solver": "euler"}
    assert vars(p.parse_args(["--batch-size", "4", "--solver", "rk4"])) == {
        "batch_size": 4, "solver": "rk4"}
    assert "windows per update (default 32)" in p.format_help()
    with pytest.raises(SystemExit):
        p.parse_args(["--batch-size", "0"])


def test_unset_config_flags_default_to_none_and_still_show_the_config_default():
    p = _parser(defaults=field_defaults(_Config), unset=True)
    assert vars(p.parse_args([])) == {"batch_size": None, "solver": None}
    assert "windows per update (default 32)" in p.format_help()
    assert vars(_parser().parse_args([])) == {"batch_size": None, "solver": None}


def test_a_row_naming_no_field_is_refused():
    with pytest.raises(KeyError):
        _parser(defaults={"solver": "euler"})
