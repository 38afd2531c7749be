"""The family's recipes as presets (--cfg): each resolves to its paper's settings (shared/methods.md and the
official configurations cited in config.py), trains, and --dry-run prints it without building anything."""

import json

import pytest
import torch

from styleforge.cli import main
from styleforge.training.config import PRESETS, TrainConfig, resolve
from styleforge.training.growing import ProgressiveGrowing
from styleforge.training.loop import Trainer
from styleforge.training.resolve import resolve_run

TINY = dict(cbase=128, cmax=16, z_dim=8, w_dim=8, map_layers=1, batch=8, mbstd_group=4, workers=0,
            threads=1, grid_seeds=4, kimg=0.016, tick_kimg=0.008, grow_batch={}, grow_stable_kimg=0.008,
            grow_fade_kimg=0.008)

EXPECTED = {
    "stylegan1": dict(g="stylegan1", d="stylegan1", loss="stylegan2", gamma=10, r1_interval=0, pl_interval=0,
                      pl_weight=0, style_mixing=0.9, map_layers=8, ema_kimg=10, glr=0.001, dlr=0.001, grow=True,
                      grow_init_res=8, grow_batch={"4": 512, "8": 256, "16": 128, "32": 64}, grow_lr={}, trunc_psi=0.7,
                      trunc_cutoff=8, cbase=16384),
    "progan": dict(g="progan", d="progan", loss="wgangp", gp_weight=10, drift_weight=0.001, gamma=0, r1_interval=0,
                   pl_weight=0, style_mixing=0, glr=0.001, grow=True, grow_init_res=4, kimg=12000, trunc_psi=1),
    "msg-stylegan": dict(g="msg-stylegan1", d="msg", loss="msg", gamma=10, r1_interval=0, pl_weight=0,
                         style_mixing=0, glr=0.003, dlr=0.003, batch=16, ema_kimg=10, map_layers=8, grow=False,
                         trunc_psi=0.7, trunc_cutoff=8),
    "lowshot": dict(kimg=300, batch=8, mbstd_group=4, cbase=32768, glr=0.002, gamma=10, ema_kimg=10, ema_rampup=0,
                    map_layers=2, aug="diffaug", pl_weight=2, style_mixing=0.9),
}


@pytest.mark.parametrize("preset", sorted(EXPECTED))
def test_family_presets_resolve_to_the_papers_settings(digits, preset):
    cfg = resolve_run({"data": digits(32), "cfg": preset}).cfg
    for name, value in EXPECTED[preset].items():
        assert getattr(cfg, name) == value, name


def test_official_presets_use_float16_on_the_top_4_resolutions_on_cuda_only(digits, monkeypatch):
    for preset in ("stylegan2", "paper256", "lowshot"):
        cfg = resolve_run({"data": digits(32), "cfg": preset}).cfg
        assert (cfg.fp16_res, cfg.conv_clamp) == (None, None)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    for preset in ("stylegan2", "paper256", "paper512", "paper1024", "auto", "cifar", "lowshot"):
        cfg = resolve_run({"data": digits(32), "cfg": preset}).cfg
        assert (cfg.fp16_res, cfg.conv_clamp) == (4, 256), preset


def test_growing_learning_rates_per_resolution():
    cfg = resolve(TrainConfig(data="x", cfg="progan"), 256, 1)  # the preset's table at a large resolution
    assert cfg.grow_lr == {"128": 0.0015, "256": 0.002}
    nets = [torch.nn.Module() for _ in range(3)]
    for net in nets:
        net.register_buffer("lod", torch.zeros([]))
    schedule = ProgressiveGrowing(nets, 256, init_res=4, stable_kimg=1, fade_kimg=1, batch=32,
                                  lr_per_res={int(r): lr for r, lr in cfg.grow_lr.items()})
    by_res = {}
    for nimg in range(0, 14001, 500):
        plan = schedule.before_step(nimg)
        by_res[schedule.resolution_at(schedule.lod)] = plan.lr
    assert by_res == {4: None, 8: None, 16: None, 32: None, 64: None, 128: 0.0015, 256: 0.002}


def test_the_loop_applies_the_learning_rate_of_the_resolution_being_trained(digits, tmp_path):
    seen = {}
    trainer = Trainer({**TINY, "data": digits(16), "outdir": str(tmp_path), "cfg": "progan", "grow_lr": {"16": 0.01},
                       "grow_init_res": 8, "kimg": 0.032}, quiet=True,
                      step_callback=lambda step, losses: seen.setdefault(trainer.schedule.resolution_at(
                          trainer.schedule.lod), {g["lr"] for g in trainer.opt_G.param_groups}))
    trainer.run()
    assert seen == {8: {0.001}, 16: {0.01}}


@pytest.mark.parametrize("preset", [p for p in PRESETS if p != "auto"])
def test_every_preset_trains(digits, tmp_path, preset):
    trainer = Trainer({**TINY, "data": digits(16), "outdir": str(tmp_path), "cfg": preset}, quiet=True)
    run_dir = trainer.run()
    stats = [json.loads(line) for line in (run_dir / "stats.jsonl").read_text().splitlines()]
    assert stats[-1]["Progress/kimg"]["mean"] >= 0.016
    assert all(torch.isfinite(p).all() for p in trainer.G_ema.parameters())


def test_dry_run_prints_the_preset_and_builds_nothing(digits, tmp_path, capsys, monkeypatch):
    import styleforge.training.loop as loop

    monkeypatch.setattr(loop.Trainer, "__init__", lambda *a, **k: pytest.fail("--dry-run built a Trainer"))
    assert main(["train", "--data", digits(32), "--cfg", "msg-stylegan", "--outdir", str(tmp_path), "--dry-run"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (printed["g"], printed["d"], printed["loss"], printed["glr"], printed["batch"]) == (
        "msg-stylegan1", "msg", "msg", 0.003, 16)
    assert not list(tmp_path.iterdir())  # no run directory either
