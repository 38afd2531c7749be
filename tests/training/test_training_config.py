import argparse
import dataclasses
import json

import pytest

from styleforge.errors import UserError
from styleforge.tools import train_cmd
from styleforge.training.config import TrainConfig, preset_values, resolve


def parse(argv):
    parser = argparse.ArgumentParser()
    train_cmd.add_arguments(parser)
    return train_cmd.user_options(parser.parse_args(argv))


def test_only_given_options_are_explicit():
    opts = parse(["--data", "x.zip", "--gamma", "3", "--cond", "--betas", "0.5", "0.9", "--metrics", "fid1k,kid1k"])
    assert opts == {"data": "x.zip", "gamma": 3.0, "cond": True, "betas": (0.5, 0.9), "metrics": ["fid1k", "kid1k"]}


def test_preset_fills_only_what_the_user_left_open():
    cfg = resolve(TrainConfig(data="x", cfg="paper256", gamma=3.0), resolution=256, world_size=1)
    assert cfg.gamma == 3.0  # user value kept
    got = (cfg.batch, cfg.mbstd_group, cfg.cbase, cfg.glr, cfg.ema_kimg, cfg.map_layers)
    assert got == (64, 8, 16384, 0.0025, 20, 8)
    assert cfg.dlr == cfg.glr and cfg.batch_gpu == 64 and cfg.d_arch == "resnet" and cfg.pl_weight == 2


def test_auto_preset_formulas():
    v = preset_values("auto", 256, world_size=2)
    assert v["batch"] == 32 and v["mbstd_group"] == 4 and v["cbase"] == 16384
    assert v["gamma"] == pytest.approx(0.0002 * 256**2 / 32) and v["ema_kimg"] == pytest.approx(10.0)
    assert preset_values("auto", 1024, 1)["glr"] == 0.002


def test_cifar_preset_disables_pl_and_mixing():
    cfg = resolve(TrainConfig(data="x", cfg="cifar"), 32, 1)
    assert cfg.pl_weight == 0 and cfg.style_mixing == 0 and cfg.d_arch == "orig" and cfg.mbstd_group == 32


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(cfg="nope"), "unknown preset"),
        (dict(batch=30, batch_gpu=8), "--batch-gpu 8 must divide"),
        (dict(aug_p=0.3), "--aug-p fixes the probability of ADA"),
        (dict(aug="ada", aug_p=1.5), "must lie in"),
        (dict(precision="fp8"), "--precision must be fp32 or bf16"),
        (dict(precision="fp16"), "--fp16-res"),
        (dict(glr=-1.0), "--glr must be positive"),
        (dict(style_mixing=2.0), "probability"),
    ],
)
def test_invalid_configs_are_rejected_with_the_option_named(overrides, message):
    with pytest.raises(UserError, match=message):
        resolve(TrainConfig(**{"data": "x", "cfg": "cpu", **overrides}), 32, 1)


def test_batch_must_split_over_ranks():
    with pytest.raises(UserError, match="not divisible by the number of processes"):
        resolve(TrainConfig(data="x", cfg="cpu", batch=30), 32, world_size=4)


def test_non_power_of_two_resolution_rejected():
    with pytest.raises(UserError, match="power of two"):
        resolve(TrainConfig(data="x", cfg="cpu"), 48, 1)


def test_unknown_option_rejected_and_json_round_trip():
    with pytest.raises(UserError, match="unknown config option"):
        TrainConfig.from_dict({"data": "x", "gamm": 1})
    cfg = resolve(TrainConfig(data="x", cfg="cpu"), 32, 1)
    assert TrainConfig.from_dict(json.loads(cfg.to_json())) == cfg


def test_unknown_cli_option_is_an_error(capsys):
    parser = argparse.ArgumentParser()
    train_cmd.add_arguments(parser)
    with pytest.raises(SystemExit):
        parser.parse_args(["--data", "x", "--gama", "1"])
    assert "unrecognized arguments: --gama" in capsys.readouterr().err


def test_every_option_has_help_from_its_config_comment():
    parser = argparse.ArgumentParser()
    train_cmd.add_arguments(parser)
    helps = {a.dest: a.help for a in parser._actions if a.dest in {f.name for f in dataclasses.fields(TrainConfig)}}
    assert len(helps) == len(dataclasses.fields(TrainConfig))
    undocumented = [name for name, text in helps.items() if text.startswith(" (default")]
    assert not undocumented, f"fields without a comment in config.py: {undocumented}"
    assert helps["precision"].startswith("fp32, or bf16: bfloat16 autocast")
    assert helps["precision"].endswith("(default: bf16 where faster, on CPUs with AMX)")


@pytest.mark.parametrize("amx, overrides, expected", [
    (True, {}, "bf16"),  # the demo: 1.7e9 multiply-adds per G pass, measured 1.5x faster in bf16
    (True, dict(cbase=256, cmax=16, batch=8, mbstd_group=4), "fp32"),  # tiny: casts cost more than they gain
    (True, dict(g="progan"), "fp32"),  # not measured
    (False, {}, "fp32"),
    (True, dict(precision="fp32"), "fp32"),  # the user's choice wins
])
def test_precision_defaults_to_bf16_only_where_measured_faster(monkeypatch, amx, overrides, expected):
    from styleforge.training import performance

    monkeypatch.setattr(performance, "cpu_has_amx", lambda: amx)
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    cfg = resolve(TrainConfig(**{"data": "x", "cfg": "cpu", **overrides}), 32, 1)
    assert cfg.precision == expected
    assert json.loads(cfg.to_json())["precision"] == expected  # recorded in config.json


def test_synthesis_macs_count_the_3x3_convolutions():
    from styleforge.training.performance import synthesis_macs

    # res 8, 4 channels everywhere: b4 conv1 (16 px) + b8 conv0 and conv1 (64 px each), 9*4*4 per pixel.
    assert synthesis_macs(8, cbase=32, cmax=4, batch=2) == 2 * 9 * 16 * (16 + 64 + 64)


def test_precision_stays_fp32_with_cuda(monkeypatch):
    from styleforge.training import performance

    monkeypatch.setattr(performance, "cpu_has_amx", lambda: True)
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    assert resolve(TrainConfig(data="x", cfg="cpu"), 32, 1).precision == "fp32"


def test_help_lists_every_registered_component_with_its_description():
    from styleforge.tools.train_cmd import registry_choices

    parser = argparse.ArgumentParser()
    train_cmd.add_arguments(parser)
    text = "".join(parser.format_help().split())  # argparse wraps lines, also at hyphens
    for registry in registry_choices().values():
        for name in registry.names():
            described = f"{name}: {registry.description(name).rstrip('.')}" if registry.description(name) else name
            assert "".join(described.split()) in text, described
