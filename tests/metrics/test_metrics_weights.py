"""Finding, downloading and checking the feature networks' weight files, offline included."""

import hashlib
import urllib.error
import urllib.request

import pytest

from styleforge.errors import UserError
from styleforge.metrics import weights
from styleforge.metrics.weights import KNOWN_FILES, KnownFile, find_weight_files

FID_FILE = "pt_inception-2015-12-05-6726825d.pth"
NVIDIA_FILE = "inception-2015-12-05.pt"  # no pinned digest: accepted when found, never downloaded


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    for var in [weights.WEIGHTS_DIR_VAR, *weights.ENV_VARS.values()]:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv(weights.CACHE_DIR_VAR, str(tmp_path / "cache"))
    return tmp_path / "cache" / "weights"


def _serve(monkeypatch, tmp_path, content: bytes, sha256: str):
    """Points the FID file's download at a local file:// URL with the given pinned digest."""
    source = tmp_path / "served.pth"
    source.write_bytes(content)
    monkeypatch.setitem(KNOWN_FILES, FID_FILE, KnownFile(FID_FILE, (source.as_uri(),), sha256, "test"))


def test_lookup_order_env_file_then_weights_dir_then_cache(cache, tmp_path, monkeypatch):
    cache.mkdir(parents=True)
    (cache / NVIDIA_FILE).write_bytes(b"cached")
    assert find_weight_files("inception") == (cache / NVIDIA_FILE,)
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / NVIDIA_FILE).write_bytes(b"shared")
    monkeypatch.setenv(weights.WEIGHTS_DIR_VAR, str(shared))
    assert find_weight_files("inception") == (shared / NVIDIA_FILE,)
    own = tmp_path / "own.pt"
    own.write_bytes(b"mine")
    monkeypatch.setenv("STYLEFORGE_INCEPTION", str(own))
    assert find_weight_files("inception") == (own,)
    monkeypatch.setenv("STYLEFORGE_INCEPTION", str(tmp_path / "gone.pt"))
    with pytest.raises(UserError, match="STYLEFORGE_INCEPTION.*not a file"):
        find_weight_files("inception")


def test_download_is_checked_and_renamed_into_place(cache, tmp_path, monkeypatch):
    content = b"pretend weights"
    digest = hashlib.sha256(content).hexdigest()
    _serve(monkeypatch, tmp_path, content, digest[:8])  # a leading prefix pins as the torch.hub names do
    assert find_weight_files("inception") == (cache / FID_FILE,)
    assert (cache / FID_FILE).read_bytes() == content
    assert [p.name for p in cache.iterdir()] == [FID_FILE]
    assert find_weight_files("inception") == (cache / FID_FILE,)  # found now, not downloaded again


def test_download_with_wrong_checksum_is_refused_and_not_kept(cache, tmp_path, monkeypatch):
    _serve(monkeypatch, tmp_path, b"tampered", hashlib.sha256(b"the real thing").hexdigest())
    with pytest.raises(UserError, match="SHA-256 .* expected"):
        find_weight_files("inception")
    assert list(cache.iterdir()) == []


def test_interrupted_download_leaves_nothing(cache, monkeypatch):
    class Broken:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self, n):
            raise ConnectionResetError("connection reset mid-file")

    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: Broken())
    with pytest.raises(UserError, match="connection reset"):
        find_weight_files("inception")
    assert list(cache.iterdir()) == []


def test_offline_message_names_file_url_and_place(cache, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(UserError) as info:
        find_weight_files("inception")
    message = str(info.value)
    assert FID_FILE in message and KNOWN_FILES[FID_FILE].urls[0] in message
    assert str(cache) in message and "STYLEFORGE_INCEPTION" in message and "--detector" in message
    with pytest.raises(UserError, match="vgg16-397923af.pth.*vgg.pth"):
        find_weight_files("lpips", allow_download=False)


def test_local_file_with_wrong_content_is_refused(cache):
    cache.mkdir(parents=True)
    (cache / FID_FILE).write_bytes(b"truncated download from somewhere else")
    with pytest.raises(UserError, match=f"does not match the published {FID_FILE}"):
        find_weight_files("inception")
