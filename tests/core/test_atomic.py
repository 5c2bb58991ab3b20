"""The atomic writer writes through symlinks and refuses to replace what is not a regular file."""

from __future__ import annotations

import os

import pytest

from robustest.atomic import atomic_write_text
from robustest.errors import InvalidArgument


def test_a_symlink_is_written_through_to_its_target(tmp_path):
    real = tmp_path / "real" / "report.html"
    real.parent.mkdir()
    real.write_text("old")
    link = tmp_path / "latest.html"
    link.symlink_to(real)
    atomic_write_text(link, "new")
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_text() == "new" and link.read_text() == "new"


def test_a_dangling_symlink_creates_its_target(tmp_path):
    link = tmp_path / "link.xml"
    link.symlink_to(tmp_path / "made.xml")
    atomic_write_text(link, "x")
    assert link.is_symlink() and (tmp_path / "made.xml").read_text() == "x"


def test_a_directory_is_not_replaced(tmp_path):
    (tmp_path / "out.html").mkdir()
    with pytest.raises(InvalidArgument, match="directory"):
        atomic_write_text(tmp_path / "out.html", "x")
    assert (tmp_path / "out.html").is_dir()


def test_a_pipe_is_not_replaced(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(InvalidArgument, match="special file"):
        atomic_write_text(fifo, "x")
    assert not fifo.is_file() and fifo.exists()  # (never tried on /dev/null: CI may run as root)
