#!/usr/bin/env bash
# Pack the pinned CUTLASS headers (from the pip package nvidia-cutlass) into .carry/, ignored by git,
# so they can travel to the GPU machine, which has no network. Run once per checkout.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SRC=$(python3 -c "import os, cutlass_library; print(os.path.join(os.path.dirname(cutlass_library.__file__), 'source'))")
mkdir -p "$ROOT/.carry"
tar czf "$ROOT/.carry/cutlass-4.2.0.0-headers.tgz" -C "$SRC" include tools/util/include
ls -la "$ROOT/.carry"
