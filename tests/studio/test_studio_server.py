"""The studio server over real HTTP: the API, 4xx for every bad request (never a traceback), the page and the
message for a network that cannot be loaded, saving, and the studio command's own errors."""

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request

import numpy as np
import pytest
from studio_networks import decode_data_url, multiscale_generator, png_pixels
from tools_networks import tiny_generator

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from styleforge.cli import main  # noqa: E402
from styleforge.inference.render import render  # noqa: E402
from styleforge.inference.settings import ImageSettings, parse_settings  # noqa: E402
from styleforge.networks.persistence import save_network  # noqa: E402
from styleforge.studio.server import MAX_BODY_BYTES, Studio, create_app, running_in_thread  # noqa: E402


def request(url: str, body=None, content_type: str = "application/json", host: str | None = None):
    """(status, decoded JSON or text) of a GET (body None) or POST (a JSON-able body, or raw bytes)."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    headers = {"Content-Type": content_type} if data is not None else {}
    if host:
        headers["Host"] = host
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers), timeout=30) as r:
            status, raw, kind = r.status, r.read(), r.headers.get("content-type", "")
    except urllib.error.HTTPError as e:
        status, raw, kind = e.code, e.read(), e.headers.get("content-type", "")
    return status, json.loads(raw) if kind.startswith("application/json") else raw.decode()


@pytest.fixture(scope="module")
def network_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("net") / "G.safetensors"
    save_network(tiny_generator(), path)
    return path


@pytest.fixture(scope="module")
def served(network_file, tmp_path_factory):
    studio = Studio(network_file, outdir=tmp_path_factory.mktemp("saved"))
    with running_in_thread(create_app(studio)) as url:
        yield studio, url


def test_info_and_render(served):
    studio, url = served
    status, info = request(url + "/api/info")
    assert status == 200 and info["info"]["num_ws"] == 6 and info["info"]["spatial"] is False
    status, out = request(url + "/api/render", {"seed": 4, "psi": 0.6, "mix": {"seed": 2, "layers": [0, 1]}})
    assert status == 200 and out["scales"] == [] and out["timing"]["render_ms"] > 0
    expected = render(studio.G, parse_settings(out["settings"], studio.info)).image
    assert np.array_equal(decode_data_url(out["image"]), expected)


@pytest.mark.parametrize("body, message", [
    ({"seed": -1}, "seed -1: out of range"),
    ({"seed": 2**40}, "out of range"),
    ({"seed": 1, "psi": -3}, "psi -3: out of range"),
    ({"seed": 1, "class": 1}, "unconditional"),
    ({"seed": 1, "mix": {"seed": 1, "layers": [0, 9]}}, "mix.layers last 9"),
    ({"seed": 1, "heatmaps": {"centres": [[[2.0, 0.0]]], "sigmas": [[0.5]]}}, "not an EqGAN-SA generator"),
    (b'{"seed": 1,', "malformed JSON"),
    (b'{"seed": Infinity}', "malformed JSON: Infinity"),
    (b"\xff\xfe", "malformed JSON"),
    (b"", "expected a JSON object"),
])
def test_bad_requests_get_400_with_a_message(served, body, message):
    _, url = served
    for route in ("/api/render", "/api/save"):
        status, out = request(url + route, body)
        assert status == 400 and message in out["error"] and "Traceback" not in out["error"]


def test_other_refused_requests(served):
    _, url = served
    assert request(url + "/api/render", b'{"seed": 1}', content_type="text/plain")[0] == 415
    big = json.dumps({"seed": 1, "pad": "x" * MAX_BODY_BYTES}).encode()
    assert request(url + "/api/render", big)[0] == 413
    assert request(url + "/api/info", host="evil.example:80")[0] == 400  # DNS rebinding guard
    assert request(url + "/api/render")[0] == 405  # GET on a POST route
    assert request(url + "/api/nothing")[0] == 404


def test_an_internal_failure_is_a_500_message_not_a_traceback(network_file):
    studio = Studio(network_file)

    def broken(*args, **kwargs):
        raise RuntimeError("synthesis exploded")

    studio.G.synthesis.forward = broken
    with running_in_thread(create_app(studio)) as url:
        status, out = request(url + "/api/render", {"seed": 1})
    assert status == 500 and out == {"error": "internal error: RuntimeError: synthesis exploded"}


def test_the_page_and_its_files_are_served(served):
    _, url = served
    status, html = request(url + "/")
    assert status == 200 and '<script src="/static/studio.js">' in html
    for name in ("studio.js", "studio.css"):
        assert request(url + "/static/" + name)[0] == 200
    assert "cdn" not in html.lower() and "http" not in html.replace("http-equiv", "")  # nothing from the internet


def test_save_writes_the_image_and_a_command_that_redraws_it(served, tmp_path):
    studio, url = served
    status, saved = request(url + "/api/save", {"seed": 21, "psi": 0.8, "interp": {"seed": 3, "t": 0.4, "space": "w"}})
    assert status == 200 and saved["image_file"].endswith("studio-0001.png")
    doc = json.loads(open(saved["settings_file"]).read())
    assert doc["settings"]["interp"] == {"seed": 3, "t": 0.4, "space": "w"} and "seed_command" not in doc
    argv = shlex.split(doc["command"])
    argv[argv.index("--outdir") + 1] = str(tmp_path)
    assert main(argv[1:]) == 0
    assert np.array_equal(png_pixels(str(tmp_path / "studio-0001.png")), png_pixels(saved["image_file"]))
    assert request(url + "/api/save", {"seed": 1})[1]["image_file"].endswith("studio-0002.png")


def test_a_network_that_cannot_be_loaded_is_reported_and_can_be_reloaded(tmp_path):
    network = tmp_path / "G.safetensors"
    network.write_bytes(b"not a safetensors file")
    studio = Studio(network)
    with running_in_thread(create_app(studio)) as url:
        assert request(url + "/")[0] == 200  # the page still loads, to show the message
        status, out = request(url + "/api/info")
        assert status == 503 and str(network) in out["error"] and "not a readable safetensors file" in out["error"]
        assert request(url + "/api/render", {"seed": 1})[0] == 503
        save_network(tiny_generator(), network)  # fixed (e.g. training wrote the snapshot)
        status, out = request(url + "/api/reload", {})
        assert status == 200 and out["info"]["resolution"] == 16
        assert request(url + "/api/render", {"seed": 1})[0] == 200


def test_multiscale_networks_send_every_scale(tmp_path):
    studio = Studio(tmp_path / "msg.safetensors", G=multiscale_generator())
    with running_in_thread(create_app(studio)) as url:
        status, out = request(url + "/api/render", {"seed": 2})
    assert status == 200 and [decode_data_url(s).shape[0] for s in out["scales"]] == [4, 8, 16]
    assert np.array_equal(decode_data_url(out["scales"][-1]), decode_data_url(out["image"]))
    assert np.array_equal(decode_data_url(out["image"]), render(studio.G, ImageSettings(seed=2)).image)


def test_studio_command_errors(tmp_path, capsys, network_file):
    assert main(["studio", "--network", str(network_file), "--port", "70000"]) == 2
    assert "--port 70000" in capsys.readouterr().err
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        port = taken.getsockname()[1]
        assert main(["studio", "--network", str(network_file), "--port", str(port), "--device", "cpu"]) == 2
        assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
    finally:
        taken.close()
    (tmp_path / "file").write_text("mine")
    # (--host: were the folder not checked first, the server would fail to start, instead of serving forever)
    assert main(["studio", "--network", str(network_file), "--outdir", str(tmp_path / "file"), "--host", "256.0.0.1",
                 "--port", "0"]) == 2
    assert f"--outdir {tmp_path / 'file'}: is a file" in capsys.readouterr().err
    assert (tmp_path / "file").read_text() == "mine"


def test_a_chunked_body_is_refused_at_the_limit_without_reading_the_rest(served):
    """The server answers 413 once a chunked body passes the limit, while the client is still sending: reading
    the whole body first (memory growing with it) would leave this client waiting for a reply."""
    _, url = served
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"POST /api/render HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        chunk = b"x" * 16384
        for _ in range(MAX_BODY_BYTES // len(chunk) + 2):  # past the limit; the body's end never comes
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        reply = b""
        while b"}" not in reply:  # the headers and the JSON message may come in separate packets
            reply += sock.recv(4096) or b"}"
    assert reply.startswith(b"HTTP/1.1 413") and b"settings are at most" in reply


def test_deeply_nested_json_is_a_400(served):
    _, url = served
    for route in ("/api/render", "/api/save"):
        status, out = request(url + route, b"[" * 32000 + b"]" * 32000)
        assert status == 400 and "nested too deeply" in out["error"]


def test_save_never_writes_through_a_planted_link(served, tmp_path):
    """A link planted in the output folder, dangling or not, is skipped: the files are created exclusively."""
    studio, url = served
    outside = tmp_path / "outside"
    outside.mkdir()
    first = int(request(url + "/api/save", {"seed": 1})[1]["image_file"][-8:-4])
    planted = [studio.outdir / f"studio-{first + 1:04d}.json", studio.outdir / f"studio-{first + 2:04d}.png"]
    planted[0].symlink_to(outside / "victim.json")  # dangling: os.path.exists() says it is not there
    (outside / "existing.png").write_bytes(b"keep")
    planted[1].symlink_to(outside / "existing.png")
    status, saved = request(url + "/api/save", {"seed": 2})
    assert status == 200 and saved["image_file"].endswith(f"studio-{first + 3:04d}.png")
    assert sorted(p.name for p in outside.iterdir()) == ["existing.png"]
    assert (outside / "existing.png").read_bytes() == b"keep"
    assert not (studio.outdir / f"studio-{first + 1:04d}.png").exists()  # the half of a refused pair is removed
    assert json.loads(open(saved["settings_file"]).read())["settings"]["seed"] == 2


def test_studio_command_serves_the_page_and_reports_an_unloadable_network(tmp_path):
    missing = tmp_path / "missing.safetensors"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen([sys.executable, "-m", "styleforge.cli", "studio", "--network", str(missing),
                                "--port", "0", "--device", "cpu", "--outdir", str(tmp_path)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = process.stdout.readline()
        assert line.startswith("StyleForge Studio on http://127.0.0.1:"), (line, process.stderr.read())
        url = line.split()[3]
        assert request(url + "/")[0] == 200
        status, out = request(url + "/api/info")
        assert status == 503 and out["error"] == f"{missing}: no such file"
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl+C: uvicorn shuts down cleanly
        _, err = process.communicate(timeout=20)
    assert process.returncode == 0
    assert f"warning: {missing}: no such file" in err and "Traceback" not in err
