#!/usr/bin/env bash
# The GPU checks, one short script run once on a lent GPU machine (never in CI):
#   1. the fast residual recipe's time to 94% test accuracy, 5 seeds (bench/cifar_time_to_acc.py);
#   2. the engine/plain throughput ratio of every architecture there (bench/cifar_speed.py);
#   3. the quick lab's CIFAR table (Table 1, quick preset) on the GPU.
#
#   bash bench/gpu_check.sh            # from the repository root; logs go to $OUT (default /tmp/gpu-check)
#
# The machine may lack cnnlab's pure-Python dependencies: wheels in .whl/ are installed to /tmp/site first
# (pip download --no-deps jsonargparse docstring-parser torchinfo torchview graphviz -d .whl). The data is
# read from $CNNLAB_DATA (default .gpu-data/, a git-ignored copy of cifar10-jpg.tar.gz). Each step has
# its own time limit, so one that hangs or fails leaves the others their time.
set -u
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD/src:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
export CNNLAB_DATA=${CNNLAB_DATA:-$PWD/.gpu-data} CNNLAB_CACHE=${CNNLAB_CACHE:-/tmp/cnnlab-cache}
step() {  # step NAME SECONDS COMMAND...: run with a time limit, log to $OUT/NAME.txt, report the status
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS
  echo "=== $name (limit ${limit} s): $*"
  timeout "$limit" "$@" >"$OUT/$name.txt" 2>&1
  local rc=$?
  grep -v -E "^\s*$|it/s|s/it" "$OUT/$name.txt" | tail -n 40
  echo "=== $name: exit $rc after $((SECONDS - t0)) s"
}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, lightning, timm; print('torch', torch.__version__, 'lightning', lightning.__version__, 'timm', timm.__version__)"
# Decode the data once (cached), outside the timed steps.
step decode 60 python3 -c "from cnnlab.data import cifar10; d = cifar10.load('$CNNLAB_DATA/cifar10-jpg.tar.gz'); print(len(d.train), len(d.test))"
step time_to_94 ${T94_LIMIT:-250} python3 bench/cifar_time_to_acc.py --target 0.94 --seeds ${T94_SEEDS:-0,1,2,3,4}
step speed ${SPEED_LIMIT:-90} python3 bench/cifar_speed.py --images 20000 --epochs 3 --batch-size 512 --repeats 2
step quick_table ${TABLE_LIMIT:-120} python3 -m cnnlab cifar compare --preset quick --runs-dir /tmp/gpu-runs \
  --data.data_dir "$CNNLAB_DATA/cifar10-jpg.tar.gz" --progress false
