"""`builtin:digits`, the offline detector: deterministic, accurate on held-out digits, and the metrics it
serves (FID, class_acc, class_coverage, the real-half floor) tell good generators from bad ones; training
and the CLI find it by name."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from styleforge.cli import main
from styleforge.errors import UserError
from styleforge.metrics import compute_metric, load_detector
from styleforge.metrics.class_metrics import class_coverage
from styleforge.metrics.digits_classifier import load_digits_classifier
from styleforge.metrics.digits_training import accuracy, digits_images, held_out_mask, train_digits_classifier
from styleforge.metrics.floor import copying_the_training_set, quality_with_floor
from styleforge.registry import METRICS

pytest.importorskip("sklearn")

HELD_OUT_ACCURACY = 0.98  # the shipped weights reach 0.9916 on the 359 held-out digits


@pytest.fixture(scope="module")
def digits():
    return digits_images()  # uint8 [1797, 1, 32, 32], labels [1797]


@pytest.fixture(scope="module")
def digits_zip(tmp_path_factory):
    from styleforge.data.build import build_dataset

    path = tmp_path_factory.mktemp("data") / "digits32.zip"
    build_dataset("builtin:digits", path, resolution=32, max_images=400, progress=False)
    return str(path)


class DigitsG(nn.Module):
    """A conditional "generator" that returns a real digit of the asked class (`always` fixes the class),
    picked by the latent; `noise` returns uniform noise instead."""

    z_dim, c_dim, img_resolution, img_channels = 4, 10, 32, 1

    def __init__(self, images, labels, always=None, noise=False):
        super().__init__()
        self.images = torch.from_numpy(images).float() / 127.5 - 1
        self.members = [np.flatnonzero(labels == k) for k in range(10)]
        self.always, self.noise = always, noise

    def forward(self, z, c, **kwargs):
        if self.noise:
            return torch.rand([len(z), 1, 32, 32], generator=torch.Generator().manual_seed(len(z))) * 2 - 1
        classes = c.argmax(dim=1).tolist() if self.always is None else [self.always] * len(z)
        picks = [self.members[k][int(abs(zi[0].item()) * 1e4) % len(self.members[k])] for zi, k in zip(z, classes)]
        return self.images[picks]


def test_training_is_deterministic_and_so_are_the_features(digits):
    images, labels = digits[0][:96], digits[1][:96]
    a = train_digits_classifier(images, labels, epochs=1, batch=32)
    b = train_digits_classifier(images, labels, epochs=1, batch=32)
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(x, y), name
    x = torch.from_numpy(digits[0][:64])
    first = load_digits_classifier()(x, output="features")
    assert torch.equal(first, load_digits_classifier()(x, output="features"))
    assert first.shape == (64, 128)


def test_shipped_classifier_is_accurate_on_held_out_digits(digits):
    images, labels = digits
    held_out = held_out_mask(labels)
    assert held_out.sum() == 359 and all(np.bincount(labels[held_out]) >= 35)  # a fifth of every class
    assert accuracy(load_digits_classifier(), images[held_out], labels[held_out]) >= HELD_OUT_ACCURACY


def test_features_of_a_16px_or_rgb_digit_match_those_at_32px(digits):
    net = load_digits_classifier()
    x = torch.from_numpy(digits[0][:32])
    rgb = x.repeat(1, 3, 1, 1)
    assert torch.allclose(net(rgb, output="features"), net(x, output="features"))
    small = nn.functional.avg_pool2d(x.float(), 2)  # [32, 1, 16, 16]
    assert (net(small).argmax(1) == net(x).argmax(1)).float().mean() >= 0.9


def test_fid_of_real_halves_is_small_and_of_noise_large(digits, digits_zip, tmp_path):
    numbers = quality_with_floor(DigitsG(*digits), digits_zip)
    floor, real_g = numbers["floor"], numbers["generated"]
    noise = quality_with_floor(DigitsG(*digits, noise=True), digits_zip)["generated"]
    assert numbers["num_images"] == 200
    # 200 against 200 images (FID 0.34 at the full 898 against 898)
    assert floor["fid"] < 2 and real_g["fid"] < 3 and noise["fid"] > 50
    assert abs(floor["kid"]) < 0.05 and noise["kid"] > 1 and noise["precision"] == noise["recall"] == 0
    # The registered metric with the detector named as on the command line: noise is far from the reals.
    result = compute_metric("fid1k_full", DigitsG(*digits, noise=True), digits_zip, detector="builtin:digits",
                            num_gen=64, cache_dir=tmp_path, progress=False)
    assert result["results"]["fid1k_full"] > 50


def test_class_acc_is_one_for_real_digits_of_the_asked_class_and_a_tenth_for_always_zero(digits, digits_zip,
                                                                                        tmp_path):
    def class_metric(name, G):
        return compute_metric(name, G, digits_zip, detector="builtin:digits", num_gen=200, cache_dir=tmp_path,
                              progress=False)["results"][name]

    assert class_metric("class_acc", DigitsG(*digits)) >= 0.98
    assert class_metric("class_acc", DigitsG(*digits, always=0)) == pytest.approx(0.1, abs=0.05)
    assert class_metric("class_coverage", DigitsG(*digits)) >= 0.98
    assert class_metric("class_coverage", DigitsG(*digits, always=0)) == 0
    floor = quality_with_floor(DigitsG(*digits, always=0), digits_zip)
    assert floor["floor"]["class_acc"] >= 0.98 and floor["generated"]["class_acc"] < 0.2


def test_copying_few_training_images_loses_recall_but_not_classes(digits_zip, tmp_path):
    """Copies of 20 training digits (2 per class) have every class right but cover little of the data: recall
    far below the floor's, FID above it; copying the whole data set comes close to the floor."""
    from styleforge.data.build import build_dataset

    few = tmp_path / "few.zip"  # the built-in digits cycle 0, 1, ..., 9: the first 20 are two of each
    build_dataset("builtin:digits", few, resolution=32, max_images=20, progress=False)
    copies = copying_the_training_set(few, digits_zip)
    everything = copying_the_training_set(digits_zip, digits_zip)
    floor = quality_with_floor(DigitsG(*digits_images()), digits_zip)["floor"]
    assert copies["class_acc"] >= 0.9 and everything["class_acc"] >= 0.95
    assert copies["recall"] < 0.5 * floor["recall"] and copies["fid"] > 2 * everything["fid"]
    assert abs(everything["recall"] - floor["recall"]) < 0.2


def test_coverage_is_one_for_uniform_predictions_and_zero_for_one_class():
    assert class_coverage(np.arange(1000) % 10, 10) == pytest.approx(1)
    assert class_coverage(np.full(1000, 3), 10) == 0
    assert class_coverage(np.arange(1000) % 5, 10) == pytest.approx(np.log(5) / np.log(10))  # 5 of 10 classes


def test_class_metrics_refuse_what_cannot_be_measured(digits, digits_zip, tmp_path):
    class Unconditional(DigitsG):
        c_dim = 0

    with pytest.raises(UserError, match="conditional generator"):
        compute_metric("class_acc", Unconditional(*digits, noise=True), digits_zip, detector="builtin:digits",
                       num_gen=8, cache_dir=tmp_path, progress=False)
    with pytest.raises(UserError, match="need a classifier"):
        compute_metric("class_coverage", DigitsG(*digits), digits_zip, num_gen=8, cache_dir=tmp_path, progress=False)
    with pytest.raises(UserError, match="not ppl"):
        load_detector("ppl", "builtin:digits")
    with pytest.raises(UserError, match="choose one of: builtin:digits"):
        load_detector("fid", "builtin:mnist")


def test_every_metric_declares_its_direction():
    lower = {name for name in METRICS.names() if METRICS.get(name).lower_is_better}
    assert {n for n in METRICS.names() if n.startswith(("fid", "kid", "ppl"))} == lower
    assert {"class_acc", "class_coverage", "is50k", "pr50k3_full"} <= set(METRICS.names()) - lower


def test_training_keeps_the_best_checkpoint_by_the_digits_detector_and_the_cli_finds_it(tmp_path, capsys):
    from styleforge.data.build import build_dataset
    from styleforge.training.loop import Trainer

    data = tmp_path / "digits16.zip"
    build_dataset("builtin:digits", data, resolution=16, max_images=64, progress=False)
    options = dict(data=str(data), outdir=str(tmp_path / "runs"), cfg="cpu", cbase=256, cmax=32, z_dim=32, w_dim=32,
                   map_layers=2, batch=8, mbstd_group=4, workers=0, tick_kimg=0.016, snap=1, keep=1, grid_seeds=4,
                   cond=True, kimg=0.048, metrics=["fid1k_full", "class_acc"], metrics_detector="builtin:digits",
                   metrics_num_gen=16)
    run_dir = Trainer(options, quiet=True).run()
    fids = [json.loads(line)["results"]["fid1k_full"] for line in (run_dir / "metric-fid1k_full.jsonl").open()]
    assert len(fids) == 3 and len((run_dir / "metric-class_acc.jsonl").read_text().splitlines()) == 3
    best = json.loads((run_dir / "checkpoints" / "best.json").read_text())
    assert best["metric"] == "fid1k_full" and best["value"] == min(fids)

    network = run_dir / "checkpoints" / best["path"]
    assert main(["metrics", "--network", str(network), "--data", str(data), "--detector", "builtin:digits",
                 "--metrics", "class_coverage", "--num-gen", "16", "--device", "cpu"]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert 0 <= printed["results"]["class_coverage"] <= 1 and Path(printed["network"]) == network
