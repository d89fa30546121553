"""ONNX Runtime (CPU provider) against PyTorch on the CPU: time and peak memory, side by side.

Two measurements, each runtime in its own subprocess so `resource.getrusage` reports that runtime's
own peak resident memory:
- tiny: one whole ToonCrafter pass (CLIP, VAE encode, DDIM with guidance, two-pass decode) on the
  golden tiny model of reference/tiny_a, through the backend, PyTorch vs its fp32 ONNX export;
- unet: one forward of the full-size video UNet (1.44 B parameters, random weights, float32) at
  the model's canvas, 16 frames of 320x512 (latent 40x64), batch 1, after exporting it to ONNX.
  Peak RSS measured: 7.2 GiB for the export, 7.3 GiB (PyTorch) and 12.3 GiB (ONNX Runtime) for the
  forward, one process at a time: run it on a quiet machine, under the team's big-memory lock.
  The export (5.8 GB) goes to a temporary folder that is removed at the end, also when the run
  fails or is stopped (SIGTERM, SIGHUP, Ctrl-C); `--workdir` keeps it instead, so a second run
  skips the export.

    .venv/bin/python bench/onnx_cpu.py tiny [--steps 10] [--reference ../shared/reference/tiny_a]
    flock /tmp/team/bigmem.lock .venv/bin/python bench/onnx_cpu.py unet [--workdir /tmp/onnx-unet]

Prints one line per runtime and the ratio ONNX / PyTorch; figures go to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

#: The UNet input of the full-size measurement: batch, frames, latent height and width (320x512 / 8).
UNET_SHAPE = (1, 16, 40, 64)


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux reports KiB


def _threads(n: int) -> None:
    """The same thread count on both sides: PyTorch's, and every onnxruntime session made in this
    process (onnxruntime otherwise takes one intra-op thread per core, whatever PyTorch uses)."""
    import onnxruntime as ort
    import torch

    torch.set_num_threads(n)

    class SessionOptions(ort.SessionOptions):
        def __init__(self) -> None:
            super().__init__()
            self.intra_op_num_threads = n
            self.inter_op_num_threads = 1

    ort.SessionOptions = SessionOptions


# -- children: each prints one JSON line ----------------------------------------------------------


def child_tiny(runtime: str, reference: Path, store: Path, steps: int, threads: int) -> dict:
    _threads(threads)
    from engine.api import CancelToken, GenerationSettings, InbetweenTask
    from engine.backends.tooncrafter import ToonCrafterBackend
    from engine.tooncrafter.networks.config import tiny_from_reference
    from engine.tooncrafter.weights.store import ModelStore
    from tests.helpers import disc_keyframe

    config = tiny_from_reference(json.loads((reference / "config.json").read_text()))
    checkpoint = str(store / "onnx" / "weights-fp32") if runtime == "onnx" else str(reference / "weights.safetensors")
    settings = GenerationSettings(backend="tooncrafter", runtime=runtime, steps=steps, seed=3, checkpoint=checkpoint)
    start = time.perf_counter()
    backend = ToonCrafterBackend(settings, config=config, store=ModelStore(store))
    load = time.perf_counter() - start
    task = InbetweenTask(disc_keyframe(25, 30), disc_keyframe(70, 34), [k / 5 for k in range(1, 5)], settings)
    backend.interpolate(task, lambda *a: None, CancelToken())  # warm-up (kernels, prompt contexts)
    start = time.perf_counter()
    backend.interpolate(task, lambda *a: None, CancelToken())
    return {"runtime": runtime, "load_s": load, "pass_s": time.perf_counter() - start, "peak_rss_gib": peak_rss_gib()}


def _random_unet():
    import torch

    from engine.tooncrafter.networks.config import ToonCrafterConfig
    from engine.tooncrafter.networks.unet import ToonCrafterUNet

    torch.manual_seed(0)
    unet = ToonCrafterUNet(ToonCrafterConfig().unet).eval().requires_grad_(False)
    for p in unet.parameters():  # zero-initialised output layers would make the output trivially 0
        if p.ndim > 1 and not p.abs().sum():
            p.normal_(0, 0.02)
    return unet


def _unet_inputs():
    import torch

    from engine.tooncrafter.networks.config import ToonCrafterConfig

    cfg = ToonCrafterConfig()
    b, t, h, w = UNET_SHAPE
    g = torch.Generator().manual_seed(1)
    context_len = cfg.unet.text_context_len + cfg.unet.image_tokens_per_frame * t
    return (
        torch.randn((b, cfg.unet.in_channels, t, h, w), generator=g),
        torch.full((b,), 500, dtype=torch.long),
        torch.randn((b, context_len, cfg.unet.context_dim), generator=g),
        torch.full((b,), 10, dtype=torch.long),
    )


def child_export_unet(workdir: Path, threads: int) -> dict:
    _threads(threads)
    import torch

    from engine.tooncrafter.networks.config import ToonCrafterConfig
    from engine.tooncrafter.runtimes.onnx_folder import graph_interfaces
    from export_onnx.exporter import ExportSettings, export_graph
    from export_onnx.graphs import EXAMPLE_LATENT, GraphSpec, UNetGraph

    cfg = ToonCrafterConfig()
    unet = _random_unet()
    interface = graph_interfaces(cfg.sketch_encoder.num_residuals, len(cfg.first_stage.ch_mult) + 1)["unet"]
    g = torch.Generator().manual_seed(2)
    context_len = cfg.unet.text_context_len + cfg.unet.image_tokens_per_frame * cfg.frames
    example = (
        torch.randn((2, cfg.unet.in_channels, cfg.frames, *EXAMPLE_LATENT), generator=g),
        torch.tensor([999, 10]),
        torch.randn((2, context_len, cfg.unet.context_dim), generator=g),
        torch.tensor([10, 24]),
    )
    axes = {n: {0: "batch"} for n in interface.inputs}
    axes["x"] = axes["v"] = {0: "batch", 3: "height", 4: "width"}
    start = time.perf_counter()
    entry = export_graph(GraphSpec("unet", interface, UNetGraph(unet), example, axes, []), workdir, ExportSettings())
    return {"step": "export", "export_s": time.perf_counter() - start, "bytes": entry["bytes"], "peak_rss_gib": peak_rss_gib()}


def child_unet(runtime: str, workdir: Path, threads: int) -> dict:
    _threads(threads)
    import numpy as np
    import torch

    inputs = _unet_inputs()
    start = time.perf_counter()
    if runtime == "torch":
        unet = _random_unet()

        def forward():
            with torch.inference_mode():
                return unet(*inputs)
    else:
        from engine.tooncrafter.runtimes.onnx_folder import GraphInterface
        from engine.tooncrafter.runtimes.onnx_sessions import GraphSession

        interface = GraphInterface("unet.onnx", ("x", "timesteps", "context", "fs"), ("v",))
        session = GraphSession(workdir / "unet.onnx", interface, ["CPUExecutionProvider"])

        def forward():
            return session.run(**dict(zip(interface.inputs, inputs)))[0]
    load = time.perf_counter() - start
    start = time.perf_counter()
    v = forward()
    seconds = time.perf_counter() - start
    result = {"runtime": runtime, "load_s": load, "forward_s": seconds, "peak_rss_gib": peak_rss_gib()}
    out = workdir / "torch_v.npy"
    if runtime == "torch":
        np.save(out, v.numpy())
    elif out.is_file():
        result["max_abs_diff_vs_torch"] = float(np.abs(np.load(out) - v.numpy()).max())
    return result


# -- parent -----------------------------------------------------------------------------------------


def run_child(threads: int, *args: str) -> dict:
    command = [sys.executable, __file__, "tiny", "--threads", str(threads), "--child", *args]
    with subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            stdout, stderr = proc.communicate()
        except BaseException:  # stopped: the child goes too, before the parent removes its files
            proc.kill()
            proc.wait()
            raise
    if proc.returncode != 0:
        raise SystemExit(f"child {' '.join(args)} failed (exit status {proc.returncode}):\n{stderr[-3000:]}")
    return json.loads(stdout.strip().splitlines()[-1])


def _stop(signum: int, frame: object) -> None:
    raise SystemExit(f"stopped by signal {signum}")


def load_average() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("tiny", "unet"))
    parser.add_argument("--steps", type=int, default=10, help="tiny: DDIM steps per pass (default 10)")
    parser.add_argument("--reference", type=Path, default=REPO.parent / "shared" / "reference" / "tiny_a")
    parser.add_argument("--workdir", type=Path, help="unet: where the export goes (default: a temporary folder)")
    parser.add_argument("--threads", type=int, default=2, help="threads per runtime, PyTorch and onnxruntime alike (default 2)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, *rest = args.child
        if kind == "tiny":
            result = child_tiny(rest[0], Path(rest[1]), Path(rest[2]), int(rest[3]), args.threads)
        elif kind == "export-unet":
            result = child_export_unet(Path(rest[0]), args.threads)
        else:
            result = child_unet(rest[0], Path(rest[1]), args.threads)
        print(json.dumps(result))
        return 0
    for signum in (signal.SIGTERM, signal.SIGHUP):  # so the temporary export is removed when stopped
        signal.signal(signum, _stop)
    print(f"machine: {os.cpu_count()} cores, {args.threads} threads per runtime; "
          f"load average {load_average()} (1, 5, 15 min)", flush=True)
    with tempfile.TemporaryDirectory(prefix="onnx-cpu-bench-") as tmp:
        if args.what == "tiny":
            from export_onnx.exporter import ExportSettings, export_folder, graphs_for
            from export_onnx.sources import from_tiny_reference

            store = Path(tmp)
            export_folder(store / "onnx" / "weights-fp32", from_tiny_reference(args.reference), None,
                          graphs_for(["clip", "resampler", "vae", "unet"]), ExportSettings(), report=lambda line: None)
            results = [run_child(args.threads, "tiny", rt, str(args.reference), str(store), str(args.steps))
                       for rt in ("torch", "onnx")]
            key = "pass_s"
            label = f"one tiny pass ({args.steps} steps, CFG)"
        else:
            workdir = args.workdir or Path(tmp)
            workdir.mkdir(parents=True, exist_ok=True)
            if not (workdir / "unet.onnx").is_file():
                export = run_child(args.threads, "export-unet", str(workdir))
                print(f"export: {export['export_s']:.0f} s, {export['bytes'] / 1e9:.2f} GB, "
                      f"peak RSS {export['peak_rss_gib']:.1f} GiB", flush=True)
            results = [run_child(args.threads, "unet", rt, str(workdir)) for rt in ("torch", "onnx")]
            key = "forward_s"
            label = "full-size UNet forward, 16x320x512, batch 1"
    for r in results:
        extra = f", max|onnx-torch| {r['max_abs_diff_vs_torch']:.1e}" if "max_abs_diff_vs_torch" in r else ""
        print(f"{r['runtime']:<6} {label}: {r[key]:.2f} s (load {r['load_s']:.1f} s), peak RSS {r['peak_rss_gib']:.2f} GiB{extra}")
    torch_r, onnx_r = results
    print(f"ratio onnx/torch: time {onnx_r[key] / torch_r[key]:.2f}x, peak RSS {onnx_r['peak_rss_gib'] / torch_r['peak_rss_gib']:.2f}x")
    print(f"load average at the end {load_average()} (1, 5, 15 min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
