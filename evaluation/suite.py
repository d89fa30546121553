"""The paper's evaluation: every method on every case, scored per frame and per set of sequences,
summarised per method and per gap.

Per frame (against its ground truth): PSNR, SSIM, line F, edge F (frame_metrics.py), LPIPS, CLIP-img
(cosine of the CLIP image embeddings of prediction and ground truth), CLIP-txt (prediction vs the
case's prompt) and CPBD sharpness of the prediction. Per set: FVD and KVD between the I3D features
of the ground-truth sequences [start, gt..., end] and the predicted ones [start, pred..., end].
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .cases import Case, CaseError
from .cpbd import cpbd
from .distributions import fvd_from_features, kvd_from_features
from .frame_metrics import frame_scores
from .methods import Method, MethodUnavailable
from .networks import MetricNetworks

#: Table columns in the paper's order (lower is better for FVD, KVD, LPIPS), then the project's.
METRICS = ("FVD", "KVD", "LPIPS", "CLIP-img", "CLIP-txt", "CPBD", "PSNR", "SSIM", "line_f", "edge_f")
FRAME_KEYS = {"psnr": "PSNR", "ssim": "SSIM", "line_f": "line_f", "edge_f": "edge_f"}


def score_frames(case: Case, predictions: list[np.ndarray], networks: MetricNetworks) -> list[dict]:
    rows = []
    clip_gt = clip_pred = text = None
    if networks.clip is not None:
        clip_gt = networks.clip.images(case.gt)
        clip_pred = networks.clip.images(predictions)
        text = networks.clip.texts([case.prompt])[0]
    for k, (gt, pred) in enumerate(zip(case.gt, predictions)):
        if gt.shape != pred.shape:
            raise CaseError(f"{case.case_id}/{case.gt_names[k]}: prediction is {pred.shape[1]}x{pred.shape[0]}, "
                            f"ground truth {gt.shape[1]}x{gt.shape[0]}")
        row = {FRAME_KEYS[key]: value for key, value in frame_scores(gt, pred).items()}
        row["CPBD"] = cpbd(pred)
        if networks.lpips is not None:
            row["LPIPS"] = networks.lpips.distance(gt, pred)
        if clip_gt is not None:
            row["CLIP-img"] = float(clip_gt[k] @ clip_pred[k])
            row["CLIP-txt"] = float(clip_pred[k] @ text)
        row.update(case=case.case_id, gap=case.gap, kind=case.kind, frame=case.gt_names[k], t=case.gt_t[k])
        rows.append(row)
    return rows


def evaluate(cases: list[Case], methods: list[Method], networks: MetricNetworks,
             progress: Callable[[str], None] = lambda message: None) -> dict:
    """{'frames': per-frame rows, 'table': per method and gap, 'not_computed': metric -> reason,
    'unavailable': method -> reason, 'predictions': method -> case id -> frames}."""
    frames: list[dict] = []
    predictions: dict[str, dict[str, list[np.ndarray]]] = {}
    unavailable: dict[str, str] = {}
    for method in methods:
        predictions[method.name] = {}
        for n, case in enumerate(cases):
            progress(f"{method.name}: case {n + 1}/{len(cases)} {case.case_id}")
            try:
                predicted = method.predict(case)
            except MethodUnavailable as exc:
                unavailable[method.name] = str(exc)
                break
            predictions[method.name][case.case_id] = predicted
            frames.extend({"method": method.name, **row} for row in score_frames(case, predicted, networks))
    gaps = sorted({c.gap for c in cases})
    table = []
    for method in methods:
        if method.name in unavailable:
            continue
        for gap in [*gaps, "all"]:
            subset = [c for c in cases if gap == "all" or c.gap == gap]
            rows = [r for r in frames if r["method"] == method.name and (gap == "all" or r["gap"] == gap)]
            entry = {"method": method.name, "gap": gap, "cases": len(subset), "frames": len(rows)}
            for metric in METRICS[2:]:
                values = [r[metric] for r in rows if metric in r and np.isfinite(r[metric])]
                entry[metric] = float(np.mean(values)) if values else None
            entry.update(sequence_distances(subset, predictions[method.name], networks))
            table.append(entry)
    warned = {}
    for method in methods:
        messages = getattr(method, "warnings", {})
        if messages:
            first = next(iter(messages.values()))[0]
            warned[method.name] = f"{len(messages)} of {len(cases)} cases drew with warnings, e.g. {first}"
    return {"frames": frames, "table": table, "not_computed": dict(networks.missing), "unavailable": unavailable,
            "warnings": warned, "predictions": predictions}


def sequence_distances(cases: list[Case], predicted: dict[str, list[np.ndarray]], networks: MetricNetworks) -> dict:
    """FVD and KVD of the predicted sequences against the ground-truth ones (None when I3D is absent
    or there are fewer than two sequences)."""
    if networks.i3d is None or len(cases) < 2:
        return {"FVD": None, "KVD": None}
    real = networks.i3d([np.stack([c.start, *c.gt, c.end]) for c in cases])
    fake = networks.i3d([np.stack([c.start, *predicted[c.case_id], c.end]) for c in cases])
    return {"FVD": fvd_from_features(real, fake), "KVD": kvd_from_features(real, fake)}
