"""Writing a data set atomically: into a temporary ZIP or folder next to the destination, renamed
into place only when complete, so that an interrupted run never leaves a half-written data set."""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from pathlib import Path

from styleforge.errors import UserError


class AtomicOutput:
    """`with AtomicOutput(dest) as out: out.write(name, data)`; commits on success, removes everything on error.

    `dest` ending in `.zip` is written as an uncompressed ZIP (PNGs are compressed already, and stored
    members are cheap to read); anything else is a folder, which must not exist or be empty.
    """

    def __init__(self, dest: str | Path):
        self.dest = Path(dest)
        self.is_zip = self.dest.suffix.lower() == ".zip"
        if self.dest.is_dir() and (self.is_zip or any(self.dest.iterdir())):
            raise UserError(f"{self.dest}: --dest must be a .zip file or an empty (or new) folder")
        self._temp: Path | None = None
        self._zip: zipfile.ZipFile | None = None

    def __enter__(self) -> AtomicOutput:
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        prefix = f".{self.dest.name}.partial-"
        if self.is_zip:
            fd, name = tempfile.mkstemp(prefix=prefix, dir=self.dest.parent)
            os.close(fd)
            self._temp = Path(name)
            self._zip = zipfile.ZipFile(self._temp, "w", compression=zipfile.ZIP_STORED)
        else:
            self._temp = Path(tempfile.mkdtemp(prefix=prefix, dir=self.dest.parent))
        return self

    def write(self, name: str, data: bytes) -> None:
        if self._zip is not None:
            self._zip.writestr(name, data)
        else:
            path = self._temp / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._zip is not None:
            self._zip.close()
        if exc_type is not None:
            self._remove_temp()
            return
        if not self.is_zip:
            os.chmod(self._temp, 0o777 & ~_umask())  # mkdtemp makes it private; a data set folder need not be
            if self.dest.is_dir():
                self.dest.rmdir()  # empty, checked above
        else:
            os.chmod(self._temp, 0o666 & ~_umask())
        os.replace(self._temp, self.dest)

    def _remove_temp(self) -> None:
        if self._temp is None or not self._temp.exists():
            return
        if self._temp.is_dir():
            shutil.rmtree(self._temp)
        else:
            self._temp.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
