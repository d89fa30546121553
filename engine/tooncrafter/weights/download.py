"""Resumable, verified downloads of weights files (standard library only).

Bytes go to `NAME.part` beside the target; an interrupted download resumes from the end of that
file with an HTTP Range request (a server that ignores Range makes it start over). Only a complete
file whose sha256 matches (when one is known) is renamed to its final name, so a half-written or
corrupted file never sits under the name the engine loads.
"""

from __future__ import annotations

import hashlib
import os
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from ...api import CancelToken, EngineError

CHUNK = 1 << 20
USER_AGENT = "inbetweener-model-download/1"


class DownloadError(EngineError):
    """A download that did not complete; the message says whether running it again resumes it."""


def part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def _hash_existing(path: Path, digest: "hashlib._Hash") -> int:
    size = 0
    with open(path, "rb") as fh:
        while block := fh.read(8 * CHUNK):
            digest.update(block)
            size += len(block)
    return size


def _total_from_headers(status: int, headers, offset: int) -> int | None:
    if status == 206:
        match = re.match(r"bytes (\d+)-(\d+)/(\d+|\*)", headers.get("Content-Range", ""))
        if match and match.group(3) != "*":
            return int(match.group(3))
    length = headers.get("Content-Length")
    if length is not None:
        return int(length) + (offset if status == 206 else 0)
    return None


def download(
    url: str,
    dest: str | os.PathLike,
    *,
    sha256: str | None = None,
    progress: Callable[[int, int | None], None] | None = None,
    cancel: CancelToken | None = None,
    timeout: float = 60.0,
) -> str:
    """Download `url` to `dest` (resuming `dest`.part) and return the file's sha256.

    Raises DownloadError on network failure (the .part file stays for a resume), on cancellation,
    and on a sha256 mismatch (the .part file is deleted: its bytes are wrong).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(dest)
    digest = hashlib.sha256()
    offset = _hash_existing(part, digest) if part.exists() else 0

    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            # The .part file already holds every byte: finish with what is there.
            return _finish(part, dest, digest, sha256, url)
        raise DownloadError(f"{url}: the server answered {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise DownloadError(f"{url}: cannot connect ({getattr(exc, 'reason', exc)}); check the network") from None

    with response:
        status = response.status
        if offset and status != 206:
            # The server ignored the Range request: start over.
            offset = 0
            digest = hashlib.sha256()
        total = _total_from_headers(status, response.headers, offset)
        done = offset
        try:
            with open(part, "ab" if offset else "wb") as fh:
                while True:
                    if cancel is not None and cancel.cancelled:
                        raise DownloadError(
                            f"download of {dest.name} cancelled after {done} bytes; run it again to resume"
                        )
                    block = response.read(CHUNK)
                    if not block:
                        break
                    fh.write(block)
                    digest.update(block)
                    done += len(block)
                    if progress:
                        progress(done, total)
        except (OSError, urllib.error.URLError) as exc:
            raise DownloadError(
                f"download of {dest.name} interrupted after {done} bytes ({exc}); run it again to resume"
            ) from None
    if total is not None and done < total:
        raise DownloadError(
            f"download of {dest.name} stopped at {done} of {total} bytes; run it again to resume"
        )
    return _finish(part, dest, digest, sha256, url)


def _finish(part: Path, dest: Path, digest, expected: str | None, url: str) -> str:
    actual = digest.hexdigest()
    if expected and actual.lower() != expected.lower():
        part.unlink(missing_ok=True)
        raise DownloadError(
            f"{url}: sha256 mismatch (expected {expected}, got {actual}); the download was removed, "
            "run it again to fetch a fresh copy"
        )
    os.replace(part, dest)
    return actual
