"""Nothing a run wrote is lost or duplicated, and every bad option is one clear line before anything is built:
the run-folder claim under concurrency, resume cutting a run back to its checkpoint, config validation."""

import json
import math
import multiprocessing
from pathlib import Path

import pytest

from styleforge.cli import main
from styleforge.errors import UserError
from styleforge.training import checkpoint as ckpt_io
from styleforge.training.config import TrainConfig
from styleforge.training.resolve import resolve_run
from styleforge.training.run_dir import claim_run_dir


def _claim_many(outdir: str, count: int, queue) -> None:
    queue.put([str(claim_run_dir(Path(outdir), "race")) for _ in range(count)])


def test_runs_started_together_never_share_a_folder(tmp_path):
    for i in range(3000):  # a long scan widens the window between looking and creating
        (tmp_path / f"{i:05d}-old").mkdir()
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    workers = [ctx.Process(target=_claim_many, args=(str(tmp_path), 10, queue)) for _ in range(4)]
    for w in workers:
        w.start()
    claimed = [path for _ in workers for path in queue.get(timeout=60)]
    for w in workers:
        w.join()
    assert len(claimed) == len(set(claimed)) == 40
    assert all(Path(p).is_dir() and Path(p).name.startswith(tuple(f"{n:05d}" for n in range(3000, 3040)))
               for p in claimed)


def test_outdir_that_is_a_file_is_one_clear_error(tmp_path):
    (tmp_path / "taken").write_text("not a folder")
    with pytest.raises(UserError, match="taken: exists and is not a folder"):
        claim_run_dir(tmp_path / "taken", "x")


def test_resume_cuts_the_run_back_to_its_checkpoint(digits, tiny_options, tmp_path, train_recorded):
    options = {**tiny_options, "data": digits(16), "kimg": 0.024, "snap": 2, "keep": 5, "metrics": []}
    _, run_dir, _ = train_recorded(options)  # ticks at 4, 8, .., 24 images; checkpoints at 8, 16, 24
    (run_dir / "checkpoints" / "ckpt-0000000024.safetensors").unlink()  # as if killed after the tick at 20
    (run_dir / "checkpoints" / "ckpt-0000000024.safetensors.tmp").write_bytes(b"half a checkpoint")
    (run_dir / "metric-fake.jsonl").write_text("".join(
        json.dumps({"snapshot": f"checkpoints/ckpt-{n:010d}.safetensors"}) + "\n" for n in (8, 16, 24)))
    _, resumed_dir, _ = train_recorded({"resume": str(run_dir), "kimg": 0.024, "outdir": tiny_options["outdir"]})
    assert resumed_dir == run_dir
    kimg = [json.loads(line)["Progress/kimg"]["mean"] for line in (run_dir / "stats.jsonl").read_text().splitlines()]
    assert kimg == pytest.approx([0.004, 0.008, 0.012, 0.016, 0.020, 0.024])  # once each
    snapshots = [json.loads(line)["snapshot"] for line in (run_dir / "metric-fake.jsonl").read_text().splitlines()]
    assert snapshots == ["checkpoints/ckpt-0000000008.safetensors", "checkpoints/ckpt-0000000016.safetensors"]
    assert not list((run_dir / "checkpoints").glob("*.tmp"))
    log = (run_dir / "log.txt").read_text()
    assert "resumed from" in log and "ckpt-0000000016" in log


def test_a_run_resumes_from_another_working_directory(digits, tiny_options, tmp_path, monkeypatch, train_recorded):
    data = Path(digits(16))
    monkeypatch.chdir(data.parent)
    options = {**tiny_options, "data": data.name, "kimg": 0.008, "snap": 1}
    _, run_dir, _ = train_recorded(options)
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["data"] == str(data.resolve())
    monkeypatch.chdir(tmp_path)
    trainer, _, _ = train_recorded({"resume": str(run_dir), "kimg": 0.016, "outdir": tiny_options["outdir"]})
    assert trainer.cur_nimg == 16


BAD_OPTIONS = [
    ({"gamma": math.nan}, "--gamma must be a finite number"),
    ({"glr": math.inf}, "--glr must be a finite number"),
    ({"betas": (0.0, math.nan)}, "--betas must be a finite number"),
    ({"time_budget": 0.0}, "--time-budget must be positive"),
    ({"time_budget": -5.0}, "--time-budget must be positive"),
    ({"g_arch": "bogus"}, "--g stylegan2: architecture must be one of"),
    ({"d_arch": "bogus"}, "--d stylegan2: architecture must be one of"),
    ({"g_kwargs": {"evil": 1}}, "--g stylegan2 with --g-kwargs '{\"evil\": 1}': .*evil"),
    ({"d_kwargs": {"synthesis_kwargs": {}}}, "--d stylegan2 with --d-kwargs"),
    ({"g_kwargs": {"synthesis_kwargs": {"evil": 1}}}, "--g-kwargs .*evil"),
    ({"cbase": 0}, "--cbase must be positive"),
    ({"cmax": -1}, "--cmax must be positive"),
    ({"workers": -1}, "--workers must be >= 0"),
    ({"seed": -1}, "--seed must be >= 0"),
    ({"z_dim": 0}, "--z-dim must be positive"),
    ({"betas": (0.0, 1.5)}, "--betas must lie in"),
    ({"g": "bogus"}, "unknown generator 'bogus'"),
    ({"loss": "bogus"}, "unknown loss 'bogus'"),
    ({"aug": "bogus"}, "unknown augmentation 'bogus'"),
    ({"cfg": "bogus"}, "unknown preset --cfg 'bogus'"),
    ({"sel": True, "g": "progan", "d": "progan"}, "--sel: --g progan has no spatial encoding layers"),
]


@pytest.mark.parametrize("bad, message", BAD_OPTIONS, ids=[str(b) for b, _ in BAD_OPTIONS])
def test_bad_options_are_refused_before_anything_is_built(digits, tiny_options, bad, message):
    with pytest.raises(UserError, match=message):
        resolve_run({**tiny_options, "data": digits(16), **bad})


def test_the_train_command_prints_one_line_and_writes_nothing(digits, tmp_path, capsys):
    outdir = tmp_path / "runs"
    for argv in (["--gamma", "nan"], ["--g-kwargs", '{"evil": 1}'], ["--cbase", "0"], ["--workers", "-1"],
                 ["--seed", "-1"], ["--g-arch", "bogus"], ["--time-budget", "0"]):
        code = main(["train", "--data", digits(16), "--outdir", str(outdir), *argv])
        err = capsys.readouterr().err
        assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, (argv, err)
    assert not outdir.exists()


def test_checkpoint_configs_of_earlier_versions_still_read(digits, tiny_options, train_recorded):
    """Configs in checkpoints written before the regularizers became options of their own."""
    _, run_dir, _ = train_recorded({**tiny_options, "data": digits(16), "kimg": 0.004, "snap": 1, "align_weight": 1.0})
    old = dict(ckpt_io.load_checkpoint(ckpt_io.list_checkpoints(run_dir)[-1]).config)
    old["align_loss"] = old.pop("align_weight") > 0  # the field's earlier name and type
    old.update(loss="wgangp", loss_kwargs={"gp_lambda": 5.0, "drift": 0.01})
    del old["gp_weight"], old["drift_weight"], old["grow_lr"]
    cfg = TrainConfig.from_dict(old)
    assert (cfg.align_weight, cfg.gp_weight, cfg.drift_weight, cfg.loss_kwargs) == (1.0, 5.0, 0.01, {})
