"""StyleGAN v1, ProGAN (progressive growing) and MSG-StyleGAN through the Trainer on the built-in digits; the lod
schedule; exact resume in the middle of a fade-in."""

import pytest
import torch

from styleforge.errors import UserError
from styleforge.networks.persistence import load_network
from styleforge.networks.progressive import set_lod
from styleforge.training import checkpoint as ckpt_io
from styleforge.training.growing import ProgressiveGrowing, lod_at
from styleforge.training.loop import Trainer

pytest.importorskip("sklearn")

TINY = dict(cfg="cpu", cbase=128, cmax=16, z_dim=16, w_dim=16, map_layers=2, batch=8, mbstd_group=4, workers=0,
            threads=1, tick_kimg=0.016, snap=100, keep=10, grid_seeds=4, glr=0.002)
RECIPES = {  # the official recipes, see docs/family.md
    "stylegan1": dict(g="stylegan1", d="stylegan1", r1_interval=0, gamma=10, pl_weight=0),
    "msg-stylegan2": dict(g="msg-stylegan2", d="msg", loss="msg", r1_interval=0, gamma=10, pl_weight=0,
                          style_mixing=0),
    "progan": dict(g="progan", d="progan", loss="wgangp", r1_interval=0, pl_weight=0, grow=True,
                   grow_stable_kimg=0.008, grow_fade_kimg=0.016, grow_batch={"4": 16}),
}


def train(options, **kwargs):
    """Runs the Trainer; returns it, its run dir and per step (losses, lod, batch)."""
    record = {}

    def callback(step, losses):
        record[step] = (losses, getattr(trainer.schedule, "lod", None), trainer.batch)

    trainer = Trainer(options, step_callback=callback, quiet=True, **kwargs)
    return trainer, trainer.run(), record


def test_lod_schedule_values_at_phase_boundaries():
    def lod(kimg, init_res=4, stable=600, fade=600):
        return lod_at(round(kimg * 1000), 256, init_res, stable, fade)

    expected = {0: 6, 600: 6, 900: 5.5, 1200: 5, 1800: 5, 2100: 4.5, 2400: 4, 7200: 0, 9000: 0}
    assert {kimg: lod(kimg) for kimg in expected} == expected
    assert lod(0, init_res=8) == 5 and lod(600, fade=0) == 5 and lod(3300, stable=0) == 0.5


def test_progressive_growing_sets_lod_batch_and_resets_when_a_fade_starts_or_ends():
    nets = [torch.nn.Module() for _ in range(3)]
    for net in nets:
        net.register_buffer("lod", torch.zeros([]))
    schedule = ProgressiveGrowing(nets, 16, stable_kimg=0.002, fade_kimg=0.004, batch=2, batch_per_res={4: 4})
    plans, lods = [], []
    for nimg in range(0, 14, 2):
        plans.append(schedule.before_step(nimg))
        lods.append([float(net.lod) for net in nets])
    assert lods == [[lod] * 3 for lod in (2, 2, 1.5, 1, 1, 0.5, 0)]
    assert [p.batch for p in plans] == [4, 4, 2, 2, 2, 2, 2]  # 4x4 trains with 4, the rest with --batch
    assert [p.reset_optimizers for p in plans] == [False, False, True, True, False, True, True]
    assert schedule.state_dict() == {"prev_lod": 0.0}
    with pytest.raises(UserError, match="D cannot grow"):
        ProgressiveGrowing([nets[0], torch.nn.Linear(1, 1)], 16)


@pytest.mark.parametrize("name", ["stylegan1", "msg-stylegan2"])
def test_trains_on_digits(digits, tmp_path, name):
    trainer, run_dir, record = train({**TINY, **RECIPES[name], "data": digits(16), "outdir": str(tmp_path),
                                      "kimg": 0.024})
    G0 = trainer.G_ema  # the G_ema of the last checkpoint, loaded as a tool would
    assert len(record) == 3
    for losses, _, _ in record.values():
        assert {"Loss/G/loss", "Loss/D/loss", "Loss/r1_penalty"} <= set(losses)
        assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    loaded = load_network(ckpt_io.list_checkpoints(run_dir)[-1])
    assert type(loaded) is type(G0)
    z = torch.randn(2, 16)
    torch.testing.assert_close(loaded(z, None, noise_mode="const"), G0.eval()(z, None, noise_mode="const"))
    assert (run_dir / "fakes000000.png").exists()


def test_progan_grows_from_4_to_32_on_digits(digits, tmp_path):
    trainer, run_dir, record = train({**TINY, **RECIPES["progan"], "data": digits(32), "outdir": str(tmp_path),
                                      "kimg": 0.08})
    assert [lod for _, lod, _ in record.values()] == [3, 2.5, 2, 2, 1.5, 1, 1, 0.5, 0]
    assert [batch for _, _, batch in record.values()] == [16] + [8] * 8
    for losses, _, _ in record.values():
        assert {"Loss/G/loss", "Loss/D/loss", "Loss/gp_penalty"} <= set(losses)
        assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    assert float(trainer.G_ema.synthesis.lod) == 0 and float(trainer.D.lod) == 0
    assert trainer.cur_nimg == 80 and (run_dir / "fakes000000.png").exists()


def test_resume_in_the_middle_of_a_fade_repeats_the_uninterrupted_run(digits, tmp_path):
    options = {**TINY, **RECIPES["progan"], "data": digits(16), "grow_fade_kimg": 0.024}
    full, _, full_record = train({**options, "outdir": str(tmp_path / "a"), "kimg": 0.072})
    _, first_dir, first_record = train({**options, "outdir": str(tmp_path / "b"), "kimg": 0.024})
    lods = [lod for _, lod, _ in full_record.values()]
    assert lods == pytest.approx([2, 5 / 3, 4 / 3, 1, 1, 2 / 3, 1 / 3, 0])
    assert sorted(first_record) == [0, 1]  # stopped after lod 5/3: the next step is in the same fade
    resumed, _, resumed_record = train({"resume": str(first_dir), "kimg": 0.072, "outdir": str(tmp_path / "b")})
    assert sorted(resumed_record) == [2, 3, 4, 5, 6, 7]
    for step, (losses, lod, batch) in full_record.items():
        assert (first_record.get(step) or resumed_record[step]) == (losses, lod, batch), f"step {step}"
    for a, b in zip(full.G_ema.state_dict().values(), resumed.G_ema.state_dict().values()):
        assert torch.equal(a, b)
    for a, b in zip(full.opt_D.state_dict()["state"].values(), resumed.opt_D.state_dict()["state"].values()):
        assert torch.equal(a["exp_avg"], b["exp_avg"])


def test_growing_refuses_networks_without_lod_and_bad_batches(digits, tmp_path):
    base = {**TINY, "data": digits(16), "outdir": str(tmp_path), "grow": True}
    with pytest.raises(UserError, match="cannot grow"):
        Trainer(base, quiet=True)
    with pytest.raises(UserError, match="--grow-batch: '64'"):
        Trainer({**base, **RECIPES["progan"], "grow_batch": {"64": 8}}, quiet=True)
    with pytest.raises(UserError, match="--mbstd-group 4 must divide"):
        Trainer({**base, **RECIPES["progan"], "grow_batch": {"8": 6}}, quiet=True)


def test_fade_state_reaches_g_ema_and_sample_grids(digits, tmp_path):
    trainer = Trainer({**TINY, **RECIPES["progan"], "data": digits(16), "outdir": str(tmp_path)}, quiet=True)
    trainer.schedule.before_step(16)  # 2 - 8/16: the 8x8 level fading in
    assert float(trainer.G_ema.synthesis.lod) == float(trainer.D.lod) == 1.5
    set_lod(trainer.G_ema, 2.0)
    img = trainer.G_ema(torch.randn(2, 16), None)
    assert torch.equal(img[:, :, ::4, ::4].repeat_interleave(4, 2).repeat_interleave(4, 3), img)  # 4x4, enlarged


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_every_recipe_trains_under_bf16_autocast(digits, tmp_path, name):
    """Their penalties (R1 over scales, gradient penalty) are summed in float32 under autocast."""
    _, _, record = train({**TINY, **RECIPES[name], "data": digits(16), "outdir": str(tmp_path), "kimg": 0.016,
                          "precision": "bf16"})
    for losses, _, _ in record.values():
        assert {"Loss/G/loss", "Loss/D/loss"} < set(losses)
        assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())
