"""compute_metric end to end with a fake generator, small PNG data sets and cheap detectors; the real-stats
cache; the result log; the CLI; data reading; and sharding across two processes."""

import json
import os

import numpy as np
import pytest
import torch
from test_metrics_fakes import CountingDetector, FakeG, random_images, write_png_dataset
from torch import nn

from styleforge.cli import main
from styleforge.errors import UserError
from styleforge.metrics import append_metric_result, compute_metric, iterate_real_images
from styleforge.metrics.feature_stats import generated_uint8
from styleforge.metrics.real_images import real_labels
from styleforge.metrics.vgg16 import VGG16
from styleforge.networks.persistence import persistent, save_network
from styleforge.registry import GENERATORS


@pytest.fixture(scope="module")
def G():
    torch.manual_seed(0)
    return FakeG().eval()


@pytest.fixture(scope="module")
def own_data(G, tmp_path_factory):
    """A data set drawn from G itself, so G matches it and a shifted G does not."""
    z = torch.randn(160, G.z_dim, generator=torch.Generator().manual_seed(123))
    with torch.no_grad():
        images = generated_uint8(G, z, torch.zeros(160, 0), {}).permute(0, 2, 3, 1).numpy()
    return write_png_dataset(tmp_path_factory.mktemp("own"), images)


def _run(name, G, data, tmp_path, detector, **kwargs):
    kwargs = {"num_gen": 160, "batch_size": 32, "cache_dir": tmp_path, "progress": False, **kwargs}
    return compute_metric(name, G, data, "cpu", detector=detector, **kwargs)


def test_fid_kid_pr_tell_matching_from_shifted_generators(G, own_data, tmp_path):
    shifted = FakeG(offset=1.5)
    shifted.load_state_dict(G.state_dict())
    detector = CountingDetector()
    result = _run("fid50k_full", G, own_data, tmp_path, detector)
    assert set(result) >= {"results", "metric", "total_time", "num_gen"}
    assert result["metric"] == "fid50k_full" and result["num_gen"] == 160
    fid_same = result["results"]["fid50k_full"]
    fid_shifted = _run("fid50k_full", shifted, own_data, tmp_path, detector)["results"]["fid50k_full"]
    assert 0 < fid_same < fid_shifted / 10

    kid_same = _run("kid50k_full", G, own_data, tmp_path, detector)["results"]["kid50k_full"]
    kid_shifted = _run("kid50k_full", shifted, own_data, tmp_path, detector)["results"]["kid50k_full"]
    assert abs(kid_same) < kid_shifted / 10

    pr_same = _run("pr50k3_full", G, own_data, tmp_path, detector)["results"]
    pr_far = _run("pr50k3_full", FakeG(offset=50.0), own_data, tmp_path, detector)["results"]
    assert set(pr_same) == {"pr50k3_full_precision", "pr50k3_full_recall"}
    assert pr_same["pr50k3_full_precision"] > 0.5 and pr_same["pr50k3_full_recall"] > 0.5
    assert pr_far == {"pr50k3_full_precision": 0.0, "pr50k3_full_recall": 0.0}


def test_real_statistics_are_cached(G, tmp_path):
    data = write_png_dataset(tmp_path / "data", random_images(40))
    detector = CountingDetector()
    _run("fid1k_full", G, data, tmp_path, detector, num_gen=32, batch_size=8)
    assert detector.calls == 40 // 8 + 32 // 8
    detector.calls = 0
    _run("fid1k_full", G, data, tmp_path, detector, num_gen=32, batch_size=8)
    assert detector.calls == 32 // 8  # only the generated images
    assert len(list((tmp_path / "metric-stats").glob("*.npz"))) == 1
    # A changed data set, or fewer real images, is computed again.
    detector.calls = 0
    _run("fid1k_full", G, data, tmp_path, detector, num_gen=32, batch_size=8, max_real=16)
    assert detector.calls == 16 // 8 + 32 // 8
    image = next((data / "00000").iterdir())
    os.utime(image, ns=(1, 1))
    detector.calls = 0
    _run("fid1k_full", G, data, tmp_path, detector, num_gen=32, batch_size=8)
    assert detector.calls == 40 // 8 + 32 // 8


class ConstantClass(nn.Module):
    def forward(self, img):
        return nn.functional.one_hot(torch.zeros(len(img), dtype=torch.long), 10).float()


def test_inception_score_needs_no_data(G, tmp_path):
    result = _run("is50k", G, None, tmp_path, ConstantClass(), num_gen=50)
    assert result["results"] == {"is50k_mean": pytest.approx(1.0), "is50k_std": pytest.approx(0.0)}
    with pytest.raises(UserError, match="--data"):
        _run("fid50k_full", G, None, tmp_path, CountingDetector())


@pytest.fixture(scope="module")
def lpips():
    torch.manual_seed(1)
    net = VGG16(with_classifier=False, with_lpips=True)
    for lin in net.lins:
        lin.weight.data.uniform_(0, 0.1)
    return net.eval()


@pytest.mark.parametrize("name", ["ppl_zfull", "ppl_wfull", "ppl_zend", "ppl_wend", "ppl2_wend"])
def test_ppl_is_zero_for_a_generator_that_ignores_its_latent(name, lpips, tmp_path):
    torch.manual_seed(2)
    constant = FakeG(img_resolution=32, ignore_latent=True)
    varying = FakeG(img_resolution=32)
    # LPIPS for one variant, a cheap detector for the others.
    detector = lpips if name == "ppl_zfull" else CountingDetector()
    assert _run(name, constant, None, tmp_path, detector, num_gen=8, batch_size=8)["results"][name] == 0
    assert _run(name, varying, None, tmp_path, detector, num_gen=8, batch_size=8)["results"][name] > 0


def test_conditional_generator_draws_dataset_labels(tmp_path):
    data = write_png_dataset(tmp_path / "data.zip", random_images(12), labels=np.arange(12) % 3, as_zip=True)
    assert np.array_equal(real_labels(data), np.eye(3)[np.arange(12) % 3])
    G = FakeG(c_dim=3)
    assert np.isfinite(_run("kid1k_full", G, data, tmp_path, CountingDetector(), num_gen=12)["results"]["kid1k_full"])
    unlabeled = write_png_dataset(tmp_path / "plain.zip", random_images(12), as_zip=True)
    with pytest.raises(UserError, match="conditional"):
        _run("kid1k_full", G, unlabeled, tmp_path, CountingDetector(), num_gen=12)


def test_zip_and_folder_read_alike_and_shard_over_ranks(tmp_path):
    images = random_images(11, channels=1)
    folder = write_png_dataset(tmp_path / "folder", images)
    archive = write_png_dataset(tmp_path / "data.zip", images, as_zip=True)
    expected = images.transpose(0, 3, 1, 2)  # [N, 1, H, W]
    for source in (folder, archive):
        assert np.array_equal(np.concatenate(list(iterate_real_images(source, batch_size=4))), expected)
    # Two ranks read items i*2 + r (the last wraps around); interleaved they restore the order.
    shards = [np.concatenate(list(iterate_real_images(archive, 4, rank=r, world_size=2))) for r in range(2)]
    assert np.array_equal(np.stack(shards, axis=1).reshape(-1, 1, 16, 16)[:11], expected)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no images"):
        list(iterate_real_images(tmp_path / "empty", 4))


def test_append_metric_result(tmp_path):
    result = {"results": {"fid50k_full": 3.5}, "metric": "fid50k_full", "total_time": 1.0, "num_gen": 10}
    path = append_metric_result(tmp_path, result, snapshot=tmp_path / "network-snapshot-000100.safetensors")
    append_metric_result(tmp_path, result)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert path.name == "metric-fid50k_full.jsonl" and len(lines) == 2
    assert lines[0]["snapshot"] == "network-snapshot-000100.safetensors" and lines[1]["snapshot"] is None
    assert lines[0]["results"] == {"fid50k_full": 3.5} and "timestamp" in lines[0]


@GENERATORS.register("_test_metrics_fake_g")
@persistent("_test_metrics_fake_g")
class PersistentFakeG(FakeG):
    pass


def test_cli_prints_and_appends_json_lines(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("STYLEFORGE_CACHE", str(tmp_path / "cache"))
    network = tmp_path / "G.safetensors"
    save_network(PersistentFakeG(), network)
    detector = tmp_path / "detector.pt"
    torch.jit.save(torch.jit.script(CountingDetector()), detector)
    data = write_png_dataset(tmp_path / "data", random_images(20))
    out = tmp_path / "metrics.jsonl"
    argv = ["metrics", "--network", str(network), "--data", str(data), "--metrics", "fid1k_full,kid1k_full",
            "--detector", str(detector), "--num-gen", "20", "--batch-size", "10", "--device", "cpu", "--out", str(out)]
    assert main(argv) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [p["metric"] for p in printed] == ["fid1k_full", "kid1k_full"]
    assert [json.loads(line) for line in out.read_text().splitlines()] == printed
    assert main(argv[:5] + ["--metrics", "fid3k"]) == 2
    assert "unknown metric" in capsys.readouterr().err


def _ddp_worker(rank, world_size, init_file, data, out_dir):
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    from styleforge.metrics.detectors import wrap_module
    from styleforge.metrics.feature_stats import ExtractOptions, real_feature_stats

    opts = ExtractOptions(device=torch.device("cpu"), batch_size=4, rank=rank, world_size=world_size,
                          cache_dir=out_dir, progress=False)
    stats = real_feature_stats(data, wrap_module(CountingDetector(), "fid"), opts, capture_all=True)
    np.save(out_dir / f"features{rank}.npy", stats.features())
    torch.distributed.destroy_process_group()


def test_two_ranks_gather_the_same_features_as_one(tmp_path):
    data = write_png_dataset(tmp_path / "data", random_images(13))
    torch.multiprocessing.spawn(_ddp_worker, args=(2, tmp_path / "init", data, tmp_path), nprocs=2)
    from styleforge.metrics.detectors import wrap_module
    from styleforge.metrics.feature_stats import ExtractOptions, real_feature_stats

    single = real_feature_stats(data, wrap_module(CountingDetector(), "fid"),
                                ExtractOptions(device=torch.device("cpu"), progress=False), capture_all=True,
                                use_cache=False).features()
    assert single.shape == (13, 48)
    for rank in range(2):
        assert np.array_equal(np.load(tmp_path / f"features{rank}.npy"), single)
