"""The studio's web server: a small Starlette app, served by uvicorn on 127.0.0.1.

Routes: `/` the page, `/static/*` its files, and a JSON API:
- GET  /api/info    the network's description (503 with the reason when it could not be loaded)
- POST /api/render  settings -> the image as a PNG data URL (and every scale for MSG-StyleGAN), timings
- POST /api/save    settings -> studio-NNNN.png and studio-NNNN.json (with the command that redraws it)
- POST /api/reload  reads the network file again (e.g. a newer training snapshot, or a fixed file)
Every bad request gets a 4xx with a message: a bad value 400, a body that is not JSON 400 or 415.
"""

from __future__ import annotations

import base64
import contextlib
import io
import ipaddress
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import uvicorn
from PIL import Image
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

import styleforge
from styleforge.errors import UserError, os_error_message
from styleforge.inference.network_info import NetworkInfo, describe
from styleforge.inference.render import Rendered, render
from styleforge.inference.settings import parse_settings, settings_document

STATIC_DIR = Path(__file__).parent / "static"
MAX_BODY_BYTES = 64 * 1024  # settings are a few hundred bytes
LOOPBACK_NAMES = ["127.0.0.1", "localhost", "[::1]"]
log = logging.getLogger("styleforge.studio")


class RequestError(Exception):
    """A request the server refuses, with its HTTP status."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def png_bytes(image: np.ndarray, compress_level: int) -> bytes:
    """[H, W, C] uint8 -> a PNG file's bytes."""
    buffer = io.BytesIO()
    Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image).save(buffer, format="PNG",
                                                                           compress_level=compress_level)
    return buffer.getvalue()


def png_data_url(image: np.ndarray) -> str:
    """[H, W, C] uint8 -> 'data:image/png;base64,...' (fast zlib level: the pixels are the same)."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(image, compress_level=1)).decode("ascii")


def create_new_file(path: Path) -> int:
    """A descriptor of `path`, created for writing; FileExistsError when anything is there already, a symlink
    (even a dangling one) included, so a link planted in the output folder is never written through."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o666)


def claim_numbered_pair(folder: Path, stem: str, suffixes: tuple[str, str]) -> tuple[list[Path], list[int]]:
    """The first free `<stem>-NNNN<suffix>` pair in `folder`, both files created exclusively (no race with
    another writer, no existing file or link reused), as paths and open descriptors."""
    number = 1
    while True:
        paths = [folder / f"{stem}-{number:04d}{suffix}" for suffix in suffixes]
        fds: list[int] = []
        try:
            for path in paths:
                fds.append(create_new_file(path))
            return paths, fds
        except FileExistsError:
            for path, fd in zip(paths, fds):
                os.close(fd)
                path.unlink()
            number += 1


class Studio:
    """What the page works on: the generator (or why it could not be loaded) and where saved images go.

    Renders are serialized by a lock: one generator, and requests from one page.
    """

    def __init__(self, network: str | Path, device: str = "cpu", outdir: str | Path = "studio",
                 G: torch.nn.Module | None = None):
        """Loads `network`, unless the generator loaded from it is given as `G`."""
        self.network = Path(network).absolute()
        self.device = str(device)
        self.outdir = Path(outdir).absolute()
        self.lock = threading.Lock()
        self.G = G
        self.info: NetworkInfo | None = None if G is None else describe(G)
        self.load_error: str | None = None
        if G is None:
            self.load()

    def load(self) -> None:
        """(Re)loads the network; a failure is kept as `load_error` for the page to show."""
        with self.lock:
            try:
                self.G = styleforge.load(self.network, device=self.device)
                self.info = describe(self.G)
                self.load_error = None
            except UserError as e:
                self.G, self.info, self.load_error = None, None, str(e)
            except Exception as e:  # any other failure to build the network from the file
                self.G, self.info = None, None
                self.load_error = f"{self.network}: could not be loaded ({type(e).__name__}: {e})"

    def info_json(self) -> dict:
        if self.load_error is not None:
            raise RequestError(503, self.load_error)
        return {"network": str(self.network), "device": self.device, "outdir": str(self.outdir),
                "info": self.info.to_json()}

    def _render(self, payload: Any) -> Rendered:
        if self.G is None:
            raise RequestError(503, self.load_error or "no network loaded")
        settings = parse_settings(payload, self.info)
        return render(self.G, settings)

    def render_json(self, payload: Any) -> dict:
        with self.lock:
            start = time.perf_counter()
            rendered = self._render(payload)
            rendered_at = time.perf_counter()
            image = png_data_url(rendered.image)
            scales = [png_data_url(s) for s in rendered.scales] if len(rendered.scales) > 1 else []
            encoded_at = time.perf_counter()
        return {"image": image, "scales": scales, "settings": rendered.settings.to_json(),
                "timing": {"render_ms": 1000 * (rendered_at - start), "encode_ms": 1000 * (encoded_at - rendered_at)}}

    def save(self, payload: Any) -> dict:
        """Draws the settings again (the saved pixels come from the server, not from the page) and writes
        studio-NNNN.png and studio-NNNN.json into the output folder."""
        with self.lock:
            rendered = self._render(payload)
            self.outdir.mkdir(parents=True, exist_ok=True)
            (image_file, settings_file), fds = claim_numbered_pair(self.outdir, "studio", (".png", ".json"))
            doc = settings_document(rendered.settings, self.network, settings_file, image_file, self.device)
            for fd, data in zip(fds, (png_bytes(rendered.image, compress_level=6),
                                      (json.dumps(doc, indent=2) + "\n").encode())):
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
        return {"image_file": str(image_file), "settings_file": str(settings_file), **doc}

    def reload(self, payload: Any) -> dict:
        self.load()
        return self.info_json()


def too_large(size: int) -> str:
    return f"request body of {size} bytes; settings are at most {MAX_BODY_BYTES}"


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


async def read_json(request: Request) -> Any:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        # Also keeps other web sites out: their cross-origin JSON requests need a CORS preflight we never grant.
        raise RequestError(415, f"send the settings as application/json (got content-type {content_type!r})")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:  # refused before it is read
        raise RequestError(413, too_large(int(declared)))
    body = bytearray()
    async for chunk in request.stream():  # a chunked body has no length header: stop reading at the limit
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise RequestError(413, f"request body over {MAX_BODY_BYTES} bytes; settings are at most that")
    try:
        return json.loads(bytes(body) or b"null", parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as e:
        raise RequestError(400, f"malformed JSON: {e}") from e
    except RecursionError:
        raise RequestError(400, "malformed JSON: nested too deeply") from None


def json_endpoint(handler: Callable[[Any], dict], method: str) -> Callable:
    """An endpoint calling `handler(payload)` in a worker thread; errors become JSON messages with a status:
    RequestError its own, UserError 400, anything else 500 (logged with its traceback on the server)."""

    async def endpoint(request: Request) -> Response:
        try:
            payload = await read_json(request) if method == "POST" else None
            return JSONResponse(await run_in_threadpool(handler, payload))
        except RequestError as e:
            return JSONResponse({"error": str(e)}, status_code=e.status)
        except UserError as e:
            return JSONResponse({"error": str(e)}, status_code=400)
        except OSError as e:  # e.g. the output folder is read-only or full: the server's fault, said plainly
            return JSONResponse({"error": os_error_message(e)}, status_code=500)
        except Exception as e:
            log.exception("studio request %s failed", request.url.path)
            return JSONResponse({"error": f"internal error: {type(e).__name__}: {e}"}, status_code=500)

    return endpoint


def create_app(studio: Studio, allowed_hosts: list[str] | None = None) -> Starlette:
    """The app. `allowed_hosts` (default: the loopback names) guards against DNS rebinding: a page on another
    site that resolves its own name to 127.0.0.1 still sends its name in the Host header."""

    async def index(request: Request) -> Response:
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-store"})

    routes = [
        Route("/", index),
        Route("/api/info", json_endpoint(lambda _: studio.info_json(), "GET"), methods=["GET"]),
        Route("/api/render", json_endpoint(studio.render_json, "POST"), methods=["POST"]),
        Route("/api/save", json_endpoint(studio.save, "POST"), methods=["POST"]),
        Route("/api/reload", json_endpoint(studio.reload, "POST"), methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts or LOOPBACK_NAMES)]
    return Starlette(routes=routes, middleware=middleware)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (port 0: any free one), with a clear error when the address is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise UserError(f"cannot listen on {host}:{port} ({e.strerror}); pick another --port or --host") from e
    sock.listen(64)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def make_server(app: Starlette) -> uvicorn.Server:
    return uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))


@contextlib.contextmanager
def running_in_thread(app: Starlette, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serves `app` from a background thread for the duration of the block; yields its base URL."""
    sock = bind(host, port)
    server = make_server(app)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the studio server did not start")
            time.sleep(0.01)
        yield url_of(sock)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
