#!/usr/bin/env bash
# Retrain the KJV Qwen2-MoE model end to end and export it to models/kjv-moe/.
#   tools/train/run_all.sh            # full run (~60-100 min of training on one CPU thread)
#   RESUME=1 tools/train/run_all.sh   # continue an interrupted run from tools/train/work/ckpt.pt
# Environment: STEPS (default 700), BUDGET_MIN (training wall-clock cap, default 100).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=/usr/bin/python3   # Debian python with python3-torch (the pyenv python3 on PATH has no torch)
PKGS="python3-torch python3-numpy python3-regex libopenblas0-pthread bible-kjv"
if ! dpkg -s $PKGS >/dev/null 2>&1; then
  echo "installing $PKGS"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $PKGS
fi
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
mkdir -p tools/train/work
$PY tools/train/prepare_data.py
$PY tools/train/tokenizer.py
$PY tools/train/check_tokenizer.py            # JS @huggingface/tokenizers == Python encoder
$PY tools/train/test_model.py                 # model.py == transcription of HF modeling_qwen2_moe.py
RES=""; [ "${RESUME:-0}" = 1 ] && RES="--resume"
$PY tools/train/train.py --steps "${STEPS:-700}" --time-budget-min "${BUDGET_MIN:-100}" $RES \
  2>&1 | tee -a tools/train/work/train.log
$PY tools/train/export.py --ckpt tools/train/work/final.pt --out models/kjv-moe
$PY tools/train/check_tokenizer.py models/kjv-moe
$PY tools/train/test_model.py --check-export models/kjv-moe
$PY tools/train/write_readme.py
echo "done: models/kjv-moe"
