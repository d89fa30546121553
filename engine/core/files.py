"""Crash-safe file writing shared by the exports, the engine server, its client and the desktop app.

Three guarantees, each kept in this one module (standard library only: the Krita plugin carries
a copy of engine/core):

- A single file is written under a temporary name beside it and renamed into place
  (`atomic_write_bytes`, `atomic_path`): a crash leaves the old file or the new one, never half.
- A set of files (a PNG sequence and its timing sheet) appears whole or not at all (`publish`):
  into a new folder it is staged in a sibling folder and renamed in one step; into a folder that
  already holds other files, a journal is written before the first rename, replaced files are
  moved aside (not deleted) until the last rename is done, and any failure puts everything back.
- What a crash leaves behind (staging folders, temporary files) carries the writer's host and
  process id, so the next writer into that folder rolls an interrupted publish back and removes
  the leftovers of dead processes (`recover_interrupted`), and says what it did.

Errors are OSError subclasses whose message names the path and the problem in words
(`describe_os_error`), never a bare "[Errno 30]".
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import stat
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

#: Leftovers of other hosts (a shared network folder) are only removed after this long.
FOREIGN_LEFTOVER_AGE_S = 24 * 3600
JOURNAL = "journal.json"
_NEW, _OLD = "new", "old"

# `.<name>.<host>-<pid>-<random>.tmp[<suffix>]` and `.<name>.<host>-<pid>-<random>.staging`
_TAG = r"(?P<host>[0-9a-f]{6})-(?P<pid>\d+)-[0-9a-f]{8}"
_LEFTOVER = re.compile(rf"^\.(?P<base>.+)\.{_TAG}\.(?P<kind>tmp|staging)(\.[^.]*)?$")


class UnsafeWriteError(OSError):
    """A write refused or failed; the message names the path and what is wrong, in words."""

    def __str__(self) -> str:
        return str(self.strerror)


class DestinationExists(UnsafeWriteError, FileExistsError):
    """The write would replace an existing file and replacing was not asked for."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        super().__init__(errno.EEXIST, f"{self.path} already exists", str(self.path))

    def __str__(self) -> str:
        return f"{self.path} already exists"


def describe_os_error(exc: OSError, path: str | os.PathLike | None = None) -> str:
    """'<path>: <what went wrong>' in words, with a hint where the user can act."""
    where = path or exc.filename or "file"
    code = exc.errno
    words = {
        getattr(errno, "EDQUOT", errno.ENOSPC): "no space left on the disk (quota)",
        errno.EROFS: "the disk or folder is read-only",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.ENOSPC: "no space left on the disk",
        errno.EEXIST: "already exists",
        errno.ENOTDIR: "a file stands where a folder is needed",
        errno.EISDIR: "is a folder, not a file",
        errno.ENOENT: "does not exist",
        errno.ENAMETOOLONG: "the name is too long",
    }.get(code)
    if words is None:
        words = (exc.strerror or str(exc) or type(exc).__name__).rstrip(".").lower()
    return f"{where}: {words}"


def _tag() -> str:
    host = hashlib.sha256(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:6]
    return f"{host}-{os.getpid()}-{secrets.token_hex(4)}"


def temporary_name(path: str | os.PathLike, kind: str = "tmp") -> Path:
    """A hidden name beside `path` that `recover_interrupted` recognises as this process's work.
    Temporary files keep the suffix so writers that go by it (imageio) still work."""
    path = Path(path)
    suffix = path.suffix if kind == "tmp" else ""
    return path.with_name(f".{path.name}.{_tag()}.{kind}{suffix}")


def _fsync_dir(folder: Path) -> None:
    """Make renames in `folder` durable (a no-op where folders cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --- folders -----------------------------------------------------------------------------------


def ensure_private_folder(folder: str | os.PathLike) -> Path:
    """Create `folder` readable by this user only (0700), or check an existing one: a folder owned
    by someone else is refused, one that others may write into is tightened to 0700, because
    whoever can write there could plant a token file or a server advertisement. (A folder others
    may only read is left as it is: the files written there are 0600.)"""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    if os.name != "posix":
        return folder
    info = folder.stat()
    if not stat.S_ISDIR(info.st_mode):
        raise UnsafeWriteError(errno.ENOTDIR, f"{folder} is not a folder", str(folder))
    if info.st_uid != os.geteuid():
        raise UnsafeWriteError(
            errno.EPERM,
            f"{folder} belongs to another user (uid {info.st_uid}); refusing to keep the engine's token there: "
            "set INBETWEENER_STATE_DIR to a folder of your own",
            str(folder),
        )
    if info.st_mode & 0o022:
        os.chmod(folder, 0o700)
        print(
            f"inbetween: warning: {folder} was open to other users (mode {stat.S_IMODE(info.st_mode):o}); "
            "made it private (700)",
            file=sys.stderr,
        )
    return folder


def is_private_folder(folder: str | os.PathLike) -> bool:
    """True when only this user can write into `folder` (always True where modes do not apply)."""
    if os.name != "posix":
        return True
    try:
        info = Path(folder).stat()
    except OSError:
        return False
    return info.st_uid == os.geteuid() and not info.st_mode & 0o022


def check_writable_folder(folder: str | os.PathLike) -> Path:
    """Check, before any long work, that files can be created in `folder` (created later if new).

    Raises UnsafeWriteError naming the folder: a file in the way, a read-only disk, no permission.
    Creates nothing that stays: the probe file is removed at once."""
    folder = Path(folder)
    existing = folder
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        what = "the output folder" if existing == folder else f"a folder of {folder}"
        raise UnsafeWriteError(
            errno.ENOTDIR, f"{existing} is a file, not a folder: it cannot be {what}; choose another path", str(existing)
        )
    probe = temporary_name(existing / "write-check")
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise UnsafeWriteError(exc.errno, f"cannot write in {describe_os_error(exc, existing)}", str(existing)) from None
    os.close(fd)
    Path(probe).unlink(missing_ok=True)
    return folder


# --- one file ----------------------------------------------------------------------------------


def atomic_write_bytes(
    path: str | os.PathLike, data: bytes, *, private: bool = False, overwrite: bool = True
) -> None:
    """Write to a temporary file beside `path`, flush it to disk, then rename it into place, so a
    crash leaves either the old file or the new one. `private` makes the file readable by this
    user only (0600, in a private folder: see ensure_private_folder): for tokens. With
    `overwrite=False` an existing `path` is never replaced (DestinationExists), even in a race."""
    path = Path(path)
    if private:
        ensure_private_folder(path.parent)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
    if not overwrite and os.path.lexists(path):
        raise DestinationExists(path)
    tmp = temporary_name(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600 if private else 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            _rename_no_replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def _rename_no_replace(src: Path, dst: Path) -> None:
    """Rename that fails if `dst` exists: a hard link is atomic and never replaces."""
    try:
        os.link(src, dst)
    except FileExistsError:
        raise DestinationExists(dst) from None
    except OSError:  # file systems without hard links: check, then rename
        if os.path.lexists(dst):
            raise DestinationExists(dst) from None
        os.replace(src, dst)
        return
    os.unlink(src)


@contextmanager
def atomic_path(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `path` (same suffix); rename it onto `path` when the block ends.

    On any error the temporary file is removed and `path` is left as it was."""
    path = Path(path)
    if not overwrite and os.path.lexists(path):
        raise DestinationExists(path)
    if path.is_dir():
        raise UnsafeWriteError(errno.EISDIR, f"{path} is a folder, not a file: choose another name", str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    recover_interrupted(path.parent)
    tmp = temporary_name(path)
    try:
        yield tmp
        if overwrite:
            os.replace(tmp, path)
        else:
            _rename_no_replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# --- a set of files ----------------------------------------------------------------------------


@contextmanager
def publish(folder: str | os.PathLike, names: Iterable[str], overwrite: bool = False) -> Iterator[Path]:
    """Yield a staging folder; write every file of `names` into it. When the block ends they all
    appear in `folder` under those names, or (on any error, or a crash) none of them does.

    A new or empty `folder` is replaced by the staged one in one rename: nothing is ever visible
    half-way. Into a folder holding other files the names are moved in one by one under a journal;
    a crash part-way is rolled back by the next writer into that folder (recover_interrupted).

    Without `overwrite` an existing file of those names is refused (DestinationExists) before
    anything moves. With it, the files replaced are moved aside and only deleted once every new
    file is in place; if a rename fails they are put back."""
    folder = Path(folder)
    names = list(names)
    swap = not os.path.lexists(folder) or _empty_folder(folder)
    if swap:
        folder.parent.mkdir(parents=True, exist_ok=True)
        recover_interrupted(folder.parent)
        staging = temporary_name(folder, "staging")
        staging.mkdir()
        files = staging
    else:
        recover_interrupted(folder)
        check_destinations(folder, names, overwrite)
        staging = temporary_name(folder / "publish", "staging")
        staging.mkdir()
        files = staging / _NEW
        files.mkdir()
    try:
        yield files
        missing = [n for n in names if not (files / n).is_file()]
        if missing:
            raise UnsafeWriteError(errno.ENOENT, f"{missing[0]} was not written", missing[0])
        if swap and _swap_in(staging, folder):
            return
        if swap:  # the folder was filled meanwhile, or is a mount point: publish file by file after all
            moved = staging
            staging = temporary_name(folder / "publish", "staging")
            staging.mkdir()
            shutil.move(moved, staging / _NEW)  # a copy when the folder is another file system
        check_destinations(folder, names, overwrite)
        _move_in(staging, folder, names)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _empty_folder(folder: Path) -> bool:
    """An empty real folder, which POSIX lets a rename replace in one step (a mount point refuses it)."""
    if os.name != "posix" or folder.is_symlink() or not folder.is_dir():
        return False
    with os.scandir(folder) as entries:
        return next(entries, None) is None


def check_destinations(folder: Path, names: list[str], overwrite: bool) -> None:
    """Refuse names that are folders, and (without `overwrite`) names that exist."""
    folder = Path(folder)
    if os.path.lexists(folder) and not folder.is_dir():
        raise UnsafeWriteError(errno.ENOTDIR, f"{folder} is a file, not a folder: choose another output folder", str(folder))
    for name in names:
        target = folder / name
        if not os.path.lexists(target):
            continue
        if target.is_dir() and not target.is_symlink():
            raise UnsafeWriteError(errno.EISDIR, f"{target} is a folder: it cannot be replaced by a frame", str(target))
        if not overwrite:
            raise DestinationExists(target)


def _swap_in(staging: Path, folder: Path) -> bool:
    """Rename the staged folder to `folder` in one step; False when `folder` appeared meanwhile."""
    try:
        os.rename(staging, folder)
    except OSError as exc:
        if os.path.lexists(folder):
            return False
        raise UnsafeWriteError(exc.errno, describe_os_error(exc, folder), str(folder)) from None
    _fsync_dir(folder.parent)
    return True


def _move_in(staging: Path, folder: Path, names: list[str]) -> None:
    """Journal, then per name: move the old file aside, move the new one in. Undone on any error;
    the journal's removal is the commit point (after it, the old files are no longer needed)."""
    (staging / _OLD).mkdir()
    journal = staging / JOURNAL
    atomic_write_bytes(journal, json.dumps({"folder": str(folder), "names": names}).encode("utf-8"))
    _fsync_dir(staging)
    try:
        for name in names:
            target = folder / name
            if os.path.lexists(target):
                os.replace(target, staging / _OLD / name)
            os.replace(staging / _NEW / name, target)
        _fsync_dir(folder)
    except BaseException:
        _roll_back(staging, folder, names)
        raise
    journal.unlink()
    _fsync_dir(staging)


def _roll_back(staging: Path, folder: Path, names: list[str]) -> int:
    """Undo a journaled publish: new files moved in are removed, the old ones go back. The number
    of names put back as they were."""
    undone = 0
    for name in names:
        new, old, target = staging / _NEW / name, staging / _OLD / name, folder / name
        if not os.path.lexists(new) and os.path.lexists(target) and not os.path.lexists(old):
            # moved in; nothing was replaced (or the old file is already back)
            os.unlink(target)
            undone += 1
        elif not os.path.lexists(new) and os.path.lexists(old):
            os.replace(old, target)
            undone += 1
        elif os.path.lexists(old):  # moved aside, new one not yet in
            os.replace(old, target)
            undone += 1
    _fsync_dir(folder)
    return undone


# --- after a crash -----------------------------------------------------------------------------


def _owner_gone(host: str, pid: int, path: Path) -> bool:
    """Whether the process that made a leftover has ended. Another host's leftovers count as gone
    only once they are old (the folder may be shared over the network)."""
    own_host = hashlib.sha256(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:6]
    if host != own_host or os.name != "posix":
        try:
            return time.time() - path.lstat().st_mtime > FOREIGN_LEFTOVER_AGE_S
        except OSError:
            return False
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def recover_interrupted(folder: str | os.PathLike) -> list[str]:
    """Clean up after writers into `folder` that died (a crash, kill -9, power loss): roll back
    their unfinished publishes, remove their staging folders and temporary files. Returns one
    line per thing done (also printed on stderr), so the user hears about it."""
    folder = Path(folder)
    done: list[str] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return done
    for entry in entries:
        match = _LEFTOVER.match(entry.name)
        if not match:
            continue
        path = Path(entry.path)
        if not _owner_gone(match["host"], int(match["pid"]), path):
            continue
        try:
            if match["kind"] == "tmp":
                path.unlink()
                done.append(f"removed {path.name}, a temporary file left by an interrupted write")
                continue
            journal = path / JOURNAL
            if journal.is_file():
                try:
                    names = list(json.loads(journal.read_text(encoding="utf-8"))["names"])
                except (ValueError, KeyError, TypeError, OSError):
                    names = sorted(p.name for p in (path / _OLD).iterdir()) if (path / _OLD).is_dir() else []
                undone = _roll_back(path, folder, names)
                done.append(f"rolled back an interrupted export in {folder}: {undone} of {len(names)} files "
                            "put back as they were before it")
            else:
                done.append(f"removed {path.name}, the staging folder of an interrupted export (nothing of it "
                            "had been published)")
            shutil.rmtree(path)
        except OSError as exc:
            done.append(f"could not clean up {describe_os_error(exc, path)}")
    for line in done:
        print(f"inbetween: {line}", file=sys.stderr)
    return done
