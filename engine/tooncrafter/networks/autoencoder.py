"""ToonCrafter's first stage: the VAE with the dual-reference video decoder.

Encoding gives a diagonal-Gaussian posterior per frame plus the encoder's feature maps; the
interpolation path SAMPLES the posterior (mean + std*noise) and scales it by 0.18215 into the
diffusion space. Decoding divides by that factor and runs the dual-reference decoder on chunks of
16 frames (the model's temporal length) with the two keyframes' feature maps; like the original it
never applies post_quant_conv (its weights are in the checkpoint but unused on this path).

State-dict keys are the checkpoint's with the `first_stage_model.` prefix removed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields

import torch
from torch import nn

from engine.tooncrafter.networks.dualref_decoder import DualRefDecoder
from engine.tooncrafter.networks.key_maps import as_tensor, pair_maps
from engine.tooncrafter.networks.vae_encoder import VAEEncoder

#: Prefix of the first stage's keys in the official checkpoint.
AUTOENCODER_KEY_PREFIX = "first_stage_model."

#: Keys of the reference / official first-stage configs that do not shape the network (ignored).
_DESCRIPTIVE_KEYS = ("encoder", "post_quant_conv_used_in_official_decode", "lossconfig", "monitor")


@dataclass(frozen=True)
class DualRefAutoencoderConfig:
    """Hyperparameters of the first stage; defaults are the released 512 model's."""

    in_channels: int = 3
    out_channels: int = 3
    ch: int = 128
    ch_mult: tuple[int, ...] = (1, 2, 4, 4)
    num_res_blocks: int = 2
    z_channels: int = 4
    embed_dim: int = 4
    dropout: float = 0.0
    #: Decoder levels with cross-frame fusion attention; the other levels get a combiner conv.
    fusion_levels: tuple[int, ...] = (2, 3)
    fusion_heads: int = 8
    fusion_dim_head: int = 64
    #: Temporal kernel of the decoder's time convolutions (3x1x1).
    kernel_t: int = 3
    #: Latents are scaled by this into the diffusion space.
    scale_factor: float = 0.18215
    #: Frames decoded together (the config's temporal_length); refs go to each chunk's ends.
    decode_chunk_frames: int = 16
    #: Lean decode: frames of a chunk computed at once by the exact frame-streamed decoder, so the
    #: decode's activations stop growing with the frame count (None: the whole chunk, fastest).
    #: Unlike decode_chunk_frames it does not change the result.
    decode_frames_at_once: int | None = None

    def __post_init__(self) -> None:
        if self.embed_dim != self.z_channels:
            raise ValueError(
                f"embed_dim {self.embed_dim} != z_channels {self.z_channels}: the dual-reference decode "
                "skips post_quant_conv, so the latent must already have the decoder's channel count"
            )
        if self.ch_mult[0] != 1:
            raise ValueError(f"ch_mult must start with 1 (the final combiner adds the conv_in map), got {self.ch_mult}")
        bad = [level for level in self.fusion_levels if not 0 <= level < len(self.ch_mult)]
        if bad:
            raise ValueError(f"fusion_levels {bad} are outside the {len(self.ch_mult)} decoder levels")
        if self.decode_chunk_frames < 1:
            raise ValueError(f"decode_chunk_frames must be at least 1, got {self.decode_chunk_frames}")
        if self.decode_frames_at_once is not None and self.decode_frames_at_once < 1:
            raise ValueError(f"decode_frames_at_once must be at least 1, got {self.decode_frames_at_once}")

    @classmethod
    def from_dict(cls, data: Mapping, **overrides) -> DualRefAutoencoderConfig:
        """From the reference `config.json["first_stage"]` layout (embed_dim, ddconfig, decoder), the
        official yaml's first_stage_config.params, or flat field names; `overrides` (e.g.
        scale_factor, decode_chunk_frames) win."""
        ddconfig = dict(data.get("ddconfig", {}))
        flat = {k: v for k, v in data.items() if k not in ("ddconfig", "decoder", *_DESCRIPTIVE_KEYS)}
        values: dict = {}
        if ddconfig:
            if not ddconfig.get("double_z", True):
                raise ValueError("first_stage.ddconfig.double_z must be true (the encoder predicts mean and logvar)")
            if ddconfig.get("attn_resolutions"):
                raise ValueError(
                    f"first_stage.ddconfig.attn_resolutions={ddconfig['attn_resolutions']}: "
                    "only the mid attention is supported"
                )
            values.update(
                in_channels=ddconfig.get("in_channels", cls.in_channels),
                out_channels=ddconfig.get("out_ch", cls.out_channels),
                ch=ddconfig.get("ch", cls.ch),
                ch_mult=ddconfig.get("ch_mult", cls.ch_mult),
                num_res_blocks=ddconfig.get("num_res_blocks", cls.num_res_blocks),
                z_channels=ddconfig.get("z_channels", cls.z_channels),
                dropout=ddconfig.get("dropout", cls.dropout),
            )
        decoder = data.get("decoder")
        if isinstance(decoder, Mapping):
            if decoder.get("time_mode", "conv-only") != "conv-only":
                raise ValueError(f"first_stage.decoder.time_mode={decoder['time_mode']!r}: only 'conv-only' exists")
            if decoder.get("merge_strategy", "learned") != "learned":
                raise ValueError(f"first_stage.decoder.merge_strategy={decoder['merge_strategy']!r}: only 'learned'")
            if "attn_level" in decoder:
                values["fusion_levels"] = decoder["attn_level"]
            fusion = decoder.get("fusion_attention") or {}
            values["fusion_heads"] = fusion.get("heads", cls.fusion_heads)
            values["fusion_dim_head"] = fusion.get("dim_head", cls.fusion_dim_head)
            if "video_kernel_size" in decoder:
                kernel = decoder["video_kernel_size"]
                values["kernel_t"] = kernel[0] if isinstance(kernel, Sequence) else kernel
        known = {f.name for f in fields(cls)}
        values.update(flat)
        values.update(overrides)
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown first-stage settings: {', '.join(sorted(unknown))}")
        for name in ("ch_mult", "fusion_levels"):
            values[name] = tuple(values.get(name, getattr(cls, name)))
        return cls(**values)


@dataclass
class LatentPosterior:
    """Diagonal Gaussian over the (unscaled) latent; logvar is clamped to [-30, 20] as in the original.

    Always float32, whatever the encoder's dtype: exp(logvar/2) and the sample feed the diffusion
    directly, and the original computes them in float32 under autocast too."""

    mean: torch.Tensor
    logvar: torch.Tensor

    @classmethod
    def from_moments(cls, moments: torch.Tensor) -> LatentPosterior:
        mean, logvar = torch.chunk(moments.float(), 2, dim=1)
        return cls(mean, torch.clamp(logvar, -30.0, 20.0))

    @property
    def std(self) -> torch.Tensor:
        return torch.exp(0.5 * self.logvar)

    def sample(self, noise: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """mean + std*noise; noise is standard normal of the mean's shape (drawn here when not given)."""
        if noise is None:
            noise = torch.randn(
                self.mean.shape, generator=generator, device=self.mean.device, dtype=self.mean.dtype
            )
        elif noise.shape != self.mean.shape:
            raise ValueError(f"posterior noise has shape {tuple(noise.shape)}, expected {tuple(self.mean.shape)}")
        return self.mean + self.std * noise.to(self.mean)


@dataclass
class VAEEncoding:
    """Posterior of each encoded frame and the encoder's five feature maps of each frame."""

    posterior: LatentPosterior
    hidden_states: list[torch.Tensor]


def keyframe_references(first: Sequence[torch.Tensor], last: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Feature maps of the first and last keyframe (each (B, C, h, w), encoder order) -> the
    decoder's reference maps (B, C, 2, h, w), slot 0 = first keyframe, slot 1 = last."""
    if len(first) != len(last):
        raise ValueError(f"{len(first)} feature maps for the first keyframe but {len(last)} for the last")
    return [pair_maps(a, b) for a, b in zip(first, last, strict=True)]


def video_references(hidden_states: Sequence[torch.Tensor], num_frames: int) -> list[torch.Tensor]:
    """Reference maps from the feature maps of whole encoded videos ((B*T, C, h, w) each): frame 0
    and frame T-1 of every video, as the official interpolation path picks them."""
    refs = []
    for hidden in hidden_states:
        video = as_tensor(hidden).reshape(-1, num_frames, *hidden.shape[1:])
        refs.append(torch.stack([video[:, 0], video[:, -1]], dim=2))
    return refs


@dataclass
class TwoPassFrames:
    """The official two-pass decode: `frames` is what the original scripts return."""

    frames: torch.Tensor
    single_pass: torch.Tensor
    middle_pass: torch.Tensor


class DualRefAutoencoder(nn.Module):
    def __init__(self, config: DualRefAutoencoderConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or DualRefAutoencoderConfig()
        self.encoder = VAEEncoder(
            in_channels=config.in_channels,
            ch=config.ch,
            ch_mult=config.ch_mult,
            num_res_blocks=config.num_res_blocks,
            z_channels=config.z_channels,
            double_z=True,
            dropout=config.dropout,
        )
        self.decoder = DualRefDecoder(
            out_channels=config.out_channels,
            ch=config.ch,
            ch_mult=config.ch_mult,
            num_res_blocks=config.num_res_blocks,
            z_channels=config.z_channels,
            dropout=config.dropout,
            fusion_levels=config.fusion_levels,
            fusion_heads=config.fusion_heads,
            fusion_dim_head=config.fusion_dim_head,
            kernel_t=config.kernel_t,
        )
        self.decoder.set_frames_at_once(config.decode_frames_at_once)
        self.quant_conv = nn.Conv2d(2 * config.z_channels, 2 * config.embed_dim, 1)
        #: In the checkpoint but never used by the dual-reference decode (kept for strict loading).
        self.post_quant_conv = nn.Conv2d(config.embed_dim, config.z_channels, 1)

    @property
    def downscale(self) -> int:
        """Pixels per latent cell along each axis (8 for the released model)."""
        return 2 ** (len(self.config.ch_mult) - 1)

    def encode(self, frames: torch.Tensor) -> VAEEncoding:
        """frames (N, 3, H, W) in [-1, 1], H and W multiples of `downscale` -> posterior + feature maps."""
        if frames.ndim != 4 or frames.shape[1] != self.config.in_channels:
            raise ValueError(
                f"VAE encode expects (N, {self.config.in_channels}, H, W) frames, got {tuple(frames.shape)}"
            )
        if frames.shape[-2] % self.downscale or frames.shape[-1] % self.downscale:
            raise ValueError(
                f"frame size {frames.shape[-1]}x{frames.shape[-2]} is not a multiple of {self.downscale}"
            )
        out = self.encoder(frames)
        return VAEEncoding(LatentPosterior.from_moments(self.quant_conv(out.moments)), out.hidden_states)

    def scaled_latents(self, posterior: LatentPosterior, noise: torch.Tensor | None = None) -> torch.Tensor:
        """A posterior sample in the diffusion space (times scale_factor), as the interpolation path uses."""
        return self.config.scale_factor * posterior.sample(noise)

    def decode(
        self, latents: torch.Tensor, references: Sequence[torch.Tensor], chunk_frames: int | None = None
    ) -> torch.Tensor:
        """latents (B, z, T, h, w) in the diffusion space -> frames (B, 3, T, 8h, 8w), not clamped."""
        step = chunk_frames or self.config.decode_chunk_frames
        return decode_in_chunks(self.decoder, latents, references, self.config.scale_factor, step)

    def decode_two_pass(self, latents: torch.Tensor, references: Sequence[torch.Tensor]) -> TwoPassFrames:
        """The official interpolation decode (see `two_pass_decode`)."""
        return two_pass_decode(lambda z: self.decode(z, references), latents)


#: The dual-reference decoder's call: unscaled latent frames (N, z, h, w), the reference maps of the
#: videos they belong to, frames per video -> frames (N, 3, 8h, 8w). Every runtime provides one.
DecodeFrames = Callable[[torch.Tensor, Sequence[torch.Tensor], int], torch.Tensor]


def decode_in_chunks(
    decode_frames: DecodeFrames,
    latents: torch.Tensor,
    references: Sequence[torch.Tensor],
    scale_factor: float,
    chunk_frames: int,
) -> torch.Tensor:
    """latents (B, z, T, h, w) in the diffusion space -> frames (B, 3, T, 8h, 8w), not clamped.

    Each video is decoded in chunks of `chunk_frames` (the config's 16) with the reference maps
    applied to the first and last frame of each chunk, as the original does. Shared by every runtime.
    """
    if latents.ndim != 5:
        raise ValueError(f"VAE decode expects (B, C, T, h, w) latents, got {tuple(latents.shape)}")
    b, _, t, _, _ = latents.shape
    if any(ref.shape[0] != b for ref in references):
        raise ValueError(f"reference maps must have batch size {b} like the latents")
    z = latents / scale_factor
    videos = []
    for i in range(b):
        refs = [ref[i : i + 1] for ref in references]
        chunks = []
        for start in range(0, t, chunk_frames):
            chunk = z[i, :, start : start + chunk_frames].transpose(0, 1)
            frames = decode_frames(chunk, refs, chunk.shape[0])
            chunks.append(frames.transpose(0, 1).unsqueeze(0))
        videos.append(torch.cat(chunks, dim=2))
    return torch.cat(videos, dim=0)


def two_pass_decode(decode: Callable[[torch.Tensor], torch.Tensor], latents: torch.Tensor) -> TwoPassFrames:
    """The official interpolation decode: decode all T frames, decode again without frames 1 and
    T-2, and take the two middle frames (T/2-1, T/2) from the second pass. `decode` maps latents
    (B, z, T', h, w) to frames (B, 3, T', H, W) with the keyframes' reference maps."""
    t = latents.shape[2]
    if t < 4 or t % 2:
        raise ValueError(f"the two-pass decode needs an even number of at least 4 frames, got {t}")
    single = decode(latents)
    keep = [i for i in range(t) if i not in (1, t - 2)]
    middle = decode(latents[:, :, keep])
    half = t // 2
    frames = torch.cat([single[:, :, : half - 1], middle[:, :, half - 2 : half], single[:, :, half + 1 :]], dim=2)
    return TwoPassFrames(frames, single, middle)
