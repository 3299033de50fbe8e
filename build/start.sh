#!/usr/bin/env bash
# `npm start`: the whole main job on a fresh machine — install what running
# needs, build dist/bpf-preload.js, populate /sys/fs/bpf, show the result.
set -euo pipefail
cd "$(dirname "$0")/.."
bash build/deps.sh --runtime-only
node build/run.mjs build/bundle.ts >/dev/null
node dist/bpf-preload.js "$@"
echo "read them with cat, at the paths above; node dist/bpf-preload.js status shows what is pinned"
