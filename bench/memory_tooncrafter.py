"""Peak memory and time of ToonCrafter's dual-reference decode, whole clip vs the exact lean decode.

Each setting runs in its own subprocess (full-size decoder, random weights, CPU, float32): the child
builds the decoder and its inputs, records its resident memory, decodes once, and reports its peak
resident memory (`ru_maxrss`) and the decode time. "activations" is peak minus the resident memory
before the decode (weights + inputs + the Python/torch baseline). The last setting's frames are
compared with the whole-clip decode's, so the table also shows the lean decode is exact.

    .venv/bin/python bench/memory_tooncrafter.py                      # 16 x 320x512, whole, 4, 1, 1-bands
    .venv/bin/python bench/memory_tooncrafter.py --frames 4 --height 64 --width 64 --settings whole 1
    .venv/bin/python bench/memory_tooncrafter.py --settings 1 --outputs /tmp/decodes   # then, later:
    flock /tmp/team/bigmem.lock .venv/bin/python bench/memory_tooncrafter.py --settings whole --outputs /tmp/decodes
    python bench/memory_tooncrafter.py --device cuda --dtype fp16   # GPU: peak VRAM (max_memory_allocated)
    .venv/bin/python bench/memory_tooncrafter.py --pipeline           # whole pass: parity, fast, low-vram

`--pipeline` measures a whole ToonCrafter pass instead of the decode alone: the full-size model with
random weights (UNet, CLIP towers, VAE: about 10 GB in float32) is built, its resident memory is taken
as the baseline (the peak is reset there through /proc/self/clear_refs), then one pass runs (CLIP,
VAE encode, `--steps` DDIM steps with guidance, the dual-reference decode) in the engine's parity,
fast and low-vram settings, each in its own subprocess with the chunk plan the engine picks itself.
The frames of each setting are compared with the first setting's.

On CUDA "before" and "peak" are the allocator's bytes (torch.cuda.memory_allocated and
max_memory_allocated), so "activations" is the peak VRAM the decode adds to its weights and inputs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the children too, where the engine is not installed (a bare GPU machine)


def _resident_bytes() -> int:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize()


def _reset_peak_resident() -> None:
    """Linux: make the resident high-water mark (ru_maxrss) restart from the present."""
    Path("/proc/self/clear_refs").write_text("5")


def child_pipeline(args: argparse.Namespace) -> None:
    import gc

    import numpy as np
    import torch

    sys.path.insert(0, str(REPO / "bench"))
    from gpu_tooncrafter import MODES, Bench, build_random_model

    from engine.api import CancelToken, GenerationSettings, InbetweenTask
    from engine.backends.tooncrafter import ToonCrafterBackend
    from engine.tooncrafter.networks.config import ToonCrafterConfig, tiny_from_reference

    torch.set_num_threads(args.threads)
    config = tiny_from_reference(json.loads((args.tiny / "config.json").read_text())) if args.tiny else ToonCrafterConfig()
    bench = Bench(args.device, config)
    model = build_random_model(bench)
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    settings = GenerationSettings(
        backend="tooncrafter",
        runtime="torch",
        steps=args.steps,
        precision=args.dtype,
        device=args.device,
        **MODES[args.setting],
    )
    backend = ToonCrafterBackend(settings, config=config, model=model)
    t = config.frames
    task = InbetweenTask(bench.keyframe(0.27), bench.keyframe(0.73), [k / (t - 1) for k in range(1, t - 1)], settings)
    gc.collect()
    _reset_peak_resident()
    before = _resident_bytes()
    start = time.perf_counter()
    frames = backend.interpolate(task, lambda *_: None, CancelToken())
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if args.save:
        torch.save(torch.from_numpy(np.stack(frames).astype(np.float32)), args.save)
    print(
        json.dumps(
            {
                "weights": weights,
                "before": before,
                "peak": peak,
                "seconds": seconds,
                "chunks": backend.describe().get("chunks"),
            }
        )
    )


def child(args: argparse.Namespace) -> None:
    import torch

    from engine.tooncrafter.networks.autoencoder import DualRefAutoencoderConfig
    from engine.tooncrafter.networks.dualref_decoder import DualRefDecoder

    torch.set_num_threads(args.threads)
    config = DualRefAutoencoderConfig()
    torch.manual_seed(0)
    decoder = DualRefDecoder(
        ch=config.ch,
        ch_mult=config.ch_mult,
        num_res_blocks=config.num_res_blocks,
        z_channels=config.z_channels,
        fusion_levels=config.fusion_levels,
        kernel_t=config.kernel_t,
    ).eval()
    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[args.dtype]
    decoder.to(args.device, dtype)
    weights = sum(p.numel() * p.element_size() for p in decoder.parameters())
    h, w = args.height // 8, args.width // 8
    generator = torch.Generator().manual_seed(1)
    z = torch.randn(args.frames, config.z_channels, h, w, generator=generator)
    refs = []
    for level, mult in enumerate([*config.ch_mult, 1]):
        scale = 2 ** min(level, len(config.ch_mult) - 1) if level < len(config.ch_mult) else 1
        refs.append(torch.randn(1, config.ch * mult, 2, args.height // scale, args.width // scale, generator=generator))
    z, refs = z.to(args.device, dtype), [r.to(args.device, dtype) for r in refs]
    cuda = args.device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated() if cuda else _resident_bytes()
    if args.setting != "whole":
        frames_at_once, _, bands = args.setting.partition("-")
        decoder.set_frames_at_once(int(frames_at_once), in_row_bands=bands == "bands")
    start = time.perf_counter()
    with torch.no_grad():
        frames = decoder(z, refs, args.frames)
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() if cuda else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if args.save:
        torch.save(frames.float().cpu(), args.save)
    print(json.dumps({"weights": weights, "before": before, "peak": peak, "seconds": seconds}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--height", type=int, default=320)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu (peak RSS) or cuda (peak allocated VRAM)")
    parser.add_argument("--dtype", choices=("fp32", "fp16", "bf16"), default="fp32")
    parser.add_argument(
        "--settings",
        nargs="+",
        default=["whole", "4", "1", "1-bands"],
        help="'whole', frames at once (N), or N-bands (N frames at once, each in bands of rows)",
    )
    parser.add_argument(
        "--outputs",
        help="keep each setting's frames in this folder (<setting>.pt) and compare with a whole.pt already "
        "there, so the whole-clip decode (which needs the big-memory lock) can run in another invocation",
    )
    parser.add_argument("--pipeline", action="store_true", help="a whole pass (settings: parity fast low-vram)")
    parser.add_argument("--steps", type=int, default=1, help="--pipeline: DDIM steps (each runs the UNet twice)")
    parser.add_argument("--tiny", type=Path, help="--pipeline: a reference folder's tiny config (a dry run of the script)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--save", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.setting = args.child
        (child_pipeline if args.pipeline else child)(args)
        return
    if args.pipeline and args.device != "cpu":
        parser.error("--pipeline measures resident memory on the CPU; bench/gpu_tooncrafter.py measures a pass's VRAM")
    if args.pipeline and args.settings == parser.get_default("settings"):
        args.settings = ["parity", "fast", "low-vram"]

    import tempfile

    import torch

    gib = 1024**3
    print(f"machine: {platform.processor() or platform.machine()}, {args.threads} threads, torch {torch.__version__}")
    if args.pipeline:
        size = "the tiny config" if args.tiny else "16 frames at 320x512"
        print(f"whole ToonCrafter pass ({args.steps} DDIM steps), {size}, {args.dtype} on {args.device}, random weights")
    else:
        print(f"dual-reference decode, {args.frames} frames at {args.height}x{args.width}, {args.dtype} on {args.device}, random weights")
    print(f"{'setting':>10} {'weights GiB':>12} {'before GiB':>11} {'peak GiB':>9} {'activations GiB':>16} {'s':>8}")
    outputs = {}
    # Large tensors get their own mappings, so freed activations leave the resident set at once and
    # the peak is the live memory's, not the allocator's fragmentation.
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(1 << 20)}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.outputs or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for setting in args.settings:
            save = str(folder / f"{setting}.pt")
            command = [sys.executable, __file__, "--child", setting, "--save", save]
            command += ["--frames", str(args.frames), "--height", str(args.height), "--width", str(args.width)]
            command += ["--threads", str(args.threads), "--device", args.device, "--dtype", args.dtype]
            command += ["--pipeline", "--steps", str(args.steps)] if args.pipeline else []
            command += ["--tiny", str(args.tiny)] if args.tiny else []
            done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=env)
            if done.returncode:
                print(f"{setting:>10} failed: {done.stderr.strip().splitlines()[-1:]}")
                continue
            r = json.loads(done.stdout.strip().splitlines()[-1])
            active = (r["peak"] - r["before"]) / gib
            print(
                f"{setting:>10} {r['weights'] / gib:>12.3f} {r['before'] / gib:>11.2f} {r['peak'] / gib:>9.2f} {active:>16.2f} {r['seconds']:>8.1f}",
                flush=True,
            )
            if r.get("chunks") is not None:
                print(f"{'':>10} chunk plan: {r['chunks']}", flush=True)
            outputs[setting] = torch.load(save)
        for kept in sorted(folder.glob("*.pt")):
            if kept.stem not in outputs:
                outputs[kept.stem] = torch.load(kept)
    reference = "parity" if args.pipeline else "whole"
    if reference in outputs:
        for setting, frames in outputs.items():
            if setting != reference:
                diff = (frames.double() - outputs[reference].double()).abs().max().item()
                print(f"max |{setting} - {reference}| = {diff:.2e}")


if __name__ == "__main__":
    main()
