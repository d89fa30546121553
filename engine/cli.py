"""The `inbetween` command: in-betweens from keyframe images, written as a PNG sequence.

Also the entry point of `inbetween models ...` (weights) and `inbetween serve` (the local engine
server used by the desktop app and the Krita plugin).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .core import vocabulary

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1
EXIT_CANCELLED = 130

DESCRIPTION = """\
Draw the in-between frames of 2D animation from your keyframes.

Give two or more keyframe images in timeline order. By default each pair of keys gets --count
in-betweens; with --at you place the keys on the timeline (frame numbers) and the in-betweens fill
the gaps, one drawing every frame (--on ones), every second (--on twos) or third (--on threes).
The result is a PNG sequence NAME_0001.png, NAME_0002.png, ... from the first key to the last,
with the keys copied in and held drawings repeated (or listed in a timing sheet with --no-holds).
"""

EPILOG = """\
examples:
  inbetween key_a.png key_b.png --count 7 --spacing ease-in-out --out shots/walk --name walk
  inbetween k0.png k1.png k2.png --at 0,12,24 --on twos --out shots/hop
  inbetween key_a.png key_b.png --backend cel --sketch 4=rough_arm.png

spacing: linear, ease-in (slow out of the first key), ease-out (slow into the second key),
ease-in-out, or your own timing chart as fractions between the keys, e.g. 0.1,0.25,0.5,0.75,0.9.

backends: tooncrafter (generative, needs the ToonCrafter weights: `inbetween models download`),
cel (flat-colour cels taken apart and moved along arcs, built in, no download; art that is not flat
cel goes to rife), rife (learned optical flow, built in, no download). auto uses tooncrafter when its
weights are installed, else cel, and says which one ran. Sketches steer cel and tooncrafter.

other commands:
  inbetween models list|verify|import|download   manage the ToonCrafter weights
  inbetween serve                                 run the local engine for the desktop app and Krita
  inbetween batch SHOTS.yaml                      many shots at once, resumable; --export-openjd for a farm
"""


def _frame_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of frame numbers") from None


def _sketch_arg(text: str) -> tuple[int, str]:
    frame, sep, path = text.partition("=")
    try:
        if not sep or not path:
            raise ValueError
        return int(frame), path
    except ValueError:
        raise argparse.ArgumentTypeError(f"--sketch {text!r}: expected FRAME=PATH, e.g. 6=rough_06.png") from None


def _positive_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="inbetween",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("keyframes", nargs="+", metavar="KEYFRAME", help="keyframe images (PNG, ...) in timeline order")
    p.add_argument("--version", action="version", version=f"inbetween {__version__}")

    timing = p.add_argument_group("timing")
    timing.add_argument("--count", type=_positive_int, help="in-betweens per pair of keys (default 7 without --at)")
    timing.add_argument("--at", type=_frame_list, metavar="F0,F1,...", help="timeline frame of each keyframe")
    timing.add_argument("--on", default="ones", metavar="ones|twos|threes", help="exposure: frames each drawing is held")
    timing.add_argument("--spacing", default="linear", help="linear, ease-in, ease-out, ease-in-out or a list of fractions")

    output = p.add_argument_group("output")
    output.add_argument("--out", default="inbetweens", help="output folder (default: ./inbetweens)")
    output.add_argument("--name", help="file name prefix (default: the first keyframe's name)")
    output.add_argument("--start-number", type=int, default=1, help="number of the first file (default 1)")
    output.add_argument("--padding", type=int, default=4, help="digits in frame numbers (default 4)")
    output.add_argument("--no-holds", action="store_true", help="write each drawing once plus a timing sheet")
    output.add_argument("--overwrite", action="store_true", help="replace existing frames of the same name")
    output.add_argument("--contact-sheet", action="store_true", help="also write NAME_contact.png")
    output.add_argument("--gif", action="store_true", help="also write an animated NAME.gif")
    output.add_argument("--fps", type=float, default=12.0, help="playback rate of the GIF (default 12)")
    output.add_argument("--fit", action="store_true", help="fit keyframes of other sizes into the first one's size")

    engine = p.add_argument_group("engine")
    engine.add_argument("--backend", default="auto", choices=vocabulary.BACKENDS)
    engine.add_argument("--server", metavar="URL", help="run the job on a running `inbetween serve`")
    engine.add_argument("--token-file", help="token file of that server (default: the one it advertises)")
    engine.add_argument("--allow-remote-server", action="store_true",
                        help="let --server name another machine (the token then crosses the network)")
    engine.add_argument("--quiet", action="store_true", help="no progress bar")
    engine.add_argument("--restore-detail", default="auto", choices=vocabulary.AUTO_ON_OFF,
                        help=f"{vocabulary.RESTORE_DETAIL_LABEL} (auto: when the backend drew below the keys' size)")
    engine.add_argument("--keep-palette", default="auto", choices=vocabulary.AUTO_ON_OFF,
                        help=f"{vocabulary.KEEP_PALETTE_LABEL} (auto: flat-colour keys, while restoring detail)")

    model = p.add_argument_group("tooncrafter")
    model.add_argument("--motion", type=int, default=10, help="how much motion the model adds (its fs value, default 10)")
    model.add_argument("--seed", type=int, default=123)
    model.add_argument("--steps", type=int, default=50, help="denoising steps (default 50)")
    model.add_argument("--cfg", type=float, default=7.5, help="guidance scale (default 7.5)")
    model.add_argument("--prompt", default="an anime scene", help="text prompt (default 'an anime scene')")
    model.add_argument("--preset", default="parity", choices=vocabulary.PRESETS,
                       help="parity = the original's numbers; fast = opt-in speed-ups; quality = extra passes")
    model.add_argument("--precision", default="auto", choices=vocabulary.PRECISIONS)
    model.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    model.add_argument(
        "--low-vram", action="store_true",
        help="trade speed for memory: the tightest exact chunks (GPU or CPU); on a GPU, parts visit it only while they run",
    )
    model.add_argument("--runtime", default="auto", choices=vocabulary.RUNTIMES,
                       help="what runs the model: torch, onnx (an export from `inbetween models export-onnx`) "
                       "or auto (default)")
    model.add_argument("--checkpoint", help="ToonCrafter weights file or model-store name")
    model.add_argument("--models-dir", help="model store folder (default: $INBETWEENER_MODELS or your data folder)")
    model.add_argument("--sketch", action="append", type=_sketch_arg, default=[], metavar="FRAME=PATH",
                       help="rough sketch steering the in-between at FRAME (repeatable; cel and tooncrafter)")
    model.add_argument("--sketch-strength", type=float, default=0.6, help="how strongly sketches steer (default 0.6)")
    model.add_argument("--sketch-checkpoint", help="sketch encoder weights file or model-store name")
    return p


class ProgressBar:
    """One self-rewriting line on stderr; silent when stderr is not a terminal."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.started = time.monotonic()
        self._last = ""

    def __call__(self, stage: str, fraction: float, message: str) -> None:
        if not self.enabled:
            return
        width = 30
        filled = int(round(width * min(max(fraction, 0.0), 1.0)))
        elapsed = time.monotonic() - self.started
        line = f"\r[{'#' * filled}{'.' * (width - filled)}] {fraction * 100:5.1f}% {elapsed:6.1f}s {message}"[:120]
        if line != self._last:
            sys.stderr.write(line.ljust(len(self._last)))
            sys.stderr.flush()
            self._last = line

    def close(self) -> None:
        if self.enabled and self._last:
            sys.stderr.write("\n")
            sys.stderr.flush()


def _settings(args):
    from .api import GenerationSettings

    return GenerationSettings(
        backend=args.backend,
        motion=args.motion,
        seed=args.seed,
        steps=args.steps,
        cfg_scale=args.cfg,
        prompt=args.prompt,
        sketch_strength=args.sketch_strength,
        precision=args.precision,
        preset=args.preset,
        low_vram=args.low_vram,
        checkpoint=args.checkpoint,
        sketch_checkpoint=args.sketch_checkpoint,
        device=args.device,
        runtime=args.runtime,
        restore_detail=args.restore_detail,
        keep_palette=args.keep_palette,
    )


def _timing(args) -> tuple[list[int], int, object, int | None]:
    """Key positions, exposure, spacing and explicit count from the command line."""
    from .core.planning import key_frames_for_count, parse_exposure, parse_spacing

    exposure = parse_exposure(args.on)
    spacing = parse_spacing(args.spacing)
    n_keys = len(args.keyframes)
    if args.at is not None:
        if len(args.at) != n_keys:
            raise ValueError(f"--at lists {len(args.at)} frames for {n_keys} keyframes")
        return args.at, exposure, spacing, args.count
    count = args.count
    if count is None:
        count = len(spacing) if isinstance(spacing, tuple) else 7
    return key_frames_for_count(n_keys, count, exposure), exposure, spacing, None


def _run_generate(args) -> int:
    from .api import Cancelled, EngineError, Keyframe
    from .core.planning import PlanningError
    from .imaging import read_image

    if args.models_dir:
        os.environ["INBETWEENER_MODELS"] = str(Path(args.models_dir).expanduser())
    try:
        if len(args.keyframes) < 2:
            raise EngineError(f"need at least two keyframes, got {len(args.keyframes)}")
        if args.padding < 1 or args.padding > 9:
            raise EngineError(f"--padding must be between 1 and 9 digits, got {args.padding}")
        if args.start_number < 0:
            raise EngineError(f"--start-number must not be negative, got {args.start_number}")
        key_frames, exposure, spacing, count = _timing(args)
        settings = _settings(args)
        name = args.name or Path(args.keyframes[0]).stem
        out_dir = Path(args.out)
        keyframes = [Keyframe(f, read_image(path), str(path)) for f, path in zip(key_frames, args.keyframes)]
        sketches = {frame: read_image(path) for frame, path in args.sketch}
    except (EngineError, PlanningError, ValueError) as exc:
        return _bad_input(exc)

    from . import exports
    from .pipeline import build_request, generate

    bar = ProgressBar(enabled=not args.quiet and sys.stderr.isatty())
    try:
        request = build_request(
            keyframes, sketches=sketches, exposure=exposure, spacing=spacing, count=count, settings=settings, fit=args.fit
        )
        sequence = exports.SequenceOptions(
            name=name,
            padding=args.padding,
            start_number=args.start_number,
            duplicate_holds=not args.no_holds,
            overwrite=args.overwrite,
        )
        exports.check_sequence_target(out_dir, _planned_frames(request), sequence)
        extras = [out_dir / f"{name}_contact.png"] * args.contact_sheet + [out_dir / f"{name}.gif"] * args.gif
        for extra in extras if not args.overwrite else ():
            if extra.exists():
                raise exports.ExportExistsError(extra)
        if args.server:
            from .server.remote import run_remote_job

            result = run_remote_job(args.server, request, token_file=args.token_file, progress=bar,
                                    allow_remote=args.allow_remote_server)
        else:
            result = generate(request, progress=bar)
    except Cancelled:
        bar.close()
        print("inbetween: cancelled, nothing written", file=sys.stderr)
        return EXIT_CANCELLED
    except KeyboardInterrupt:
        bar.close()
        print("inbetween: interrupted, nothing written", file=sys.stderr)
        return EXIT_CANCELLED
    except (EngineError, PlanningError) as exc:
        bar.close()
        return _bad_input(exc)
    bar.close()

    frames = [result.frames[f] for f in sorted(result.frames)]
    try:
        written = exports.write_png_sequence(frames, out_dir, sequence)
        if args.contact_sheet:
            exports.write_contact_sheet(frames, out_dir / f"{name}_contact.png", overwrite=args.overwrite)
        if args.gif:
            exports.write_gif(frames, out_dir / f"{name}.gif", fps=args.fps, overwrite=args.overwrite)
    except EngineError as exc:
        return _bad_input(exc)
    except OSError as exc:
        from .core.files import describe_os_error

        return _bad_input(f"cannot write {describe_os_error(exc)}")
    for warning in result.warnings:
        print(f"inbetween: warning: {warning}", file=sys.stderr)
    _say_backend(settings.backend, result.provenance.get("backend", "?"))
    drawn = sum(1 for f in frames if f.kind == "inbetween")
    print(f"inbetween: {drawn} in-betweens, {len(written)} files in {out_dir}", file=sys.stderr)
    return 0


def _planned_frames(request):
    """The frames the result will have, so existing files are refused before any work is done."""
    from .core.planning import frame_assignments

    return list(frame_assignments(request.segments).values())


def _say_backend(asked: str, chosen: str) -> None:
    if asked == "auto" and chosen != "tooncrafter":
        from .backends import availability

        _, reason = availability("tooncrafter")
        print(f"inbetween: drawn by the {chosen} backend ({reason})", file=sys.stderr)
    else:
        print(f"inbetween: drawn by the {chosen} backend", file=sys.stderr)


def _bad_input(exc: BaseException) -> int:
    print(f"inbetween: error: {exc}", file=sys.stderr)
    return EXIT_BAD_INPUT


SUBCOMMANDS = {
    "models": ("engine.models_cli", "manage ToonCrafter weights"),
    "serve": ("engine.server.cli", "run the local engine server"),
    "batch": ("engine.batch.cli", "in-between the shots of a batch file"),
}


def _run_subcommand(argv: Sequence[str]) -> int:
    import importlib

    name = argv[0]
    module = importlib.import_module(SUBCOMMANDS[name][0])
    parser = argparse.ArgumentParser(prog="inbetween")
    sub = parser.add_subparsers(dest="command", required=True)
    module.register(sub)
    args = parser.parse_args(list(argv))
    return module.run(args)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in SUBCOMMANDS:
        return _run_subcommand(argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed one line naming the problem
        return int(exc.code or 0)
    return _run_generate(args)


if __name__ == "__main__":
    sys.exit(main())
