"""The two runtimes behind one model contract: which runtime runs (auto, torch, onnx) and why not,
ONNX Runtime's execution providers and IO binding, and ToonCrafter end to end on ONNX Runtime
against PyTorch (the `inbetween` command, sketches included) on the exported tiny golden model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from engine.api import CancelToken, EngineError, GenerationSettings, InbetweenTask  # noqa: E402
from engine.tooncrafter.networks.config import tiny_from_reference  # noqa: E402
from engine.tooncrafter.runtimes import (  # noqa: E402
    find_export,
    onnx_sessions,  # noqa: E402
    resolve_runtime,
    runtime_report,
)
from engine.tooncrafter.runtimes.contract import ToonCrafterNetworks  # noqa: E402
from engine.tooncrafter.runtimes.onnx_folder import (  # noqa: E402
    FORMAT_VERSION,
    MANIFEST_NAME,
    GraphInterface,
    OnnxExportError,
    store_export_folder,
)
from engine.tooncrafter.runtimes.onnx_sessions import (  # noqa: E402
    CPU,
    CUDA,
    TENSORRT,
    GraphSession,
    ProviderPlan,
    check_providers,
    plan_providers,
)
from engine.tooncrafter.weights.store import ModelStore  # noqa: E402
from tests.helpers import disc_keyframe, save_png  # noqa: E402

# -- execution providers ---------------------------------------------------------------------------


def test_cpu_is_asked_for_alone_and_auto_explains_a_cpu_only_onnxruntime_beside_a_gpu(monkeypatch):
    monkeypatch.setattr(onnx_sessions, "available_providers", lambda: ["AzureExecutionProvider", CPU])
    monkeypatch.setattr(onnx_sessions, "gpu_present", lambda: False)
    assert plan_providers("cpu").names == [CPU] and plan_providers("auto").notes == []  # no GPU: nothing to say
    monkeypatch.setattr(onnx_sessions, "gpu_present", lambda: True)
    plan = plan_providers("auto")
    assert plan.names == [CPU] and not plan.wants_gpu
    assert "onnxruntime-gpu" in plan.notes[0] and "docs/onnx.md" in plan.notes[0]
    with pytest.raises(OnnxExportError, match="install `onnxruntime-gpu`"):
        plan_providers("cuda:1")


def test_gpu_providers_come_first_with_the_engine_cache_in_the_store(monkeypatch, tmp_path):
    monkeypatch.setattr(onnx_sessions, "available_providers", lambda: [TENSORRT, CUDA, CPU])
    plan = plan_providers("cuda:1", "fp16", tmp_path / "trt")
    assert plan.names == [TENSORRT, CUDA, CPU] and plan.device_id == 1 and plan.wants_gpu
    trt, cuda = dict(plan.providers[0][1]), dict(plan.providers[1][1])
    assert trt["trt_fp16_enable"] is True and trt["trt_engine_cache_enable"] is True
    assert trt["trt_engine_cache_path"] == str(tmp_path / "trt") and trt["device_id"] == 1
    assert cuda == {"device_id": 1}
    assert plan_providers("auto", "fp32").providers[0][1]["trt_fp16_enable"] is False


def test_a_provider_that_did_not_load_is_named_with_what_really_runs():
    plan = ProviderPlan([(TENSORRT, {}), (CUDA, {}), (CPU, {})])
    messages = check_providers(plan, [CUDA, CPU], "unet.onnx")
    assert len(messages) == 1
    assert "unet.onnx: TensorrtExecutionProvider could not load" in messages[0]
    assert "libnvinfer" in messages[0] and messages[0].endswith("running on CUDAExecutionProvider")
    messages = check_providers(plan, [CPU], "unet.onnx")
    assert len(messages) == 2 and all(m.endswith("running on CPUExecutionProvider") for m in messages)
    assert check_providers(ProviderPlan([(CPU, {})]), [CPU], "x") == []


def _affine_graph(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """y = x @ W + b (dynamic batch) and the step count doubled (an int64 input and output)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weight, bias = rng.normal(size=(3, 5)).astype(np.float32), rng.normal(size=(5,)).astype(np.float32)
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["xw"]),
        helper.make_node("Add", ["xw", "b"], ["y"]),
        helper.make_node("Add", ["steps", "steps"], ["twice"]),
    ]
    graph = helper.make_graph(
        nodes, "affine",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3]),
         helper.make_tensor_value_info("steps", TensorProto.INT64, ["n"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 5]),
         helper.make_tensor_value_info("twice", TensorProto.INT64, ["n"])],
        [numpy_helper.from_array(weight, "W"), numpy_helper.from_array(bias, "b")],
    )
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))
    return weight, bias


def test_io_binding_learns_output_shapes_then_writes_into_preallocated_tensors(tmp_path):
    weight, bias = _affine_graph(tmp_path / "affine.onnx")
    session = GraphSession(tmp_path / "affine.onnx", GraphInterface("affine.onnx", ("x", "steps"), ("y", "twice")), [CPU])
    assert session.providers[0] == CPU and not session.runs_on_gpu and session.warnings == []
    for n in (2, 2, 4, 2):  # first run of a shape learns it, the repeats bind preallocated outputs
        x = torch.randn(n, 3, dtype=torch.float64)  # converted to the graph's float32 on the way in
        y, twice = session.run(x=x, steps=torch.arange(n, dtype=torch.int32))
        assert y.dtype == torch.float32 and twice.dtype == torch.int64 and y.device.type == "cpu"
        np.testing.assert_allclose(y.numpy(), x.float().numpy() @ weight + bias, rtol=1e-5, atol=1e-5)
        assert twice.tolist() == [2 * i for i in range(n)]
    assert sorted(session._output_shapes) == [(((2, 3)), (2,)), ((4, 3), (4,))]
    with pytest.raises(ValueError, match="needs the input 'steps'"):
        session.run(x=torch.zeros(1, 3))


# -- which runtime runs ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny(reference_dir):
    folder = reference_dir / "tiny_a"
    return {"folder": folder, "config": tiny_from_reference(json.loads((folder / "config.json").read_text()))}


def _fake_export(folder: Path, precision: str = "fp32") -> Path:
    folder.mkdir(parents=True)
    (folder / MANIFEST_NAME).write_text(json.dumps({"format": FORMAT_VERSION, "precision": precision, "graphs": {}}))
    return folder


def test_runtime_choice_and_reasons(tiny, tmp_path, monkeypatch):
    store = ModelStore(tmp_path / "store")
    report = runtime_report(GenerationSettings(), store)
    assert not report["torch"]["available"] and "inbetween models download" in report["torch"]["reason"]
    assert not report["onnx"]["available"] and "export-onnx" in report["onnx"]["reason"]
    assert report["auto"] == {"available": False, "picks": None}
    with pytest.raises(EngineError, match="ONNX Runtime runtime cannot run"):
        resolve_runtime(GenerationSettings(runtime="onnx"), store)

    weights = str(tiny["folder"] / "weights.safetensors")
    settings = GenerationSettings(checkpoint=weights)
    report = runtime_report(settings, store)
    assert report["torch"]["available"] and report["auto"]["picks"] == "torch"
    assert "weights.safetensors has no fp32/fp16 ONNX export" in report["onnx"]["reason"]
    assert "inbetween models export-onnx" in report["onnx"]["reason"]

    export = _fake_export(store_export_folder(store.root, Path(weights), "fp32"))
    assert find_export(settings, store) == export
    assert runtime_report(settings, store)["onnx"] == {"available": True, "reason": "", "export": str(export)}
    assert resolve_runtime(settings, store) == "torch"  # PyTorch can run it and has no GPU to lose
    assert resolve_runtime(GenerationSettings(checkpoint=weights, runtime="onnx"), store) == "onnx"
    # a CPU-only torch beside onnxruntime-gpu: auto takes the GPU through ONNX Runtime
    from engine.tooncrafter import runtimes

    monkeypatch.setattr(runtimes, "torch_has_cuda", lambda: False)
    monkeypatch.setattr(runtimes, "onnx_has_gpu", lambda: True)
    assert resolve_runtime(settings, store) == "onnx"
    assert resolve_runtime(GenerationSettings(checkpoint=weights, device="cpu"), store) == "torch"
    # with a GPU onnxruntime, auto precision prefers an fp16 export and falls back to fp32
    fp16 = _fake_export(store_export_folder(store.root, Path(weights), "fp16"), "fp16")
    assert find_export(settings, store) == fp16
    assert find_export(GenerationSettings(checkpoint=weights, precision="fp32"), store) == export


def test_an_export_folder_given_as_checkpoint_runs_on_onnx_only(tmp_path):
    store = ModelStore(tmp_path / "store")
    export = _fake_export(tmp_path / "my-export")
    settings = GenerationSettings(checkpoint=str(export))
    report = runtime_report(settings, store)
    assert report["onnx"]["available"] and report["auto"]["picks"] == "onnx"
    assert not report["torch"]["available"] and "is a folder" in report["torch"]["reason"]
    (tmp_path / "not-an-export").mkdir()
    with pytest.raises(EngineError, match="without an ONNX export manifest"):
        find_export(GenerationSettings(checkpoint=str(tmp_path / "not-an-export")), store)


# -- end to end on the exported tiny model -----------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_store(tiny, tmp_path_factory):
    """A model store holding the tiny model's fp32 export, made by `inbetween models export-onnx`."""
    from engine.models_cli import main as models_main

    store = tmp_path_factory.mktemp("store")
    code = models_main([
        "models", "export-onnx", "--models-dir", str(store),
        "--checkpoint", str(tiny["folder"] / "weights.safetensors"),
        "--sketch-checkpoint", str(tiny["folder"] / "sketch_weights.safetensors"),
        "--model-config", str(tiny["folder"] / "config.json"),
    ])
    assert code == 0
    return store


@pytest.mark.slow
def test_export_onnx_puts_a_complete_export_next_to_the_weights(tiny, tiny_store, capsys):
    from engine.models_cli import main as models_main

    folder = store_export_folder(tiny_store, tiny["folder"] / "weights.safetensors", "fp32")
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    assert manifest["precision"] == "fp32" and "unet_sketch" in manifest["graphs"]
    assert manifest["source"]["checkpoint"]["bytes"] == (tiny["folder"] / "weights.safetensors").stat().st_size
    assert not (folder / "onnx_export.partial.json").exists()
    capsys.readouterr()
    assert models_main(["models", "list", "--models-dir", str(tiny_store)]) == 0
    listing = capsys.readouterr().out
    assert "weights-fp32" in listing and "fp32, 8 graphs" in listing and "with sketch guidance" in listing
    # already there: nothing to do without --force
    assert models_main(["models", "export-onnx", "--models-dir", str(tiny_store),
                        "--checkpoint", str(tiny["folder"] / "weights.safetensors")]) == 0
    assert "already exported" in capsys.readouterr().out


@pytest.mark.slow
def test_the_onnx_networks_answer_the_contract(tiny_store, tiny):
    from engine.tooncrafter.runtimes.onnx_runtime import load_onnx_model

    net = load_onnx_model(store_export_folder(tiny_store, tiny["folder"] / "weights.safetensors", "fp32"), [CPU])
    assert isinstance(net, ToonCrafterNetworks)
    assert net.has_sketch_encoder and net.providers["unet"] == CPU and net.device.type == "cpu"


def _cli_frames(tmp_path: Path, tag: str, extra: list[str]) -> list[np.ndarray]:
    from PIL import Image

    from engine.cli import main

    out = tmp_path / tag
    # 4 in-betweens of the tiny model's 6 frames land on its own frames (tau k/5): no RIFE between
    code = main([*extra, "--count", "4", "--out", str(out), "--name", "walk", "--backend", "tooncrafter",
                 "--steps", "2", "--seed", "7", "--quiet"])
    assert code == 0
    return [np.asarray(Image.open(out / f"walk_{i:04d}.png")) for i in range(1, 7)]


@pytest.mark.slow
def test_cli_onnx_runtime_draws_what_torch_draws(tiny, tiny_store, tmp_path, monkeypatch, capsys):
    keys = [save_png(tmp_path / "a.png", disc_keyframe(25, 30)), save_png(tmp_path / "b.png", disc_keyframe(70, 34))]
    sketch = save_png(tmp_path / "sketch.png", disc_keyframe(48, 20, transparent=True, fill=(20, 20, 20)))
    common = [*keys, "--models-dir", str(tiny_store), "--checkpoint", str(tiny["folder"] / "weights.safetensors"),
              "--sketch-checkpoint", str(tiny["folder"] / "sketch_weights.safetensors")]
    # the PyTorch runtime builds the weights' architecture: the tiny reference's, not the released one
    from engine.backends import tooncrafter as backend_module

    monkeypatch.setattr(backend_module, "default_config", lambda: tiny["config"])
    results = {}
    for runtime in ("torch", "onnx"):
        for label, sketches in (("plain", []), ("sketch", ["--sketch", f"2={sketch}"])):
            results[runtime, label] = _cli_frames(tmp_path, f"{runtime}-{label}", [*common, *sketches, "--runtime", runtime])
    # the sketch at frame 2 lands on model frame 2 (tau 0.4)
    capsys.readouterr()
    for label in ("plain", "sketch"):
        torch_frames, onnx_frames = results["torch", label], results["onnx", label]
        assert np.array_equal(torch_frames[0], onnx_frames[0])  # the keys themselves
        for a, b in zip(torch_frames[1:5], onnx_frames[1:5]):
            diff = np.abs(a.astype(int) - b.astype(int))  # 1e-4 on the model's output: rounding flips only
            assert diff.max() <= 2 and diff.mean() < 0.05, (label, diff.max(), diff.mean())
    # the sketch steers its frame on both runtimes (same seed: without it the frames would be identical)
    for runtime in ("torch", "onnx"):
        assert not np.array_equal(results[runtime, "sketch"][2], results[runtime, "plain"][2])


@pytest.mark.slow
def test_onnx_backend_reports_its_provider_and_refuses_sketches_without_the_encoder(tiny, tiny_store, tmp_path):
    import shutil

    from engine.backends.tooncrafter import ToonCrafterBackend

    folder = store_export_folder(tiny_store, tiny["folder"] / "weights.safetensors", "fp32")
    settings = GenerationSettings(backend="tooncrafter", runtime="onnx", steps=1, checkpoint=str(folder))
    backend = ToonCrafterBackend(settings, store=ModelStore(tiny_store))
    described = backend.describe()
    assert described["runtime"] == "onnx" and described["execution_provider"] == CPU
    assert described["model_frames"] == tiny["config"].frames and described["between_model_frames"] == "rife"
    # an export made without the sketch encoder says how to get sketch guidance
    plain = tmp_path / "plain"
    shutil.copytree(folder, plain)
    manifest = json.loads((plain / MANIFEST_NAME).read_text())
    del manifest["graphs"]["sketch_encoder"], manifest["graphs"]["unet_sketch"]
    (plain / MANIFEST_NAME).write_text(json.dumps(manifest))
    backend = ToonCrafterBackend(GenerationSettings(runtime="onnx", steps=1, checkpoint=str(plain)), store=ModelStore(tiny_store))
    task = InbetweenTask(disc_keyframe(25, 30), disc_keyframe(70, 34), [0.4], settings,
                         sketches={0.4: disc_keyframe(48, 32, transparent=True)})
    with pytest.raises(EngineError, match="sketch guidance needs the sketch encoder in the ONNX export"):
        backend.interpolate(task, lambda *a: None, CancelToken())


def test_health_reports_both_runtimes_with_reasons(tmp_path, monkeypatch):
    from engine.server.app import runtime_report as health_runtimes

    monkeypatch.setenv("INBETWEENER_MODELS", str(tmp_path))
    report = health_runtimes()
    assert set(report) == {"torch", "onnx", "auto"}
    assert report["torch"]["available"] is False and str(tmp_path) in report["torch"]["reason"]
    assert report["onnx"]["available"] is False and "export-onnx" in report["onnx"]["reason"]
    assert report["auto"]["picks"] is None


@pytest.mark.slow
def test_the_engine_server_runs_a_job_on_onnx_runtime(tiny, tiny_store, tmp_path, monkeypatch):
    """The path the desktop app and the Krita plugin take: a job with `"runtime": "onnx"` submitted to
    the real engine server over loopback runs on ONNX Runtime (provenance names the runtime and its
    provider) and gives exactly the frames the engine draws in process."""
    from engine.api import Keyframe
    from engine.core.client import EngineClient
    from engine.core.protocol import build_job
    from engine.imaging import decode_png_rgba, encode_png_rgba
    from engine.pipeline import build_request, generate
    from engine.server.runner import EngineServer, ServerConfig
    from tests.helpers import disc_keyframe

    monkeypatch.setenv("INBETWEENER_MODELS", str(tiny_store))
    export = store_export_folder(tiny_store, tiny["folder"] / "weights.safetensors", "fp32")
    keys = {0: disc_keyframe(25, 30), 5: disc_keyframe(70, 34)}
    settings = {"backend": "tooncrafter", "runtime": "onnx", "checkpoint": str(export), "steps": 2, "seed": 7}
    server = EngineServer(ServerConfig(state_dir=tmp_path / "state")).start_in_thread()
    try:
        client = EngineClient(server.url, server.token, timeout=600)
        job = client.submit(build_job(keyframes={f: encode_png_rgba(k) for f, k in keys.items()}, settings=settings))
        status = client.wait(job)
        assert status["state"] == "done", status["error"]
        assert status["provenance"]["runtime"] == "onnx" and status["provenance"]["execution_provider"] == CPU
        served = {f: decode_png_rgba(png, source=f"frame {f}") for f, png in client.frames(job, status).items()}
    finally:
        server.stop()
    local = generate(build_request([Keyframe(f, k, f"key{f}.png") for f, k in keys.items()],
                                   settings=GenerationSettings(**settings)))
    assert sorted(served) == sorted(local.frames) == list(range(6))
    for frame in range(1, 5):
        assert np.array_equal(served[frame], local.frames[frame].image), frame
