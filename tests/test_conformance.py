"""The conformance gate: every golden case of reference/tiny_a passes, both manifests match the
full-size model, and the runner itself reports failures (wrong values, missing checks, missing
outputs) with a non-zero exit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from engine.conformance.__main__ import check_manifest, main
from engine.conformance.runner import CaseFolder, run_case, run_folder

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_every_tiny_a_case_passes_through_the_command_line(reference_dir):
    proc = subprocess.run(
        [sys.executable, "-m", "engine.conformance", str(reference_dir / "tiny_a")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    spec = json.loads((reference_dir / "tiny_a" / "cases.json").read_text())
    lines = [line for line in proc.stdout.splitlines() if line.startswith(("PASS", "FAIL"))]
    assert len(lines) == len(spec["cases"])
    assert all(line.startswith("PASS") for line in lines), proc.stdout
    for case in spec["cases"]:
        assert any(f" {case} " in line for line in lines), f"{case} not reported"
    assert "max_abs_diff=" in lines[0]


@pytest.mark.slow
def test_every_tiny_a_case_passes_on_onnx_runtime(reference_dir, tmp_path):
    """The same cases and tolerances on ONNX Runtime (CPU provider): the tiny models are exported
    (fp32) and every model case runs through the exported graphs; the broadcast-context UNet case
    gets its own graph, since the product's export fixes the context length."""
    pytest.importorskip("onnxruntime")
    lines: list[str] = []
    results = run_folder(reference_dir / "tiny_a", echo=lines.append, runtime="onnx", export_dir=tmp_path)
    spec = json.loads((reference_dir / "tiny_a" / "cases.json").read_text())
    assert [r.case for r in results] == list(spec["cases"])
    assert all(r.passed for r in results), "\n".join(lines)
    assert lines[-1] == f"{len(results)} cases on onnx: {len(results)} passed, 0 failed"
    assert (tmp_path / "tiny" / "onnx_export.json").is_file() and (tmp_path / "unet_context_93.onnx").is_file()
    model_cases = [r for r in results if r.case not in ("schedule", "clip_preprocess")]
    assert all(0 < r.max_abs_diff <= r.atol for r in model_cases)  # computed by onnxruntime, not copied
    assert main([str(reference_dir / "tiny_a"), "--runtime", "onnx", "--export-dir", str(tmp_path),
                 "--case", "unet"]) == 0  # the export is reused


@pytest.mark.slow
def test_lean_settings_against_the_goldens(reference_dir):
    """Encoding only the two keyframes gives bit-identical keyframe latents here (the encoder works
    frame by frame); batching cond and uncond changes float rounding only (so it stays out of parity)."""
    from engine.conformance.checks_sampling import run_sampling_case

    folder = CaseFolder(reference_dir / "tiny_a")
    ctx = folder.context("sample_ddim_eta1")
    parity = run_sampling_case(ctx, decode=False)
    lean = run_sampling_case(ctx, decode=False, encode_all_frames=False, batch_cond_uncond=True)
    assert torch.equal(lean["c_concat"], parity["c_concat"])
    assert "z_all_frames" not in lean
    golden = ctx.golden("latents")
    atol = ctx.case["suggested_atol"]
    assert (lean["latents"] - golden).abs().max() < atol
    assert (lean["latents"] - parity["latents"]).abs().max() < atol


@pytest.mark.parametrize(
    "manifest", ["manifest_tooncrafter_512_interp.json", "manifest_sketch_encoder.json"]
)
def test_full_size_models_match_the_manifests(reference_dir, manifest):
    lines: list[str] = []
    assert check_manifest(str(reference_dir / manifest), echo=lines.append), "\n".join(lines)
    assert "missing: 0  unexpected: 0  mis-shaped: 0" in "\n".join(lines)


def test_manifest_mode_reports_a_mismatch(reference_dir, tmp_path):
    data = json.loads((reference_dir / "manifest_sketch_encoder.json").read_text())
    data["entries"][0]["shape"] = [7, 7]
    data["entries"].append({"key": "extra.weight", "shape": [1], "dtype": "float32", "kind": "parameter"})
    del data["entries"][5]
    path = tmp_path / "manifest_sketch_encoder.json"
    path.write_text(json.dumps(data))
    lines: list[str] = []
    assert not check_manifest(str(path), echo=lines.append)
    text = "\n".join(lines)
    assert "missing: 1" in text and "mis-shaped: 1" in text and "time_embed.0.weight" in text
    assert main(["--manifest", str(path)]) == 1


# -- the runner's own semantics, on a small folder made from the schedule case -----------------


@pytest.fixture
def schedule_folder(reference_dir, tmp_path):
    """A case folder holding the schedule case (its goldens optionally perturbed) plus extra cases."""
    source = reference_dir / "tiny_a"
    spec = json.loads((source / "cases.json").read_text())
    tensors = load_file(str(source / "cases.safetensors"))

    def make(perturb: float = 0.0, extra_cases: dict | None = None, drop_output: str | None = None) -> Path:
        case = json.loads(json.dumps(spec["cases"]["schedule"]))
        stored = {e["key"]: tensors[e["key"]].clone() for e in case["outputs"].values()}
        if perturb:
            stored["schedule.betas"][10] += perturb
        cases = {"schedule": case, **(extra_cases or {})}
        if drop_output:
            cases = json.loads(json.dumps(cases))
            cases["schedule"]["outputs"]["not_produced"] = {"key": "schedule.betas", "shape": [1000]}
        (tmp_path / "config.json").write_text((source / "config.json").read_text())
        (tmp_path / "cases.json").write_text(json.dumps({"tensor_file": "cases.safetensors", "cases": cases}))
        save_file(stored, str(tmp_path / "cases.safetensors"))
        return tmp_path

    return make


def test_runner_passes_exact_goldens(schedule_folder):
    lines: list[str] = []
    results = run_folder(schedule_folder(), echo=lines.append)
    assert [r.passed for r in results] == [True]
    assert results[0].max_abs_diff < 1e-6 and results[0].atol == 1e-6
    assert lines[0].startswith("PASS  schedule")


def test_runner_fails_beyond_the_tolerance(schedule_folder):
    results = run_folder(schedule_folder(perturb=1e-3), echo=lambda line: None)
    assert not results[0].passed
    assert results[0].worst == "betas" and results[0].max_abs_diff == pytest.approx(1e-3, rel=1e-3)
    assert main([str(schedule_folder(perturb=1e-3))]) == 1


def test_a_case_without_a_check_is_a_failure(schedule_folder):
    folder = schedule_folder(extra_cases={"brand_new_case": {"outputs": {}, "inputs": {}}})
    lines: list[str] = []
    results = run_folder(folder, echo=lines.append)
    assert [r.passed for r in results] == [True, False]
    assert "no check" in lines[1] and "brand_new_case" in lines[1]
    assert main([str(folder)]) == 1


def test_a_missing_required_output_is_a_failure(schedule_folder):
    folder = CaseFolder(schedule_folder(drop_output="betas"))
    from engine.conformance.checks_sampling import check_schedule

    result = run_case(folder, "schedule", check_schedule)
    assert not result.passed and "not_produced" in result.error


def test_a_check_that_raises_is_reported_not_fatal(schedule_folder):
    folder = CaseFolder(schedule_folder())

    def broken(ctx):
        raise RuntimeError("boom")

    result = run_case(folder, "schedule", broken)
    assert not result.passed and "RuntimeError: boom" in result.error


def test_shape_mismatch_is_a_failure(schedule_folder):
    folder = CaseFolder(schedule_folder())
    result = run_case(folder, "schedule", lambda ctx: {name: torch.zeros(3) for name in ctx.case["outputs"]})
    assert not result.passed and result.max_abs_diff == float("inf")


def test_bad_usage_exits_2(tmp_path, capsys):
    assert main([str(tmp_path)]) == 2
    assert "cases.json" in capsys.readouterr().err
