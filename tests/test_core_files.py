"""engine/core/files.py, the one crash-safe write helper: single files, whole-or-nothing publishing,
roll-back, and cleaning up after writers that died."""

from __future__ import annotations

import errno
import os
import subprocess
import sys

import pytest

from engine.core import files


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _leftover_name(base: str, pid: int, kind: str) -> str:
    tag = files._tag().split("-")
    return f".{base}.{tag[0]}-{pid}-{tag[2]}.{kind}"


def test_publish_into_a_new_folder_is_one_rename(tmp_path, monkeypatch):
    renames = []
    real = os.rename
    monkeypatch.setattr(os, "rename", lambda a, b: renames.append(b) or real(a, b))
    with files.publish(tmp_path / "shot", ["a.png", "b.png"]) as staging:
        for name in ("a.png", "b.png"):
            (staging / name).write_bytes(name.encode())
    assert renames == [tmp_path / "shot"]
    assert sorted(p.name for p in (tmp_path / "shot").iterdir()) == ["a.png", "b.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shot"]


def test_publish_refuses_existing_names_before_moving_anything(tmp_path):
    (tmp_path / "b.png").write_bytes(b"mine")
    with pytest.raises(files.DestinationExists, match="b.png already exists"):
        with files.publish(tmp_path, ["a.png", "b.png"]) as staging:
            (staging / "a.png").write_bytes(b"new")
            (staging / "b.png").write_bytes(b"new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.png"]
    assert (tmp_path / "b.png").read_bytes() == b"mine"


def test_publish_needs_every_named_file(tmp_path):
    (tmp_path / "other.txt").write_text("x")
    with pytest.raises(files.UnsafeWriteError, match="b.png was not written"):
        with files.publish(tmp_path, ["a.png", "b.png"]) as staging:
            (staging / "a.png").write_bytes(b"new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.txt"]


def test_an_error_in_the_block_publishes_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with files.publish(tmp_path / "shot", ["a.png"]) as staging:
            (staging / "a.png").write_bytes(b"half")
            raise RuntimeError("encoder failed")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fail_at", [2, 3, 4, 5])
def test_a_failing_rename_restores_every_replaced_file(tmp_path, monkeypatch, fail_at):
    for name in ("a.png", "b.png", "c.png"):
        (tmp_path / name).write_bytes(b"old " + name.encode())
    real = os.replace
    calls = []

    def flaky(src, dst):
        calls.append(dst)
        if len(calls) == fail_at:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(src, dst)

    with pytest.raises(OSError):
        with files.publish(tmp_path, ["a.png", "b.png", "c.png", "d.png"], overwrite=True) as staging:
            for name in ("a.png", "b.png", "c.png", "d.png"):
                (staging / name).write_bytes(b"new " + name.encode())
            monkeypatch.setattr(os, "replace", flaky)
    monkeypatch.setattr(os, "replace", real)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == {
        n: b"old " + n.encode() for n in ("a.png", "b.png", "c.png")}


def test_recovery_leaves_live_writers_alone_and_cleans_up_dead_ones(tmp_path):
    live = tmp_path / _leftover_name("shot", os.getpid(), "staging")
    live.mkdir()
    dead_tmp = tmp_path / (_leftover_name("project.json", _dead_pid(), "tmp"))
    dead_tmp.write_bytes(b"half a manifest")
    dead_staging = tmp_path / _leftover_name("publish", _dead_pid(), "staging")
    (dead_staging / "new").mkdir(parents=True)
    (dead_staging / "new" / "a.png").write_bytes(b"never published")
    unrelated = tmp_path / ".hidden.tmp"
    unrelated.write_bytes(b"someone else's")
    report = files.recover_interrupted(tmp_path)
    assert len(report) == 2
    assert live.exists() and unrelated.exists()
    assert not dead_tmp.exists() and not dead_staging.exists()


def test_atomic_write_without_overwrite_never_replaces(tmp_path):
    (tmp_path / "t.token").write_bytes(b"the user's")
    with pytest.raises(files.DestinationExists):
        files.atomic_write_bytes(tmp_path / "t.token", b"new", overwrite=False)
    assert (tmp_path / "t.token").read_bytes() == b"the user's"
    assert [p.name for p in tmp_path.iterdir()] == ["t.token"]


def test_writability_is_checked_in_words(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("x")
    with pytest.raises(files.UnsafeWriteError, match="is a file, not a folder") as caught:
        files.check_writable_folder(tmp_path / "file" / "sub")
    assert "[Errno" not in str(caught.value)
    real_open = os.open

    def full_disk(path, flags, *args, **kw):
        if str(path).startswith(str(tmp_path)) and flags & os.O_CREAT:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_open(path, flags, *args, **kw)

    monkeypatch.setattr(os, "open", full_disk)
    with pytest.raises(files.UnsafeWriteError, match="no space left on the disk"):
        files.check_writable_folder(tmp_path / "new" / "shot")
    assert not (tmp_path / "new").exists()


def test_publish_into_an_empty_folder_is_one_rename_too(tmp_path, monkeypatch):
    (tmp_path / "shot").mkdir()
    renames = []
    real = os.rename
    monkeypatch.setattr(os, "rename", lambda a, b: renames.append(b) or real(a, b))
    with files.publish(tmp_path / "shot", ["a.png"]) as staging:
        (staging / "a.png").write_bytes(b"a")
    assert renames == [tmp_path / "shot"]
    assert [p.name for p in (tmp_path / "shot").iterdir()] == ["a.png"]
