"""Writing an export folder: trace each graph, keep big weights in one external file, write the manifest.

Exporter choice (both are torch.onnx.export in torch 2.13):
- "torchscript" (default): the tracing exporter. It exports these networks exactly (SDPA, the
  float32 GroupNorms, the image cross-attention split) and is many times faster to run than the
  dynamo exporter on this code (about 20 s against 2–6 min for the tiny UNet on 2 cores). Its
  limitation, Python-level shape arithmetic frozen at trace time, is handled by fixing exactly the
  axes the model itself fixes (frames, context length; RIFE's frame size) and keeping the rest dynamic.
- "dynamo": the torch.export-based exporter (needs onnxscript); it gives the same numbers here.

Files are written into a temporary folder inside the destination and moved into place one by one;
after each graph the entries so far go to `onnx_export.partial.json`, so an interrupted export
resumes where it stopped (`resume=True`: graphs already there, from the same source and settings,
are kept); the manifest is written last, so a folder with a manifest is always complete.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine.core.files import atomic_write_bytes
from engine.tooncrafter.runtimes.onnx_folder import FORMAT_VERSION, MANIFEST_NAME, PARTIAL_NAME, config_to_dict

from .graphs import GRAPH_USES, PARTS, GraphSpec, ToonCrafterGraphs, rife_spec
from .sources import RifeSource, ToonCrafterSource

EXPORTERS = ("torchscript", "dynamo")
#: Weights above this many bytes go to an external data file (the protobuf limit is 2 GiB).
EXTERNAL_DATA_THRESHOLD = 2_000_000_000
#: External tensors start on page boundaries so onnxruntime can memory-map them.
DATA_ALIGNMENT = 4096
#: The order graphs are exported in: small parts first, the UNet last, so each part can be freed
#: once exported and the peak memory is the UNet plus its serialised copy.
GRAPH_ORDER = ("clip_text", "clip_image", "resampler", "vae_encoder", "vae_decoder", "sketch_encoder", "unet", "unet_sketch", "rife")


@dataclass(frozen=True)
class ExportSettings:
    opset: int = 18
    exporter: str = "torchscript"
    #: Weights larger than this go to `<file>.data` (0: always, e.g. to test that path).
    external_data_threshold: int = EXTERNAL_DATA_THRESHOLD
    check: bool = False
    providers: tuple[str, ...] | None = None
    #: Override of the check's tolerance vs PyTorch (None: 1e-4 for fp32, see check.py for others).
    tolerance: float | None = None
    #: Where the check runs the PyTorch side ("cpu" or "cuda").
    reference_device: str = "cpu"

    def __post_init__(self) -> None:
        if self.exporter not in EXPORTERS:
            raise ValueError(f"exporter must be one of {', '.join(EXPORTERS)}, got {self.exporter!r}")
        if self.opset < 17:
            raise ValueError(f"opset must be at least 17 (GroupNorm, LayerNorm, SDPA), got {self.opset}")


class ExportError(Exception):
    """An export that cannot be made (bad folder, missing weights); the message says what to do."""


# ----------------------------------------------------------------------------------------------
# One graph


def _tensors(graph) -> Iterator[Any]:
    """Every TensorProto of a graph: initializers and tensor attributes, subgraphs included."""
    from onnx import AttributeProto

    yield from graph.initializer
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.type == AttributeProto.TENSOR:
                yield attribute.t
            elif attribute.type == AttributeProto.GRAPH:
                yield from _tensors(attribute.g)
            elif attribute.type == AttributeProto.GRAPHS:
                for sub in attribute.graphs:
                    yield from _tensors(sub)


def _external_info(tensor) -> dict[str, str]:
    return {entry.key: entry.value for entry in tensor.external_data}


def _set_external(tensor, location: str, offset: int, length: int) -> None:
    from onnx import TensorProto

    del tensor.external_data[:]
    for key, value in (("location", location), ("offset", str(offset)), ("length", str(length))):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    tensor.data_location = TensorProto.EXTERNAL


def _write_aligned(out, data: bytes) -> int:
    pad = -out.tell() % DATA_ALIGNMENT
    if pad:
        out.write(b"\0" * pad)
    offset = out.tell()
    out.write(data)
    return offset


def finalize_weights(onnx_path: Path, threshold: int) -> str | None:
    """Gather the weights of a freshly exported file into `<file>.data` when they are external or big.

    The exporters write a model above 2 GB with one file per tensor (TorchScript) or keep small ones
    inline; this moves every external tensor, and every inline one when the total passes `threshold`,
    into a single page-aligned data file, streaming tensor by tensor. Returns the data file's name.
    """
    import onnx
    from onnx import TensorProto

    model = onnx.load(str(onnx_path), load_external_data=False)
    tensors = list(_tensors(model.graph))
    external = [t for t in tensors if t.data_location == TensorProto.EXTERNAL]
    inline_bytes = sum(len(t.raw_data) for t in tensors if t.data_location != TensorProto.EXTERNAL)
    to_move = [t for t in tensors if t.data_location != TensorProto.EXTERNAL and len(t.raw_data) > 1024]
    if not external and inline_bytes <= threshold:
        return None
    folder = onnx_path.parent
    data_name = onnx_path.name + ".data"
    old_files = {folder / _external_info(t)["location"] for t in external}
    with open(folder / (data_name + ".part"), "wb") as out:
        for tensor in external:
            info = _external_info(tensor)
            with open(folder / info["location"], "rb") as src:
                src.seek(int(info.get("offset", 0)))
                data = src.read(int(info["length"])) if "length" in info else src.read()
            _set_external(tensor, data_name, _write_aligned(out, data), len(data))
        if inline_bytes > threshold:
            for tensor in to_move:
                data = tensor.raw_data
                offset = _write_aligned(out, data)
                tensor.ClearField("raw_data")
                _set_external(tensor, data_name, offset, len(data))
    for path in old_files:
        path.unlink()
    os.replace(folder / (data_name + ".part"), folder / data_name)
    onnx.save_model(model, str(onnx_path))
    return data_name


def _dtype_of(tensor: torch.Tensor) -> str:
    return {torch.float32: "float32", torch.float16: "float16", torch.int64: "int64"}.get(tensor.dtype, str(tensor.dtype))


def _describe_tensors(names: Sequence[str], tensors: Sequence[torch.Tensor], axes: dict[str, dict[int, str]]) -> dict[str, Any]:
    out = {}
    for name, tensor in zip(names, tensors):
        dims = axes.get(name, {})
        out[name] = {"shape": [dims.get(i, size) for i, size in enumerate(tensor.shape)], "dtype": _dtype_of(tensor)}
    return out


def weight_bytes(module: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in [*module.parameters(), *module.buffers()])


@contextlib.contextmanager
def _attention_fast_path(enabled: bool) -> Iterator[None]:
    """nn.MultiheadAttention (open_clip's blocks) takes a fused inference kernel that no exporter
    knows; its plain path computes the same attention from exportable ops."""
    before = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(enabled)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(before)


def dynamic_shapes(spec: GraphSpec) -> tuple | None:
    """The spec's dynamic input axes in torch.export's form: positional, the adapter's trailing
    `*tensors` as one nested tuple, each dynamic axis left for torch.export to bound (Dim.AUTO)."""
    if not spec.dynamic_axes:
        return None
    per_input = [
        {axis: torch.export.Dim.AUTO for axis in spec.dynamic_axes.get(name, {})} or None
        for name in spec.interface.inputs
    ]
    params = list(inspect.signature(spec.module.forward).parameters.values())
    fixed = [p for p in params if p.kind is not inspect.Parameter.VAR_POSITIONAL]
    shapes = per_input[: len(fixed)]
    if len(per_input) > len(fixed):
        shapes.append(tuple(per_input[len(fixed) :]))
    return tuple(shapes)


def trace_graph(spec: GraphSpec, path: Path, settings: ExportSettings) -> None:
    """Run torch.onnx.export for one spec into `path` (weights may land beside it)."""
    module = spec.module.eval()
    names = dict(input_names=list(spec.interface.inputs), output_names=list(spec.interface.outputs))
    exporter = spec.exporter or settings.exporter
    with (
        torch.inference_mode(False), torch.no_grad(), _attention_fast_path(False), spec.tracing_context(),
        warnings.catch_warnings(),
    ):
        # The tracer warns about every Python-level shape decision; the fixed axes are fixed on purpose.
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        if exporter == "torchscript":
            torch.onnx.export(
                module, spec.example, str(path), dynamo=False, opset_version=settings.opset,
                dynamic_axes=spec.dynamic_axes or None, do_constant_folding=True, **names,
            )
        else:
            program = torch.onnx.export(
                module, spec.example, dynamo=True, opset_version=settings.opset,
                dynamic_shapes=dynamic_shapes(spec), **names,
            )
            program.save(str(path), external_data=weight_bytes(module) > settings.external_data_threshold)


def export_graph(spec: GraphSpec, folder: Path, settings: ExportSettings) -> dict[str, Any]:
    """Export one graph into `folder` (atomically) and return its manifest entry."""
    with tempfile.TemporaryDirectory(prefix=f".{spec.name}-", dir=folder) as tmp:
        tmp_path = Path(tmp) / spec.interface.file
        trace_graph(spec, tmp_path, settings)
        data_name = finalize_weights(tmp_path, settings.external_data_threshold)
        leftovers = sorted(p.name for p in Path(tmp).iterdir() if p.name not in (spec.interface.file, data_name))
        if leftovers:
            raise ExportError(f"exporting {spec.name} left unexpected files: {leftovers[:5]}")
        if data_name:
            os.replace(Path(tmp) / data_name, folder / data_name)
        os.replace(tmp_path, folder / spec.interface.file)
    with torch.no_grad():
        outputs = spec.module(*spec.example)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    files = [spec.interface.file] + ([data_name] if data_name else [])
    return {
        "file": spec.interface.file,
        "external_data": data_name,
        "bytes": sum((folder / f).stat().st_size for f in files),
        "exporter": spec.exporter or settings.exporter,
        "inputs": _describe_tensors(spec.interface.inputs, spec.example, spec.dynamic_axes),
        "outputs": _describe_tensors(spec.interface.outputs, outputs, spec.dynamic_axes),
        **spec.info,
    }


# ----------------------------------------------------------------------------------------------
# A folder


def graphs_for(parts: Sequence[str]) -> list[str]:
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        raise ExportError(f"unknown export part(s) {unknown}: choose from {', '.join(PARTS)}")
    wanted = {graph for part in parts for graph in PARTS[part]}
    return [name for name in GRAPH_ORDER if name in wanted]


def _remove_graph_files(folder: Path, entries: dict[str, Any]) -> None:
    for entry in entries.values():
        for name in (entry.get("file"), entry.get("external_data")):
            if name and (folder / name).is_file():
                (folder / name).unlink()


def prepare_folder(folder: Path, force: bool) -> None:
    """Create the folder; an existing export is replaced only with `force` (its files are removed)."""
    manifest_path = folder / MANIFEST_NAME
    if manifest_path.is_file():
        if not force:
            raise ExportError(f"{folder} already holds an export: pass --force to replace it")
        old = json.loads(manifest_path.read_text(encoding="utf-8"))
        manifest_path.unlink()
        _remove_graph_files(folder, old.get("graphs", {}))
    folder.mkdir(parents=True, exist_ok=True)
    for leftover in folder.glob(".*-*"):  # temporary folders of an interrupted graph export
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)


def write_manifest(folder: Path, manifest: dict[str, Any], name: str = MANIFEST_NAME) -> None:
    atomic_write_bytes(folder / name, (json.dumps(manifest, indent=1) + "\n").encode("utf-8"))


def resumable_entries(folder: Path, manifest: dict[str, Any], force: bool) -> dict[str, Any]:
    """Graphs an interrupted export of the same source and settings left complete in `folder`."""
    path = folder / PARTIAL_NAME
    if not path.is_file():
        return {}
    try:
        partial = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        partial = {}
    # Same source and settings: every field the new export starts with (the partial file also holds
    # what earlier graphs added, e.g. the text context length, which the resumed loop sets again).
    same = all(partial.get(k) == v for k, v in manifest.items() if k != "graphs")
    entries = partial.get("graphs", {}) if same and not force else {}
    complete = {
        name: entry for name, entry in entries.items()
        if all((folder / f).is_file() for f in (entry.get("file"), entry.get("external_data")) if f)
    }
    _remove_graph_files(folder, {n: e for n, e in partial.get("graphs", {}).items() if n not in complete})
    return complete


def export_folder(
    folder: str | Path,
    tooncrafter: ToonCrafterSource | None,
    rife: RifeSource | None,
    graphs: Sequence[str],
    settings: ExportSettings = ExportSettings(),
    rife_size: tuple[int, int] = (320, 512),
    force: bool = False,
    skip_export: bool = False,
    report: Callable[[str], None] = print,
    resume: bool = True,
) -> tuple[dict[str, Any], list]:
    """Export (unless `skip_export`) and optionally check each graph; returns (manifest, check results).

    With `skip_export` the folder's existing files are only checked against the sources. With
    `resume`, graphs an interrupted export of the same source and settings left are kept.
    """
    from .check import check_graph

    folder = Path(folder)
    toon_graphs = [g for g in graphs if g != "rife"]
    if toon_graphs and tooncrafter is None:
        raise ExportError(f"{', '.join(toon_graphs)} need ToonCrafter weights (--checkpoint or --tiny-reference)")
    if "rife" in graphs and rife is None:
        raise ExportError("the RIFE export needs its network")
    if "unet_sketch" in graphs and "sketch_encoder" not in graphs:
        raise ExportError("the sketch-controlled UNet is exported together with the sketch encoder")
    if skip_export:
        from engine.tooncrafter.runtimes.onnx_folder import read_manifest

        manifest = read_manifest(folder)
        if tooncrafter is not None and manifest.get("config") != json.loads(json.dumps(config_to_dict(tooncrafter.config))):
            raise ExportError(f"{folder} was exported from a model with another configuration than the given weights")
    else:
        prepare_folder(folder, force)
        manifest = {
            "format": FORMAT_VERSION,
            "created_by": "python -m export_onnx",
            "torch": torch.__version__,
            "opset": settings.opset,
            "exporter": settings.exporter,
            "graphs": {},
        }
    builder = ToonCrafterGraphs(tooncrafter) if tooncrafter is not None else None
    if builder is not None and not skip_export:
        manifest.update(
            precision=tooncrafter.precision,
            source=tooncrafter.description,
            config=json.loads(json.dumps(config_to_dict(tooncrafter.config))),
        )
    done: dict[str, Any] = {}
    if not skip_export:
        if "rife" in graphs:
            manifest["rife_size"] = list(rife_size)
        done = resumable_entries(folder, manifest, force) if resume else {}
        if done:
            report(f"resuming: {', '.join(done)} already exported")
    results = []
    for index, name in enumerate(graphs):
        spec = rife_spec(rife, rife_size) if name == "rife" else builder.build(name)
        if skip_export:
            if name not in manifest.get("graphs", {}):
                raise ExportError(f"{folder} has no exported {name} to check")
        else:
            if name in done:
                entry = done[name]
            else:
                report(f"exporting {name} ...")
                entry = export_graph(spec, folder, settings)
            manifest["graphs"][name] = entry
            write_manifest(folder, manifest, PARTIAL_NAME)
            if name == "clip_text":
                manifest["text_context_length"] = entry["context_length"]
            if name == "clip_image":
                manifest["clip_image_size"] = entry["image_size"]
            data = f" (weights in {entry['external_data']})" if entry["external_data"] else ""
            report(f"  {entry['file']}: {entry['bytes'] / 1e6:.1f} MB{data}")
        if settings.check:
            precision = "fp32" if name == "rife" else (tooncrafter.precision if tooncrafter else "fp32")
            for result in check_graph(folder, spec, precision, settings):
                report("  " + result.line())
                results.append(result)
        del spec
        later = {part for graph in graphs[index + 1 :] for part in GRAPH_USES[graph]}
        for part in set(GRAPH_USES[name]) - later:
            tooncrafter.release(part)  # only ToonCrafter graphs use parts, so a source exists
    if not skip_export:
        write_manifest(folder, manifest)
        (folder / PARTIAL_NAME).unlink(missing_ok=True)
        report(f"wrote {folder / MANIFEST_NAME}")
    return manifest, results

