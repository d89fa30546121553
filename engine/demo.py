"""`make demo`: in-betweens for the bundled sample keyframes, as PNG sequences, contact sheets and GIFs.

Runs the best backend available (ToonCrafter when its weights are installed, else the cel
in-betweener, which hands art that is not flat cel to RIFE) on every sample shot in samples/ and
writes out/demo/<shot>/.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from .api import GenerationSettings, Keyframe
from .core import vocabulary
from .imaging import read_image

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


@dataclass(frozen=True)
class DemoShot:
    folder: str
    keys: tuple[str, ...]
    key_frames: tuple[int, ...]
    exposure: int
    spacing: str
    fps: float


SHOTS = (
    DemoShot("arm_swing", ("key_a.png", "key_b.png"), (0, 16), 2, "ease-in-out", 12.0),
    DemoShot("bouncing_ball_alpha", ("key_a.png", "key_b.png"), (0, 8), 1, "ease-in", 12.0),
    DemoShot("three_keys", ("key_0.png", "key_1.png", "key_2.png"), (0, 12, 24), 2, "linear", 12.0),
)


def run_shot(shot: DemoShot, out_root: Path, settings: GenerationSettings) -> Path:
    from . import exports
    from .pipeline import build_request, generate

    folder = SAMPLES / shot.folder
    keyframes = [Keyframe(f, read_image(folder / name), str(folder / name)) for f, name in zip(shot.key_frames, shot.keys)]
    request = build_request(keyframes, exposure=shot.exposure, spacing=shot.spacing, settings=settings)

    live = sys.stderr.isatty()

    def progress(stage: str, fraction: float, message: str) -> None:
        if live:
            print(f"\r  {shot.folder}: {fraction * 100:5.1f}% {message}"[:100].ljust(100), end="", file=sys.stderr)

    result = generate(request, progress=progress)
    if live:
        print(file=sys.stderr)
    frames = [result.frames[f] for f in sorted(result.frames)]
    out_dir = out_root / shot.folder
    sequence = exports.SequenceOptions(name=shot.folder, overwrite=True)
    exports.write_png_sequence(frames, out_dir, sequence)
    exports.write_contact_sheet(frames, out_dir / f"{shot.folder}_contact.png", overwrite=True)
    exports.write_gif(frames, out_dir / f"{shot.folder}.gif", fps=shot.fps, overwrite=True)
    drawn = sum(1 for f in frames if f.kind == "inbetween")
    print(f"  {shot.folder}: {drawn} in-betweens by {drawn_by(result.provenance)} -> {out_dir}", file=sys.stderr)
    return out_dir


def drawn_by(provenance: dict) -> str:
    """What drew a shot: the backend, or the method it handed the work to, and why."""
    backend = provenance["backend"]
    method = provenance.get("method", backend)
    return backend if method == backend else f"{method} ({backend}: {provenance.get('fallback', 'handed on')})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.demo", description=__doc__)
    parser.add_argument("--out", default="out/demo", help="output folder (default out/demo)")
    parser.add_argument("--backend", default="auto", choices=vocabulary.BACKENDS)
    args = parser.parse_args(argv)
    from .backends import resolve_backend_name

    settings = GenerationSettings(backend=args.backend)
    print(f"demo: backend {resolve_backend_name(settings)}; samples from {SAMPLES}", file=sys.stderr)
    for shot in SHOTS:
        run_shot(shot, Path(args.out), settings)
    print(f"demo: done; open {args.out}/*/ *_contact.png or *.gif", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
