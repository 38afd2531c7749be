"""FSMR and EqGAN-SA in the training loop: every combination of the flags with every augmentation trains,
the command line has the options, and a trained EqGAN-SA generator loads and takes heatmaps."""

import argparse
import itertools

import pytest
import torch

from styleforge.errors import UserError
from styleforge.networks.heatmaps import sample_heatmap_spec
from styleforge.networks.persistence import load_network
from styleforge.tools import train_cmd
from styleforge.training import checkpoint as ckpt_io
from styleforge.training.loop import Trainer

pytest.importorskip("sklearn")

TINY = dict(cfg="cpu", cbase=128, cmax=16, z_dim=8, w_dim=8, map_layers=1, batch=4, mbstd_group=4, workers=0, threads=1,
            tick_kimg=0.004, snap=1, r1_interval=2, pl_interval=2, grid_seeds=4, kimg=0.004)


@pytest.mark.parametrize("fsmr, sel, align, aug", list(itertools.product(
    [False, True], [False, True], [False, True], ["none", "ada", "diffaug"])))
def test_every_combination_trains(digits, tmp_path, fsmr, sel, align, aug, train_recorded):
    options = {**TINY, "data": digits(16, 16), "outdir": str(tmp_path), "aug": aug, "sel": sel,
               "align_weight": float(align)}
    if align and not sel:  # the alignment needs the heatmaps of G's spatial encoding layers
        with pytest.raises(UserError, match="--align-weight.*spatial encoding layers"):
            Trainer(options, quiet=True)
        return
    if fsmr:
        options.update(fsmr_weight=0.05, fsmr_fakes=sel)  # fakes too in half the runs
    if aug == "ada":
        options["aug_p"] = 0.5
    trainer, _, record = train_recorded(options)
    losses = record[0]  # step 0 runs every phase (main and regularization)
    assert {"Loss/G/loss", "Loss/D/loss", "Loss/r1_penalty", "Loss/pl_penalty"} <= set(losses)
    assert ("Loss/fsmr_penalty/real" in losses) == fsmr and ("Loss/fsmr_penalty/fake" in losses) == (fsmr and sel)
    assert ("Loss/G/align" in losses) == align
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    assert (trainer.G.synthesis.heatmap_encoder is not None) == sel


def test_fsmr_draws_a_fresh_permutation_and_alpha_at_every_step(digits, tmp_path, monkeypatch, train_recorded):
    from styleforge.networks.fsm import FeatureMixing

    draws = []
    original = FeatureMixing.draw.__func__

    def recorded(cls, batch_size, device=None):
        draws.append(original(cls, batch_size, device))
        return draws[-1]

    monkeypatch.setattr(FeatureMixing, "draw", classmethod(recorded))
    train_recorded({**TINY, "data": digits(16, 16), "outdir": str(tmp_path), "batch": 8, "kimg": 0.024,
                    "fsmr_weight": 0.05})
    assert len(draws) == 3  # one per D step (reals only)
    assert len({tuple(d.perm.tolist()) for d in draws}) == 3 and len({float(d.alpha) for d in draws}) == 3


def test_trained_eqgan_generator_loads_from_the_checkpoint_and_takes_centres(digits, tmp_path, train_recorded):
    _, run_dir, _ = train_recorded({**TINY, "data": digits(16, 16), "outdir": str(tmp_path), "align_weight": 1.0})
    G = load_network(ckpt_io.list_checkpoints(run_dir)[-1])
    z, spec = torch.randn(2, G.z_dim), sample_heatmap_spec(2)
    img = G(z, None, noise_mode="const", centres=spec)
    assert img.shape == (2, 1, 16, 16)
    assert torch.equal(img, G(z, None, noise_mode="const", heatmap=spec.render(16)))
    assert not torch.equal(img, G(z, None, noise_mode="const", centres=spec.moved((0.5, 0.0))))


def test_command_line_options(digits, tmp_path):
    parser = argparse.ArgumentParser()
    train_cmd.add_arguments(parser)
    args = parser.parse_args(["--data", digits(16, 16), "--fsmr-weight", "0.05", "--fsmr-fakes", "--align-weight", "1"])
    options = train_cmd.user_options(args)
    assert options == {"data": digits(16, 16), "fsmr_weight": 0.05, "fsmr_fakes": True, "align_weight": 1.0}
    trainer = Trainer({**TINY, **options, "outdir": str(tmp_path)}, quiet=True)
    by_type = {type(reg).__name__: reg for reg in trainer.loss.regularizers}
    assert by_type["FSMR"].weight == 0.05 and by_type["FSMR"].on_fakes and by_type["Alignment"].weight == 1
    assert trainer.cfg.sel  # the alignment switches G's spatial encoding layers on
    assert trainer.G.init_kwargs["synthesis_kwargs"]["use_sel"] is True
    with pytest.raises(UserError, match="--fsmr-fakes"):
        Trainer({**TINY, "data": digits(16, 16), "outdir": str(tmp_path), "fsmr_fakes": True}, quiet=True)
