"""Every subcommand, given bad options or bad files, answers with one line on stderr naming the option or file,
no traceback, a non-zero exit, and no file changed. Tracebacks are for bugs, and only under --debug."""

import builtins
import errno
import hashlib
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from file_damage import overwrite_tensor_bytes
from tools_networks import tiny_generator

from styleforge.cli import COMMANDS, DEBUG_VARIABLE, main
from styleforge.errors import UserError, error_message
from styleforge.images import save_image
from styleforge.networks.persistence import save_network

REPO = Path(__file__).resolve().parents[1]
MIX = ["--rows", "1", "--cols", "2", "--styles", "0-1"]
TINY_TRAIN = ["--cfg", "cpu", "--cbase", "256", "--cmax", "32", "--z-dim", "32", "--w-dim", "32", "--map-layers", "2",
              "--batch", "8", "--mbstd-group", "4", "--workers", "0", "--kimg", "0.008", "--tick-kimg", "0.008",
              "--grid-seeds", "4"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """The files the bad commands are given, in a folder of their own: {name: path}."""
    folder = tmp_path_factory.mktemp("inputs")
    from styleforge.data.build import build_dataset

    build_dataset("builtin:digits", folder / "digits.zip", resolution=16, max_images=16)
    save_network(tiny_generator(), folder / "G.safetensors")
    save_network(tiny_generator(), folder / "damaged.safetensors")
    overwrite_tensor_bytes(folder / "damaged.safetensors", "synthesis.")
    (folder / "garbage.safetensors").write_bytes(b"not a safetensors file")
    (folder / "notes.txt").write_text("a user's file")
    (folder / "user.zip").write_text("a user's file named .zip")
    (folder / "not-an-image.png").write_bytes(b"not a PNG")
    save_image(np.zeros([16, 16, 3], np.uint8), folder / "image.png")
    return {path.name: path for path in folder.iterdir()}


@pytest.fixture
def read_only(tmp_path, monkeypatch):
    """A folder that behaves as one on a read-only file system (a test cannot mount one, and root ignores
    permission bits): creating anything in it or opening a file in it for writing raises OSError(EROFS)."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    real_open, real_os_open, real_mkdir = builtins.open, os.open, os.mkdir

    def inside(path) -> bool:
        if isinstance(path, int):  # a file descriptor
            return False
        return os.path.abspath(os.fsdecode(path)).startswith(str(folder) + os.sep)

    def refuse(path):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fsdecode(path))

    def guarded_open(file, mode="r", *args, **kwargs):
        if inside(file) and any(flag in mode for flag in "wax+"):
            refuse(file)
        return real_open(file, mode, *args, **kwargs)

    def guarded_os_open(path, flags, *args, **kwargs):
        if inside(path) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            refuse(path)
        return real_os_open(path, flags, *args, **kwargs)

    def guarded_mkdir(path, *args, **kwargs):
        if inside(path):
            refuse(path)
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded_open)
    monkeypatch.setattr(io, "open", guarded_open)
    monkeypatch.setattr(os, "open", guarded_os_open)
    monkeypatch.setattr(os, "mkdir", guarded_mkdir)
    return folder


def tree(*folders: Path) -> dict[str, str]:
    """Every file and folder under `folders`, with a digest of each file's bytes."""
    state = {}
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            state[str(path)] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return state


# (command line with {placeholders}, what the one line must say). {in:NAME}: an input file; {new}: a path that
# does not exist; {ro}: a read-only folder.
CASES = [
    (["--bogus"], "required: COMMAND"),
    (["nothing"], "invalid choice: 'nothing'"),
    (["dataset", "--dest", "{new}/d.zip"], "the following arguments are required: --source"),
    (["dataset", "--source", "{new}", "--dest", "{new}/d.zip"], "{new}"),
    (["dataset", "--source", "builtin:digits", "--dest", "{new}/d.zip", "--resolution", "3"], "--resolution 3"),
    (["dataset", "--source", "builtin:digits", "--dest", "{new}/d.zip", "--resolution", "x"], "invalid int value"),
    (["dataset", "--source", "builtin:digits", "--dest", "{in:user.zip}"], "already exists; pass --overwrite"),
    (["dataset", "--source", "builtin:digits", "--dest", "{in:notes.txt}"], "is an existing file"),
    (["dataset", "--source", "builtin:digits", "--dest", "{in:notes.txt}/d.zip"], "is a file, not a folder"),
    (["dataset", "--source", "builtin:digits", "--dest", "{ro}/d.zip"], "{ro}/d.zip: the file system is read-only"),
    (["dataset", "--source", "{in:garbage.safetensors}", "--dest", "{new}/d.zip"], "garbage.safetensors"),
    (["train", "--outdir", "{new}"], "--data is required"),
    (["train", "--data", "{new}.zip", "--outdir", "{new}"], ".zip"),
    (["train", "--data", "{in:notes.txt}", "--outdir", "{new}"], "notes.txt: not a data set"),
    (["train", "--resume", "{in:garbage.safetensors}", "--outdir", "{new}"], "not a readable safetensors file"),
    (["train", "--resume", "{in:G.safetensors}", "--outdir", "{new}"], "a network file, not a training checkpoint"),
    (["train", "--data", "{in:digits.zip}", "--outdir", "{in:notes.txt}", *TINY_TRAIN], "notes.txt"),
    (["train", "--data", "{in:digits.zip}", "--outdir", "{ro}/runs", *TINY_TRAIN], "the file system is read-only"),
    (["train", "--data", "{in:digits.zip}", "--outdir", "{new}", "--gamma", "x"], "invalid float value: 'x'"),
    (["train", "--data", "{in:digits.zip}", "--outdir", "{new}", *TINY_TRAIN, "--g-arch", "bogus"], "bogus"),
    (["train", "--data", "{in:digits.zip}", "--outdir", "{new}", *TINY_TRAIN, "--g-kwargs", '{"evil": 1}'],
     "evil"),
    (["train", "--data", "{in:digits.zip}", "--outdir", "{new}", *TINY_TRAIN, "--cbase", "0"], "--cbase"),
    (["train", "--data", "{in:digits.zip}", "--outdir", "{new}", *TINY_TRAIN, "--workers", "-1"], "--workers"),
    (["train", "--data", "{in:digits.zip}", "--outdir", "{new}", *TINY_TRAIN, "--seed", "-1"], "--seed"),
    (["train", "--data", "{in:digits.zip}", "--outdir", "{new}", *TINY_TRAIN, "--gamma", "nan"], "--gamma"),
    (["train", "--data", "{in:digits.zip}", "--outdir", "{new}", *TINY_TRAIN, "--time-budget", "0"], "--time-budget"),
    (["demo", "--outdir", "{in:notes.txt}"], "notes.txt: is a file"),
    (["demo", "--outdir", "{new}", "--minutes", "0"], "--minutes 0"),
    (["demo", "--outdir", "{new}", "--resolution", "12"], "--resolution 12"),
    (["demo", "--outdir", "{new}", "--seed", "-1"], "--seed -1"),
    (["metrics", "--network", "{new}.safetensors"], "no such file"),
    (["metrics", "--network", "{in:damaged.safetensors}"], "checksum mismatch"),
    (["metrics", "--network", "{in:G.safetensors}", "--metrics", "bogus"], "unknown metric(s) bogus"),
    (["metrics", "--network", "{in:G.safetensors}", "--num-gen", "1"], "--num-gen"),
    (["generate", "--network", "{new}.safetensors", "--seeds", "0", "--outdir", "{new}"], "no such file"),
    (["generate", "--network", "{in:garbage.safetensors}", "--seeds", "0", "--outdir", "{new}"],
     "not a readable safetensors file"),
    (["generate", "--network", "{in:damaged.safetensors}", "--seeds", "0", "--outdir", "{new}"], "checksum mismatch"),
    (["generate", "--network", "{in:G.safetensors}", "--seeds", "x", "--outdir", "{new}"], "--seeds"),
    (["generate", "--network", "{in:G.safetensors}", "--outdir", "{new}"], "--seeds"),
    (["generate", "--network", "{in:G.safetensors}", "--seeds", "0-3", "--grid", "3by3", "--outdir", "{new}"],
     "3by3"),
    (["generate", "--network", "{in:G.safetensors}", "--seeds", "0", "--class", "3", "--outdir", "{new}"], "class"),
    (["generate", "--network", "{in:G.safetensors}", "--seeds", "0", "--outdir", "{in:notes.txt}"],
     "notes.txt: is a file"),
    (["generate", "--network", "{in:G.safetensors}", "--seeds", "0", "--outdir", "{ro}/out"],
     "{ro}/out: the file system is read-only"),
    (["generate", "--network", "{in:G.safetensors}", "--seeds", "0", "--outdir", "{ro}"],
     "{ro}/seed0000.png: the file system is read-only"),
    (["mix", "--network", "{in:G.safetensors}", "--rows", "x", "--cols", "1", "--out", "{new}.png"], "--rows"),
    (["mix", "--network", "{in:damaged.safetensors}", *MIX, "--out", "{new}.png"],
     "checksum mismatch"),
    (["mix", "--network", "{in:G.safetensors}", *MIX, "--out", "{in:notes.txt}/m.png"],
     "notes.txt: is a file"),
    (["mix", "--network", "{in:G.safetensors}", *MIX, "--out", "{ro}/m.png"],
     "{ro}/m.png: the file system is read-only"),
    (["video", "--network", "{in:G.safetensors}", "--seeds", "1,2", "--fps", "0", "--out", "{new}.mp4"],
     "makes no frames"),
    (["video", "--network", "{in:damaged.safetensors}", "--seeds", "1,2", "--out", "{new}.mp4"], "checksum mismatch"),
    (["video", "--network", "{in:G.safetensors}", "--seeds", "1,2", "--seconds", "0.1", "--out",
      "{in:notes.txt}/v.mp4"], "notes.txt: is a file"),
    (["project", "--network", "{in:G.safetensors}", "--target", "{new}.png", "--outdir", "{new}"], ".png"),
    (["project", "--network", "{in:G.safetensors}", "--target", "{in:not-an-image.png}", "--outdir", "{new}"],
     "not-an-image.png"),
    (["project", "--network", "{in:G.safetensors}", "--target", "{in:image.png}", "--steps", "0", "--outdir",
      "{new}"], "--steps 0"),
    (["project", "--network", "{in:damaged.safetensors}", "--target", "{in:image.png}", "--outdir", "{new}"],
     "checksum mismatch"),
    (["import", "--pkl", "{new}.pkl", "--out", "{new}.safetensors"], ".pkl"),
    (["import", "--pkl", "{in:notes.txt}", "--out", "{new}.safetensors"], "notes.txt"),
    (["export", "--network", "{in:G.safetensors}", "--format", "bogus", "--out", "{new}"], "invalid choice"),
    (["export", "--network", "{in:damaged.safetensors}", "--out", "{new}.onnx"], "checksum mismatch"),
    (["export", "--network", "{in:G.safetensors}", "--format", "torchscript", "--out", "{in:notes.txt}/g.pt"],
     "notes.txt"),
    (["studio", "--network", "{in:G.safetensors}", "--port", "70000"], "--port 70000"),
    (["studio", "--network", "{in:G.safetensors}", "--outdir", "{in:notes.txt}", "--port", "0", "--host",
      "256.0.0.1"], "--outdir"),
    (["edit", "--network", "{in:G.safetensors}", "--seed", "1", "--outdir", "{new}"], "--move"),
    (["edit", "--network", "{in:G.safetensors}", "--seed", "1", "--move", "x", "--outdir", "{new}"], "x"),
    (["edit", "--network", "{in:G.safetensors}", "--seed", "1", "--move", "0:0.1,0", "--outdir", "{new}"],
     "EqGAN-SA"),
    (["edit", "--network", "{in:damaged.safetensors}", "--seed", "1", "--move", "0:0.1,0", "--outdir", "{new}"],
     "checksum mismatch"),
]


def fill(text: str, inputs: dict[str, Path], new: Path, read_only_folder: Path | None) -> str:
    for name, path in inputs.items():
        text = text.replace(f"{{in:{name}}}", str(path))
    text = text.replace("{new}", str(new))
    return text.replace("{ro}", str(read_only_folder)) if read_only_folder else text


def case_id(case) -> str:
    argv = list((case.values if hasattr(case, "values") else case)[0])
    if "--cfg" in argv:  # leave the tiny-run options out of the name
        del argv[argv.index("--cfg"):argv.index("--cfg") + len(TINY_TRAIN)]
    return " ".join(a.replace("{in:", "{") for a in argv)


def test_the_cases_walk_every_subcommand():
    walked = {(case.values if hasattr(case, "values") else case)[0][0] for case in CASES}
    assert set(COMMANDS) <= walked


@pytest.mark.parametrize("argv, message", CASES, ids=[case_id(c) for c in CASES])
def test_a_bad_command_is_one_line_with_no_traceback_and_changes_no_file(argv, message, inputs, tmp_path, capsys,
                                                                        request):
    read_only_folder = request.getfixturevalue("read_only") if any("{ro}" in a for a in argv) else None
    new = tmp_path / "new"
    argv = [fill(a, inputs, new, read_only_folder) for a in argv]
    message = fill(message, inputs, new, read_only_folder)
    before = tree(tmp_path, next(iter(inputs.values())).parent)
    code = main(argv)
    err = capsys.readouterr().err
    assert code != 0 and "Traceback" not in err
    assert err.count("\n") == 1 and err.endswith("\n") and "error: " in err, err
    assert message in err and "(a bug" not in err, err  # a bad input is not reported as a bug
    assert tree(tmp_path, next(iter(inputs.values())).parent) == before


def styleforge_process(*argv: str, env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]), **(env or {})}
    return subprocess.run([sys.executable, "-m", "styleforge.cli", *argv], capture_output=True, text=True, env=env,
                          timeout=300)


def test_a_real_process_prints_one_line_and_exits_non_zero(inputs, tmp_path):
    for argv in (["generate", "--network", str(inputs["damaged.safetensors"]), "--seeds", "0", "--outdir",
                  str(tmp_path / "out")],
                 ["generate", "--seeds", "0"]):
        result = styleforge_process(*argv)
        assert result.returncode == 2 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, argv
    assert list(tmp_path.iterdir()) == []


class _FailingImages(torch.utils.data.Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, idx):
        raise UserError(f"images/{idx:03d}.png: image is 8x8, the data set's first image is 16x16")


def _read_in_a_worker(args):
    for _ in torch.utils.data.DataLoader(_FailingImages(), num_workers=1):
        pass


def test_a_user_error_in_a_data_loader_worker_is_its_own_line(monkeypatch, capsys):
    with pytest.raises(UserError) as wrapped:
        _read_in_a_worker(None)
    assert "Caught UserError in DataLoader worker process 0" in str(wrapped.value)  # what torch gives
    assert error_message(wrapped.value) == "images/000.png: image is 8x8, the data set's first image is 16x16"
    monkeypatch.setattr("styleforge.tools.generate_cmd.run", _read_in_a_worker)
    assert main(["generate", "--network", "x", "--outdir", "y"]) == 2
    assert capsys.readouterr().err == ("styleforge generate: error: images/000.png: image is 8x8, the data set's "
                                       "first image is 16x16\n")


def test_a_bad_image_met_by_a_training_data_loader_worker_is_reported_as_itself(tmp_path, capsys):
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(40):  # the first image sets the size; the data set checks the others as they are read
        save_image(np.full([16 if i < 32 else 8] * 2 + [3], i, np.uint8), folder / f"{i:03d}.png")
    argv = ["train", "--data", str(folder), "--outdir", str(tmp_path / "runs"), *TINY_TRAIN]
    assert main([*argv, "--workers", "1", "--kimg", "0.064"]) == 2  # (a later option overrides an earlier one)
    err = capsys.readouterr().err
    assert "Caught" not in err and "Traceback" not in err
    assert err.rstrip("\n").split("\n")[-1].startswith(f"styleforge train: error: {folder}/0")
    assert err.endswith("image is 8x8, the data set's first image is 16x16\n")


def test_a_disk_that_fills_up_during_training_is_named_and_the_previous_checkpoint_kept(inputs, tmp_path,
                                                                                         monkeypatch, capsys):
    from safetensors import SafetensorError

    from styleforge.networks import persistence
    from styleforge.training import checkpoint as ckpt_io

    real_save_file, saved = persistence.save_file, []

    def fills_up_after_one(tensors, filename, metadata=None):
        if saved:
            raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")
        saved.append(filename)
        real_save_file(tensors, filename, metadata=metadata)

    monkeypatch.setattr(persistence, "save_file", fills_up_after_one)
    argv = ["train", "--data", str(inputs["digits.zip"]), "--outdir", str(tmp_path), *TINY_TRAIN, "--snap", "1"]
    assert main([*argv, "--kimg", "0.016"]) == 1
    (run_dir,) = tmp_path.iterdir()
    (kept,) = ckpt_io.list_checkpoints(run_dir)
    err = capsys.readouterr().err
    assert err.endswith(f"styleforge train: error: the disk is full: could not write "
                        f"{ckpt_io.checkpoint_path(run_dir, 16)}.tmp\n") and "Traceback" not in err
    assert ckpt_io.load_checkpoint(kept).progress["cur_nimg"] == 8
    assert sorted(p.name for p in kept.parent.iterdir()) == [kept.name]  # no temporary left


def test_a_bug_is_one_line_and_its_traceback_shows_under_debug(monkeypatch, capsys):
    def bug(args):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr("styleforge.tools.generate_cmd.run", bug)
    argv = ["generate", "--network", "x", "--outdir", "y"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("styleforge generate: error: unexpected ZeroDivisionError: division by zero (a bug")
    assert err.count("\n") == 1 and "--debug" in err
    for debug_argv in (["--debug", *argv], [*argv, "--debug"]):
        with pytest.raises(ZeroDivisionError):
            main(debug_argv)
    monkeypatch.setenv(DEBUG_VARIABLE, "1")
    with pytest.raises(ZeroDivisionError):
        main(argv)

