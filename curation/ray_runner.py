"""The same stages on a Ray cluster: one Ray Data `map_batches` stage per curation stage.

Every stage is a callable class, so Ray runs it as a pool of actors that load their models once;
the network stages ask for a GPU each when the cluster has GPUs. Rows come back to the driver
grouped by video, where they are saved exactly as a local run saves them (same resume files, same
manifest).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pandas as pd

from .config import CurationConfig
from .stages import FRAMES_COLUMN, MODEL_STAGES, SplitShots, TextFilter
from .weights import resolve


def connect(address: str) -> None:
    import ray

    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, ignore_reinit_error=True, log_to_driver=False)


def run_ray(sources: list[str], config: CurationConfig, stage_classes: list[type], address: str,
            done: Callable[[str, pd.DataFrame], None]) -> None:
    import ray
    import ray.data
    from ray.data import ActorPoolStrategy

    connect(address)
    resources = ray.cluster_resources()
    gpus = resources.get("GPU", 0.0)
    cpus = max(1, int(resources.get("CPU", 1)))
    dataset = ray.data.from_items([{"source": source} for source in sources], override_num_blocks=len(sources))
    common = {"batch_format": "pandas", "fn_constructor_kwargs": {"config": config}}
    # Every stage keeps at least one actor alive, so each asks for a share of a CPU small enough
    # that the whole chain fits on the smallest cluster (Ray would otherwise wait for free CPUs).
    share = min(1.0, cpus / (2 * (len(stage_classes) + 1)))
    dataset = dataset.map_batches(SplitShots, batch_size=1, compute=ActorPoolStrategy(min_size=1, max_size=cpus), num_cpus=share, **common)
    craft_here = resolve("craft", config.craft_weights)[0] is not None
    for stage in stage_classes:
        on_gpu = gpus > 0 and stage in MODEL_STAGES and (stage is not TextFilter or craft_here)
        if on_gpu:
            gpu_kwargs = {**common, "fn_constructor_kwargs": {"config": replace(config, device="cuda")}}
            pool = ActorPoolStrategy(min_size=1, max_size=max(1, int(gpus)))
            dataset = dataset.map_batches(stage, batch_size=16, compute=pool, num_gpus=1, **gpu_kwargs)
        else:
            dataset = dataset.map_batches(stage, batch_size=8, compute=ActorPoolStrategy(min_size=1, max_size=cpus), num_cpus=share, **common)
    rows = dataset.drop_columns([FRAMES_COLUMN]).to_pandas()
    for source in sources:
        done(source, rows[rows["source"] == str(Path(source).resolve())].sort_values("start_frame").reset_index(drop=True))
