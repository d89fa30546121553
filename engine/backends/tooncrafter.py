"""The ToonCrafter backend: generative in-betweens from the released model (or any config).

It puts two pieces together: the runtime that executes the model (engine/tooncrafter/runtimes/:
PyTorch or ONNX Runtime, chosen by the `runtime` setting) and the runtime-independent segment
strategy (engine/tooncrafter/segment.py: canvas fitting, passes, the quality preset's extra
passes, the interpolator between model frames). Presets: "parity" runs the original's numbers;
"fast" turns on the lean settings (one batched UNet call for both guidance branches, only the two
keyframes VAE-encoded); "quality" is parity plus the extra passes.
"""

from __future__ import annotations

import numpy as np

from ..api import Backend, CancelToken, EngineError, GenerationSettings, InbetweenTask, ProgressFn


def _store():
    from ..tooncrafter.weights.store import ModelStore

    return ModelStore()


def default_config():
    """The architecture of the weights the store holds: the released model's."""
    from ..tooncrafter.networks.config import ToonCrafterConfig

    return ToonCrafterConfig()


def availability(settings: GenerationSettings) -> tuple[bool, str]:
    """Ready when the runtime the settings ask for (auto: either) can run the installed model."""
    from ..tooncrafter.runtimes import resolve_runtime

    try:
        resolve_runtime(settings, _store())
    except EngineError as exc:
        return False, str(exc)
    return True, ""


def instance_key(settings: GenerationSettings) -> tuple:
    """What forces a reload: the runtime, the weights, where and in what precision they live."""
    from ..tooncrafter.weights.store import models_dir

    return (
        settings.runtime,
        settings.checkpoint,
        settings.sketch_checkpoint,
        settings.device,
        settings.precision,
        settings.low_vram,
        str(models_dir()),
    )


class ToonCrafterBackend(Backend):
    """Holds the loaded model (its runner); each task brings its own generation settings (seed,
    steps, preset...). The instance-level settings (runtime, weights, device, precision, low-VRAM)
    come from the constructor."""

    name = "tooncrafter"

    def __init__(self, settings: GenerationSettings, config=None, store=None, model=None) -> None:
        """Loads the weights the settings name (or the store's best) on the runtime they ask for.
        `model` hands over an already built ToonCrafterModel instead (PyTorch; benchmarks with
        random weights); `config` must match it or the weights."""
        from ..tooncrafter.runtimes import resolve_runtime
        from ..tooncrafter.segment import SegmentStrategy
        from ..tooncrafter.weights.store import WeightFiles, locate_weights

        self.settings = settings
        self.store = store or _store()
        if model is not None:
            if settings.runtime == "onnx":
                raise EngineError("a model handed over in memory runs on PyTorch; export it to run it on ONNX Runtime")
            self.runtime = "torch"
        else:
            self.runtime = resolve_runtime(settings, self.store)
        if self.runtime == "onnx":
            from ..tooncrafter.runtimes import find_export
            from ..tooncrafter.runtimes.onnx_folder import trt_cache_folder
            from ..tooncrafter.runtimes.onnx_runtime import OnnxRunner

            self.files = None
            self.runner = OnnxRunner(settings, find_export(settings, self.store), trt_cache_folder(self.store.root))
        else:
            from ..tooncrafter.runtimes.torch_runtime import TorchRunner

            config = config or (model.config if model is not None else default_config())
            if model is None:
                self.files = locate_weights(self.store, settings.checkpoint, settings.sketch_checkpoint)
            else:
                sketch = self.store.resolve(settings.sketch_checkpoint) if settings.sketch_checkpoint else None
                self.files = WeightFiles(None, None, sketch)
            self.runner = TorchRunner(settings, self.files, config, model)
        self.config = self.runner.config
        # The model draws on its own canvas: the pipeline's full-resolution restore stage brings the
        # frames up to larger keys with the keys' own detail (engine/restoration).
        self.draws_at = (self.config.width, self.config.height)
        self.strategy = SegmentStrategy(self.runner)
        self._said: set[str] = set()

    def interpolate(self, task: InbetweenTask, progress: ProgressFn, cancel: CancelToken) -> list[np.ndarray]:
        # What the runtime fell back from (e.g. a GPU provider that did not load) is said once.
        for note in getattr(self.runner, "notes", []):
            if note not in self._said:
                self._said.add(note)
                progress("load", 0.0, note)
                task.warnings.append(note)
        return self.strategy.interpolate(task, progress, cancel)

    def describe(self) -> dict:
        out = {
            "backend": self.name,
            "model": self.config.name,
            "model_frames": self.config.frames,
            "canvas": f"{self.config.width}x{self.config.height}",
            "between_model_frames": self.strategy.between_model_frames,
        }
        files = self.files
        if files is not None:
            out.update(
                checkpoint=files.tooncrafter.name if files.tooncrafter else "in-memory model",
                checkpoint_sha256=(self.store.sha256(files.tooncrafter) if files.tooncrafter else None) or "not recorded",
                clip_checkpoint=files.clip.name if files.clip else None,
                sketch_checkpoint=files.sketch_encoder.name if files.sketch_encoder else None,
            )
        out.update(self.runner.describe())
        return out
