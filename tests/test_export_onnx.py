"""ONNX export of the engine's networks and the ONNX Runtime wrappers.

The tiny golden model is exported once per module (all ToonCrafter graphs, checked against PyTorch
and the reference's golden outputs); the runtime wrappers are then compared with the PyTorch model
call by call and over a short DDIM run. Error paths use hand-made folders and need no export.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from engine.tooncrafter.interpolation import (  # noqa: E402
    decode_two_pass,
    encode_keyframes,
    image_context,
    predict_v,
    prompt_contexts,
    sampler_for,
)
from engine.tooncrafter.networks.config import ToonCrafterConfig, tiny_from_reference  # noqa: E402
from engine.tooncrafter.runtimes.onnx_folder import (  # noqa: E402
    FORMAT_VERSION,
    MANIFEST_NAME,
    REQUIRED_GRAPHS,
    OnnxExportError,
    config_from_dict,
    config_to_dict,
    graph_interfaces,
)
from engine.tooncrafter.runtimes.onnx_runtime import load_onnx_model  # noqa: E402
from engine.tooncrafter.runtimes.torch_runtime import TorchNetworks  # noqa: E402
from export_onnx.__main__ import main as export_main  # noqa: E402
from export_onnx.exporter import DATA_ALIGNMENT, ExportSettings, export_folder, finalize_weights, graphs_for  # noqa: E402
from export_onnx.sources import from_tiny_reference, rife_source  # noqa: E402

#: Every ToonCrafter graph the tiny reference has weights for.
TINY_PARTS = ["clip", "resampler", "vae", "sketch", "unet"]


def quiet(_: str) -> None:
    pass


@pytest.fixture(scope="module")
def tiny_dir(reference_dir: Path) -> Path:
    return reference_dir / "tiny_a"


@pytest.fixture(scope="module")
def tiny_config(tiny_dir: Path) -> ToonCrafterConfig:
    return tiny_from_reference(json.loads((tiny_dir / "config.json").read_text()))


@pytest.fixture(scope="module")
def golden(tiny_dir: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(tiny_dir / "cases.safetensors"))


@pytest.fixture(scope="module")
def tiny_export(tiny_dir: Path, tmp_path_factory) -> tuple[Path, dict, list]:
    """All ToonCrafter graphs of the tiny model, exported and checked (about a minute on 2 cores)."""
    folder = tmp_path_factory.mktemp("onnx") / "tiny"
    source = from_tiny_reference(tiny_dir)
    manifest, results = export_folder(
        folder, source, None, graphs_for(TINY_PARTS), ExportSettings(check=True), report=quiet
    )
    return folder, manifest, results


@pytest.fixture(scope="module")
def torch_tiny(tiny_dir: Path):
    """The PyTorch tiny model and sketch encoder (the export frees its own copy part by part)."""
    source = from_tiny_reference(tiny_dir)
    return TorchNetworks(source.model, source.sketch_encoder)


@pytest.fixture(scope="module")
def onnx_tiny(tiny_export):
    return load_onnx_model(tiny_export[0], ["CPUExecutionProvider"])


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape
    return float((a.float() - b.float()).abs().max())


# ----------------------------------------------------------------------------------------------
# Export and check


@pytest.mark.slow
def test_every_tiny_graph_matches_pytorch_and_the_goldens(tiny_export):
    folder, manifest, results = tiny_export
    expected = ["clip_text", "clip_image", "resampler", "vae_encoder", "vae_decoder", "sketch_encoder", "unet", "unet_sketch"]
    assert list(manifest["graphs"]) == expected
    assert manifest["format"] == FORMAT_VERSION and manifest["opset"] >= 17 and manifest["precision"] == "fp32"
    assert json.loads((folder / MANIFEST_NAME).read_text()) == json.loads(json.dumps(manifest))
    failed = [r.line() for r in results if not r.passed]
    assert not failed, failed
    for graph in expected:
        mine = [r for r in results if r.graph == graph]
        assert len(mine) >= 3, f"{graph}: example, second shape and golden inputs"
        assert all(r.max_diff <= 1e-4 for r in mine)
        golden = [r for r in mine if r.golden_diff is not None]
        assert golden and all(r.golden_diff <= 1e-4 for r in golden), graph
        assert (folder / manifest["graphs"][graph]["file"]).is_file()


@pytest.mark.slow
def test_rife_export_matches_pytorch_at_its_frame_size(tmp_path):
    manifest, results = export_folder(
        tmp_path / "rife", None, rife_source(), ["rife"], ExportSettings(check=True), rife_size=(128, 192), report=quiet
    )
    assert [r.graph for r in results] == ["rife"] * 3
    assert all(r.passed for r in results), [r.line() for r in results]
    entry = manifest["graphs"]["rife"]
    assert entry["size"] == [128, 192] and entry["exporter"] == "dynamo"
    session = ort.InferenceSession(str(tmp_path / "rife" / "rife.onnx"), providers=["CPUExecutionProvider"])
    assert [i.shape for i in session.get_inputs()] == [[1, 3, 128, 192], [1, 3, 128, 192], [1]]
    assert "config" not in manifest  # a RIFE-only folder is no ToonCrafter export
    with pytest.raises(OnnxExportError, match="holds no ToonCrafter export"):
        load_onnx_model(tmp_path / "rife")


def test_rife_size_must_fit_the_network(tmp_path):
    with pytest.raises(ValueError, match="multiple of 64"):
        export_folder(tmp_path / "r", None, rife_source(), ["rife"], ExportSettings(), rife_size=(100, 192), report=quiet)


@pytest.mark.slow
def test_cli_exports_checks_and_guards_an_existing_folder(tmp_path, tiny_dir, capsys):
    out = tmp_path / "cli"
    args = [str(out), "--tiny-reference", str(tiny_dir), "--parts", "resampler,clip"]
    assert export_main(args + ["--check", "--provider", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "11/11 checks passed" in printed and "FAIL" not in printed
    assert set(json.loads((out / MANIFEST_NAME).read_text())["graphs"]) == {"clip_text", "clip_image", "resampler"}

    assert export_main(args) == 2
    assert "already holds an export: pass --force" in capsys.readouterr().err
    assert export_main(args + ["--check-only"]) == 0
    assert "11/11 checks passed" in capsys.readouterr().out


@pytest.mark.slow
def test_fp16_export_runs_in_the_cpu_provider(tmp_path, tiny_dir):
    source = from_tiny_reference(tiny_dir, "fp16")
    manifest, results = export_folder(
        tmp_path / "half", source, None, graphs_for(["clip"]), ExportSettings(check=True), report=quiet
    )
    assert manifest["precision"] == "fp16"
    assert results and all(r.passed for r in results), [r.line() for r in results]
    assert all(0 < r.max_diff for r in results)  # really float16: not bit-equal to anything float32
    weights = onnx.load(str(tmp_path / "half" / "clip_text.onnx")).graph.initializer
    assert {w.data_type for w in weights if len(w.dims) == 2} == {onnx.TensorProto.FLOAT16}


@pytest.mark.slow
def test_dynamo_exporter_gives_the_same_numbers(tmp_path, tiny_dir):
    source = from_tiny_reference(tiny_dir)
    manifest, results = export_folder(
        tmp_path / "dyn", source, None, ["resampler"], ExportSettings(check=True, exporter="dynamo"), report=quiet
    )
    assert manifest["graphs"]["resampler"]["exporter"] == "dynamo"
    assert results and all(r.passed and r.golden_diff is not None for r in results[2:])
    assert all(r.passed for r in results), [r.line() for r in results]


def test_cli_rejects_unknown_parts_and_missing_weights(tmp_path, capsys):
    assert export_main([str(tmp_path / "x"), "--parts", "unet,bogus"]) == 2
    assert "unknown export part(s) ['bogus']" in capsys.readouterr().err
    assert export_main([str(tmp_path / "x"), "--parts", "unet"]) == 2
    assert "give --checkpoint or --tiny-reference" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------
# External data


def _matmul_model(weight: np.ndarray, bias: np.ndarray):
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Add", ["h", "b"], ["y"])],
        "affine",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, weight.shape[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, weight.shape[1]])],
        [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


@pytest.fixture
def affine():
    rng = np.random.default_rng(0)
    return rng.standard_normal((64, 96)).astype(np.float32), rng.standard_normal(96).astype(np.float32)


def _run(path: Path, x: np.ndarray) -> np.ndarray:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def test_per_tensor_weight_files_are_gathered_into_one_aligned_file(tmp_path, affine):
    weight, bias = affine
    path = tmp_path / "m.onnx"
    model = _matmul_model(weight, bias)
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=False, size_threshold=0)
    scattered = {p.name for p in tmp_path.iterdir()} - {"m.onnx"}
    assert len(scattered) == 2  # what the TorchScript exporter does above 2 GB: one file per tensor

    assert finalize_weights(path, threshold=10**9) == "m.onnx.data"
    assert {p.name for p in tmp_path.iterdir()} == {"m.onnx", "m.onnx.data"}
    model = onnx.load(str(path), load_external_data=False)
    for tensor in model.graph.initializer:
        info = {e.key: e.value for e in tensor.external_data}
        assert info["location"] == "m.onnx.data" and int(info["offset"]) % DATA_ALIGNMENT == 0
    x = np.ones((3, 64), np.float32)
    np.testing.assert_allclose(_run(path, x), x @ weight + bias, rtol=1e-5, atol=1e-5)


def test_inline_weights_move_out_only_above_the_threshold(tmp_path, affine):
    weight, bias = affine
    path = tmp_path / "m.onnx"
    onnx.save_model(_matmul_model(weight, bias), str(path))
    assert finalize_weights(path, threshold=10**9) is None
    assert {p.name for p in tmp_path.iterdir()} == {"m.onnx"}
    assert finalize_weights(path, threshold=0) == "m.onnx.data"
    assert (tmp_path / "m.onnx.data").stat().st_size >= weight.nbytes
    x = np.full((2, 64), 0.5, np.float32)
    np.testing.assert_allclose(_run(path, x), x @ weight + bias, rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------------------------
# The runtime wrappers


@pytest.mark.slow
def test_conditioning_and_first_stage_match_pytorch(onnx_tiny, torch_tiny, golden):
    from engine.tooncrafter.networks.autoencoder import keyframe_references

    model = torch_tiny
    first, last = golden["sample_ddim_eta0.image1"], golden["sample_ddim_eta0.image2"]
    noise = golden["sample_ddim_eta1.posterior_noise"]
    with torch.no_grad():
        ours, theirs = prompt_contexts(onnx_tiny, "an anime scene"), prompt_contexts(model, "an anime scene")
        for name in ("text", "empty_text", "zero_image"):
            assert max_diff(getattr(ours, name), getattr(theirs, name)) < 1e-4, name
        assert max_diff(image_context(onnx_tiny, first), image_context(model, first)) < 1e-4
        for all_frames in (True, False):
            a = encode_keyframes(onnx_tiny, first, last, noise, all_frames)
            b = encode_keyframes(model, first, last, noise, all_frames)
            assert max_diff(a.c_concat, b.c_concat) < 1e-4
            assert all(max_diff(x, y) < 1e-4 for x, y in zip(a.references, b.references, strict=True))
        # The two-pass dual-reference decode (PyTorch's chunking on the ONNX decoder) vs the golden.
        hidden = [golden[f"vae_encode.hidden_{i}"] for i in range(5)]
        refs = keyframe_references([h[0:1] for h in hidden], [h[1:2] for h in hidden])
        frames = decode_two_pass(onnx_tiny, golden["dualref_decode.latents"], refs).frames
        assert max_diff(frames, golden["dualref_decode.frames"]) < 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("with_sketch", [False, True], ids=["plain", "sketch"])
def test_two_ddim_steps_on_onnx_match_pytorch(onnx_tiny, torch_tiny, golden, with_sketch):
    """Sampling with the ONNX networks: guidance (7.5) amplifies the 1e-5 per-call differences about
    tenfold, so the bound is 1e-3 on latents of magnitude ~3 (the reference allows 2e-3 for 4 steps)."""
    from engine.tooncrafter.sampler import Conditioning, RecordedNoise, SamplerSettings

    model = torch_tiny
    first, last = golden["sample_ddim_eta0.image1"], golden["sample_ddim_eta0.image2"]
    hint = golden["unet_with_sketch.sketch"] if with_sketch else None
    with torch.no_grad():
        contexts = prompt_contexts(model, "an anime scene")
        c_concat = encode_keyframes(model, first, last, golden["sample_ddim_eta1.posterior_noise"]).c_concat
        context = torch.cat([contexts.text, image_context(model, first)], dim=1)
        uncontext = torch.cat([contexts.empty_text, contexts.zero_image], dim=1)
        fs = torch.tensor([10])
        cond = Conditioning(context, c_concat, fs, hint, 0.6)
        uncond = Conditioning(uncontext, c_concat, fs, hint, 0.6)
        settings = SamplerSettings(steps=2)
        shape = model.config.latent_shape()

        def run(denoise):
            noise = RecordedNoise(golden["sample_ddim_eta1.x_T"], golden["sample_ddim_eta1.step_noise"])
            return sampler_for(model).sample(denoise, cond, uncond, shape, settings, noise)

        expected = run(lambda x, t, c: predict_v(model, x, t, c))
        got = run(lambda x, t, c: predict_v(onnx_tiny, x, t, c))
    assert expected.abs().max() > 1.0
    assert max_diff(got, expected) < 1e-3


@pytest.mark.slow
def test_unet_wrapper_refuses_what_the_export_fixed(onnx_tiny, tiny_config):
    t = tiny_config.frames
    x = torch.zeros(1, 8, t, 8, 16)
    with pytest.raises(ValueError, match="context of 173 tokens"):
        onnx_tiny.unet(x, torch.tensor([999]), torch.zeros(1, 93, 16), torch.tensor([10]))
    with pytest.raises(ValueError, match=f"\\(B, 8, {t}, h, w\\)"):
        onnx_tiny.unet(torch.zeros(1, 8, t + 2, 8, 16), torch.tensor([999]), torch.zeros(1, 173, 16))
    v = onnx_tiny.unet(x, torch.tensor([999]), torch.zeros(1, 173, 16))  # fs omitted: the model's default
    assert v.shape == (1, 4, t, 8, 16)


# ----------------------------------------------------------------------------------------------
# Unusable folders


def test_config_survives_the_manifest(tiny_config):
    for config in (tiny_config, ToonCrafterConfig()):
        assert config_from_dict(json.loads(json.dumps(config_to_dict(config)))) == config


def _identity_onnx(path: Path, inputs=("a",), outputs=("b",)) -> None:
    from onnx import TensorProto, helper

    nodes = [helper.make_node("Identity", [inputs[0]], [name]) for name in outputs]
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1]) for n in inputs],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1]) for n in outputs],
    )
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))


def _fake_export(folder: Path, model_config: ToonCrafterConfig, **changes) -> dict:
    """A folder with the right manifest and stand-in graphs that have the contract's tensor names."""
    folder.mkdir(parents=True, exist_ok=True)
    interfaces = graph_interfaces(model_config.sketch_encoder.num_residuals, len(model_config.first_stage.ch_mult) + 1)
    manifest = {
        "format": FORMAT_VERSION,
        "precision": "fp32",
        "config": config_to_dict(model_config),
        "clip_image_size": 224,
        "text_context_length": 77,
        "graphs": {name: {"file": interfaces[name].file} for name in REQUIRED_GRAPHS},
    }
    for name in REQUIRED_GRAPHS:
        _identity_onnx(folder / interfaces[name].file, interfaces[name].inputs, interfaces[name].outputs)
    manifest.update(changes)
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest))
    return manifest


def test_a_well_formed_folder_opens(tmp_path, tiny_config):
    _fake_export(tmp_path / "ok", tiny_config)
    model = load_onnx_model(tmp_path / "ok", ["CPUExecutionProvider"])
    assert model.config == tiny_config and not model.has_sketch_encoder


def test_missing_folder_and_manifest_are_named(tmp_path):
    with pytest.raises(OnnxExportError, match="does not exist"):
        load_onnx_model(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(OnnxExportError, match=f"not an ONNX export folder: {MANIFEST_NAME} is missing"):
        load_onnx_model(tmp_path / "empty")


def test_incompatible_folders_are_refused_with_the_reason(tmp_path, tiny_config):
    _fake_export(tmp_path / "old", tiny_config, format=FORMAT_VERSION + 1)
    with pytest.raises(OnnxExportError, match="export format"):
        load_onnx_model(tmp_path / "old")

    manifest = _fake_export(tmp_path / "partial", tiny_config)
    del manifest["graphs"]["unet"]
    (tmp_path / "partial" / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(OnnxExportError, match="lacks the exported unet"):
        load_onnx_model(tmp_path / "partial")

    _fake_export(tmp_path / "gone", tiny_config)
    (tmp_path / "gone" / "vae_decoder.onnx").unlink()
    with pytest.raises(OnnxExportError, match="vae_decoder.onnx is missing"):
        load_onnx_model(tmp_path / "gone")

    _fake_export(tmp_path / "swapped", tiny_config)
    _identity_onnx(tmp_path / "swapped" / "unet.onnx", ("clip_tokens",), ("image_context",))
    with pytest.raises(OnnxExportError, match="unet.onnx does not have the expected tensors"):
        load_onnx_model(tmp_path / "swapped")

    _fake_export(tmp_path / "broken", tiny_config)
    (tmp_path / "broken" / "resampler.onnx").write_bytes(b"not a model")
    with pytest.raises(OnnxExportError, match="onnxruntime cannot load .*resampler.onnx"):
        load_onnx_model(tmp_path / "broken")

    _fake_export(tmp_path / "odd", tiny_config, config={"frames": 16})
    with pytest.raises(OnnxExportError, match="unusable model config"):
        load_onnx_model(tmp_path / "odd")


@pytest.mark.slow
def test_an_interrupted_export_resumes_with_what_was_finished(tmp_path, tiny_dir):
    from export_onnx.exporter import PARTIAL_NAME

    folder = tmp_path / "export"

    def interrupt_at_the_resampler(line: str) -> None:
        if line.startswith("exporting resampler"):
            raise RuntimeError("interrupted (e.g. the machine went down)")

    with pytest.raises(RuntimeError, match="interrupted"):
        export_folder(folder, from_tiny_reference(tiny_dir), None, graphs_for(["clip", "resampler"]),
                      report=interrupt_at_the_resampler)
    assert not (folder / MANIFEST_NAME).exists()  # an unfinished folder never looks complete
    partial = json.loads((folder / PARTIAL_NAME).read_text())
    assert list(partial["graphs"]) == ["clip_text", "clip_image"]
    stamps = {name: (folder / f"{name}.onnx").stat().st_mtime_ns for name in partial["graphs"]}
    lines: list[str] = []
    manifest, _ = export_folder(folder, from_tiny_reference(tiny_dir), None, graphs_for(["clip", "resampler"]),
                                report=lines.append)
    assert "resuming: clip_text, clip_image already exported" in lines
    assert [line for line in lines if line.startswith("exporting")] == ["exporting resampler ..."]
    assert {name: (folder / f"{name}.onnx").stat().st_mtime_ns for name in stamps} == stamps
    assert list(manifest["graphs"]) == ["clip_text", "clip_image", "resampler"]
    assert (folder / MANIFEST_NAME).is_file() and not (folder / PARTIAL_NAME).exists()
