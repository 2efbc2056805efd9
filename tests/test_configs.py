"""Every domain's Config behaves alike: JSON round trip, train= changes, unknown keys refused."""

import importlib
import json

import pytest

from sciflow.configs import DomainConfig, train_config_from_dict
from sciflow.errors import InputError
from sciflow.train import TrainConfig

DOMAINS = ("toy", "single_cell", "remote_sensing", "climate", "feature_forecasting", "transition_states")


def _config_class(domain: str):
    return importlib.import_module(f"sciflow.domains.{domain}.config").Config


@pytest.mark.parametrize("domain", DOMAINS)
def test_round_trip_through_json(domain):
    cls = _config_class(domain)
    assert issubclass(cls, DomainConfig)
    config = cls().replace(train={"steps": 7, "seed": 3, "betas": (0.8, 0.9)})
    again = cls.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config and again.train.betas == (0.8, 0.9) and again.train.steps == 7


@pytest.mark.parametrize("domain", DOMAINS)
def test_train_dict_changes_only_the_named_fields(domain):
    config = _config_class(domain)()
    changed = config.replace(train={"lr": 5e-4})
    assert changed.train.lr == 5e-4
    assert changed.train == config.train.__class__(**{**config.train.__dict__, "lr": 5e-4})
    assert changed.replace(train=config.train) == config


@pytest.mark.parametrize("domain", DOMAINS)
def test_unknown_settings_are_named(domain):
    cls = _config_class(domain)
    d = {**cls().to_dict(), "no_such_setting": 1}
    with pytest.raises(InputError, match=r"unknown .* settings \['no_such_setting'\]"):
        cls.from_dict(d)
    d = cls().to_dict()
    d["train"] = {**d["train"], "no_such_step": 1}
    with pytest.raises(InputError, match=r"unknown training setting\(s\) \['no_such_step'\]"):
        cls.from_dict(d)


def test_train_config_from_dict_inverts_to_dict_and_applies_to_a_base():
    base = TrainConfig(steps=10, lr=2e-3, betas=(0.5, 0.6))
    assert train_config_from_dict(json.loads(json.dumps(base.to_dict()))) == base
    assert train_config_from_dict({"steps": 20}, base=base) == TrainConfig(steps=20, lr=2e-3,
                                                                           betas=(0.5, 0.6))


def test_lazy_exports_tables_by_module_or_by_name():
    from sciflow.plugins import lazy_exports, public_names

    by_module = {".errors": ("InputError", "OutputError"), ".configs": ("DomainConfig",)}
    getattr_, dir_ = lazy_exports("sciflow", by_module)
    assert getattr_("OutputError") is __import__("sciflow.errors").errors.OutputError
    assert dir_() == public_names(by_module) == ["DomainConfig", "InputError", "OutputError"]
    assert public_names({"InputError": ".errors"}) == ["InputError"]
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        getattr_("nothing")
    with pytest.raises(ValueError, match="'InputError' is exported from both"):
        public_names({".errors": ("InputError",), ".configs": ("InputError",)})
