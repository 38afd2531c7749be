"""Damaged or edited network files and checkpoints are refused on every load path, in one line; files from before
the checksums (or the metadata checksum) still load; a full disk never replaces a good file."""

import errno
import warnings

import numpy as np
import pytest
from file_damage import overwrite_tensor_bytes, replace_in_header, rewrite, without
from safetensors import SafetensorError
from tools_networks import tiny_generator

import styleforge
from styleforge.cli import main
from styleforge.errors import UserError, os_error_message
from styleforge.inference.generate import generate
from styleforge.networks import persistence
from styleforge.networks.persistence import load_network, save_network
from styleforge.training import checkpoint as ckpt_io

PROGRESS = {"cur_nimg": 1008}
CONFIG = {"glr": 0.0025}


def write_checkpoint(path):
    """A training checkpoint's layout (G, G_ema, metadata with progress and config), from tiny generators."""
    ckpt_io.save_checkpoint(path, {"G": tiny_generator(seed=0), "G_ema": tiny_generator(seed=1)}, {}, {}, PROGRESS,
                            CONFIG)
    return path


def load_paths(path):
    """Every way a file is loaded: the public API, each network of it, and --resume."""
    return {
        "styleforge.load": lambda: styleforge.load(path),
        "load_network G": lambda: load_network(path, key="G"),
        "load_checkpoint": lambda: ckpt_io.load_checkpoint(path),
    }


def test_16_damaged_bytes_of_g_ema_are_refused_by_every_load_path(tmp_path):
    path = write_checkpoint(tmp_path / "ckpt.safetensors")
    intact = generate(styleforge.load(path), [0, 1])
    assert overwrite_tensor_bytes(path, "G_ema.").startswith("G_ema.")
    for how, load in load_paths(path).items():
        with pytest.raises(UserError, match="checksum mismatch; the file is corrupted") as refused:
            load()
        assert str(refused.value).startswith(str(path)) and "\n" not in str(refused.value), how
    damaged = generate(styleforge.load(path, verify=False), [0, 1])  # the escape for speed skips the check
    assert not np.array_equal(damaged, intact)


def test_a_damaged_network_file_is_refused(tmp_path):
    path = tmp_path / "G.safetensors"
    save_network(tiny_generator(), path)
    overwrite_tensor_bytes(path, "synthesis.")
    with pytest.raises(UserError, match="checksum mismatch"):
        styleforge.load(path)


def test_generate_refuses_a_damaged_network_in_one_line_and_no_verify_skips_the_check(tmp_path, capsys):
    path = write_checkpoint(tmp_path / "ckpt.safetensors")
    overwrite_tensor_bytes(path, "G_ema.")
    outdir = tmp_path / "out"
    assert main(["generate", "--network", str(path), "--seeds", "0-1", "--outdir", str(outdir)]) == 2
    err = capsys.readouterr().err
    assert err == f"styleforge generate: error: {path}: checksum mismatch; the file is corrupted\n"
    assert not outdir.exists()
    assert main(["generate", "--network", str(path), "--seeds", "0-1", "--outdir", str(outdir), "--no-verify"]) == 0
    assert sorted(p.name for p in outdir.iterdir()) == ["seed0000.png", "seed0001.png"]


@pytest.mark.parametrize("old, new", [
    (r'\"cur_nimg\": 1008', r'\"cur_nimg\": 9008'),
    (r'\"glr\": 0.0025', r'\"glr\": 0.0925'),
])
def test_edited_metadata_is_refused_by_every_load_path(tmp_path, old, new):
    path = write_checkpoint(tmp_path / "ckpt.safetensors")
    replace_in_header(path, old, new)
    for load in load_paths(path).values():
        with pytest.raises(UserError, match="checksum mismatch in the metadata"):
            load()


def test_checkpoints_from_before_the_metadata_checksum_still_load_and_are_checked(tmp_path):
    path = write_checkpoint(tmp_path / "ckpt.safetensors")
    rewrite(path, without(persistence.METADATA_CHECKSUM))  # as written before this checksum existed
    ckpt = ckpt_io.load_checkpoint(path)
    assert ckpt.progress == PROGRESS and ckpt.config == CONFIG
    styleforge.load(path)
    overwrite_tensor_bytes(path, "G.")  # their tensor checksum is still verified
    with pytest.raises(UserError, match="checksum mismatch; the file is corrupted"):
        ckpt_io.load_checkpoint(path)


def test_a_checkpoint_without_any_checksum_is_refused(tmp_path):
    path = write_checkpoint(tmp_path / "ckpt.safetensors")
    rewrite(path, without(persistence.METADATA_CHECKSUM, persistence.TENSORS_CHECKSUM))
    for load in load_paths(path).values():
        with pytest.raises(UserError, match="no checksum"):
            load()


def test_network_files_from_before_checksums_load_without_a_word(tmp_path):
    path = tmp_path / "G.safetensors"
    save_network(tiny_generator(), path)
    rewrite(path, without(persistence.METADATA_CHECKSUM, persistence.TENSORS_CHECKSUM))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        G = styleforge.load(path)
    assert np.array_equal(generate(G, [3]), generate(tiny_generator(), [3]))


def test_metadata_that_does_not_parse_is_a_damaged_file_not_a_traceback(tmp_path):
    path = write_checkpoint(tmp_path / "ckpt.safetensors")
    replace_in_header(path, r'\"cur_nimg\": 1008}', r'\"cur_nimg\": 1008,')  # valid header, broken JSON inside
    with pytest.raises(UserError, match="checksum mismatch in the metadata"):
        ckpt_io.load_checkpoint(path)
    rewrite(path, without(persistence.METADATA_CHECKSUM))  # an old-form checkpoint: only the parse can tell
    with pytest.raises(UserError, match=r"the metadata 'progress' is not valid JSON .*; the file is damaged"):
        ckpt_io.load_checkpoint(path)


@pytest.mark.parametrize("edit, message", [
    (without("networks"), "no 'networks' in the metadata; the file is damaged"),
    (lambda m: {**m, "networks": "{not json"}, "the metadata 'networks' is not valid JSON"),
    (lambda m: {**m, "networks": '["G_ema"]'}, "the metadata 'networks' is not a"),
    (lambda m: {**m, "networks": m["networks"].replace('"z_dim": 32', '"z_dim": 32, "evil": 1')},
     r"G_ema \(generator/stylegan2\) cannot be built from its stored config \(TypeError: .*'evil'"),
    (lambda m: {**m, "networks": m["networks"].replace('"generator/stylegan2"', '"bogus"')},
     "G_ema is an unknown generator 'bogus'"),
    (lambda m: {**m, "networks": m["networks"].replace('"generator/stylegan2"', '"widget/stylegan2"')},
     "G_ema is an unknown widget 'stylegan2'"),
])
def test_faults_in_the_networks_metadata_are_one_line(tmp_path, capsys, edit, message):
    path = write_checkpoint(tmp_path / "ckpt.safetensors")
    rewrite(path, lambda m: edit(without(persistence.METADATA_CHECKSUM)(m)))
    with pytest.raises(UserError, match=message):
        styleforge.load(path)
    assert main(["generate", "--network", str(path), "--seeds", "0", "--outdir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"styleforge generate: error: {path}: ")


def test_weights_that_do_not_fit_the_stored_config_are_one_line(tmp_path):
    path = write_checkpoint(tmp_path / "ckpt.safetensors")
    rewrite(path, lambda m: {**without(persistence.METADATA_CHECKSUM)(m),
                             "networks": m["networks"].replace('"w_dim": 32', '"w_dim": 16')})
    with pytest.raises(UserError, match="the weights of G_ema do not fit its config"):
        styleforge.load(path)


def test_a_full_disk_leaves_the_previous_checkpoint_intact_and_says_so(tmp_path, monkeypatch):
    path = write_checkpoint(tmp_path / "ckpt.safetensors")
    before = path.read_bytes()

    def disk_fills_up(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"half a checkpoint")
        # What safetensors raises on a full file system (seen on a 1 MB tmpfs).
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(persistence, "save_file", disk_fills_up)
    with pytest.raises(OSError) as full:
        write_checkpoint(path)
    assert full.value.errno == errno.ENOSPC and full.value.filename == f"{path}.tmp"
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == [path.name]
    assert os_error_message(full.value) == f"the disk is full: could not write {path}.tmp"


TINY_RUN = ["--cfg", "cpu", "--cbase", "256", "--cmax", "32", "--z-dim", "32", "--w-dim", "32", "--map-layers", "2",
            "--batch", "8", "--mbstd-group", "4", "--workers", "0", "--tick-kimg", "0.016", "--snap", "1",
            "--grid-seeds", "4"]


def test_resume_refuses_edited_metadata_and_continues_a_checkpoint_from_before_the_metadata_checksum(tmp_path,
                                                                                                     capsys):
    from styleforge.data.build import build_dataset

    build_dataset("builtin:digits", tmp_path / "digits.zip", resolution=16, max_images=64)
    outdir = tmp_path / "runs"
    assert main(["train", "--data", str(tmp_path / "digits.zip"), "--outdir", str(outdir), "--kimg", "0.016",
                 *TINY_RUN]) == 0
    (run_dir,) = outdir.iterdir()
    (first,) = ckpt_io.list_checkpoints(run_dir)
    capsys.readouterr()

    edited = tmp_path / "edited.safetensors"
    edited.write_bytes(first.read_bytes())
    replace_in_header(edited, r'\"cur_nimg\": 16,', r'\"cur_nimg\": 96,')
    assert main(["train", "--resume", str(edited), "--kimg", "0.032"]) == 2
    assert capsys.readouterr().err == (f"styleforge train: error: {edited}: checksum mismatch in the metadata; "
                                       "the file is damaged or was edited\n")

    rewrite(first, without(persistence.METADATA_CHECKSUM))  # as a StyleForge from before this checksum wrote it
    assert main(["train", "--resume", str(run_dir), "--kimg", "0.032"]) == 0
    newest = ckpt_io.list_checkpoints(run_dir)[-1]
    assert newest != first and ckpt_io.load_checkpoint(newest).progress["cur_nimg"] == 32
