"""How far each precision mode lands from the original's float32 goldens (tiny reference model).

Runs the conformance sampling cases (4 DDIM steps with classifier-free guidance, then the two-pass
dual-reference decode) on the CPU with the tiny model of `shared/reference/tiny_a`, in each mode:

- fp32: the reference (what the goldens were made with);
- fp16 / bf16 weights: every network cast outright;
- autocast fp16 / bf16: float32 weights, the run inside torch.autocast (what the original does on CUDA).

In every mode the schedule maths, the DDIM update, the CFG combination, the posterior sample and
the group/layer norms stay float32 (the networks and the sampler keep them so). Prints one markdown
table of max |mode - golden| for the latents and the decoded frames (frames are in [-1, 1]).

    .venv/bin/python bench/precision_tooncrafter.py [--folder ../shared/reference/tiny_a]
"""

from __future__ import annotations

import argparse
import contextlib
import platform
from pathlib import Path

import torch

from engine.conformance.checks_sampling import run_sampling_case
from engine.conformance.models import tiny_networks
from engine.conformance.runner import CaseFolder

REPO = Path(__file__).resolve().parents[1]
MODES = ("fp32", "fp16 weights", "bf16 weights", "autocast fp16", "autocast bf16")
CASES = ("sample_ddim_eta0", "sample_ddim_eta1")


def run_mode(folder: CaseFolder, case: str, mode: str) -> dict[str, float]:
    folder.cache.clear()
    ctx = folder.context(case)
    net = tiny_networks(ctx)
    if mode.endswith("weights"):
        dtype = torch.float16 if mode.startswith("fp16") else torch.bfloat16
        model = net.model
        for part in (model.model, model.first_stage_model, model.cond_stage_model, model.embedder, model.image_proj_model):
            part.to(dtype)
    scope = contextlib.nullcontext()
    if mode.startswith("autocast"):
        scope = torch.autocast("cpu", dtype=torch.float16 if mode.endswith("fp16") else torch.bfloat16)
    with torch.no_grad(), scope:
        out = run_sampling_case(ctx, decode="frames" in ctx.case["outputs"])
    return {
        name: (out[name].double() - ctx.golden(name).double()).abs().max().item() for name in ("latents", "frames") if name in ctx.case["outputs"]
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder", type=Path, default=REPO.parent / "shared" / "reference" / "tiny_a")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES), metavar="MODE")
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    args = parser.parse_args()
    if not (args.folder / "cases.json").is_file():
        raise SystemExit(f"no conformance cases in {args.folder}")
    torch.set_num_threads(args.threads)
    folder = CaseFolder(args.folder)
    print(f"machine: {platform.machine()}, {args.threads} threads, torch {torch.__version__}; cases from {args.folder}")
    columns = [f"{case[-4:]} {name}" for case in args.cases for name in ("latents", "frames") if case != CASES[1] or name == "latents"]
    print("| mode | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for mode in args.modes:
        errors = {}
        for case in args.cases:
            errors.update({f"{case[-4:]} {k}": v for k, v in run_mode(folder, case, mode).items()})
        print(f"| {mode} | " + " | ".join(f"{errors[c]:.2e}" for c in columns) + " |", flush=True)


if __name__ == "__main__":
    main()
