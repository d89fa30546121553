#!/usr/bin/env bash
# The GPU device check: one prepared run (about 4 minutes on an H200, each part capped; 9.5 at
# most), no downloads, random full-size weights. Measures torch fp16/bf16 parity against fp32, the parity/fast/low-VRAM modes
# (s/step, end-to-end, peak VRAM, with and without sketches), the UNet on ONNX Runtime's CUDA
# provider (which provider really ran, s/forward, difference to PyTorch) and the dual-reference
# decode's peak VRAM, whole clip vs lean, and training steps of each memory plan (s/step, peak VRAM).
#
#   bash bench/device_check.sh [OUT_DIR]        # results: OUT_DIR/device_check.json, training_check.json, .log
#
# Needs a CUDA build of PyTorch; the ONNX part needs onnxruntime-gpu (see docs/onnx.md) and is
# recorded as not measured, without exporting, where onnxruntime has no CUDA provider.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-${OUT:-/tmp/device_check}}"
mkdir -p "$OUT"
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3

{
  echo "== $(date -u +%FT%TZ) $(hostname)"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "nvidia-smi unavailable"
  "$PY" - <<'PYEOF'
import torch, onnxruntime as ort
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
print("onnxruntime", ort.__version__, ort.get_available_providers())
PYEOF
  # 6 steps per timed pass keep the inference part near 3 minutes on an H100/H200-class GPU;
  # s/step is the median step, so it does not depend on the step count. Each check has its own
  # time cap and a failure of one does not stop the next.
  timeout 270 "$PY" bench/gpu_tooncrafter.py --steps 6 --precision fp16 --json "$OUT/device_check.json" \
    || echo "gpu_tooncrafter.py failed or ran out of time"
  # The dual-reference decode alone, whole clip vs the exact lean decode (and in row bands): peak allocated VRAM (#12).
  timeout 80 "$PY" bench/memory_tooncrafter.py --device cuda --dtype fp16 --settings whole 4 1 1-bands \
    || echo "decode memory check failed"
  # Training steps of the full-size model with each memory plan of docs/training.md.
  timeout 200 "$PY" bench/gpu_training.py --steps 4 --json "$OUT/training_check.json" \
    || echo "gpu_training.py failed or ran out of time"
} 2>&1 | tee "$OUT/device_check.log"
