#!/usr/bin/env bash
# `npm start`: the whole main job on a fresh machine — install what running
# needs, build dist/bpf-preload.js, populate /sys/fs/bpf, show the result.
set -euo pipefail
cd "$(dirname "$0")/.."
bash build/deps.sh --runtime-only
node build/run.mjs build/bundle.ts >/dev/null
status=0
out=$(node dist/bpf-preload.js "$@") || status=$?
[ -z "$out" ] || echo "$out"
[ "$status" = 0 ] || exit "$status"
progs=$(echo "$out" | sed -n 's/^pinned \(.*progs\.debug\) (.*/\1/p')
maps=$(echo "$out" | sed -n 's/^pinned \(.*maps\.debug\) (.*/\1/p')
if [ -n "$progs" ]; then
	echo "read them with: cat $progs; cat $maps"
fi
echo "what is pinned: node dist/bpf-preload.js status"
