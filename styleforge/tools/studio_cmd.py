"""Interactive studio: a local web page to explore a generator (seeds, truncation, mixing, interpolation).

Serves a page on http://127.0.0.1:PORT (open it in a browser). Pick a seed, truncation, class and noise mode;
mix the styles of a second seed into a range of layers; slide between two seeds (slerp in Z or lerp in W);
drag the heatmap centres of an EqGAN-SA generator; see every scale of an MSG-StyleGAN generator. "Save"
writes studio-NNNN.png and studio-NNNN.json into --outdir; the JSON holds the `styleforge generate` command
that draws the same pixels again. A network file that cannot be loaded is reported on the page (fix it and
press "Reload").

Example:
  styleforge studio --network run/network-snapshot-000400.safetensors --port 8765
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from styleforge.errors import UserError
from styleforge.inference.seeds import default_device
from styleforge.tools.generate_cmd import add_network_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_network_arguments(parser)
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
    parser.add_argument("--outdir", default="studio", help="where 'Save' writes images and settings (default ./studio)")


def run(args: argparse.Namespace) -> int:
    try:
        from styleforge.studio import server
    except ImportError as e:
        raise UserError(f"the studio needs the `studio` extra: pip install 'styleforge[studio]' ({e})") from e
    if not 0 <= args.port < 65536:
        raise UserError(f"--port {args.port}: must be in [0, 65535]")
    if Path(args.outdir).exists() and not Path(args.outdir).is_dir():
        raise UserError(f"--outdir {args.outdir}: is a file; 'Save' needs a folder")
    studio = server.Studio(args.network, device=args.device or str(default_device()), outdir=args.outdir)
    if studio.load_error:
        print(f"styleforge studio: warning: {studio.load_error}\n  (the page shows this; fix the file and press "
              f"Reload)", file=sys.stderr)
    loopback = server.is_loopback(args.host)
    if not loopback:
        print(f"styleforge studio: warning: listening on {args.host}: anyone who can reach it can render and save "
              f"images", file=sys.stderr)
    sock = server.bind(args.host, args.port)
    app = server.create_app(studio, allowed_hosts=None if loopback else ["*"])
    print(f"StyleForge Studio on {server.url_of(sock)}  (network {studio.network}, device {studio.device}; "
          f"Ctrl+C stops)", flush=True)
    try:
        server.make_server(app).run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn shuts down on Ctrl+C, then raises it again: here it is the normal end
        pass
    print("StyleForge Studio stopped", flush=True)
    return 0
