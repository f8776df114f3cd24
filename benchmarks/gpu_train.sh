#!/usr/bin/env bash
# Short GPU follow-up of benchmarks/gpu.sh: the SD-1.5-size training step with DataLoader workers and a
# profile, then the same without workers (the setting of the first run), within DEADLINE seconds.
set -u
OUT=${OUT:-$PWD/gpu-out}; mkdir -p "$OUT"; DEADLINE=${DEADLINE:-200}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
[ -d .whl ] && { python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site || exit 1; }
export PYTHONPATH=$PWD:${PYTHONPATH:-}
timeout $(( DEADLINE - SECONDS )) python3 benchmarks/train_step.py --sd15 --rounds 3 --steps 2 --workers 6 --profile \
  2>&1 | grep -v "^USDT" | tee "$OUT/train_sd15_workers6.log"
timeout $(( DEADLINE - SECONDS )) python3 benchmarks/train_step.py --sd15 --rounds 3 --steps 2 --workers 0 \
  2>&1 | grep -v "^USDT" | tee "$OUT/train_sd15_workers0.log" | tail -8
echo "total ${SECONDS}s"
