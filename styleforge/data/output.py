"""Writing a data set atomically: into a temporary ZIP or folder next to the destination, renamed
into place only when complete, so that an interrupted run never leaves a half-written data set."""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from pathlib import Path

from styleforge.data.layout import METADATA_NAME
from styleforge.errors import UserError


def check_destination(dest: Path, overwrite: bool) -> None:
    """UserError, before any work, when `dest` cannot or may not be written: an existing file or data set
    (unless `overwrite`), a folder of other files, or a file standing where a folder is needed."""
    for parent in dest.absolute().parents:
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                raise UserError(f"--dest {dest}: {parent} is a file, not a folder")
            break
    if dest.suffix.lower() == ".zip":
        if dest.is_dir():
            raise UserError(f"--dest {dest}: is a folder; a .zip destination must be a file")
        if (dest.exists() or dest.is_symlink()) and not overwrite:
            raise UserError(f"--dest {dest}: already exists; pass --overwrite to replace it")
        return
    if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
        raise UserError(f"--dest {dest}: is an existing file; a destination without .zip is written as a folder "
                        "(name a new folder or a .zip file)")
    if dest.is_dir() and any(dest.iterdir()):
        if not (dest / METADATA_NAME).is_file():
            raise UserError(f"--dest {dest}: is a folder of other files (no {METADATA_NAME}); name a new or "
                            "empty folder")
        if not overwrite:
            raise UserError(f"--dest {dest}: already holds a data set; pass --overwrite to replace it")


class AtomicOutput:
    """`with AtomicOutput(dest) as out: out.write(name, data)`; commits on success, removes everything on error.

    `dest` ending in `.zip` is written as an uncompressed ZIP (PNGs are compressed already, and stored
    members are cheap to read); anything else is a folder, which must not exist or be empty. An existing
    ZIP or data set folder is replaced only with `overwrite`, and only once the new one is complete.
    """

    def __init__(self, dest: str | Path, overwrite: bool = False):
        self.dest = Path(dest)
        self.is_zip = self.dest.suffix.lower() == ".zip"
        check_destination(self.dest, overwrite)
        self._temp: Path | None = None
        self._zip: zipfile.ZipFile | None = None
        self._created: list[Path] = []  # folders made for `dest`, removed again when nothing is written

    def __enter__(self) -> AtomicOutput:
        prefix = f".{self.dest.name}.partial-"
        try:  # fails here, before any image is read, on a read-only or full file system
            self._created = [p for p in reversed(self.dest.absolute().parents) if not p.exists()]
            self.dest.parent.mkdir(parents=True, exist_ok=True)
            if self.is_zip:
                fd, name = tempfile.mkstemp(prefix=prefix, dir=self.dest.parent)
                os.close(fd)
                self._temp = Path(name)
                self._zip = zipfile.ZipFile(self._temp, "w", compression=zipfile.ZIP_STORED)
            else:
                self._temp = Path(tempfile.mkdtemp(prefix=prefix, dir=self.dest.parent))
        except OSError as e:
            self._clean_up()
            raise OSError(e.errno, e.strerror, str(self.dest)) from e
        return self

    def write(self, name: str, data: bytes) -> None:
        if self._zip is not None:
            self._zip.writestr(name, data)
        else:
            path = self._temp / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if self._zip is not None:
                self._zip.close()
            if exc_type is None:
                self._commit()
        finally:
            self._clean_up()  # after a commit there is nothing left to remove

    def _clean_up(self) -> None:
        """Removes the temporary, and the folders made for `dest` unless it was committed."""
        if self._temp is not None and self._temp.is_dir():
            shutil.rmtree(self._temp)
        elif self._temp is not None and self._temp.exists():
            self._temp.unlink()
        if not self.dest.exists():
            for folder in reversed(self._created):
                if folder.is_dir() and not any(folder.iterdir()):
                    folder.rmdir()

    def _commit(self) -> None:
        if self.is_zip:
            os.chmod(self._temp, 0o666 & ~_umask())
            os.replace(self._temp, self.dest)  # atomically replaces an existing ZIP (checked: --overwrite)
            return
        os.chmod(self._temp, 0o777 & ~_umask())  # mkdtemp makes it private; a data set folder need not be
        if not self.dest.is_dir():
            os.replace(self._temp, self.dest)
            return
        # An existing folder (empty, or a data set with --overwrite) is moved aside until the new one is in place.
        old = Path(tempfile.mkdtemp(prefix=f".{self.dest.name}.old-", dir=self.dest.parent))
        os.replace(self.dest, old / self.dest.name)
        try:
            os.replace(self._temp, self.dest)
        except OSError:
            os.replace(old / self.dest.name, self.dest)
            old.rmdir()
            raise
        shutil.rmtree(old)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
