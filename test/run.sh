#!/usr/bin/env bash
# `npm test`: the whole suite. Installs what is missing, compiles the BPF
# objects, bundles the CLI, runs the tap tests, then the qemu boot test
# (skipped with BPF_PRELOAD_SKIP_BOOT=1). Exits non-zero if either failed.
set -uo pipefail
cd "$(dirname "$0")/.."
bash build/deps.sh || exit 1
node build/run.mjs build/build-bpf.ts --objects-only || exit 1
node build/run.mjs build/bundle.ts >/dev/null || exit 1

# tap compiles TypeScript through ts-node, whose v8-compile-cache writes to
# /tmp by default; keep it beside the other build output instead.
export V8_COMPILE_CACHE_CACHE_DIR="$PWD/node_modules/.cache/v8-compile-cache"
npx tap "$@"
tap_status=$?
boot_status=0
if [ -z "${BPF_PRELOAD_SKIP_BOOT:-}" ] && [ $# = 0 ]; then
	node test/boot/run.mjs
	boot_status=$?
fi
[ $tap_status = 0 ] && [ $boot_status = 0 ]
