"""Feature-extraction throughput (images/s) of the metric networks, with random weights of the real
architectures (speed does not depend on the values).

    python benchmarks/bench_metrics.py [--device cuda] [--batch 32] [--res 32 256] [--seconds 3] [--vgg]

Inception-v3 (FID/KID/IS) resizes every input to 299x299, so its cost hardly depends on the input
resolution; `--vgg` adds VGG16 fc2 features (precision/recall, at 224x224) and the LPIPS embedding
(PPL, at the input resolution). Each number is the median over timed blocks.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from styleforge.metrics.inception import InceptionV3FID
from styleforge.metrics.vgg16 import VGG16


def images_per_second(fn, x: torch.Tensor, seconds: float) -> float:
    sync = torch.cuda.synchronize if x.device.type == "cuda" else (lambda: None)
    with torch.no_grad():
        fn(x)  # warm-up
        rates, start = [], time.perf_counter()
        while time.perf_counter() - start < seconds or len(rates) < 2:
            sync()
            t0 = time.perf_counter()
            fn(x)
            sync()
            rates.append(x.shape[0] / (time.perf_counter() - t0))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=None, help="images per call (default 64 on GPU, 8 on CPU)")
    parser.add_argument("--res", type=int, nargs="+", default=[32, 256])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--vgg", action="store_true", help="also VGG16 features and LPIPS")
    args = parser.parse_args()
    device = torch.device(args.device)
    batch = args.batch or (64 if device.type == "cuda" else 8)
    print(f"device {device} ({torch.get_num_threads()} CPU threads), batch {batch}, torch {torch.__version__}")

    networks = [("inception pool features", InceptionV3FID(), {"return_features": True})]
    if args.vgg:
        networks += [("vgg16 fc2 features", VGG16(), {"return_features": True}),
                     ("lpips embedding", VGG16(with_classifier=False, with_lpips=True),
                      {"resize_images": False, "return_lpips": True})]
    for name, net, kwargs in networks:
        net = net.to(device).eval()
        for res in args.res:
            x = torch.randint(0, 256, (batch, 3, res, res), dtype=torch.uint8, device=device)
            if kwargs.get("return_lpips"):
                x = x.float()
            rate = images_per_second(lambda img, net=net, kwargs=kwargs: net(img, **kwargs), x, args.seconds)
            print(f"{name:<26s} input {res:>4d}x{res:<4d} {rate:8.1f} images/s")


if __name__ == "__main__":
    main()
