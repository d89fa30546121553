"""The training loop every job shares: one process, DDP or FSDP; bf16 autocast; accumulation;
activation checkpointing; EMA; checkpoints with exact resume; CSV (and TensorBoard) logging."""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint
from torch.utils.data import DataLoader

from . import checkpoints as ckpt
from . import distributed as dist_util
from .data import ClipDataset, GlobalOrder, SampleSpec, collate, discover_clips
from .jobs import TrainingJob, build_job
from .parameters import count
from .settings import TrainSettings

log = logging.getLogger("training")


@dataclass
class TrainResult:
    outputs: list[Path]
    steps: int
    losses: list[float] = field(default_factory=list)  # the main loss of every step of this process's run
    trained_parameters: int = 0
    frozen_parameters: int = 0


def enable_activation_checkpointing(root: nn.Module, types: tuple[type[nn.Module], ...]) -> int:
    """Recompute the activations of every `types` module in the backward pass (names stay the same)."""
    wrapped = 0
    for module in root.modules():
        if types and isinstance(module, types):
            inner = module.forward

            def forward(*args, _inner=inner, **kwargs):
                if not torch.is_grad_enabled():
                    return _inner(*args, **kwargs)
                return checkpoint(_inner, *args, use_reentrant=False, **kwargs)

            module.forward = forward
            wrapped += 1
    return wrapped


def _autocast(settings: TrainSettings, device: torch.device):
    bf16 = settings.precision == "bf16" or (
        settings.precision == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported()
    )
    if not bf16:
        return contextlib.nullcontext, False
    return (lambda: torch.autocast(device.type, dtype=torch.bfloat16)), True


def _optimizer(settings: TrainSettings, params: list[nn.Parameter], lr: float, betas, weight_decay: float):
    if settings.optimizer == "adamw8bit":
        try:
            import bitsandbytes as bnb
        except ImportError:
            raise RuntimeError("--optimizer adamw8bit needs the bitsandbytes package (pip install bitsandbytes)") from None
        return bnb.optim.AdamW8bit(params, lr=lr, betas=betas, weight_decay=weight_decay)
    return torch.optim.AdamW(params, lr=lr, betas=betas, weight_decay=weight_decay)


def _warmup(steps: int):
    return lambda step: min(1.0, (step + 1) / steps) if steps > 0 else 1.0


def _trained_buffers(job: nn.Module) -> dict[str, torch.Tensor]:
    """Buffers of modules with trained parameters (batch-norm statistics of the discriminator)."""
    out = {}
    for name, module in job.named_modules():
        if any(p.requires_grad for p in module.parameters(recurse=False)):
            for bname, buf in module.named_buffers(recurse=False):
                out[f"{name}.{bname}" if name else bname] = buf
    return out


class Trainer:
    def __init__(self, settings: TrainSettings) -> None:
        self.settings = settings
        self.procs, self.device = dist_util.start(settings.device)
        torch.manual_seed(settings.seed)  # identical fresh layers (discriminator, sketch encoder) on every rank
        self.config = settings.model_config_object()
        self.job: TrainingJob = build_job(settings, self.config, self.device)
        self.counts = count(self.job)
        if settings.frozen_dtype == "bf16":
            for network in self.job.frozen_networks():
                network.to(torch.bfloat16)
        if settings.gradient_checkpointing:
            enable_activation_checkpointing(self.job, self.job.checkpoint_types)
        self.autocast, self.bf16 = _autocast(settings, self.device)
        self.fsdp_units: list[nn.Module] = []
        if settings.fsdp:
            if not self.procs.distributed:
                raise ValueError("--fsdp shards over several processes: launch with torchrun --nproc-per-node N")
            self.fsdp_units = self.job.shard_units()
            dist_util.shard_fsdp(self.fsdp_units, self.bf16)
            self.runner: nn.Module = self.job
        elif self.procs.distributed:
            self.runner = dist_util.wrap_ddp(self.job, self.device)
        else:
            self.runner = self.job
        self.groups = self.job.optimizer_groups()
        self.optimizers = {
            g.name: _optimizer(settings, [p for _, p in g.params], g.lr, g.betas, g.weight_decay) for g in self.groups
        }
        self.schedulers = {
            name: torch.optim.lr_scheduler.LambdaLR(opt, _warmup(settings.warmup_steps))
            for name, opt in self.optimizers.items()
        }
        self.output_names = [name for g in self.groups for name, _ in g.params
                             if any(name.startswith(o.prefix) for o in self.job.outputs())]
        params = dict(self.job.named_parameters())
        self.ema = {n: params[n].detach().float().clone() for n in self.output_names} if settings.ema_decay > 0 else {}
        self.accumulation = settings.accumulation(self.procs.world_size)
        self.start_step = 0

    # -- state ---------------------------------------------------------------------------------

    def _state(self, next_step: int) -> dict:
        params = dict(self.job.named_parameters())
        trained = [n for g in self.groups for n, _ in g.params]
        return {
            "step": next_step,
            "fingerprint": self.settings.fingerprint(),
            "params": {n: dist_util.full_tensor(params[n].detach()).cpu().clone() for n in trained},
            "buffers": {n: b.detach().cpu().clone() for n, b in _trained_buffers(self.job).items()},
            "ema": {n: dist_util.full_tensor(t).cpu().clone() for n, t in self.ema.items()},
            "optimizers": {n: o.state_dict() for n, o in self.optimizers.items()} if not self.fsdp_units else {},
            "schedulers": {n: s.state_dict() for n, s in self.schedulers.items()},
        }

    def save_checkpoint(self, next_step: int) -> Path | None:
        out = self.settings.out
        folder = final = None
        if self.procs.is_main:
            folder, final = ckpt.begin_checkpoint(out, next_step)
        dist_util.barrier()
        folder = folder or (ckpt.checkpoint_root(out) / f"{ckpt.STEP_PREFIX}{next_step:07d}.partial")
        state = self._state(next_step)
        if self.fsdp_units:
            import torch.distributed.checkpoint as dcp
            from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

            optim = {n: get_optimizer_state_dict(self.job, o) for n, o in self.optimizers.items()}
            dcp.save({"optimizers": optim}, checkpoint_id=str(folder / "sharded"))
        if self.procs.is_main:
            ckpt.save_state(folder, state)
        ckpt.save_rng(folder, self.procs.rank)
        dist_util.barrier()
        if self.procs.is_main:
            ckpt.finish_checkpoint(folder, final, self.settings.keep_checkpoints)
            log.info("checkpoint %s", final)
        dist_util.barrier()
        return final

    def resume(self, folder: Path) -> None:
        state = ckpt.load_state(folder)
        if state["fingerprint"] != self.settings.fingerprint():
            raise ValueError(
                f"{folder}: checkpoint of a different run (settings {state['fingerprint']} vs {self.settings.fingerprint()}); "
                "resume with the same job, seed, batch and data settings"
            )
        params = dict(self.job.named_parameters())
        with torch.no_grad():
            for name, value in state["params"].items():
                params[name].copy_(dist_util.like(value, params[name]))
            buffers = _trained_buffers(self.job)
            for name, value in state["buffers"].items():
                buffers[name].copy_(value)
            for name, value in state["ema"].items():
                self.ema[name].copy_(dist_util.like(value, self.ema[name]))
        if self.fsdp_units:
            import torch.distributed.checkpoint as dcp
            from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict, set_optimizer_state_dict

            optim = {n: get_optimizer_state_dict(self.job, o) for n, o in self.optimizers.items()}
            dcp.load({"optimizers": optim}, checkpoint_id=str(folder / "sharded"))
            for n, o in self.optimizers.items():
                set_optimizer_state_dict(self.job, o, optim[n])
        else:
            for name, opt in self.optimizers.items():
                opt.load_state_dict(state["optimizers"][name])
        for name, sched in self.schedulers.items():
            sched.load_state_dict(state["schedulers"][name])
        ckpt.load_rng(folder, self.procs.rank)
        self.start_step = int(state["step"])
        log.info("resumed from %s at step %d", folder, self.start_step)

    # -- outputs -------------------------------------------------------------------------------

    def write_outputs(self) -> list[Path]:
        params = dict(self.job.named_parameters())
        trained = {n: dist_util.full_tensor(params[n].detach()).float().cpu() for n in self.output_names}
        ema = {n: dist_util.full_tensor(t).float().cpu() for n, t in self.ema.items()}
        if not self.procs.is_main:
            return []
        written = []
        metadata = {"format": "pt", "trained_by": f"inbetween-train {self.settings.job}", "steps": str(self.settings.steps)}
        for output in self.job.outputs():
            mine = {output.key(n): t for n, t in trained.items() if n.startswith(output.prefix)}
            if output.base is not None:
                base = output.base()
                unknown = sorted(set(mine) - set(base))
                if unknown:
                    raise RuntimeError(f"trained tensors not in the starting checkpoint's layout: {unknown[:3]}")
            else:
                base = {output.key(n): t.detach().float().cpu() for n, t in self.job.state_dict().items()
                        if n.startswith(output.prefix)}
            variants = [(output.filename, mine)]
            if ema:
                stem, suffix = output.filename.rsplit(".", 1)
                variants.append((f"{stem}-ema.{suffix}", {output.key(n): t for n, t in ema.items() if n.startswith(output.prefix)}))
            for filename, values in variants:
                path = self.settings.out / filename
                ckpt.write_weights(path, {**base, **values}, metadata)
                written.append(path)
        return written

    # -- the loop ------------------------------------------------------------------------------

    def _data(self) -> DataLoader:
        s = self.settings
        clips, skipped = discover_clips(s.data, self.config.frames)
        for reason in skipped:
            log.warning("clip skipped: %s", reason)
        spec = SampleSpec(self.config.frames, s.width or self.config.width, s.height or self.config.height,
                          s.stride_min, s.stride_max)
        dataset = ClipDataset(clips, spec, s.seed, extras=self.job.sample_extras())
        order = GlobalOrder(s.micro_batch, self.accumulation, self.procs.world_size, self.procs.rank)
        log.info("%d clips; global batch %d = micro-batch %d × accumulation %d × %d process(es)",
                 len(clips), order.global_batch, s.micro_batch, self.accumulation, self.procs.world_size)
        return DataLoader(dataset, batch_sampler=order.batches(self.start_step), collate_fn=collate,
                          num_workers=s.workers, persistent_workers=s.workers > 0)

    def _set_gradient_sync(self, sync: bool):
        if self.fsdp_units:
            for unit in self.fsdp_units:
                unit.set_requires_gradient_sync(sync)
            return contextlib.nullcontext()
        if self.runner is not self.job and not sync:
            return self.runner.no_sync()
        return contextlib.nullcontext()

    def run(self) -> TrainResult:
        s = self.settings
        if s.resume:
            folder = ckpt.latest_checkpoint(s.out) if s.resume == "auto" else Path(s.resume)
            if folder is not None:
                self.resume(folder)
            elif self.procs.is_main:
                log.info("no checkpoint under %s: starting from step 0", ckpt.checkpoint_root(s.out))
        if self.procs.is_main:
            s.out.mkdir(parents=True, exist_ok=True)
            log.info("%s: %s", s.job, self.counts)
            for line in self.job.describe():
                log.info("%s", line)
        loader = iter(self._data())
        logger = _Logger(s, self.procs.is_main, self.start_step)
        losses: list[float] = []
        self.runner.train()
        for step in range(self.start_step, s.steps):
            started = time.perf_counter()
            totals: dict[str, float] = {}
            for micro in range(self.accumulation):
                batch = next(loader)
                with self._set_gradient_sync(micro == self.accumulation - 1), self.autocast():
                    loss, logs = self.runner(batch, step)
                (loss / self.accumulation).backward()
                for key, value in logs.items():
                    totals[key] = totals.get(key, 0.0) + float(value) / self.accumulation
            for group in self.groups:
                if s.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_([p for _, p in group.params], s.grad_clip)
                self.optimizers[group.name].step()
                self.schedulers[group.name].step()
                self.optimizers[group.name].zero_grad(set_to_none=True)
            self._update_ema()
            totals = _mean_over_processes(totals, self.device)
            losses.append(totals.get("loss", totals.get("rec", math.nan)))
            lr = self.schedulers[self.groups[0].name].get_last_lr()[0]
            logger.log(step + 1, totals, lr, time.perf_counter() - started, self.accumulation * s.micro_batch * self.procs.world_size)
            if (step + 1) % s.save_every == 0 or step + 1 == s.steps:
                self.save_checkpoint(step + 1)
        logger.close()
        outputs = self.write_outputs()
        dist_util.barrier()
        return TrainResult(outputs, s.steps, losses, self.counts.trained, self.counts.frozen)

    @torch.no_grad()
    def _update_ema(self) -> None:
        if not self.ema:
            return
        params = dict(self.job.named_parameters())
        for name, average in self.ema.items():
            average.lerp_(params[name].detach().float(), 1.0 - self.settings.ema_decay)


def _mean_over_processes(values: dict[str, float], device: torch.device) -> dict[str, float]:
    import torch.distributed as dist

    if not dist.is_initialized() or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=device if device.type == "cuda" else "cpu")
    dist.all_reduce(t)
    t /= dist.get_world_size()
    return dict(zip(keys, t.tolist(), strict=True))


class _Logger:
    """Rank 0: a progress bar, `OUT/logs/train.csv` (appended across resumes) and TensorBoard if installed."""

    def __init__(self, settings: TrainSettings, main: bool, start: int) -> None:
        self.main = main
        self.every = settings.log_every
        self.bar = None
        self.writer = None
        self.csv = None
        if not main:
            return
        from tqdm import tqdm

        self.bar = tqdm(total=settings.steps, initial=start, desc=settings.job, disable=not settings.progress, dynamic_ncols=True)
        folder = settings.out / "logs"
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / "train.csv"
        self.fields: list[str] | None = None
        if self.path.is_file() and start > 0:
            rows = self.path.read_text().splitlines()
            header = rows[0].split(",") if rows else None
            kept = [r for r in rows[1:] if r and int(r.split(",")[0]) <= start]
            self.path.write_text("\n".join([",".join(header), *kept]) + "\n" if header else "")
            self.fields = header
        elif self.path.exists():
            self.path.unlink()
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(folder))
        except ImportError:
            log.info("TensorBoard not installed: losses go to %s only", self.path)
        (settings.out / "training.json").write_text(json.dumps({k: str(v) for k, v in asdict(settings).items()}, indent=1))

    def log(self, step: int, values: dict[str, float], lr: float, seconds: float, samples: int) -> None:
        if not self.main:
            return
        row = {"step": step, **{k: f"{v:.6g}" for k, v in sorted(values.items())}, "lr": f"{lr:.3g}",
               "seconds": f"{seconds:.3f}", "samples_per_s": f"{samples / max(seconds, 1e-9):.3f}"}
        if step % self.every == 0:
            fresh = self.fields is None
            if fresh:
                self.fields = list(row)
            with self.path.open("a", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=self.fields, extrasaction="ignore")
                if fresh:
                    writer.writeheader()
                writer.writerow(row)
            if self.writer is not None:
                for key, value in values.items():
                    self.writer.add_scalar(f"train/{key}", value, step)
        self.bar.set_postfix({k: f"{v:.4f}" for k, v in values.items() if k in ("loss", "rec", "l1")})
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.writer is not None:
            self.writer.close()


def train(settings: TrainSettings) -> TrainResult:
    trainer = Trainer(settings)
    try:
        return trainer.run()
    finally:
        dist_util.stop()
