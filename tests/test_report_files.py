"""Report folders: atomic, never over the user's own files."""

import os

import pytest

from ddlsim.errors import ConfigError
from ddlsim.reports.files import MARKER, atomic_dir, atomic_write_text


def test_a_report_replaces_a_previous_report(tmp_path):
    out = tmp_path / "r"
    with atomic_dir(out) as tmp:
        (tmp / "a.csv").write_text("1")
    with atomic_dir(out) as tmp:
        (tmp / "b.csv").write_text("2")
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "b.csv"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_folder_of_the_users_own_files_is_refused_and_kept(tmp_path):
    mine = tmp_path / "precious"
    mine.mkdir()
    (mine / "thesis.txt").write_text("x")
    with pytest.raises(ConfigError, match="is not a ddlsim report"), atomic_dir(mine):
        pass
    assert (mine / "thesis.txt").read_text() == "x"


def test_the_current_folder_and_root_are_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for bad in (".", "/"):
        with pytest.raises(ConfigError, match="refusing"), atomic_dir(bad):
            pass


def test_a_failed_write_leaves_nothing_behind(tmp_path):
    with pytest.raises(RuntimeError), atomic_dir(tmp_path / "r") as tmp:
        (tmp / "half.csv").write_text("1")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_files_follow_the_umask(tmp_path):
    mask = os.umask(0o022)
    try:
        with atomic_dir(tmp_path / "r") as tmp:
            (tmp / "a.csv").write_text("1")
        path = atomic_write_text(tmp_path / "f.md", "# x")
    finally:
        os.umask(mask)
    assert (tmp_path / "r").stat().st_mode & 0o777 == 0o755
    assert path.stat().st_mode & 0o777 == 0o644
