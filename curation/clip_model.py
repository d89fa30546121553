"""OpenCLIP image and text embeddings from a local weights file (curation's aesthetic and alignment
stages, evaluation's CLIP-img and CLIP-txt).

The model is built from an architecture config (an open_clip name such as "ViT-L-14", an open_clip
config JSON file, or a config dict) and the state dict is loaded from the file, so open_clip never reaches
the network. Images are preprocessed as open_clip does for OpenAI models: bicubic resize of the
short side, centre crop, OpenAI mean/std.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from engine.torch_compat import import_open_clip

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


def load_state_dict(path: str | Path) -> dict:
    """A state dict from a .pt/.pth/.bin/.safetensors file, unwrapping a 'state_dict' entry."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return {k.removeprefix("module."): v for k, v in state.items()}


class ClipEmbedder:
    """L2-normalised CLIP embeddings of RGB uint8 frames and of captions."""

    def __init__(self, weights: str | Path, architecture: str | dict = "ViT-L-14", device: str = "cpu") -> None:
        open_clip = import_open_clip()
        if isinstance(architecture, dict):
            config = copy.deepcopy(architecture)
        elif str(architecture).endswith(".json"):
            config = json.loads(Path(architecture).read_text(encoding="utf-8"))
            config = config.get("model_cfg", config)
        else:
            config = open_clip.get_model_config(architecture)
        if config is None:
            raise ValueError(f"unknown open_clip architecture {architecture!r}")
        config.pop("custom_text", None)
        self.model = open_clip.CLIP(**config).eval().to(device)
        missing, unexpected = self.model.load_state_dict(load_state_dict(weights), strict=False)
        essential = [k for k in missing if not k.endswith("attn_mask")]
        if essential:
            raise ValueError(f"{weights}: not a {architecture} OpenCLIP checkpoint (missing {essential[:3]}...)")
        self.image_size = int(config["vision_cfg"]["image_size"] if isinstance(config["vision_cfg"]["image_size"], int)
                              else config["vision_cfg"]["image_size"][0])
        self.context_length = int(config["text_cfg"].get("context_length", 77))
        self.tokenize = open_clip.tokenize
        self.device = device

    def preprocess(self, frames: list[np.ndarray]) -> torch.Tensor:
        batch = []
        size = self.image_size
        for frame in frames:
            x = torch.from_numpy(np.ascontiguousarray(frame[..., :3])).permute(2, 0, 1).float()[None] / 255.0
            h, w = x.shape[-2:]
            scale = size / min(h, w)
            nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
            x = F.interpolate(x, size=(nh, nw), mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)
            top, left = (nh - size) // 2, (nw - size) // 2
            batch.append(x[..., top:top + size, left:left + size])
        x = torch.cat(batch)
        mean = torch.tensor(OPENAI_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(OPENAI_STD).view(1, 3, 1, 1)
        return ((x - mean) / std).to(self.device)

    @torch.no_grad()
    def images(self, frames: list[np.ndarray]) -> np.ndarray:
        features = self.model.encode_image(self.preprocess(frames))
        return F.normalize(features.float(), dim=-1).cpu().numpy()

    @torch.no_grad()
    def texts(self, texts: list[str]) -> np.ndarray:
        tokens = self.tokenize(list(texts), context_length=self.context_length).to(self.device)
        features = self.model.encode_text(tokens)
        return F.normalize(features.float(), dim=-1).cpu().numpy()
