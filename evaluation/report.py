"""Writing the evaluation: metrics.csv / metrics.json / metrics.md (per method and gap), the
per-frame rows (frames.csv) and contact sheets (keys, ground truth and every method side by side)."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import cv2
import numpy as np

from engine.core.files import atomic_write_bytes

from .suite import METRICS

LOWER_IS_BETTER = ("FVD", "KVD", "LPIPS")


def _cell(value) -> str:
    if value is None or isinstance(value, float) and not math.isfinite(value):
        return "n/c"
    if isinstance(value, float):
        return f"{value:.2f}" if abs(value) >= 10 else f"{value:.4f}"
    return str(value)


def markdown(result: dict) -> str:
    header = ["method", "gap", "cases", "frames", *[f"{m} {'↓' if m in LOWER_IS_BETTER else '↑'}" for m in METRICS]]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in result["table"]:
        lines.append("| " + " | ".join(_cell(row.get(k)) for k in ("method", "gap", "cases", "frames", *METRICS)) + " |")
    notes = [f"- {metric}: not computed: {reason}" for metric, reason in sorted(result["not_computed"].items())]
    notes += [f"- method {name}: not run: {reason}" for name, reason in sorted(result["unavailable"].items())]
    notes += [f"- method {name}: {message}" for name, message in sorted(result.get("warnings", {}).items())]
    return "\n".join(lines + ([""] + notes if notes else [])) + "\n"


def _csv_bytes(rows: list[dict], columns: list[str]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})
    return buffer.getvalue().encode()


def _label(image: np.ndarray, text: str) -> np.ndarray:
    image = image.copy()
    cv2.rectangle(image, (0, 0), (image.shape[1], 18), (0, 0, 0), -1)
    cv2.putText(image, text, (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1, cv2.LINE_AA)
    return image


def contact_sheet(case, predictions: dict[str, list[np.ndarray]], width: int = 256) -> np.ndarray:
    """Rows: ground truth, then each method; columns: start key, the in-betweens, end key."""
    def thumb(image):
        height = round(image.shape[0] * width / image.shape[1])
        return cv2.resize(image[..., :3], (width, height), interpolation=cv2.INTER_AREA)

    rows = []
    for name, middle in [("ground truth", case.gt), *predictions.items()]:
        cells = [_label(thumb(case.start), f"{name}: key 0")]
        cells += [_label(thumb(f), f"{name}: t={t:.3f}") for f, t in zip(middle, case.gt_t)]
        cells.append(_label(thumb(case.end), f"{name}: key 1"))
        rows.append(np.concatenate(cells, 1))
    return np.concatenate(rows, 0)


def write_report(result: dict, cases, out: str | Path, sheets_per_gap: int = 2) -> list[Path]:
    out = Path(out)
    columns = ["method", "gap", "cases", "frames", *METRICS]
    written = []
    table_json = {k: result.get(k, {}) for k in ("table", "not_computed", "unavailable", "warnings")}
    for name, data in (
        ("metrics.csv", _csv_bytes(result["table"], columns)),
        ("metrics.json", json.dumps(table_json, indent=1).encode()),
        ("metrics.md", markdown(result).encode()),
        ("frames.csv", _csv_bytes(result["frames"], ["method", "case", "gap", "kind", "frame", "t", *METRICS[2:]])),
    ):
        atomic_write_bytes(out / name, data)
        written.append(out / name)
    shown: dict[int, int] = {}
    for case in cases:
        if shown.get(case.gap, 0) >= sheets_per_gap:
            continue
        available = {m: p[case.case_id] for m, p in result["predictions"].items() if case.case_id in p}
        if not available:
            continue
        shown[case.gap] = shown.get(case.gap, 0) + 1
        sheet = contact_sheet(case, available)
        ok, png = cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
        path = out / "sheets" / (case.case_id.replace("/", "_") + ".png")
        atomic_write_bytes(path, png.tobytes())
        written.append(path)
    return written
