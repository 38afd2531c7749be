"""A run's directory, `OUTDIR/NNNNN-<desc>/`: claimed atomically by a new run, cut back to the checkpoint a
resumed run continues from, and the log every line of the run goes to."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tqdm import tqdm

from styleforge.errors import UserError

_RUN = re.compile(r"^(\d{5,})-")
TICK_FILES = ("stats.jsonl",)  # per-tick records: kimg in "Progress/kimg"
SNAPSHOT_FILES = ("metric-*.jsonl",)  # per-snapshot records: the checkpoint in "snapshot"


def claim_run_dir(outdir: Path, desc: str, attempts: int = 1000) -> Path:
    """Creates and returns the next free `NNNNN-desc` folder. Creating is the claim (mkdir fails if the
    folder exists), so runs started together with the same --outdir never share a folder."""
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UserError(f"--outdir {outdir}: exists and is not a folder") from None
    ids = [int(m.group(1)) for p in outdir.iterdir() if (m := _RUN.match(p.name))]
    first = max(ids, default=-1) + 1
    for number in range(first, first + attempts):
        run_dir = outdir / f"{number:05d}-{desc}"
        try:
            run_dir.mkdir()
            return run_dir
        except FileExistsError:
            continue  # another run took this number in the meantime
    raise UserError(f"--outdir {outdir}: no free run number after {attempts} attempts")


def cut_back(run_dir: Path, cur_nimg: int) -> None:
    """Removes what a run wrote after the checkpoint it resumes from, so that no tick or metric appears twice:
    tick records past `cur_nimg`, metric records of later snapshots, and checkpoint temporaries that a
    killed run left half-written."""
    for name in TICK_FILES:
        _filter_lines(run_dir / name, lambda entry: round(entry["Progress/kimg"]["mean"] * 1000) <= cur_nimg)
    for path in run_dir.glob(SNAPSHOT_FILES[0]):
        _filter_lines(path, lambda entry: _snapshot_nimg(entry) <= cur_nimg)
    for tmp in (run_dir / "checkpoints").glob("*.tmp"):
        tmp.unlink()


def _snapshot_nimg(entry: dict) -> int:
    match = re.search(r"ckpt-(\d+)\.safetensors", str(entry.get("snapshot", "")))
    return int(match.group(1)) if match else 0


def _filter_lines(path: Path, keep) -> None:
    if not path.exists():
        return
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    kept = [line for line in lines if keep(json.loads(line))]
    if len(kept) != len(lines):
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text("".join(line + "\n" for line in kept))
        tmp.replace(path)


class RunLog:
    """The run's lines: on the console (around the progress bar), kept in memory, and in log.txt once the
    run directory exists (lines logged before it are written then)."""

    def __init__(self, enabled: bool = True, quiet: bool = False):
        self.enabled = enabled  # rank 0 only
        self.quiet = quiet
        self.lines: list[str] = []
        self.path: Path | None = None

    def __call__(self, line: str) -> None:
        if not self.enabled:
            return
        self.lines.append(line)
        if not self.quiet:
            tqdm.write(line)
        if self.path is not None:
            with open(self.path, "a") as f:
                f.write(line + "\n")

    def attach(self, path: Path) -> None:
        """From now on lines also go to `path`, starting with those logged so far."""
        if not self.enabled:
            return
        self.path = path
        with open(path, "a") as f:
            f.writelines(line + "\n" for line in self.lines)
