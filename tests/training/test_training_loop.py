"""The training loop on tiny networks and the built-in digits: exact resume, DDP equivalence, divergence
and dead-rank handling."""

import json
import multiprocessing
import os
import socket
from pathlib import Path

import pytest
import torch

from styleforge.errors import UserError
from styleforge.training import checkpoint as ckpt_io
from styleforge.training.loop import Trainer, TrainingDiverged, train

pytest.importorskip("sklearn")

TINY = dict(
    cfg="cpu", cbase=256, cmax=32, z_dim=32, w_dim=32, map_layers=2, batch=8, mbstd_group=4, workers=0, threads=1,
    tick_kimg=0.016, snap=1, keep=10, r1_interval=2, pl_interval=2, grid_seeds=4, cond=True, glr=0.002,
)
STEP_KIMG = 0.008  # one step of batch 8


def test_run_writes_config_stats_grids_plot_and_checkpoints(digits, tmp_path, train_recorded):
    trainer, run_dir, record = train_recorded({**TINY, "data": digits(16), "outdir": str(tmp_path),
                                               "kimg": 4 * STEP_KIMG})
    assert len(record) == 4 and set(record[0]) >= {"Loss/G/loss", "Loss/D/loss", "Loss/scores/real"}
    assert "Loss/r1_penalty" in record[0] and "Loss/pl_penalty" in record[0] and "Loss/r1_penalty" not in record[1]
    assert json.loads((run_dir / "config.json").read_text())["batch"] == 8
    stats = [json.loads(line) for line in (run_dir / "stats.jsonl").read_text().splitlines()]
    assert len(stats) == 2 and stats[-1]["Progress/kimg"]["mean"] == pytest.approx(0.032)
    assert stats[0]["Timing/sec_per_kimg"]["mean"] > 0 and stats[0]["Loss/G/loss"]["num"] == 16
    for name in ("losses.png", "reals.png", "fakes000000.png", "log.txt"):
        assert (run_dir / name).exists(), name
    assert len(ckpt_io.list_checkpoints(run_dir)) == 2


def test_resume_repeats_the_uninterrupted_run_step_for_step(digits, tmp_path, train_recorded):
    options = {**TINY, "data": digits(16), "aug": "ada", "ada_interval": 1, "ada_kimg": 1}
    full, _, full_losses = train_recorded({**options, "outdir": str(tmp_path / "a"), "kimg": 6 * STEP_KIMG})
    _, first_dir, first_losses = train_recorded({**options, "outdir": str(tmp_path / "b"), "kimg": 2 * STEP_KIMG})
    resumed, resumed_dir, resumed_losses = train_recorded({"resume": str(first_dir), "kimg": 6 * STEP_KIMG,
                                                "outdir": str(tmp_path / "b")})
    assert resumed_dir == first_dir
    assert sorted(resumed_losses) == [2, 3, 4, 5]
    for step in range(6):
        got = first_losses.get(step) or resumed_losses[step]
        assert got == full_losses[step], f"step {step}"
    for a, b in zip(full.G_ema.state_dict().values(), resumed.G_ema.state_dict().values()):
        assert torch.equal(a, b)
    assert resumed.augment.p == full.augment.p > 0
    assert torch.equal(resumed.loss.state_dict()["pl_mean"], full.loss.state_dict()["pl_mean"])


def test_resume_latest_skips_a_damaged_checkpoint(digits, tmp_path, train_recorded):
    _, run_dir, _ = train_recorded({**TINY, "data": digits(16), "outdir": str(tmp_path), "kimg": 4 * STEP_KIMG})
    newest = ckpt_io.list_checkpoints(run_dir)[-1]
    newest.write_bytes(newest.read_bytes()[:100])
    resumed = Trainer({"resume": "latest", "outdir": str(tmp_path)}, quiet=True)
    assert resumed.cur_nimg == 2 * 8 and "skipping damaged checkpoint" in resumed.log.lines[0]


def test_resume_refuses_a_conflicting_option(digits, tmp_path, train_recorded):
    _, run_dir, _ = train_recorded({**TINY, "data": digits(16), "outdir": str(tmp_path), "kimg": 2 * STEP_KIMG})
    with pytest.raises(UserError, match="--gamma=5.0 conflicts with the resumed run"):
        Trainer({"resume": str(run_dir), "gamma": 5.0}, quiet=True)


@pytest.mark.parametrize("poison_step, message, kept", [
    (2, r"Loss/.* is nan in phase Gmain at step 3", ["ckpt-0000000016.safetensors"]),
    (1, r"not saving .*ckpt-0000000016.*D\..* non-finite", []),  # broken weights at a snapshot
])
def test_non_finite_values_stop_the_run_and_keep_good_checkpoints(digits, tmp_path, poison_step, message, kept):
    def poison(step, losses):
        if step == poison_step:
            with torch.no_grad():
                next(trainer.D.parameters()).fill_(float("nan"))

    trainer = Trainer({**TINY, "data": digits(16), "outdir": str(tmp_path), "kimg": 8 * STEP_KIMG},
                      step_callback=poison, quiet=True)
    with pytest.raises(TrainingDiverged, match=message):
        trainer.run()
    assert [p.name for p in ckpt_io.list_checkpoints(trainer.run_dir)] == kept
    for path in ckpt_io.list_checkpoints(trainer.run_dir):
        assert ckpt_io.load_checkpoint(path).progress["cur_nimg"] == 16


class _Features(torch.nn.Module):
    """A tiny fixed feature network standing in for Inception (uint8 [N, C, H, W] -> [N, 8])."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 8, 3, stride=2)

    def forward(self, img):
        return self.conv(img.float() / 127.5 - 1).mean(dim=[2, 3])


def test_metrics_at_snapshots_are_logged_and_pick_the_best_checkpoint(digits, tmp_path, train_recorded):
    detector = tmp_path / "features.pt"
    torch.jit.script(_Features()).save(str(detector))
    trainer, run_dir, _ = train_recorded({**TINY, "data": digits(16), "outdir": str(tmp_path), "kimg": 6 * STEP_KIMG,
                                          "keep": 1,
                               "metrics": ["fid1k_full"], "metrics_detector": str(detector), "metrics_num_gen": 16})
    lines = [json.loads(line) for line in (run_dir / "metric-fid1k_full.jsonl").read_text().splitlines()]
    assert [line["snapshot"] for line in lines] == [f"checkpoints/ckpt-{n:010d}.safetensors" for n in (16, 32, 48)]
    fids = [line["results"]["fid1k_full"] for line in lines]
    best = json.loads((run_dir / "checkpoints" / "best.json").read_text())
    assert best["value"] == min(fids) and best["path"] == Path(lines[fids.index(min(fids))]["snapshot"]).name
    kept = {p.name for p in ckpt_io.list_checkpoints(run_dir)}
    assert kept == {best["path"], "ckpt-0000000048.safetensors"}  # the last one plus the best


def test_unknown_metric_is_refused_before_training(digits, tmp_path):
    with pytest.raises(UserError, match="unknown metric 'fid'"):
        Trainer({**TINY, "data": digits(16), "outdir": str(tmp_path), "metrics": ["fid"]}, quiet=True)


# --- distributed -----------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, world, port, options, out, die_at_step):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)

    def callback(step, losses):
        if rank == die_at_step[0] and step == die_at_step[1]:
            os._exit(3)

    result = {}
    try:
        trainer_holder = {}

        def keep(step, losses):
            callback(step, losses)
            trainer_holder.setdefault("losses", {})[step] = losses

        from styleforge.training import distributed as dist_utils

        env = dist_utils.init_from_env(timeout_s=60)
        trainer = Trainer(options, env=env, step_callback=keep, quiet=True)
        trainer.run()
        torch.save({k: v.clone() for k, v in trainer.G.state_dict().items()}, Path(out) / f"G_rank{rank}.pt")
        result = {"ok": True, "losses": trainer_holder.get("losses")}
    except Exception as e:  # reported to the test through the result file
        result = {"ok": False, "error": f"{type(e).__name__}: {e}"}
    finally:
        (Path(out) / f"rank{rank}.json").write_text(json.dumps(result))
        try:
            dist_utils.shutdown()
        except Exception:
            pass


def _launch(world, options, out, die_at_step=(-1, -1), timeout=240):
    ctx = multiprocessing.get_context("spawn")
    port = _free_port()
    procs = [ctx.Process(target=_worker, args=(r, world, port, options, str(out), die_at_step)) for r in range(world)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout)
        assert not p.is_alive(), "a rank hung"
    return [json.loads((Path(out) / f"rank{r}.json").read_text()) if (Path(out) / f"rank{r}.json").exists() else None
            for r in range(world)]


@pytest.mark.slow
def test_two_gloo_ranks_match_a_single_process_run(digits, tmp_path, train_recorded):
    options = {**TINY, "data": digits(16), "kimg": 3 * STEP_KIMG, "batch_gpu": 4, "snap": 100}
    results = _launch(2, {**options, "outdir": str(tmp_path / "ddp")}, tmp_path)
    assert all(r["ok"] for r in results), results
    single, _, single_losses = train_recorded({**options, "outdir": str(tmp_path / "single")})
    g0 = torch.load(tmp_path / "G_rank0.pt")
    g1 = torch.load(tmp_path / "G_rank1.pt")
    for name, value in single.G.state_dict().items():
        assert torch.equal(g0[name], g1[name]), f"ranks differ in {name}"
        torch.testing.assert_close(g0[name], value, rtol=1e-4, atol=1e-5, msg=f"DDP vs single process: {name}")


@pytest.mark.slow
def test_a_dead_rank_makes_the_other_exit_with_a_message(digits, tmp_path):
    options = {**TINY, "data": digits(16), "kimg": 50 * STEP_KIMG, "batch_gpu": 4, "snap": 100,
               "outdir": str(tmp_path / "ddp")}
    results = _launch(2, options, tmp_path, die_at_step=(1, 2))
    assert results[1] is None  # rank 1 died without a word
    assert results[0]["ok"] is False and "PeerFailure" in results[0]["error"], results[0]
    assert "another process probably died" in results[0]["error"]


def test_train_function_runs_single_process(digits, tmp_path):
    run_dir = train({**TINY, "data": digits(16), "outdir": str(tmp_path), "kimg": STEP_KIMG, "cond": False}, quiet=True)
    assert (run_dir / "stats.jsonl").exists()


def test_cli_dry_run_prints_the_resolved_config(digits, tmp_path, capsys):
    from styleforge.cli import main

    assert main(["train", "--data", digits(16), "--cfg", "paper256", "--gamma", "3", "--dry-run",
                 "--outdir", str(tmp_path)]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert cfg["gamma"] == 3 and cfg["batch"] == 64 and cfg["cbase"] == 16384 and cfg["ema_kimg"] == 20
    assert not list(tmp_path.iterdir())  # a dry run writes nothing


def test_cli_reports_bad_options_without_a_traceback(digits, capsys):
    from styleforge.cli import main

    assert main(["train", "--data", digits(16), "--cfg", "cpu", "--batch", "30", "--batch-gpu", "8", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "error: --batch-gpu 8 must divide the per-process batch 30" in err and "Traceback" not in err
    assert main(["train", "--data", "/nonexistent/data.zip", "--dry-run"]) == 2
    assert "/nonexistent/data.zip" in capsys.readouterr().err


def test_progress_bar_counts_seconds_of_a_time_budget(digits, tmp_path, capfd):
    """With a time budget the bar's total is the budget in seconds, not the (never reached) kimg in images."""
    Trainer({**TINY, "data": digits(16), "outdir": str(tmp_path / "t"), "kimg": 2 * STEP_KIMG, "time_budget": 777},
            quiet=False).run()
    assert "/777 s [" in capfd.readouterr().err
    Trainer({**TINY, "data": digits(16), "outdir": str(tmp_path / "k"), "kimg": 2 * STEP_KIMG}, quiet=False).run()
    assert "16.0/16.0 [" in capfd.readouterr().err


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_precision_bf16_autocasts_the_training_step(digits, tmp_path, precision):
    """bf16 autocast reaches G and D, through R1, path length and ADA's resampling (in float32)."""
    trainer = Trainer({**TINY, "data": digits(16), "outdir": str(tmp_path), "kimg": 2 * STEP_KIMG,
                       "precision": precision,
                       "aug": "ada", "aug_p": 0.5}, quiet=True)
    dtypes = set()
    for net in (trainer.G.synthesis, trainer.D):
        net.b16.conv1.register_forward_hook(lambda module, inputs, output: dtypes.add(output.dtype))
    trainer.run()
    assert dtypes == {torch.bfloat16 if precision == "bf16" else torch.float32}
    assert all(torch.isfinite(p).all() for p in trainer.G.parameters())
