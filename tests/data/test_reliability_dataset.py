"""`styleforge dataset --dest`: nothing a user had there is lost, and a destination that cannot be written is
refused before any image is read, leaving nothing behind."""

import zipfile

import pytest

from styleforge.cli import main
from styleforge.data import build
from styleforge.data.build import build_dataset
from styleforge.errors import UserError


@pytest.fixture
def no_source_reads(monkeypatch):
    """Fails the test if the source is opened: a refused destination must be refused before any work."""

    def opened(*args, **kwargs):
        raise AssertionError("the source was opened before the destination was checked")

    monkeypatch.setattr(build, "open_source", opened)


def dataset_names(path):
    with zipfile.ZipFile(path) as z:
        return sorted(z.namelist())


def test_an_existing_file_is_kept_unless_overwrite_is_given(tmp_path, capsys):
    dest = tmp_path / "notes.zip"
    dest.write_text("a user's file")
    assert main(["dataset", "--source", "builtin:digits", "--dest", str(dest), "--max-images", "2"]) == 2
    assert capsys.readouterr().err == (f"styleforge dataset: error: --dest {dest}: already exists; pass --overwrite "
                                       "to replace it\n")
    assert dest.read_text() == "a user's file" and sorted(tmp_path.iterdir()) == [dest]
    assert main(["dataset", "--source", "builtin:digits", "--dest", str(dest), "--max-images", "2",
                 "--overwrite"]) == 0
    assert dataset_names(dest) == ["00000/img00000000.png", "00000/img00000001.png", "dataset.json"]
    assert sorted(tmp_path.iterdir()) == [dest]


def test_a_folder_destination_that_is_an_existing_file_is_refused_before_any_work(tmp_path, no_source_reads):
    dest = tmp_path / "data"
    dest.write_text("a user's file")
    for overwrite in (False, True):
        with pytest.raises(UserError, match=f"--dest {dest}: is an existing file; a destination without .zip is "
                                            "written as a folder"):
            build_dataset("builtin:digits", dest, overwrite=overwrite)
    assert dest.read_text() == "a user's file" and sorted(tmp_path.iterdir()) == [dest]  # no .partial-* left


@pytest.mark.parametrize("dest, message", [
    ("file.txt/data.zip", "file.txt is a file, not a folder"),
    ("file.txt/sub/data", "file.txt is a file, not a folder"),
    ("folder.zip", "is a folder; a .zip destination must be a file"),
])
def test_impossible_destinations_are_refused_before_any_work(tmp_path, no_source_reads, dest, message):
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "folder.zip").mkdir()
    with pytest.raises(UserError, match=message):
        build_dataset("builtin:digits", tmp_path / dest)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt", "folder.zip"]


def test_a_folder_of_other_files_is_never_replaced(tmp_path, no_source_reads):
    dest = tmp_path / "photos"
    dest.mkdir()
    (dest / "holiday.jpg").write_bytes(b"jpeg")
    for overwrite in (False, True):
        with pytest.raises(UserError, match="is a folder of other files"):
            build_dataset("builtin:digits", dest, overwrite=overwrite)
    assert [p.name for p in dest.iterdir()] == ["holiday.jpg"]


def test_a_data_set_folder_is_replaced_only_with_overwrite(tmp_path):
    dest = tmp_path / "digits"
    build_dataset("builtin:digits", dest, max_images=3)
    with pytest.raises(UserError, match="already holds a data set; pass --overwrite"):
        build_dataset("builtin:digits", dest, max_images=2)
    assert len(list((dest / "00000").iterdir())) == 3
    build_dataset("builtin:digits", dest, max_images=2, overwrite=True)
    assert len(list((dest / "00000").iterdir())) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["digits"]  # the old folder is gone, no temporary left


def test_a_failed_build_leaves_the_previous_data_set_and_no_temporary(tmp_path):
    dest = tmp_path / "d.zip"
    build_dataset("builtin:digits", dest, max_images=2)
    before = dest.read_bytes()
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no images found"):
        build_dataset(tmp_path / "empty", dest, overwrite=True)
    assert dest.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["d.zip", "empty"]
