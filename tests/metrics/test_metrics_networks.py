"""The feature networks: architecture facts, TF-compatible resize, LPIPS, and loading from every file format."""

import numpy as np
import pytest
import torch
from torch import nn

from styleforge.errors import UserError
from styleforge.metrics import detectors, weights
from styleforge.metrics.detectors import load_detector
from styleforge.metrics.inception import InceptionV3FID, resize_bilinear_tf1
from styleforge.metrics.vgg16 import LPIPS_TAPS, VGG16


@pytest.fixture(autouse=True)
def isolated_weights(tmp_path, monkeypatch):
    for var in [weights.WEIGHTS_DIR_VAR, *weights.ENV_VARS.values()]:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv(weights.CACHE_DIR_VAR, str(tmp_path / "cache"))
    monkeypatch.setattr(detectors, "_loaded", {})


def _randomize_batchnorm(net):
    """Default BatchNorm statistics make every layer alike; random ones make the round trips meaningful."""
    g = torch.Generator().manual_seed(0)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    return net.eval()


@pytest.fixture(scope="module")
def inception():
    torch.manual_seed(0)
    return _randomize_batchnorm(InceptionV3FID())


@pytest.fixture(scope="module")
def images():
    return torch.randint(0, 256, (1, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def features(inception, images):
    with torch.no_grad():
        return inception(images, return_features=True)  # [1, 2048]


def test_inception_has_the_fid_architecture():
    with torch.device("meta"):
        net = InceptionV3FID()
    # torchvision's inception_v3 has 27,161,264 parameters; without AuxLogits (3,326,696) and with
    # 1008 instead of 1000 classes (+8 * 2049) it is the FID network.
    assert sum(p.numel() for p in net.parameters()) == 27_161_264 - 3_326_696 + 8 * 2049
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert shapes["Conv2d_1a_3x3.conv.weight"] == (32, 3, 3, 3)
    assert shapes["Mixed_6b.branch7x7dbl_5.conv.weight"] == (192, 128, 1, 7)
    assert shapes["Mixed_7c.branch3x3dbl_3b.conv.weight"] == (384, 384, 3, 1)
    assert shapes["fc.weight"] == (1008, 2048)
    assert net.Mixed_7c.max_pool and not net.Mixed_7b.max_pool
    assert all(m.eps == 1e-3 for m in net.modules() if isinstance(m, nn.BatchNorm2d))


def test_vgg16_has_torchvision_parameter_count():
    with torch.device("meta"):
        assert sum(p.numel() for p in VGG16().parameters()) == 138_357_544


def test_tf1_resize():
    row = torch.tensor([0.0, 10.0]).view(1, 1, 1, 2).expand(1, 1, 2, 2)
    # TF 1.x samples at dst * in/out with no half-pixel offset: 0, 0.5, 1, 1.5 (clamped).
    assert resize_bilinear_tf1(row, 4)[0, 0, 0].tolist() == [0.0, 5.0, 10.0, 10.0]
    x = torch.rand(2, 3, 9, 9)
    assert torch.equal(resize_bilinear_tf1(x, 9), x)
    assert torch.allclose(resize_bilinear_tf1(torch.full((1, 3, 7, 5), 42.0), 11), torch.tensor(42.0))
    # A scalar loop over the TF definition, for a non-square enlargement and a reduction.
    for h, w, size in ((5, 7, 8), (9, 6, 4)):
        src = torch.rand(1, 1, h, w, dtype=torch.float64)
        ref = np.zeros((size, size))
        for i in range(size):
            for j in range(size):
                y, x_ = np.float32(i) * np.float32(h / size), np.float32(j) * np.float32(w / size)
                y0, x0 = int(np.floor(y)), int(np.floor(x_))
                y1, x1 = min(y0 + 1, h - 1), min(x0 + 1, w - 1)
                s = src[0, 0].numpy()
                top = s[y0, x0] + (s[y0, x1] - s[y0, x0]) * (x_ - x0)
                bottom = s[y1, x0] + (s[y1, x1] - s[y1, x0]) * (x_ - x0)
                ref[i, j] = top + (bottom - top) * (y - y0)
        assert np.allclose(resize_bilinear_tf1(src, size)[0, 0].numpy(), ref, atol=1e-6)


def test_inception_outputs(inception, images, features):
    assert features.shape == (1, 2048) and torch.isfinite(features).all() and features.std() > 0.1
    with torch.no_grad():
        probs = inception(images)
    assert probs.shape == (1, 1008) and torch.allclose(probs.sum(1), torch.ones(1))
    assert torch.allclose(probs, inception.fc(features).softmax(1), atol=1e-6)


def test_state_dict_round_trip(inception, images, features, tmp_path):
    path = tmp_path / "my_inception.pth"
    torch.save(inception.state_dict(), path)
    loaded = load_detector("fid", path)
    assert isinstance(loaded.net, InceptionV3FID) and loaded.net is not inception
    assert torch.allclose(loaded(images), features, atol=1e-5)
    # For the Inception Score: the same network, giving probabilities without the output bias (as official).
    is_detector = load_detector("is", path, kind="state-dict")
    assert is_detector.net is loaded.net
    probs = is_detector(images)
    assert torch.allclose(probs, (features @ inception.fc.weight.t()).softmax(1), atol=1e-6)


def test_torchscript_round_trip(inception, images, features, tmp_path):
    class Features(nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, img):
            return self.net(img, return_features=True)

    path = tmp_path / "traced.pt"
    with torch.no_grad():
        torch.jit.save(torch.jit.trace(Features(inception), images, check_trace=False), path)
    loaded = load_detector("fid", path)
    assert isinstance(loaded.net, torch.jit.ScriptModule)
    assert loaded.call_kwargs == {} and not loaded.rgb  # a custom detector: called as net(images)
    assert torch.allclose(loaded(images), features, atol=1e-5)
    assert load_detector("fid", path, kind="torchscript").net is loaded.net  # kept for the process
    with pytest.raises(UserError, match="TorchScript archive, not a state dict"):
        load_detector("fid", path, kind="state-dict")


def test_torchscript_with_nvidia_signature_is_called_like_nvidia(tmp_path):
    class NvidiaLike(nn.Module):
        def forward(self, img, return_features: bool = False, no_output_bias: bool = False):
            x = img.to(torch.float32).mean(dim=(2, 3))  # [N, 3]
            return x if return_features else x.softmax(dim=1)

    path = tmp_path / "inception-like.pt"
    torch.jit.save(torch.jit.script(NvidiaLike()), path)
    detector = load_detector("fid", path)
    assert detector.call_kwargs == {"return_features": True} and detector.rgb
    gray = torch.randint(0, 256, (4, 1, 8, 8), dtype=torch.uint8)  # repeated to RGB for NVIDIA-style networks
    assert torch.allclose(detector(gray), gray.float().mean(dim=(2, 3)).repeat(1, 3))


def test_pickled_modules_are_refused(tmp_path):
    path = tmp_path / "detector.pkl"
    torch.save(nn.Linear(2, 2), path)  # a pickle that needs a class to be imported and built
    with pytest.raises(UserError, match="neither a state dict nor a TorchScript"):
        load_detector("fid", path)
    with pytest.raises(UserError, match="does not exist"):
        load_detector("fid", tmp_path / "missing.pt")


def _lpips_reference(net, x0, x1):
    """LPIPS as defined: per tap, channel-normalised features, squared difference weighted by the
    linear layer, averaged over space, summed over taps."""
    def taps(x):
        x = (x / 127.5 - 1 - net.lpips_shift) / net.lpips_scale
        out = []
        for i, layer in enumerate(net.features[:LPIPS_TAPS[-1] + 1]):
            x = layer(x)
            if i in LPIPS_TAPS:
                out.append(x / (x.norm(dim=1, keepdim=True) + 1e-10))
        return out

    return sum(lin((a - b) ** 2).mean(dim=(2, 3)).flatten() for lin, a, b in zip(net.lins, taps(x0), taps(x1)))


@pytest.fixture(scope="module")
def lpips_net():
    torch.manual_seed(2)
    net = VGG16(with_classifier=False, with_lpips=True).eval()
    for lin in net.lins:
        lin.weight.data.uniform_(0, 0.1)
    return net


def test_lpips_embedding_distance_is_lpips(lpips_net):
    x0, x1 = torch.rand(3, 3, 32, 32) * 255, torch.rand(3, 3, 32, 32) * 255
    e0 = lpips_net(x0, resize_images=False, return_lpips=True)
    e1 = lpips_net(x1, resize_images=False, return_lpips=True)
    with torch.no_grad():
        assert torch.allclose((e0 - e1).square().sum(1), _lpips_reference(lpips_net, x0, x1), rtol=1e-4)


def test_lpips_loads_from_torchvision_and_lpips_files(lpips_net, tmp_path, monkeypatch):
    """The two published files, with their own key names, the LPIPS one in the legacy torch.save format,
    found by name in the cache folder and checked against (patched) pinned digests."""
    folder = tmp_path / "cache" / "weights"
    folder.mkdir(parents=True)
    trunk = {k: v for k, v in lpips_net.state_dict().items() if k.startswith("features.")}
    trunk["classifier.0.weight"] = torch.zeros(2, 2)  # the real file has a classifier; LPIPS ignores it
    torch.save(trunk, folder / "vgg16-397923af.pth")
    lins = {f"lin{k}.model.1.weight": lin.weight.detach().clone() for k, lin in enumerate(lpips_net.lins)}
    torch.save(lins, folder / "vgg.pth", _use_new_zipfile_serialization=False)
    for name in ("vgg16-397923af.pth", "vgg.pth"):
        known = weights.KNOWN_FILES[name]
        monkeypatch.setitem(weights.KNOWN_FILES, name, weights.KnownFile(
            name, known.urls, weights.file_sha256(folder / name), known.what))
    detector = load_detector("ppl")
    x = torch.rand(2, 3, 16, 16) * 255
    with torch.no_grad():
        assert torch.allclose(detector(x), lpips_net(x, resize_images=False, return_lpips=True), atol=1e-6)
    # A file under a known name with other content is refused.
    monkeypatch.setattr(detectors, "_loaded", {})
    (folder / "vgg.pth").write_bytes(b"not the published file")
    with pytest.raises(UserError, match="does not match the published vgg.pth"):
        load_detector("ppl")
