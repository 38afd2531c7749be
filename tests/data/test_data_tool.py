"""The dataset tool: sources, transforms, labels, bad inputs, atomic output, official layout."""

import io
import json
import os
import sys
import zipfile
from pathlib import Path

import numpy as np
import PIL.Image
import pytest

from styleforge.cli import main
from styleforge.data.build import build_dataset
from styleforge.errors import UserError


def png_bytes(array: np.ndarray, fmt: str = "png") -> bytes:
    buffer = io.BytesIO()
    PIL.Image.fromarray(array).save(buffer, format=fmt)
    return buffer.getvalue()


def solid(value: int, size=(8, 8), channels: int = 3) -> np.ndarray:
    """A constant image [H, W, C] (or [H, W] for channels 1) whose value identifies it."""
    h, w = size
    return np.full((h, w, channels) if channels == 3 else (h, w), value, np.uint8)


def write_images(root: Path, images: dict[str, np.ndarray]) -> Path:
    for name, array in images.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png_bytes(array, "jpeg" if name.endswith(".jpg") else "png"))
    return root


def read_dataset(dest: Path) -> tuple[list[str], list[np.ndarray], dict]:
    """Image names, decoded images [H, W(, C)] and dataset.json of a ZIP or folder data set."""
    if dest.suffix == ".zip":
        with zipfile.ZipFile(dest) as z:
            files = {n: z.read(n) for n in z.namelist()}
    else:
        files = {p.relative_to(dest).as_posix(): p.read_bytes() for p in dest.rglob("*") if p.is_file()}
    meta = json.loads(files.pop("dataset.json"))
    names = sorted(files)
    return names, [np.asarray(PIL.Image.open(io.BytesIO(files[n]))) for n in names], meta


@pytest.fixture
def folder(tmp_path) -> Path:
    """Five 8x8 RGB images in nested folders, each a constant colour: 10, 20, ... in sorted-name order."""
    return write_images(tmp_path / "src", {
        "b/x.png": solid(30), "a/2.png": solid(20), "a/1.png": solid(10), "c.bmp": solid(50), "b/y.png": solid(40),
    })


def test_folder_to_zip_matches_official_layout(folder, tmp_path):
    summary = build_dataset(folder, tmp_path / "out.zip")
    names, images, meta = read_dataset(tmp_path / "out.zip")
    assert names == [f"00000/img{i:08d}.png" for i in range(5)]
    with zipfile.ZipFile(tmp_path / "out.zip") as z:
        assert all(info.compress_type == zipfile.ZIP_STORED for info in z.infolist())
    # Sorted by relative path: a/1, a/2, b/x, b/y, c.bmp.
    assert [int(img[0, 0, 0]) for img in images] == [10, 20, 30, 40, 50]
    assert meta["labels"] is None and meta["resolution"] == 8 and meta["channels"] == 3
    assert meta["source"] == str(folder) and meta["resize_filter"] == "lanczos"
    assert (summary.num_images, summary.resolution, summary.channels, summary.label_dim) == (5, 8, 3, 0)


def test_zip_source_and_folder_dest_give_the_same_images(folder, tmp_path):
    source_zip = tmp_path / "src.zip"
    with zipfile.ZipFile(source_zip, "w") as z:
        for path in sorted(folder.rglob("*")):
            z.write(path, path.relative_to(folder).as_posix())
    build_dataset(folder, tmp_path / "from_folder.zip")
    build_dataset(source_zip, tmp_path / "from_zip")
    _, a, _ = read_dataset(tmp_path / "from_folder.zip")
    names, b, _ = read_dataset(tmp_path / "from_zip")
    assert names[0] == "00000/img00000000.png"
    assert all(np.array_equal(x, y) for x, y in zip(a, b)) and len(a) == len(b) == 5


def test_lmdb_source_in_key_order(tmp_path):
    lmdb = pytest.importorskip("lmdb")
    env = lmdb.open(str(tmp_path / "cats_lmdb"), map_size=1 << 22)
    with env.begin(write=True) as txn:
        txn.put(b"k2", png_bytes(solid(200), "webp"))
        txn.put(b"k1", png_bytes(solid(100), "jpeg"))
    env.close()
    build_dataset(tmp_path / "cats_lmdb", tmp_path / "out.zip")
    _, images, meta = read_dataset(tmp_path / "out.zip")
    assert [int(img.mean()) for img in images] == pytest.approx([100, 200], abs=3)  # lossy codecs
    assert meta["labels"] is None


def test_missing_optional_packages_name_the_install(tmp_path, monkeypatch):
    (tmp_path / "db").mkdir()
    (tmp_path / "db" / "data.mdb").write_bytes(b"")
    monkeypatch.setitem(sys.modules, "lmdb", None)
    with pytest.raises(UserError, match="pip install lmdb"):
        build_dataset(tmp_path / "db", tmp_path / "out.zip")
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(UserError, match="scikit-learn"):
        build_dataset("builtin:digits", tmp_path / "out.zip")


def test_builtin_digits_upsampled_grayscale_with_labels(tmp_path):
    from sklearn.datasets import load_digits

    summary = build_dataset("builtin:digits", tmp_path / "d.zip", resolution=16, max_images=12)
    names, images, meta = read_dataset(tmp_path / "d.zip")
    assert len(images) == 12 and images[0].shape == (16, 16)  # 8x8 upsampled, one channel
    assert [label for _, label in meta["labels"]] == load_digits().target[:12].tolist()
    assert [path for path, _ in meta["labels"]] == names
    assert meta["class_names"] == [str(d) for d in range(10)] and summary.label_dim == 10
    assert build_dataset("builtin:digits", tmp_path / "d32", max_images=1).resolution == 32  # the default


def test_center_crop_keeps_the_middle_square(tmp_path):
    img = solid(0, (8, 16))
    img[:, 4:12] = 200  # the centred 8x8 square
    write_images(tmp_path / "src", {"wide.png": img})
    build_dataset(tmp_path / "src", tmp_path / "out.zip", transform="center-crop")
    _, images, _ = read_dataset(tmp_path / "out.zip")
    assert images[0].shape == (8, 8, 3) and (images[0] == 200).all()


def test_center_crop_wide_pads_a_wide_crop_onto_a_black_canvas(tmp_path):
    img = solid(200, (16, 16))
    img[:2] = img[14:] = 0  # the 4:3 crop keeps the middle 12 rows
    write_images(tmp_path / "src", {"car.png": img})
    build_dataset(tmp_path / "src", tmp_path / "out.zip", transform="center-crop-wide", resolution=8,
                  resize_filter="box")
    out = read_dataset(tmp_path / "out.zip")[1][0].astype(int)  # content 8x6 in rows 1..6
    assert out.shape == (8, 8, 3)
    assert (out[[0, 7]] == 0).all() and (abs(out[1:7] - 200) <= 2).all()


def test_box_filter_is_the_block_mean_and_differs_from_lanczos(tmp_path):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    write_images(tmp_path / "src", {"noise.png": img})
    outs = {}
    for resize_filter in ("box", "lanczos"):
        dest = tmp_path / f"{resize_filter}.zip"
        build_dataset(tmp_path / "src", dest, resolution=8, resize_filter=resize_filter)
        outs[resize_filter] = read_dataset(dest)[1][0].astype(float)
        assert read_dataset(dest)[2]["resize_filter"] == resize_filter
    block_mean = img.reshape(8, 2, 8, 2, 3).mean(axis=(1, 3))
    assert np.abs(outs["box"] - block_mean).max() <= 1
    assert np.abs(outs["lanczos"] - block_mean).max() > 10


def test_channels_conversion(folder, tmp_path):
    build_dataset(folder, tmp_path / "gray.zip", channels=1)
    _, images, meta = read_dataset(tmp_path / "gray.zip")
    assert images[0].shape == (8, 8) and meta["channels"] == 1 and int(images[2][0, 0]) == 30
    write_images(tmp_path / "g", {"a.png": solid(7, channels=1)})
    build_dataset(tmp_path / "g", tmp_path / "rgb.zip", channels=3)
    assert read_dataset(tmp_path / "rgb.zip")[1][0].shape == (8, 8, 3)


def test_labels_from_json_keyed_by_relative_path(folder, tmp_path):
    rows = [["a/1.png", 1], ["a/2.png", 0], ["b/x.png", 2], ["b/y.png", 2], ["c.bmp", 1]]
    (folder / "dataset.json").write_text(json.dumps({"labels": rows, "class_names": ["p", "q", "r"]}))
    summary = build_dataset(folder, tmp_path / "out.zip")  # json is the default when the source has labels
    _, _, meta = read_dataset(tmp_path / "out.zip")
    assert [label for _, label in meta["labels"]] == [1, 0, 2, 2, 1]
    assert meta["class_names"] == ["p", "q", "r"] and summary.label_dim == 3
    build_dataset(folder, tmp_path / "none.zip", labels="none")
    assert read_dataset(tmp_path / "none.zip")[2]["labels"] is None


def test_labels_from_folders_sorted_by_name(tmp_path):
    write_images(tmp_path / "src", {"dog/1.png": solid(1), "cat/1.png": solid(2), "cat/2.png": solid(3)})
    summary = build_dataset(tmp_path / "src", tmp_path / "out.zip", labels="folders")
    _, images, meta = read_dataset(tmp_path / "out.zip")
    assert [label for _, label in meta["labels"]] == [0, 0, 1]
    assert meta["class_names"] == ["cat", "dog"] == summary.class_names
    assert int(images[2][0, 0, 0]) == 1  # the dog


def test_folder_labels_need_class_folders(tmp_path):
    write_images(tmp_path / "src", {"dog/1.png": solid(1), "loose.png": solid(2)})
    with pytest.raises(UserError, match="loose.png.*class folder"):
        build_dataset(tmp_path / "src", tmp_path / "out.zip", labels="folders")


def test_label_file_naming_missing_images(folder, tmp_path):
    rows = [["a/1.png", 0], ["a/2.png", 0], ["b/x.png", 0], ["b/y.png", 1], ["c.bmp", 1], ["gone.png", 1]]
    (folder / "dataset.json").write_text(json.dumps({"labels": rows}))
    with pytest.raises(UserError, match="dataset.json.*gone.png"):
        build_dataset(folder, tmp_path / "out.zip")
    summary = build_dataset(folder, tmp_path / "out.zip", on_error="skip")
    assert summary.num_images == 5 and "gone.png" in summary.warnings[0]


def test_image_without_label_is_a_bad_image(folder, tmp_path):
    (folder / "dataset.json").write_text(json.dumps({"labels": [["a/1.png", 0]]}))
    with pytest.raises(UserError, match="a/2.png: has no label"):
        build_dataset(folder, tmp_path / "out.zip")


def truncated_png() -> bytes:
    data = png_bytes(np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8))
    return data[: len(data) // 2]


def symlink_to_nowhere(path: Path) -> None:
    path.symlink_to(path.parent / "does-not-exist.png")


BAD_INPUTS = {
    "corrupt": (lambda p: p.write_bytes(b"this is not an image"), "cannot decode"),
    "truncated": (lambda p: p.write_bytes(truncated_png()), "cannot decode"),
    "unreadable": (symlink_to_nowhere, "cannot read file"),
    "too small": (lambda p: p.write_bytes(png_bytes(solid(1, (4, 4)))), "refusing to upscale"),
    "not square": (lambda p: p.write_bytes(png_bytes(solid(1, (8, 6)))), "not square"),
    "other size": (lambda p: p.write_bytes(png_bytes(solid(1, (16, 16)))), "data set's images are 8x8"),
    "other channels": (lambda p: p.write_bytes(png_bytes(solid(1, channels=1))), "pass --channels"),
}


@pytest.mark.parametrize("kind", list(BAD_INPUTS))
def test_bad_image_fails_naming_the_file_or_is_skipped(folder, tmp_path, kind):
    make, reason = BAD_INPUTS[kind]
    make(folder / "b" / "bad.png")
    resolution = 8 if kind == "too small" else None
    dest = tmp_path / "out.zip"
    with pytest.raises(UserError, match=f"b/bad.png: .*{reason}"):
        build_dataset(folder, dest, resolution=resolution)
    assert not dest.exists() and os.listdir(tmp_path) == ["src"]  # no data set, no temp file
    summary = build_dataset(folder, dest, resolution=resolution, on_error="skip")
    assert summary.num_images == 5 and len(summary.skipped) == 1 and "b/bad.png" in summary.skipped[0]
    assert [int(img[0, 0, 0]) for img in read_dataset(dest)[1]] == [10, 20, 30, 40, 50]


def test_archive_members_with_unsafe_paths(tmp_path):
    source = tmp_path / "src.zip"
    with zipfile.ZipFile(source, "w") as z:
        for name in ("ok.png", "../evil.png", "/abs.png"):
            z.writestr(name, png_bytes(solid(9)))
    with pytest.raises(UserError, match=r"\.\./evil.png: .*'\.\.'"):
        build_dataset(source, tmp_path / "out.zip")
    summary = build_dataset(source, tmp_path / "out.zip", on_error="skip")
    assert summary.num_images == 1 and len(summary.skipped) == 2 and "/abs.png" in summary.skipped[1]


def test_empty_source_and_all_skipped(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    with pytest.raises(UserError, match="empty: no images found"):
        build_dataset(tmp_path / "empty", tmp_path / "out.zip")
    (tmp_path / "empty" / "x.png").write_bytes(b"junk")
    with pytest.raises(UserError, match="no usable images"):
        build_dataset(tmp_path / "empty", tmp_path / "out", on_error="skip")
    assert sorted(os.listdir(tmp_path)) == ["empty"]


def test_interrupted_run_leaves_an_existing_data_set_untouched(folder, tmp_path):
    dest = tmp_path / "out.zip"
    dest.write_bytes(b"previous data set")
    (folder / "zz.png").write_bytes(b"corrupt, and sorted last")
    with pytest.raises(UserError):
        build_dataset(folder, dest)
    assert dest.read_bytes() == b"previous data set" and sorted(os.listdir(tmp_path)) == ["out.zip", "src"]


def test_dest_folder_must_be_empty(folder, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.txt").write_text("x")
    with pytest.raises(UserError, match="empty"):
        build_dataset(folder, tmp_path / "out")


def test_bad_options_name_the_value(folder, tmp_path):
    with pytest.raises(UserError, match="--resolution 24"):
        build_dataset(folder, tmp_path / "out.zip", resolution=24)
    with pytest.raises(UserError, match="--labels folders"):
        build_dataset("builtin:digits", tmp_path / "out.zip", labels="folders")
    with pytest.raises(UserError, match="builtin:nope"):
        build_dataset("builtin:nope", tmp_path / "out.zip")


def test_cli_prints_summary_and_errors(folder, tmp_path, capsys):
    (folder / "bad.png").write_bytes(b"junk")
    assert main(["dataset", "--source", str(folder), "--dest", str(tmp_path / "o.zip")]) == 2
    assert "bad.png" in capsys.readouterr().err
    assert main(["dataset", "--source", str(folder), "--dest", str(tmp_path / "o.zip"), "--on-error", "skip",
                 "--resolution", "4", "--resize-filter", "box"]) == 0
    out = capsys.readouterr().out
    assert "skipped 1 bad image" in out and "wrote 5 images" in out and "4x4" in out
