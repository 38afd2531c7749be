"""Where the weight files of the feature networks come from, and how they are checked.

A built-in feature network is found in this order:
1. an explicit path (`--detector PATH`),
2. the network's environment variable (`STYLEFORGE_INCEPTION`, `STYLEFORGE_VGG16`, `STYLEFORGE_LPIPS`),
3. known file names in `$STYLEFORGE_WEIGHTS`, then in `<cache dir>/weights` (`~/.cache/styleforge`,
   or `$STYLEFORGE_CACHE`),
4. a download of the files whose SHA-256 is pinned below, into `<cache dir>/weights`.

Every file whose name is in `KNOWN_FILES` is checked against its pinned digest wherever it is found.
Offline and missing, a `UserError` names the file, its URL and where to put it.
"""

from __future__ import annotations

import functools
import hashlib
import os
import sys
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

from styleforge.errors import UserError


@dataclass(frozen=True)
class KnownFile:
    """A published weight file. `sha256` is the full hex digest, or its leading digits (the torch.hub
    naming convention puts the first 8 in the file name), or None where no digest could be verified yet:
    such a file is used when found locally but never downloaded. Pinning means filling in the digest."""

    name: str
    urls: tuple[str, ...]
    sha256: str | None
    what: str


KNOWN_FILES: dict[str, KnownFile] = {f.name: f for f in [
    # FID Inception-v3 (TF graph of 2015-12-05) converted to a PyTorch state dict by pytorch-fid.
    # Digest: its prefix is in the file name (torch.hub convention); the full value is the one published
    # for torch-fidelity's copy of the same file (same name suffix). Not downloadable from this machine.
    KnownFile(
        "pt_inception-2015-12-05-6726825d.pth",
        ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",
         "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth"),
        "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2",
        "Inception-v3 for FID/KID/IS (state dict)"),
    # NVIDIA's TorchScript export of the same network (stylegan2-ada-pytorch). Digest not verified yet.
    KnownFile(
        "inception-2015-12-05.pt",
        ("https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt",),
        None,
        "Inception-v3 for FID/KID/IS (NVIDIA TorchScript)"),
    # torchvision's ImageNet VGG16; torchvision checks the digest prefix in the name, full value as published.
    KnownFile(
        "vgg16-397923af.pth",
        ("https://download.pytorch.org/models/vgg16-397923af.pth",),
        "397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0",
        "VGG16 for precision/recall and the LPIPS backbone (torchvision state dict)"),
    # NVIDIA's TorchScript VGG16 (fc2 features for precision/recall, LPIPS embedding for PPL). Not verified yet.
    KnownFile(
        "vgg16.pt",
        ("https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/vgg16.pt",),
        None,
        "VGG16 features and LPIPS (NVIDIA TorchScript)"),
    # LPIPS v0.1 linear layers for VGG (richzhang/PerceptualSimilarity); digest of the copy in lpips 0.1.4.
    KnownFile(
        "vgg.pth",
        ("https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/vgg.pth",),
        "a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868",
        "LPIPS v0.1 linear layers for VGG16 (state dict)"),
]}

# Each built-in network can be built from any of these sets of files, tried in order: NVIDIA's TorchScript
# first (it reproduces published numbers exactly), then our own architecture from state dicts. Only the
# last choice, whose digests are pinned, is downloaded.
SOURCES: dict[str, list[tuple[str, ...]]] = {
    "inception": [("inception-2015-12-05.pt",), ("pt_inception-2015-12-05-6726825d.pth",)],
    "vgg16": [("vgg16.pt",), ("vgg16-397923af.pth",)],
    "lpips": [("vgg16.pt",), ("vgg16-397923af.pth", "vgg.pth")],
}
ENV_VARS = {"inception": "STYLEFORGE_INCEPTION", "vgg16": "STYLEFORGE_VGG16", "lpips": "STYLEFORGE_LPIPS"}
WEIGHTS_DIR_VAR = "STYLEFORGE_WEIGHTS"
CACHE_DIR_VAR = "STYLEFORGE_CACHE"


def default_cache_dir() -> Path:
    return Path(os.environ.get(CACHE_DIR_VAR) or Path.home() / ".cache" / "styleforge")


def weights_dirs(cache_dir: str | os.PathLike | None = None) -> list[Path]:
    """The folders searched for known files by name, in order."""
    dirs = [Path(os.environ[WEIGHTS_DIR_VAR])] if os.environ.get(WEIGHTS_DIR_VAR) else []
    return dirs + [Path(cache_dir or default_cache_dir()) / "weights"]


@functools.lru_cache(maxsize=64)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file, remembered per (path, size, mtime) within the process."""
    st = os.stat(path)
    return _sha256_cached(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


def _digest_matches(digest: str, expected: str) -> bool:
    return digest.startswith(expected.lower())


def verify_known_file(path: Path) -> Path:
    """Refuses a file that carries a known name but not the pinned content."""
    known = KNOWN_FILES.get(path.name)
    if known is not None and known.sha256 is not None:
        digest = file_sha256(path)
        if not _digest_matches(digest, known.sha256):
            raise UserError(
                f"{path}: SHA-256 {digest} does not match the published {known.name} ({known.sha256}); "
                f"the file is corrupt or not the official one. Delete it and download it again from {known.urls[0]}")
    return path


def _missing_message(network: str, cache_dir: str | os.PathLike | None, reason: str) -> str:
    options = []
    for files in SOURCES[network]:
        options.append(" + ".join(f"{name} ({KNOWN_FILES[name].urls[0]})" for name in files))
    places = " or ".join(str(d) for d in weights_dirs(cache_dir))
    return (f"the {network} feature network's weights are not available ({reason}). Download one of: "
            + "; or ".join(options)
            + f". Put the file(s) in {places} (or set ${WEIGHTS_DIR_VAR} to their folder, "
            f"or ${ENV_VARS[network]} to one file, or pass --detector PATH).")


def download(known: KnownFile, dest_dir: Path) -> Path:
    """Downloads a pinned file into `dest_dir` through a temporary file, checked before it is renamed into
    place, so that neither a partial download nor a wrong file is ever left under the real name."""
    if known.sha256 is None:
        raise UserError(f"{known.name} has no pinned SHA-256, so it is not downloaded automatically; "
                        f"download it from {known.urls[0]} and put it in {dest_dir}")
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / known.name
    errors = []
    for url in known.urls:
        tmp = dest_dir / f".{known.name}.{uuid.uuid4().hex}.part"
        try:
            digest = hashlib.sha256()
            print(f"Downloading {url} to {dest}", file=sys.stderr)
            with urllib.request.urlopen(url, timeout=60) as response, open(tmp, "wb") as f:
                for chunk in iter(lambda: response.read(1 << 20), b""):
                    digest.update(chunk)
                    f.write(chunk)
            if not _digest_matches(digest.hexdigest(), known.sha256):
                raise UserError(f"download of {known.name} from {url} has SHA-256 {digest.hexdigest()}, "
                                f"expected {known.sha256}; refusing it")
            os.replace(tmp, dest)
            return dest
        except (urllib.error.URLError, OSError, ValueError) as e:
            errors.append(f"{url}: {e}")
        finally:
            tmp.unlink(missing_ok=True)
    raise ConnectionError("; ".join(errors))


def find_weight_files(network: str, cache_dir: str | os.PathLike | None = None,
                      allow_download: bool = True) -> tuple[Path, ...]:
    """The files of one built-in network (`inception`, `vgg16` or `lpips`), by environment variable, by
    name in the weights folders, or downloaded; each checked against its pinned digest."""
    if network not in SOURCES:
        raise KeyError(f"unknown feature network '{network}'; choose one of {sorted(SOURCES)}")
    env_path = os.environ.get(ENV_VARS[network])
    if env_path:
        path = Path(env_path).expanduser()
        if not path.is_file():
            raise UserError(f"${ENV_VARS[network]} points to {path}, which is not a file")
        return (verify_known_file(path),)
    for files in SOURCES[network]:
        for folder in weights_dirs(cache_dir):
            paths = [folder / name for name in files]
            if all(p.is_file() for p in paths):
                return tuple(verify_known_file(p) for p in paths)
    if not allow_download:
        raise UserError(_missing_message(network, cache_dir, "not found and downloads are off"))
    dest_dir = weights_dirs(cache_dir)[-1]
    paths = []
    for name in SOURCES[network][-1]:
        existing = dest_dir / name
        try:
            paths.append(verify_known_file(existing) if existing.is_file() else download(KNOWN_FILES[name], dest_dir))
        except ConnectionError as e:
            raise UserError(_missing_message(network, cache_dir, f"offline? {e}")) from None
    return tuple(paths)
