"""Build what users install: the Krita plugin zip and the PyInstaller bundle of app + engine.

    python installer/build.py krita-zip [--out dist]    # dist/inbetweener-krita-<version>.zip
    python installer/build.py bundle [--out dist]       # dist/inbetweener/ (needs PyInstaller); `make bundle`

The Krita zip is what Tools › Scripts › Import Python Plugin from File… takes: the .desktop and
.action files and the `inbetweener` package at its top, with the standard-library engine core
(client, protocol, planning) copied in as `inbetweener/engine_core`. Folders have entries of
their own (Krita's importer looks for them). Entries are sorted and dated
1980-01-01, so the same sources give the same bytes.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PLUGIN = REPO / "krita_plugin"
PACKAGE = "inbetweener"
ENGINE_CORE = REPO / "engine" / "core"
BUNDLED_CORE = f"{PACKAGE}/engine_core"
SPEC = Path(__file__).resolve().parent / "inbetweener.spec"
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
PACKAGE_SUFFIXES = (".py", ".html")


def version() -> str:
    text = (REPO / "engine" / "__init__.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__\s*=\s*"([^"]+)"', text, re.M)
    if not match:
        raise SystemExit("engine/__init__.py has no __version__")
    return match.group(1)


def krita_zip_entries() -> dict[str, Path]:
    """Name inside the zip -> file in the checkout."""
    entries = {f"{PACKAGE}.desktop": PLUGIN / f"{PACKAGE}.desktop", f"{PACKAGE}.action": PLUGIN / f"{PACKAGE}.action"}
    for path in sorted((PLUGIN / PACKAGE).rglob("*")):
        relative = path.relative_to(PLUGIN)
        if path.is_file() and path.suffix in PACKAGE_SUFFIXES and "__pycache__" not in relative.parts:
            entries[relative.as_posix()] = path
    if (PLUGIN / PACKAGE / "engine_core").exists():
        raise SystemExit(f"{PLUGIN / PACKAGE / 'engine_core'} must not exist: the zip brings engine/core there")
    for path in sorted(ENGINE_CORE.glob("*.py")):
        entries[f"{BUNDLED_CORE}/{path.name}"] = path
    for required in (f"{PACKAGE}/__init__.py", f"{BUNDLED_CORE}/client.py", f"{BUNDLED_CORE}/planning.py",
                     f"{BUNDLED_CORE}/protocol.py"):
        if required not in entries:
            raise SystemExit(f"the plugin zip would lack {required}")
    return entries


def build_krita_zip(out_dir: Path) -> Path:
    """Write dist/inbetweener-krita-<version>.zip atomically; its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{PACKAGE}-krita-{version()}.zip"
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=out_dir)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            entries = krita_zip_entries()
            for folder in sorted({name.rsplit("/", 1)[0] + "/" for name in entries if "/" in name}):
                # Krita's importer finds the package by its folder entry, so folders are listed too.
                info = zipfile.ZipInfo(folder, date_time=ZIP_DATE)
                info.external_attr = (0o40755 << 16) | 0x10
                archive.writestr(info, b"")
            for name, path in sorted(entries.items()):
                info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                archive.writestr(info, path.read_bytes())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def build_bundle(out_dir: Path, work: Path | None = None) -> Path:
    """Run PyInstaller on installer/inbetweener.spec; the bundle folder."""
    try:
        import PyInstaller  # noqa: F401
    except ImportError:
        raise SystemExit("PyInstaller is not installed: pip install pyinstaller (in the engine's environment)") from None
    work = work or REPO / "build" / "pyinstaller"
    subprocess.run(
        [sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN", "--distpath", str(out_dir),
         "--workpath", str(work), str(SPEC)],
        check=True,
        cwd=REPO,
    )
    return out_dir / PACKAGE


def bundle_sizes(bundle: Path, top: int = 12) -> tuple[int, list[tuple[int, str]]]:
    """Total bytes of the bundle and its biggest parts (top-level entries of its `_internal` folder)."""
    def size(path: Path) -> int:
        return path.stat().st_size if path.is_file() else sum(f.stat().st_size for f in path.rglob("*") if f.is_file())

    internal = bundle / "_internal"
    parts = sorted(((size(p), p.name) for p in (internal if internal.is_dir() else bundle).iterdir()), reverse=True)
    return size(bundle), parts[:top]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (("krita-zip", "the Krita plugin zip"), ("bundle", "the desktop app + engine bundle")):
        p = sub.add_parser(name, help=f"build {help_text}")
        p.add_argument("--out", type=Path, default=REPO / "dist", help="output folder (default: dist/)")
    args = parser.parse_args(argv)
    if args.command == "krita-zip":
        print(build_krita_zip(args.out))
    else:
        bundle = build_bundle(args.out)
        total, parts = bundle_sizes(bundle)
        print(f"{bundle}: {total / 2**20:.0f} MiB; biggest parts:")
        for bytes_, name in parts:
            print(f"  {bytes_ / 2**20:8.1f} MiB  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
