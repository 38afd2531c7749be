"""Small stand-ins shared by the metric tests: a generator with the project's interface, a cheap
feature network that counts its calls, and writers of PNG data sets (folder or ZIP)."""

import json
import zipfile

import numpy as np
import torch
from PIL import Image
from torch import nn


class FakeMapping(nn.Module):
    def __init__(self, z_dim, c_dim, w_dim, num_ws):
        super().__init__()
        self.num_ws = num_ws
        self.fc = nn.Linear(z_dim + c_dim, w_dim)
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, update_emas=False):
        w = self.fc(torch.cat([z, c], dim=1))
        w = self.w_avg + (w - self.w_avg) * truncation_psi
        return w[:, None].repeat(1, self.num_ws, 1)  # [N, num_ws, w_dim]


class FakeSynthesis(nn.Module):
    def __init__(self, w_dim, img_resolution, img_channels, ignore_latent, offset):
        super().__init__()
        self.shape = (img_channels, img_resolution, img_resolution)
        self.ignore_latent = ignore_latent
        self.offset = offset
        self.fc = nn.Linear(w_dim, img_channels * img_resolution**2)
        self.register_buffer("noise_const", torch.zeros(img_resolution, img_resolution))

    def forward(self, ws, noise_mode="random", update_emas=False):
        x = torch.zeros_like(ws[:, 0]) if self.ignore_latent else ws[:, 0]
        img = torch.tanh(self.fc(x).view(-1, *self.shape) + self.offset)
        if noise_mode == "const":
            img = img + 0.01 * self.noise_const
        return img.clamp(-1, 1)  # [N, C, H, W]


class FakeG(nn.Module):
    """The generator interface of docs/architecture.md with linear layers; `offset` shifts the image
    distribution, `ignore_latent` makes every image the same."""

    def __init__(self, z_dim=8, c_dim=0, w_dim=8, num_ws=2, img_resolution=16, img_channels=3,
                 ignore_latent=False, offset=0.0):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.mapping = FakeMapping(z_dim, c_dim, w_dim, num_ws)
        self.synthesis = FakeSynthesis(w_dim, img_resolution, img_channels, ignore_latent, offset)

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, noise_mode="random", update_emas=False):
        return self.synthesis(self.mapping(z, c, truncation_psi, truncation_cutoff), noise_mode=noise_mode)


class CountingDetector(nn.Module):
    """Features [N, C*16]: the image averaged down to 4x4. Counts how often it is called."""

    def __init__(self):
        super().__init__()
        self.calls = 0
        self.register_buffer("scale", torch.tensor(1 / 255))

    def forward(self, img):
        self.calls += 1
        return nn.functional.adaptive_avg_pool2d(img.float() * self.scale, 4).flatten(1)


def random_images(n, channels=3, size=16, seed=0, low=0, high=256):
    rng = np.random.default_rng(seed)
    return rng.integers(low, high, size=(n, size, size, channels), dtype=np.uint8)


def _png_bytes(array):
    import io

    buf = io.BytesIO()
    Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(buf, format="PNG")
    return buf.getvalue()


def write_png_dataset(path, images, labels=None, as_zip=False):
    """Images [N, H, W, C] uint8 as 00000/img%08d.png (+ dataset.json with class labels) in a folder or ZIP."""
    names = [f"00000/img{i:08d}.png" for i in range(len(images))]
    meta = json.dumps({"labels": [[n, int(l)] for n, l in zip(names, labels)] if labels is not None else None})
    if as_zip:
        with zipfile.ZipFile(path, "w") as z:
            for name, img in zip(names, images):
                z.writestr(name, _png_bytes(img))
            z.writestr("dataset.json", meta)
    else:
        for name, img in zip(names, images):
            (path / name).parent.mkdir(parents=True, exist_ok=True)
            (path / name).write_bytes(_png_bytes(img))
        (path / "dataset.json").write_text(meta)
    return path


def test_fake_generator_follows_the_interface():
    G = FakeG(c_dim=3)
    z, c = torch.randn(4, G.z_dim), torch.eye(3)[[0, 1, 2, 0]]
    ws = G.mapping(z, c)
    assert ws.shape == (4, G.num_ws, G.w_dim)
    img = G.synthesis(ws, noise_mode="const")
    assert img.shape == (4, 3, 16, 16) and img.abs().max() <= 1
    assert torch.allclose(G(z, c, noise_mode="const"), img)
