"""GPU checks of the full-size ToonCrafter model with random weights (speed does not depend on them).

Three parts, each printed as it finishes (and written to --json):
- precision: one UNet forward at the model canvas (16 frames, 320x512) in float32, float16 and
  bfloat16 on identical inputs and weights: max and relative difference of v to float32;
- modes: seconds per denoising step, end-to-end seconds for one pass (fitting, CLIP, VAE encode,
  DDIM with guidance, two-pass decode, keying back) and peak GPU memory, for
  parity (the original's computation), fast (cond/uncond batched, two keys encoded) and low-vram
  (parts on the GPU only while they run, chunked attention), optionally also with sketches;
- onnx: the UNet exported to ONNX (float16 weights) and run by ONNX Runtime's CUDA provider with IO
  binding on the same inputs: which provider really ran, s/forward against PyTorch float16, and the
  difference between the two.

    .venv/bin/python bench/gpu_tooncrafter.py [--steps 10] [--parts precision,modes,onnx] [--json out.json]
    .venv/bin/python bench/gpu_tooncrafter.py --tiny ../shared/reference/tiny_a --device cpu   # dry run

`--tiny DIR --device cpu` runs every part on the tiny reference config on the CPU (a check that the
script itself works where no GPU is); figures from it mean nothing. Without --tiny it refuses to
run without a CUDA GPU. Figures go to BENCHMARKS.md (section "ToonCrafter on GPU").
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from engine.api import CancelToken, GenerationSettings, InbetweenTask  # noqa: E402

MODES = {
    "parity": {"preset": "parity", "low_vram": False},
    "fast": {"preset": "fast", "low_vram": False},
    "low-vram": {"preset": "parity", "low_vram": True},
}
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class Bench:
    def __init__(self, device: str, config) -> None:
        self.device = device
        self.config = config

    def sync(self) -> None:
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()

    def reset_peak(self) -> None:
        if self.device.startswith("cuda"):
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()

    def peak_gib(self) -> float | None:
        return torch.cuda.max_memory_allocated() / 2**30 if self.device.startswith("cuda") else None

    def keyframe(self, cx_fraction: float) -> np.ndarray:
        """A flat-coloured disc with an outline on paper, at the model canvas size."""
        width, height = self.config.width, self.config.height
        yy, xx = np.mgrid[:height, :width]
        radius = height * 0.19
        d = np.sqrt((xx - cx_fraction * width) ** 2 + (yy - height / 2) ** 2)
        image = np.full((height, width, 4), (245, 240, 225, 255), np.uint8)
        image[d < radius] = (230, 80, 60, 255)
        image[(d >= radius - 4) & (d < radius + 2)] = (30, 25, 35, 255)
        return image

    def sketch(self, cx_fraction: float) -> np.ndarray:
        width, height = self.config.width, self.config.height
        yy, xx = np.mgrid[:height, :width]
        image = np.full((height, width, 4), 255, np.uint8)
        ring = np.abs(np.sqrt((xx - cx_fraction * width) ** 2 + (yy - height / 2) ** 2) - height * 0.19) < 2
        image[ring, :3] = 40
        return image

    def unet_inputs(self, batch: int = 1) -> tuple[torch.Tensor, ...]:
        cfg = self.config
        _, c, t, h, w = cfg.latent_shape()
        g = torch.Generator().manual_seed(1)
        context_len = cfg.unet.text_context_len + cfg.unet.image_tokens_per_frame * t
        return (
            torch.randn((batch, cfg.unet.in_channels, t, h, w), generator=g).to(self.device),
            torch.full((batch,), 500, dtype=torch.long, device=self.device),
            torch.randn((batch, context_len, cfg.unet.context_dim), generator=g).to(self.device),
            torch.full((batch,), 10, dtype=torch.long, device=self.device),
        )

    def timed(self, fn, repeats: int = 3) -> tuple[float, object]:
        out = fn()  # warm-up: kernels, allocator, cuDNN autotuning
        times = []
        for _ in range(repeats):
            self.sync()
            start = time.perf_counter()
            out = fn()
            self.sync()
            times.append(time.perf_counter() - start)
        return statistics.median(times), out


def randomize_zero_layers(module: torch.nn.Module) -> None:
    """ToonCrafter zero-initialises its output and projection layers; random weights must not be 0
    there, or every output would be trivially zero."""
    g = torch.Generator(device="cpu").manual_seed(2)
    with torch.no_grad():
        for p in module.parameters():
            if p.ndim > 1 and not p.abs().sum():
                p.copy_(torch.randn(p.shape, generator=g) * 0.02)


def build_random_model(bench: Bench):
    from engine.tooncrafter.model import ToonCrafterModel

    torch.manual_seed(0)
    with torch.device(bench.device):
        model = ToonCrafterModel(bench.config)
    randomize_zero_layers(model)
    return model.eval().requires_grad_(False)


def build_random_sketch_encoder(bench: Bench, dtype: torch.dtype):
    from engine.tooncrafter.networks.sketch_encoder import SketchEncoder

    torch.manual_seed(1)
    with torch.device(bench.device):
        encoder = SketchEncoder(bench.config.sketch_encoder)
    randomize_zero_layers(encoder)
    return encoder.to(dtype).eval().requires_grad_(False)


# -- parts ------------------------------------------------------------------------------------------


def part_precision(bench: Bench, model32) -> list[dict]:
    """float16 / bfloat16 UNet against float32 on the same inputs."""
    inputs = bench.unet_inputs()
    results = []
    with torch.inference_mode():
        seconds, reference = bench.timed(lambda: model32.unet(*inputs), repeats=1)
        results.append({"precision": "fp32", "seconds_per_forward": seconds, "max_abs_diff": 0.0, "relative": 0.0})
        for name in ("fp16", "bf16"):
            unet = copy.deepcopy(model32.unet).to(DTYPES[name])
            seconds, v = bench.timed(lambda unet=unet: unet(*inputs), repeats=2)
            diff = (v.float() - reference.float()).abs()
            results.append({
                "precision": name, "seconds_per_forward": seconds, "max_abs_diff": float(diff.max()),
                "relative": float(diff.max() / reference.abs().max()), "mean_abs_diff": float(diff.mean()),
            })
            del unet
            bench.reset_peak()
    return results


def part_mode(bench: Bench, model, name: str, steps: int, precision: str, sketch_encoder=None) -> dict:
    from engine.backends.tooncrafter import ToonCrafterBackend

    settings = GenerationSettings(
        backend="tooncrafter", runtime="torch", steps=steps, precision=precision, device=bench.device, **MODES[name]
    )
    backend = ToonCrafterBackend(settings, config=bench.config, model=model)
    sketches = {}
    t = bench.config.frames
    if sketch_encoder is not None:
        backend.runner.net.sketch_encoder = sketch_encoder
        backend.runner.place()
        sketches = {k / (t - 1): bench.sketch(0.27 + 0.46 * k / (t - 1)) for k in (3, 6, 9, 12) if k < t - 1}
    bench.reset_peak()
    task = InbetweenTask(bench.keyframe(0.27), bench.keyframe(0.73), [k / (t - 1) for k in range(1, t - 1)], settings,
                         sketches=sketches)
    marks: list[tuple[str, float]] = []

    def progress(stage: str, fraction: float, message: str) -> None:
        bench.sync()
        marks.append((stage, time.perf_counter()))

    start = time.perf_counter()
    frames = backend.interpolate(task, progress, CancelToken())
    bench.sync()
    total = time.perf_counter() - start
    step_times = [b[1] - a[1] for a, b in zip(marks, marks[1:]) if b[0].startswith("denoise") and a[0].startswith("denoise")]
    return {
        "mode": name + (" + sketches" if sketches else ""),
        "precision": precision,
        "steps": steps,
        "seconds_per_step": statistics.median(step_times[1:] or step_times),
        "end_to_end_seconds": total,
        "peak_vram_gib": bench.peak_gib(),
        "frames": len(frames) + 2,
        "low_vram_after": backend.describe()["low_vram"],
        "chunks": backend.describe().get("chunks"),
    }


def part_onnx(bench: Bench, model, precision: str, tensorrt: bool) -> dict:
    """The UNet exported to ONNX and run on the best GPU provider that loads, with IO binding."""
    import onnxruntime as ort

    from engine.tooncrafter.runtimes.onnx_folder import graph_interfaces
    from engine.tooncrafter.runtimes.onnx_sessions import CPU, CUDA, TENSORRT, GraphSession, plan_providers
    from export_onnx.exporter import ExportSettings, export_graph
    from export_onnx.graphs import EXAMPLE_LATENT, GraphSpec, UNetGraph

    if bench.device.startswith("cuda") and CUDA not in ort.get_available_providers():
        # a full-size export then a float16 UNet on the CPU provider would take many minutes and mean nothing
        raise RuntimeError(f"onnxruntime {ort.__version__} here has no {CUDA} (providers "
                           f"{ort.get_available_providers()}): install onnxruntime-gpu, see docs/onnx.md")
    cfg = bench.config
    dtype = DTYPES[precision]
    unet = copy.deepcopy(model.unet).to(dtype)
    interface = graph_interfaces(cfg.sketch_encoder.num_residuals, len(cfg.first_stage.ch_mult) + 1)["unet"]
    example = tuple(x.clone() for x in bench.unet_inputs(batch=2))
    example = (example[0][..., : EXAMPLE_LATENT[0], : EXAMPLE_LATENT[1]].contiguous(), *example[1:])
    axes = {n: {0: "batch"} for n in interface.inputs}
    axes["x"] = axes["v"] = {0: "batch", 3: "height", 4: "width"}
    result: dict = {"precision": precision}
    with tempfile.TemporaryDirectory(prefix="onnx-unet-") as tmp:
        start = time.perf_counter()
        entry = export_graph(GraphSpec("unet", interface, UNetGraph(unet), example, axes, []), Path(tmp), ExportSettings())
        result.update(export_seconds=time.perf_counter() - start, bytes=entry["bytes"])
        plan = plan_providers(bench.device if bench.device.startswith("cuda") else "cpu", precision,
                              Path(tmp) / "trt-cache")
        if not tensorrt:
            plan.providers = [p for p in plan.providers if p[0] != TENSORRT]
        start = time.perf_counter()
        session = GraphSession(Path(tmp) / "unet.onnx", interface, plan, precision, bench.device)
        result.update(load_seconds=time.perf_counter() - start, asked=plan.names, provider=session.providers[0],
                      provider_warnings=session.warnings)
        inputs = bench.unet_inputs()
        feed = dict(zip(interface.inputs, inputs))
        seconds, v_onnx = bench.timed(lambda: session.run(**feed)[0])
        with torch.inference_mode():
            torch_seconds, v_torch = bench.timed(lambda: unet(*inputs))
        diff = (v_onnx.float() - v_torch.float()).abs()
        result.update(
            seconds_per_forward=seconds, torch_seconds_per_forward=torch_seconds,
            ratio_onnx_to_torch=seconds / torch_seconds, max_abs_diff_vs_torch=float(diff.max()),
            relative_diff_vs_torch=float(diff.max() / v_torch.float().abs().max()),
            output_device=str(v_onnx.device), gpu_provider=session.providers[0] in (CUDA, TENSORRT),
        )
        result["fell_back_to_cpu"] = session.providers[0] == CPU and bench.device.startswith("cuda")
    bench.reset_peak()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="denoising steps per timed pass (s/step is the median)")
    parser.add_argument("--precision", choices=("fp16", "bf16"), default="fp16", help="precision of the timed modes")
    parser.add_argument("--parts", default="precision,modes,onnx")
    parser.add_argument("--modes", default="parity,fast,low-vram")
    parser.add_argument("--no-sketches", action="store_true", help="skip the runs with sketch guidance")
    parser.add_argument("--tensorrt", action="store_true", help="also ask for TensorRT in the onnx part (slow engine build)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", type=Path, help="a reference folder: run on its tiny config (dry run)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in modes if m not in MODES] + [p for p in parts if p not in ("precision", "modes", "onnx")]
    if unknown:
        parser.error(f"unknown part or mode {', '.join(unknown)}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("bench/gpu_tooncrafter.py measures GPU speed and needs a CUDA GPU; none is visible to PyTorch here "
              "(use --tiny DIR --device cpu for a dry run; CPU speed is in bench/cpu_speed.py).", file=sys.stderr)
        return 2
    from engine.tooncrafter.networks.config import ToonCrafterConfig, tiny_from_reference

    config = tiny_from_reference(json.loads((args.tiny / "config.json").read_text())) if args.tiny else ToonCrafterConfig()
    bench = Bench(args.device, config)
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu (dry run)"
    import onnxruntime as ort

    print(f"device: {name}, torch {torch.__version__} (CUDA {torch.version.cuda}), onnxruntime {ort.__version__} "
          f"{ort.get_available_providers()}, model {config.name}", flush=True)
    report: dict = {"device": name, "torch": torch.__version__, "onnxruntime": ort.__version__, "model": config.name}
    start = time.perf_counter()
    model32 = build_random_model(bench)
    print(f"built the model with random weights in {time.perf_counter() - start:.1f} s", flush=True)
    if "precision" in parts:
        report["precision"] = part_precision(bench, model32)
        for r in report["precision"]:
            print(f"precision {r['precision']}: {r['seconds_per_forward']:.3f} s/UNet forward, max|v - v_fp32| "
                  f"{r['max_abs_diff']:.2e} ({r['relative']:.1e} of max|v|)", flush=True)
    if "modes" in parts:
        precision = args.precision if args.device.startswith("cuda") else "fp32"
        model = model32.cast_weights(DTYPES[precision])
        part_mode(bench, model, modes[0], 2, precision)  # warm-up
        encoder = None if args.no_sketches else build_random_sketch_encoder(bench, DTYPES[precision])
        runs = [(m, None) for m in modes] + ([(m, encoder) for m in modes] if encoder is not None else [])
        report["modes"] = []
        for mode, sketch_encoder in runs:
            r = part_mode(bench, model, mode, args.steps, precision, sketch_encoder)
            report["modes"].append(r)
            vram = f"peak VRAM {r['peak_vram_gib']:.1f} GiB" if r["peak_vram_gib"] is not None else ""
            print(f"{r['mode']:<22} {r['seconds_per_step']:.3f} s/step   {r['end_to_end_seconds']:.1f} s per pass "
                  f"({args.steps} steps, {r['frames']} frames)   {vram}", flush=True)
    if "onnx" in parts:  # last, and on its own: a missing onnxruntime-gpu must not cost the other figures
        try:
            report["onnx"] = part_onnx(bench, model32, args.precision if args.device.startswith("cuda") else "fp32",
                                       args.tensorrt)
        except Exception as exc:  # recorded, not raised: the report keeps what did run
            report["onnx"] = {"error": f"{type(exc).__name__}: {exc}"}
            print(f"onnx: not measured: {report['onnx']['error']}", flush=True)
        else:
            r = report["onnx"]
            print(f"onnx: export {r['export_seconds']:.0f} s ({r['bytes'] / 1e9:.2f} GB), provider {r['provider']} "
                  f"(asked {r['asked']}), {r['seconds_per_forward']:.3f} s/forward vs torch {r['torch_seconds_per_forward']:.3f} "
                  f"(x{r['ratio_onnx_to_torch']:.2f}), max diff {r['max_abs_diff_vs_torch']:.2e} "
                  f"({r['relative_diff_vs_torch']:.1e} relative), outputs on {r['output_device']}", flush=True)
            for warning in r["provider_warnings"]:
                print("  " + warning, flush=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
