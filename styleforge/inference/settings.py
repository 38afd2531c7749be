"""The settings of one studio image: what the page sends, what is saved beside a saved image, and what
`styleforge generate --settings FILE` reads back to draw the same pixels.

JSON form (every key but `seed` optional):
    {"seed": 5, "psi": 0.7, "cutoff": null, "class": null, "noise_mode": "const",
     "mix": {"seed": 9, "layers": [0, 3]},            # ws 0..3 (inclusive) come from seed 9
     "interp": {"seed": 7, "t": 0.25, "space": "z"},  # the base latent: a quarter of the way to seed 7
     "heatmaps": {"centres": [[[y, x]], [[y, x], [y, x]], [[y, x] x 4]], "sigmas": [[s], [s, s], [s x 4]]}}
Every value is checked against the network; a bad one raises UserError naming the field.
"""

from __future__ import annotations

import json
import math
import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from styleforge.errors import UserError
from styleforge.inference.generate import NOISE_MODES
from styleforge.inference.interpolation import SPACES
from styleforge.inference.network_info import NetworkInfo

FILE_FORMAT = "styleforge.studio.v1"
SEED_LIMIT = 2**32  # seeds are RandomState seeds: [0, 2^32)
PSI_RANGE = (-2.0, 2.0)
CENTRE_RANGE = (-1.0, 1.0)  # heatmap coordinates of the image's first and last pixel
SIGMA_RANGE = (1e-3, 4.0)
KEYS = {"seed", "psi", "cutoff", "class", "noise_mode", "mix", "interp", "heatmaps"}


@dataclass(frozen=True)
class StyleMix:
    seed: int
    first: int  # first ws index taken from `seed`
    last: int  # last one (inclusive)

    @property
    def layers(self) -> list[int]:
        return list(range(self.first, self.last + 1))


@dataclass(frozen=True)
class Interpolation:
    seed: int  # the other end of the path; the image's own seed is t = 0
    t: float
    space: str  # 'z': slerp between z; 'w': lerp between ws


@dataclass(frozen=True)
class Heatmaps:
    """EqGAN-SA blob centres (y, x) and widths, per level (1, 2 and 4 of them)."""

    centres: tuple[tuple[tuple[float, float], ...], ...]
    sigmas: tuple[tuple[float, ...], ...]

    def to_json(self) -> dict:
        return {"centres": [[list(c) for c in level] for level in self.centres],
                "sigmas": [list(level) for level in self.sigmas]}


@dataclass(frozen=True)
class ImageSettings:
    seed: int
    psi: float = 1.0
    cutoff: int | None = None  # truncate only the first `cutoff` ws (None: all)
    class_idx: int | None = None
    noise_mode: str = "const"
    mix: StyleMix | None = None
    interp: Interpolation | None = None
    heatmaps: Heatmaps | None = None  # None: the seed's default centres (spatial networks)

    @property
    def is_plain(self) -> bool:
        """True when `styleforge generate --seeds` alone draws this image."""
        return self.mix is None and self.interp is None and self.heatmaps is None

    def to_json(self) -> dict:
        return {
            "seed": self.seed, "psi": self.psi, "cutoff": self.cutoff, "class": self.class_idx,
            "noise_mode": self.noise_mode,
            "mix": None if self.mix is None else {"seed": self.mix.seed, "layers": [self.mix.first, self.mix.last]},
            "interp": None if self.interp is None else {"seed": self.interp.seed, "t": self.interp.t,
                                                        "space": self.interp.space},
            "heatmaps": None if self.heatmaps is None else self.heatmaps.to_json(),
        }


def _int(value: Any, name: str, low: int, high: int) -> int:
    """An integer in [low, high]; JSON booleans and floats are refused."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserError(f"{name}: expected an integer, got {json.dumps(value)}")
    if not low <= value <= high:
        raise UserError(f"{name} {value}: out of range, must be in [{low}, {high}]")
    return value


def _float(value: Any, name: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UserError(f"{name}: expected a number, got {json.dumps(value)}")
    if not math.isfinite(value) or not low <= value <= high:
        raise UserError(f"{name} {value}: out of range, must be in [{low:g}, {high:g}]")
    return float(value)


def _object(value: Any, name: str, keys: set[str]) -> dict:
    if not isinstance(value, dict):
        raise UserError(f"{name}: expected a JSON object, got {json.dumps(value)[:80]}")
    unknown = sorted(set(value) - keys)
    if unknown:
        raise UserError(f"{name}: unknown keys {unknown} (known: {sorted(keys)})")
    return value


def _list(value: Any, name: str, length: int) -> list:
    if not isinstance(value, list) or len(value) != length:
        raise UserError(f"{name}: expected a list of {length}, got {json.dumps(value)[:80]}")
    return value


def parse_heatmaps(data: Any, info: NetworkInfo) -> Heatmaps:
    data = _object(data, "heatmaps", {"centres", "sigmas"})
    levels = len(info.centres_per_level)
    centres = _list(data.get("centres"), "heatmaps.centres", levels)
    sigmas = _list(data.get("sigmas"), "heatmaps.sigmas", levels)
    parsed_centres, parsed_sigmas = [], []
    for level, count in enumerate(info.centres_per_level):
        where = f"heatmaps level {level + 1}"
        points = _list(centres[level], f"{where} centres", count)
        parsed_centres.append(tuple(
            tuple(_float(v, f"{where} centre {i} {axis}", *CENTRE_RANGE)
                  for v, axis in zip(_list(p, f"{where} centre {i}", 2), "yx"))
            for i, p in enumerate(points)))
        widths = _list(sigmas[level], f"{where} sigmas", count)
        parsed_sigmas.append(tuple(_float(s, f"{where} sigma {i}", *SIGMA_RANGE) for i, s in enumerate(widths)))
    return Heatmaps(tuple(parsed_centres), tuple(parsed_sigmas))


def parse_settings(data: Any, info: NetworkInfo) -> ImageSettings:
    """Checks the JSON settings of one image against the network and returns them typed."""
    data = _object(data, "settings", KEYS)
    if "seed" not in data:
        raise UserError("settings: 'seed' is missing")
    seed_range = (0, SEED_LIMIT - 1)
    psi = _float(data.get("psi", 1.0), "psi", *PSI_RANGE)
    if psi != 1 and not info.truncation:
        raise UserError(f"psi {psi}: this network does not track w_avg, so it cannot be truncated (use psi 1)")
    cutoff = data.get("cutoff")
    class_idx = data.get("class")
    if info.c_dim == 0 and class_idx is not None:
        raise UserError(f"class {class_idx}: this network is unconditional; leave the class out")
    if info.c_dim > 0:
        if class_idx is None:
            raise UserError(f"class: this network is conditional, name a class 0..{info.c_dim - 1}")
        class_idx = _int(class_idx, "class", 0, info.c_dim - 1)
    noise_mode = data.get("noise_mode", "const")
    if noise_mode not in NOISE_MODES:
        raise UserError(f"noise_mode {json.dumps(noise_mode)}: choose one of {list(NOISE_MODES)}")

    mix = data.get("mix")
    if mix is not None:
        mix = _object(mix, "mix", {"seed", "layers"})
        first, last = _list(mix.get("layers"), "mix.layers", 2)
        first = _int(first, "mix.layers first", 0, info.num_ws - 1)
        mix = StyleMix(_int(mix.get("seed"), "mix.seed", *seed_range), first,
                       _int(last, "mix.layers last", first, info.num_ws - 1))
    interp = data.get("interp")
    if interp is not None:
        interp = _object(interp, "interp", {"seed", "t", "space"})
        space = interp.get("space", "z")
        if space not in SPACES:
            raise UserError(f"interp.space {json.dumps(space)}: choose one of {list(SPACES)}")
        interp = Interpolation(_int(interp.get("seed"), "interp.seed", *seed_range),
                               _float(interp.get("t"), "interp.t", 0.0, 1.0), space)
    heatmaps = data.get("heatmaps")
    if heatmaps is not None:
        if not info.spatial:
            raise UserError("heatmaps: this network takes no heatmap centres (it is not an EqGAN-SA generator)")
        heatmaps = parse_heatmaps(heatmaps, info)
    return ImageSettings(
        seed=_int(data["seed"], "seed", *seed_range), psi=psi,
        cutoff=None if cutoff is None else _int(cutoff, "cutoff", 1, info.num_ws),
        class_idx=class_idx, noise_mode=noise_mode, mix=mix, interp=interp, heatmaps=heatmaps)


def generate_command(network: str | os.PathLike, outdir: str | os.PathLike, device: str,
                     settings_file: str | os.PathLike | None = None, settings: ImageSettings | None = None) -> str:
    """The `styleforge generate` command that draws the same pixels: from a settings file, or (for plain
    settings) from flags alone, which writes seed<NNNN>.png."""
    args = ["styleforge", "generate", "--network", os.fspath(network)]
    if settings_file is not None:
        args += ["--settings", os.fspath(settings_file)]
    else:
        assert settings is not None and settings.is_plain
        args += ["--seeds", str(settings.seed), "--trunc", repr(settings.psi)]
        if settings.cutoff is not None:
            args += ["--trunc-cutoff", str(settings.cutoff)]
        if settings.class_idx is not None:
            args += ["--class", str(settings.class_idx)]
        args += ["--noise-mode", settings.noise_mode]
    args += ["--outdir", os.fspath(outdir), "--device", device]
    return shlex.join(args)


def settings_document(settings: ImageSettings, network: Path, settings_file: Path, image_file: Path,
                      device: str) -> dict:
    """What the studio saves beside an image: the settings and the commands that redraw it. (Rendering fills in
    the heatmap centres of an EqGAN-SA G, so its settings are never plain: the flags-only command cannot name
    centres, and without them such a G draws random ones.)"""
    regenerated = settings_file.parent / "regenerated"
    doc = {
        "format": FILE_FORMAT,
        "network": str(network),
        "image": image_file.name,
        "settings": settings.to_json(),
        "command": generate_command(network, regenerated, device, settings_file=settings_file),
    }
    if settings.is_plain:
        doc["seed_command"] = generate_command(network, regenerated, device, settings=settings)
    return doc


def read_settings_file(path: str | os.PathLike) -> Any:
    """The raw settings object of a file the studio saved (check it with `parse_settings`)."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError as e:
        raise UserError(f"{path}: no such settings file") from e
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{path}: not a readable JSON settings file ({e})") from e
    if not isinstance(doc, dict) or doc.get("format") != FILE_FORMAT or "settings" not in doc:
        raise UserError(f"{path}: not a studio settings file (expected \"format\": \"{FILE_FORMAT}\" and \"settings\")")
    return doc["settings"]
