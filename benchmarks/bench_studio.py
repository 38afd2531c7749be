"""Latency of the studio per image: server-side render and PNG encode, and the HTTP round trip.

    python benchmarks/bench_studio.py [--device cpu] [--sizes 16,64,128,256] [--channel-base 8192] [--requests 20]

Serves a StyleGAN2 G with random weights (speed does not depend on the values) from a background thread and
POSTs /api/render with a new seed each time, as the page does while a seed or slider changes. Prints medians
in ms: render (mapping + synthesis + copy to the CPU), PNG encode (+ base64), and round trip (request to
decoded JSON, the server's work included). A browser adds decoding the PNG and painting it (a few ms).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path

import torch

import styleforge.networks  # noqa: F401  (registers the networks)
from styleforge.networks.persistence import save_network
from styleforge.registry import GENERATORS
from styleforge.studio.server import Studio, create_app, running_in_thread


def post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sizes", default="16,64,128,256", help="image resolutions to measure")
    parser.add_argument("--channel-base", type=int, default=8192)
    parser.add_argument("--channel-max", type=int, default=256)
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()
    print(f"device {args.device}, torch threads {torch.get_num_threads()}, channel_base {args.channel_base}, "
          f"channel_max {args.channel_max}, medians of {args.requests} requests (after 3 warm-up)")
    print(f"{'res':>5} {'params':>8} {'render ms':>10} {'PNG ms':>8} {'round trip ms':>14}")
    with tempfile.TemporaryDirectory() as tmp:
        for res in (int(s) for s in args.sizes.split(",")):
            G = GENERATORS.get("stylegan2")(z_dim=512, w_dim=512, img_resolution=res,
                                            synthesis_kwargs=dict(channel_base=args.channel_base,
                                                                  channel_max=args.channel_max))
            path = Path(tmp) / f"G{res}.safetensors"
            save_network(G, path)
            studio = Studio(path, device=args.device, outdir=tmp)
            with running_in_thread(create_app(studio)) as url:
                render_ms, encode_ms, trip_ms = [], [], []
                for i in range(args.requests + 3):
                    start = time.perf_counter()
                    out = post(url + "/api/render", {"seed": i, "psi": 0.7})
                    if i >= 3:
                        trip_ms.append(1000 * (time.perf_counter() - start))
                        render_ms.append(out["timing"]["render_ms"])
                        encode_ms.append(out["timing"]["encode_ms"])
            params = sum(p.numel() for p in G.parameters()) / 1e6
            print(f"{res:>5} {params:>7.1f}M {statistics.median(render_ms):>10.1f} "
                  f"{statistics.median(encode_ms):>8.1f} {statistics.median(trip_ms):>14.1f}")


if __name__ == "__main__":
    main()
