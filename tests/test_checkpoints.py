"""Checkpoint loading: every accepted layout, the manifest check before loading, clear errors for
wrong or truncated files, and no pickled code executed. Uses the tiny golden model's weights written
in each layout (the real files are 1.5 to 10 GB)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from engine.api import EngineError
from engine.tooncrafter.networks.config import ToonCrafterConfig, tiny_from_reference
from engine.tooncrafter.schedule import SCHEDULE_BUFFER_NAMES
from engine.tooncrafter.weights import checkpoint as ckpt
from engine.tooncrafter.weights.checkpoint import (
    CheckpointError,
    TensorFile,
    load_sketch_encoder,
    load_tooncrafter,
    tooncrafter_source,
)
from engine.tooncrafter.weights.manifest import BUNDLED, bundled_manifest, load_manifest

FOREIGN_CODE_RAN = []


def _record_execution(*args):
    FOREIGN_CODE_RAN.append(args)
    return "executed"


class ForeignObject:
    """Pickles as a call to _record_execution: loading must never make that call."""

    def __reduce__(self):
        return (_record_execution, ("pickled code ran",))


@pytest.fixture(scope="module")
def tiny(reference_dir):
    folder = reference_dir / "tiny_a"
    config = tiny_from_reference(json.loads((folder / "config.json").read_text()))
    return {
        "config": config,
        "weights": load_file(str(folder / "weights.safetensors")),
        "sketch": load_file(str(folder / "sketch_weights.safetensors")),
        "folder": folder,
    }


def _same_state(model, weights, dtype=torch.float32) -> bool:
    state = model.state_dict()
    assert state.keys() == weights.keys()
    return all(torch.equal(state[k], weights[k].to(state[k].dtype)) for k in weights)


def open_clip_layout(weights: dict) -> dict:
    """The tiny towers as open_clip saves a whole CLIP model (no prefix; one copy of shared names)."""
    out = {}
    for key, value in weights.items():
        if key.startswith("embedder.model."):
            out[key[len("embedder.model.") :]] = value
    for key, value in weights.items():
        if key.startswith("cond_stage_model.model."):
            out[key[len("cond_stage_model.model.") :]] = value
    return out


def test_safetensors_loads_exactly(tiny):
    model = load_tooncrafter(tiny["folder"] / "weights.safetensors", config=tiny["config"])
    assert _same_state(model, tiny["weights"])
    assert not any(p.requires_grad for p in model.parameters())


def test_fp16_target_keeps_the_schedule_in_float32(tiny):
    model = load_tooncrafter(tiny["folder"] / "weights.safetensors", config=tiny["config"], dtype=torch.float16)
    assert model.unet.out[2].weight.dtype == torch.float16
    assert model.alphas_cumprod.dtype == torch.float32 and model.scale_arr.dtype == torch.float32
    assert float(model.alphas_cumprod[-1]) == 0.0


@pytest.mark.parametrize("wrapper", ["state_dict", "deepspeed", "flat"])
def test_pickled_checkpoint_layouts(tiny, tmp_path, wrapper):
    weights = dict(tiny["weights"])
    if wrapper == "state_dict":
        content = {"state_dict": weights, "epoch": 3, "global_step": 1000}
    elif wrapper == "deepspeed":
        content = {"module": {"_forward_module." + k: v for k, v in weights.items()}}
    else:
        content = weights
    path = tmp_path / "model.ckpt"
    torch.save(content, path)
    model = load_tooncrafter(path, config=tiny["config"])
    assert _same_state(model, tiny["weights"])


def test_legacy_framestride_embed_is_renamed(tiny, tmp_path):
    renamed = {k.replace("fps_embedding", "framestride_embed"): v for k, v in tiny["weights"].items()}
    assert renamed.keys() != tiny["weights"].keys()
    torch.save({"state_dict": renamed}, tmp_path / "model.ckpt")
    assert _same_state(load_tooncrafter(tmp_path / "model.ckpt", config=tiny["config"]), tiny["weights"])


def test_pickled_foreign_objects_are_never_executed(tiny, tmp_path):
    path = tmp_path / "model.ckpt"
    torch.save({"state_dict": dict(tiny["weights"]), "callbacks": {"ModelCheckpoint": ForeignObject()}}, path)
    FOREIGN_CODE_RAN.clear()
    model = load_tooncrafter(path, config=tiny["config"])
    assert FOREIGN_CODE_RAN == []
    assert _same_state(model, tiny["weights"])


def test_pruned_file_with_open_clip_file(tiny, tmp_path):
    pruned = {k: v.half() for k, v in tiny["weights"].items() if not k.startswith(("cond_stage_model", "embedder"))}
    save_file(pruned, str(tmp_path / "tooncrafter_512_interp-pruned-fp16.safetensors"))
    torch.save(open_clip_layout(tiny["weights"]), tmp_path / "open_clip_pytorch_model.bin")
    model = load_tooncrafter(
        tmp_path / "tooncrafter_512_interp-pruned-fp16.safetensors",
        clip_path=tmp_path / "open_clip_pytorch_model.bin",
        config=tiny["config"],
    )
    state = model.state_dict()
    for key, value in tiny["weights"].items():
        if key.startswith("cond_stage_model.model."):
            assert torch.equal(state[key], value), key
        elif key.startswith("embedder.model.visual."):
            assert torch.equal(state[key], value), key
        elif key in SCHEDULE_BUFFER_NAMES:
            assert torch.equal(state[key], value), key  # the fp16 file's rounding is undone
        elif not key.startswith("embedder."):
            assert torch.equal(state[key], value.half().float()), key


def test_pruned_file_alone_says_it_needs_the_clip_file(tiny, tmp_path):
    pruned = {k: v for k, v in tiny["weights"].items() if not k.startswith(("cond_stage_model", "embedder"))}
    save_file(pruned, str(tmp_path / "pruned.safetensors"))
    with pytest.raises(CheckpointError, match="OpenCLIP"):
        load_tooncrafter(tmp_path / "pruned.safetensors", config=tiny["config"])


def test_wrong_file_given_as_clip_file(tiny, tmp_path):
    with pytest.raises(CheckpointError, match="not an OpenCLIP"):
        load_tooncrafter(
            tiny["folder"] / "weights.safetensors", clip_path=tiny["folder"] / "sketch_weights.safetensors",
            config=tiny["config"],
        )


def test_missing_and_misshaped_keys_are_named_before_loading(tiny, tmp_path):
    broken = dict(tiny["weights"])
    removed = sorted(k for k in broken if k.startswith("image_proj_model."))[:7]
    for key in removed:
        del broken[key]
    broken["model.diffusion_model.out.2.bias"] = torch.zeros(5)
    broken["something.new"] = torch.zeros(1)
    save_file(broken, str(tmp_path / "broken.safetensors"))
    with pytest.raises(CheckpointError) as info:
        load_tooncrafter(tmp_path / "broken.safetensors", config=tiny["config"])
    message = str(info.value)
    assert "7 missing keys" in message and removed[0] in message and "+2 more" in message
    assert "1 unexpected keys: something.new" in message
    assert "model.diffusion_model.out.2.bias [5] (expected [4])" in message
    assert isinstance(info.value, EngineError)


def test_official_layout_is_checked_before_reading_tensors(tmp_path, monkeypatch):
    """A file with every official key but wrong shapes fails on the manifest, without loading."""
    manifest = bundled_manifest("tooncrafter_512_interp")
    save_file({key: torch.zeros(1) for key in manifest.shapes}, str(tmp_path / "model.safetensors"))

    def refuse(*args, **kwargs):
        raise AssertionError("tensors were read before the manifest check")

    monkeypatch.setattr(ckpt.TensorFile, "get", refuse)
    with pytest.raises(CheckpointError, match=r"\d{4} mis-shaped keys"):
        load_tooncrafter(tmp_path / "model.safetensors")


@pytest.mark.parametrize("name", ["weights.safetensors", "model.ckpt"])
def test_truncated_files_are_reported(tiny, tmp_path, name):
    full = tmp_path / ("full_" + name)
    if name.endswith(".ckpt"):
        torch.save({"state_dict": dict(tiny["weights"])}, full)
    else:
        save_file(dict(tiny["weights"]), str(full))
    data = full.read_bytes()
    cut = tmp_path / name
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_tooncrafter(cut, config=tiny["config"])


def test_not_a_checkpoint(tmp_path, tiny):
    (tmp_path / "notes.ckpt").write_text("hello")
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint"):
        load_tooncrafter(tmp_path / "notes.ckpt", config=tiny["config"])
    with pytest.raises(CheckpointError, match="not found"):
        TensorFile(tmp_path / "absent.safetensors")


@pytest.mark.parametrize("layout", ["flat_ckpt", "state_dict_ckpt", "fp16_safetensors", "control_prefix"])
def test_sketch_encoder_layouts(tiny, tmp_path, layout):
    sketch = dict(tiny["sketch"])
    if layout == "flat_ckpt":
        path = tmp_path / "sketch_encoder.ckpt"
        torch.save(sketch, path)
    elif layout == "state_dict_ckpt":
        path = tmp_path / "sketch_encoder.ckpt"
        torch.save({"state_dict": sketch}, path)
    elif layout == "control_prefix":
        path = tmp_path / "sketch_encoder.ckpt"
        torch.save({"control_model." + k: v for k, v in sketch.items()}, path)
    else:
        path = tmp_path / "sketch_encoder-fp16.safetensors"
        save_file({k: v.half() for k, v in sketch.items()}, str(path))
    encoder = load_sketch_encoder(path, config=tiny["config"])
    state = encoder.state_dict()
    for key, value in sketch.items():
        expected = value.half().float() if layout == "fp16_safetensors" else value
        assert torch.equal(state[key], expected), key


def test_source_reports_shapes_without_reading(tiny):
    source = tooncrafter_source(
        tiny["folder"] / "weights.safetensors", manifest=ckpt.manifest_for(tiny["config"], "tooncrafter")
    )
    assert source.shapes["model.diffusion_model.out.2.weight"] == tuple(
        tiny["weights"]["model.diffusion_model.out.2.weight"].shape
    )
    source.close()


def test_bundled_manifests_match_the_reference(reference_dir):
    for name, path in BUNDLED.items():
        reference = load_manifest(reference_dir / f"manifest_{name}.json")
        bundled = load_manifest(path)
        assert bundled.shapes == reference.shapes
        assert list(bundled.shapes) == list(reference.shapes)
        assert bundled.unused == reference.unused
    official = bundled_manifest("tooncrafter_512_interp")
    assert official.numel() == 2_625_430_449
    assert len(official.without_prefixes(("cond_stage_model.", "embedder.")).shapes) == 2668 - 294 - 398
    assert ToonCrafterConfig().is_official


# --- hostile and broken files: refused in one line, nothing run, nothing changed ---------------------


def _replace_pickled_string(path, marker: str, opcodes: bytes) -> None:
    """Swap the pickled string `marker` in a torch zip checkpoint for raw pickle opcodes."""
    import zipfile

    with zipfile.ZipFile(path) as zf:
        members = {info.filename: zf.read(info) for info in zf.infolist()}
    pkl = next(name for name in members if name.endswith("data.pkl"))
    encoded = marker.encode()
    old = b"X" + len(encoded).to_bytes(4, "little") + encoded
    assert old in members[pkl]
    members[pkl] = members[pkl].replace(old, opcodes)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def _text(text: str) -> bytes:
    return b"X" + len(text.encode()).to_bytes(4, "little") + text.encode()


def test_a_crafted_checkpoint_cannot_change_torch_functions(tiny, tmp_path):
    """A BUILD on a global torch allows (here its tensor rebuilder) would set attributes on torch's own
    function and break every later job of a long-running server."""
    path = tmp_path / "model.ckpt"
    torch.save({"callbacks": {"cb": ForeignObject()}, "attack": "__ATTACK__", "state_dict": dict(tiny["weights"])}, path)
    build_on_torch = (b"ctorch._utils\n_rebuild_tensor_v2\n" + b"N}" + _text("__name__") + _text("pwned")
                      + b"s\x86b")
    _replace_pickled_string(path, "__ATTACK__", build_on_torch)
    target = torch._utils._rebuild_tensor_v2
    try:
        with pytest.raises(CheckpointError) as caught:
            load_tooncrafter(path, config=tiny["config"])
        assert target.__name__ == "_rebuild_tensor_v2", "the checkpoint changed a torch function"
        assert "\n" not in str(caught.value) and "weights_only=False" not in str(caught.value)
    finally:
        target.__name__ = "_rebuild_tensor_v2"
    assert _same_state(load_tooncrafter(_saved(tiny, tmp_path), config=tiny["config"]), tiny["weights"])


def _saved(tiny, tmp_path):
    path = tmp_path / "clean.ckpt"
    torch.save({"state_dict": dict(tiny["weights"])}, path)
    return path


class RunsAShellCommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_a_malicious_pickle_is_one_clear_line_and_runs_nothing(tiny, tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "model.ckpt"
    torch.save({"state_dict": dict(tiny["weights"]), "payload": RunsAShellCommand(marker)}, path)
    with pytest.raises(CheckpointError) as caught:
        load_tooncrafter(path, config=tiny["config"])
    message = str(caught.value)
    assert not marker.exists()
    assert "\n" not in message and "weights_only=False" not in message
    assert "model.ckpt" in message and "system" in message and "never" in message


@pytest.mark.parametrize("dtype, name", [(torch.uint16, "U16"), (torch.float8_e4m3fn, "F8_E4M3"),
                                         (torch.float8_e5m2, "F8_E5M2")])
def test_safetensors_with_unsupported_dtypes_are_refused_by_name(tiny, tmp_path, dtype, name):
    weights = dict(tiny["weights"])
    key = next(k for k, v in weights.items() if v.dtype == torch.float32 and v.ndim > 1)
    weights[key] = weights[key].to(dtype)
    path = tmp_path / "odd.safetensors"
    save_file(weights, str(path))
    with pytest.raises(CheckpointError, match=f"{key}.*{name}"):
        ckpt.verify_file(path, config=tiny["config"])
    with pytest.raises(CheckpointError, match=f"{key}.*{name}"):
        load_tooncrafter(path, config=tiny["config"])


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_weights_holding_nan_or_inf_are_refused_by_name(tiny, tmp_path, bad):
    weights = dict(tiny["weights"])
    key = next(k for k, v in weights.items() if v.dtype == torch.float32 and v.ndim > 1)
    weights[key] = weights[key].clone()
    weights[key].view(-1)[3] = bad
    path = tmp_path / "nan.safetensors"
    save_file(weights, str(path))
    with pytest.raises(CheckpointError, match=f"not finite.*{key}"):
        ckpt.verify_file(path, config=tiny["config"])
    with pytest.raises(CheckpointError, match=f"not finite.*{key}"):
        load_tooncrafter(path, config=tiny["config"])
