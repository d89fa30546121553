"""Evaluation cases: two keys, the ground-truth in-betweens and their time fractions.

Sources:
- a triplets file (shared/cartoon/triplets.json layout: keys = frames i and i+g of a sequence, ground
  truth = the frames between, t = k/g);
- the eval split of a curation manifest: from each kept eval clip, one case per gap g, keys = its
  first frame and frame g, ground truth = the frames between (read with PyAV).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image


class CaseError(ValueError):
    """Unusable evaluation input; the message names the file or row."""


@dataclass
class Case:
    case_id: str  # e.g. 00_72109_125/g4/i00; predictions live at <pred root>/<case_id>/<gt name>
    gap: int
    kind: str
    start: np.ndarray  # RGB uint8
    end: np.ndarray
    gt: list[np.ndarray]
    gt_t: list[float]
    gt_names: list[str]
    prompt: str = "an anime scene"
    meta: dict = field(default_factory=dict)


def load_rgb(path: str | Path) -> np.ndarray:
    try:
        with Image.open(path) as image:
            return np.array(image.convert("RGB"))
    except OSError as exc:
        raise CaseError(f"{path}: not a readable image ({exc})") from None


def cases_from_triplets(path: str | Path, gaps=None, quick: bool = False, kinds=None, limit: int | None = None) -> list[Case]:
    path = Path(path)
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CaseError(f"{path}: not a readable triplets file ({exc})") from None
    root = path.parent
    prompts = _pair_prompts(root)
    cases = []
    for entry in spec["cases"]:
        if gaps and entry["gap"] not in gaps or quick and not entry["quick"] or kinds and entry["kind"] not in kinds:
            continue
        cases.append(Case(
            case_id=entry["id"], gap=int(entry["gap"]), kind=entry["kind"],
            start=load_rgb(root / entry["start"]), end=load_rgb(root / entry["end"]),
            gt=[load_rgb(root / g) for g in entry["gt"]], gt_t=[float(t) for t in entry["gt_t"]],
            gt_names=[Path(g).name for g in entry["gt"]], prompt=prompts.get(entry["sequence"], "an anime scene"),
            meta={"sequence": entry["sequence"]},
        ))
        if limit and len(cases) >= limit:
            break
    if not cases:
        raise CaseError(f"{path}: no case matches the chosen gaps/kinds/quick subset")
    return cases


def _pair_prompts(root: Path) -> dict[str, str]:
    """Sequence name -> the prompt of its keyframe pair (pairs/<case>/prompt.txt), when present."""
    prompts = {}
    sequences = root / "tooncrafter_outputs"
    if not sequences.is_dir():
        return prompts
    for folder in sequences.iterdir():
        info = folder / "sequence.json"
        if not info.exists():
            continue
        try:
            pair = json.loads(info.read_text(encoding="utf-8")).get("pair_case")
        except json.JSONDecodeError:
            continue
        prompt_file = root / "pairs" / str(pair) / "prompt.txt" if pair else None
        if prompt_file and prompt_file.exists():
            prompts[folder.name] = prompt_file.read_text(encoding="utf-8").strip() or "an anime scene"
    return prompts


def cases_from_manifest(path: str | Path, gaps=(2, 4, 8), limit: int | None = None) -> list[Case]:
    import pandas as pd

    from curation.video import UnreadableVideo, read_frames

    path = Path(path)
    try:
        rows = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several unrelated types for a bad file
        raise CaseError(f"{path}: not a readable Parquet manifest ({exc})") from None
    rows = rows[rows["kept"].astype(bool) & (rows["split"] == "eval")]
    cases = []
    for _, row in rows.iterrows():
        start = int(row["start_frame"])
        for gap in gaps:
            if start + gap >= int(row["end_frame"]):
                continue
            try:
                frames = read_frames(row["source"], range(start, start + gap + 1))
            except UnreadableVideo as exc:
                raise CaseError(f"{path}: clip {row['clip_id']}: {exc}") from None
            cases.append(Case(
                case_id=f"{row['clip_id']}/g{gap}/i00", gap=gap, kind="manifest", start=frames[start], end=frames[start + gap],
                gt=[frames[start + k] for k in range(1, gap)], gt_t=[k / gap for k in range(1, gap)],
                gt_names=[f"frame_{k:02d}.png" for k in range(1, gap)], prompt=str(row.get("caption") or "an anime scene"),
            ))
            if limit and len(cases) >= limit:
                return cases
    if not cases:
        raise CaseError(f"{path}: no kept eval clip is long enough for gaps {list(gaps)}")
    return cases
