"""Trains the `builtin:digits` classifier (styleforge/metrics/digits_classifier.py) and writes its weights.

    python -m styleforge.metrics.digits_training [--out FILE]

The images are exactly those of `styleforge dataset --source builtin:digits --resolution 32` (the same
Lanczos upscaling). A fixed, stratified fifth of each class is held out and never trained on; the held-out
accuracy is printed. Training is deterministic: fixed seeds for the initialisation, the batch order and the
augmentation (random shifts of up to 2 px), and one CPU thread, since the thread count changes the order of
float sums. Same torch, same CPU kind: same file, bit for bit.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from styleforge.metrics.digits_classifier import RESOLUTION, WEIGHTS_FILE, DigitsClassifier

HELD_OUT_FRACTION = 0.2
SPLIT_SEED = 0


def digits_images() -> tuple[np.ndarray, np.ndarray]:
    """The built-in digits as the dataset tool writes them at 32 px: uint8 [1797, 1, 32, 32], labels [1797]."""
    from styleforge.data.builtin import DigitsSource
    from styleforge.data.transforms import apply_transform

    source = DigitsSource()
    images = [np.asarray(apply_transform(source.read(name), "none", RESOLUTION, "lanczos", allow_upscale=True))
              for name in source.names]
    labels = [source.metadata.labels[name] for name in source.names]
    return np.stack(images)[:, None], np.asarray(labels, dtype=np.int64)


def held_out_mask(labels: np.ndarray, fraction: float = HELD_OUT_FRACTION, seed: int = SPLIT_SEED) -> np.ndarray:
    """Bool [N]: a fixed random `fraction` of each class, held out of training."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(labels), dtype=bool)
    for k in np.unique(labels):
        members = np.flatnonzero(labels == k)
        mask[rng.permutation(members)[:round(len(members) * fraction)]] = True
    return mask


def _shift(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Each image moved by up to `max_shift` px in x and y, filled with background (-1 in prepared images)."""
    n, _, h, w = x.shape
    padded = F.pad(x, [max_shift] * 4, value=-1.0)
    dx, dy = torch.randint(0, 2 * max_shift + 1, (2, n), generator=generator).tolist()
    return torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])


def train_digits_classifier(images: np.ndarray, labels: np.ndarray, epochs: int = 30, batch: int = 64,
                            lr: float = 2e-3, seed: int = 0, max_shift: int = 2) -> DigitsClassifier:
    """Trains a fresh classifier with Adam (cosine-decayed lr) on uint8 images [N, 1, 32, 32] and labels [N],
    then sets its feature scale (see digits_classifier.py) on the same images. The caller's random state and
    thread count are left as they were."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            return _fit(DigitsClassifier(), images, labels, epochs, batch, lr, seed, max_shift)
    finally:
        torch.set_num_threads(threads)


def _fit(net: DigitsClassifier, images: np.ndarray, labels: np.ndarray, epochs: int, batch: int, lr: float,
         seed: int, max_shift: int) -> DigitsClassifier:
    generator = torch.Generator().manual_seed(seed)
    x_all = DigitsClassifier.prepare(torch.from_numpy(images))
    y_all = torch.from_numpy(labels)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * -(-len(images) // batch))
    net.train()
    for _ in range(epochs):
        order = torch.randperm(len(images), generator=generator)
        for start in range(0, len(order), batch):
            idx = order[start:start + batch]
            loss = F.cross_entropy(net.classes(F.relu(net.embed(_shift(x_all[idx], max_shift, generator)))),
                                   y_all[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    net.eval().requires_grad_(False)
    with torch.no_grad():
        net.feature_scale.fill_(net.embed(x_all).square().mean().rsqrt().item())
    return net


def accuracy(net: DigitsClassifier, images: np.ndarray, labels: np.ndarray) -> float:
    with torch.no_grad():
        predicted = net(torch.from_numpy(images)).argmax(dim=1).numpy()
    return float((predicted == labels).mean())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=WEIGHTS_FILE, help="weights file (default: the shipped one)")
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args(argv)
    from safetensors.torch import save_file

    images, labels = digits_images()
    held_out = held_out_mask(labels)
    net = train_digits_classifier(images[~held_out], labels[~held_out], epochs=args.epochs)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(args.out))
    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()
    held_in_acc = accuracy(net, images[~held_out], labels[~held_out])
    held_out_acc = accuracy(net, images[held_out], labels[held_out])
    print(f"wrote {args.out} (sha256 {digest[:16]}): accuracy {held_in_acc:.4f} on the {int((~held_out).sum())} "
          f"held-in images, {held_out_acc:.4f} on the {int(held_out.sum())} held-out ones")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
