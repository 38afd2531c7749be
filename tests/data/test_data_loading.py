"""ImageDataset (ZIP and folder, labels, xflip, workers), check_compatible and InfiniteSampler."""

import io
import itertools
import json
import pickle
import zipfile

import numpy as np
import PIL.Image
import pytest
import torch

from styleforge.data import ImageDataset, InfiniteSampler, build_dataset, check_compatible
from styleforge.errors import UserError


def save_png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    PIL.Image.fromarray(array).save(path)


@pytest.fixture(scope="module")
def images() -> list[np.ndarray]:
    """Six random 8x8 RGB images [H, W, C]."""
    rng = np.random.default_rng(1)
    return [rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for _ in range(6)]


@pytest.fixture(scope="module")
def labelled_zip(tmp_path_factory, images):
    """A tool-built ZIP of the six images in class folders: classes 0 0 0 1 1 2 (a, a, a, b, b, c)."""
    root = tmp_path_factory.mktemp("data")
    for i, img in enumerate(images):
        save_png(root / "src" / "aaabbc"[i] / f"{i}.png", img)
    build_dataset(root / "src", root / "set.zip", labels="folders")
    return root / "set.zip"


def test_zip_items_shapes_and_one_hot_labels(labelled_zip, images):
    ds = ImageDataset(labelled_zip)
    assert len(ds) == 6 and ds.name == "set"
    assert (ds.resolution, ds.num_channels, ds.image_shape, ds.label_dim) == (8, 3, [3, 8, 8], 3)
    assert ds.has_labels and ds.class_names == ["a", "b", "c"]
    for i in range(6):
        image, label = ds[i]
        assert image.dtype == np.uint8 and image.shape == (3, 8, 8)
        assert np.array_equal(image, images[i].transpose(2, 0, 1))
        assert label.dtype == np.float32 and label.tolist() == np.eye(3)[[0, 0, 0, 1, 1, 2][i]].tolist()
        assert np.array_equal(ds.get_label(i), label)


def test_xflip_appends_mirrored_copies(labelled_zip):
    ds, flipped = ImageDataset(labelled_zip), ImageDataset(labelled_zip, xflip=True)
    assert len(flipped) == 12
    for i in range(6):
        assert np.array_equal(flipped[i][0], ds[i][0])
        assert np.array_equal(flipped[6 + i][0], ds[i][0][:, :, ::-1])
        assert np.array_equal(flipped[6 + i][1], ds[i][1])
    with pytest.raises(IndexError):
        flipped[12]


def test_unlabelled_use(labelled_zip):
    ds = ImageDataset(labelled_zip, use_labels=False)
    assert ds[0][1].shape == (0,) and ds.label_dim == 0 and not ds.has_labels and ds.class_names is None


def test_max_size_keeps_a_fixed_subset_in_order(labelled_zip, images):
    a, b = ImageDataset(labelled_zip, max_size=3), ImageDataset(labelled_zip, max_size=3)
    assert len(a) == 3
    picked = [next(j for j, img in enumerate(images) if np.array_equal(a[i][0], img.transpose(2, 0, 1)))
              for i in range(3)]
    assert picked == sorted(picked) and all(np.array_equal(a[i][0], b[i][0]) for i in range(3))


def test_plain_folder_of_images_and_tool_folder_output(tmp_path, images):
    for i, img in enumerate(images[:3]):
        save_png(tmp_path / "plain" / f"{i}.png", img[:, :, 0])  # grayscale
    ds = ImageDataset(tmp_path / "plain")
    assert (len(ds), ds.image_shape, ds.label_dim, ds.name) == (3, [1, 8, 8], 0, "plain")
    assert np.array_equal(ds[2][0][0], images[2][:, :, 0])
    build_dataset("builtin:digits", tmp_path / "digits", resolution=8, max_images=5)
    digits = ImageDataset(tmp_path / "digits")
    assert (len(digits), digits.image_shape, digits.label_dim) == (5, [1, 8, 8], 10)


def test_reads_a_zip_in_the_official_layout(tmp_path, images):
    """What NVlabs' dataset_tool.py writes: only "labels" in dataset.json, a class index per image."""
    path = tmp_path / "official.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        for i, img in enumerate(images[:2]):
            buffer = io.BytesIO()
            PIL.Image.fromarray(img).save(buffer, format="png", compress_level=0)
            z.writestr(f"00000/img{i:08d}.png", buffer.getvalue())
        z.writestr("dataset.json", json.dumps({"labels": [["00000/img00000000.png", 4], ["00000/img00000001.png", 1]]}))
    ds = ImageDataset(path)
    assert ds.label_dim == 5 and ds[0][1].argmax() == 4 and ds.class_names is None


def test_bad_data_sets_are_named(tmp_path, images):
    save_png(tmp_path / "mixed" / "a.png", images[0])
    save_png(tmp_path / "mixed" / "b.png", np.zeros((16, 16, 3), np.uint8))
    ds = ImageDataset(tmp_path / "mixed")
    with pytest.raises(UserError, match="b.png: image is 16x16"):
        ds[1]
    (tmp_path / "mixed" / "dataset.json").write_text(json.dumps({"labels": [["a.png", 0]]}))
    with pytest.raises(UserError, match="dataset.json: no label for image b.png"):
        ImageDataset(tmp_path / "mixed")
    with pytest.raises(UserError, match="nothing.zip"):
        ImageDataset(tmp_path / "nothing.zip")


def test_pickles_and_feeds_dataloader_workers(labelled_zip):
    ds = ImageDataset(labelled_zip)
    ds[0]  # opens the zip in this process
    clone = pickle.loads(pickle.dumps(ds))
    assert np.array_equal(clone[5][0], ds[5][0])
    loader = torch.utils.data.DataLoader(ds, batch_size=3, num_workers=2)
    batches = list(loader)
    assert torch.equal(torch.cat([b[0] for b in batches]), torch.stack([torch.from_numpy(ds[i][0]) for i in range(6)]))
    assert batches[0][1].shape == (3, 3)


def test_check_compatible_names_path_and_values(labelled_zip):
    ds = ImageDataset(labelled_zip)
    check_compatible(ds, resolution=8, channels=3, c_dim=3)
    with pytest.raises(UserError, match=r"set.zip has resolution 8, but the model config has 16"):
        check_compatible(ds, resolution=16, channels=3, c_dim=3)
    with pytest.raises(UserError, match=r"channels 3.*has 1"):
        check_compatible(ds, resolution=8, channels=1, c_dim=3)
    with pytest.raises(UserError, match=r"c_dim\) 3.*has 0"):
        check_compatible(ds, resolution=8, channels=3, c_dim=0)


def take(sampler, n):
    return list(itertools.islice(iter(sampler), n))


def test_sampler_ranks_are_disjoint_and_cover_each_epoch():
    size = 10
    shards = [take(InfiniteSampler(size, rank=r, num_replicas=2, seed=3), size) for r in range(2)]
    first_epoch = shards[0][:5] + shards[1][:5]
    assert sorted(first_epoch) == list(range(size))  # disjoint and covering
    assert sorted(shards[0] + shards[1]) == sorted(list(range(size)) * 2)  # two full epochs
    assert shards[0][5:] != shards[0][:5]  # a new permutation for the next epoch


def test_sampler_ranks_interleave_into_the_global_stream():
    size, replicas = 7, 3
    global_stream = take(InfiniteSampler(size, seed=5), 30)
    shards = [take(InfiniteSampler(size, rank=r, num_replicas=replicas, seed=5), 10) for r in range(replicas)]
    assert [shards[i % replicas][i // replicas] for i in range(30)] == global_stream


def test_sampler_resumes_from_start():
    for rank in range(2):
        full = take(InfiniteSampler(9, rank=rank, num_replicas=2, seed=1), 40)
        assert take(InfiniteSampler(9, rank=rank, num_replicas=2, seed=1, start=13), 27) == full[13:]


def test_sampler_seed_and_shuffle():
    assert take(InfiniteSampler(20, seed=0), 20) == take(InfiniteSampler(20, seed=0), 20)
    assert take(InfiniteSampler(20, seed=0), 20) != take(InfiniteSampler(20, seed=1), 20)
    assert take(InfiniteSampler(4, shuffle=False), 6) == [0, 1, 2, 3, 0, 1]
