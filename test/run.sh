#!/usr/bin/env bash
# `npm test`: the whole suite. Checks that what it needs is installed
# (installing is `npm run deps`'s job: this never runs apt-get), compiles the
# BPF objects, bundles the CLI, compiles the library (dist/libbpf) and the
# examples (dist/examples), type-checks, lints and checks the formatting of
# every file (`npm run check`), runs the tap tests, the CLI's tap tests again
# on Debian's Node.js 18, fails if the tests left a bpffs mounted or one of
# their /tmp entries behind, then the qemu boot test (skipped with
# BPF_PRELOAD_SKIP_BOOT=1). With arguments (`npm test -- test/x.test.ts`)
# only those tap files, on this node (or BPF_PRELOAD_TEST_NODE's). Exits
# non-zero if anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
bash build/deps.sh --check || exit 1
node build/run.mjs build/build-bpf.ts --objects-only || exit 1
node build/run.mjs build/bundle.ts >/dev/null || exit 1
node build/run.mjs build/library.ts >/dev/null || exit 1
node build/run.mjs build/examples.ts >/dev/null || exit 1

# Before any tap test, so that a type error, a floating promise or a
# misformatted line fails in seconds: what each tool reported, then one line
# naming the step. After the build, because the examples are type-checked
# against dist/libbpf as another project would be. Only on the whole run:
# `npm test -- test/x.test.ts` is the edit-and-rerun loop (`npm run check`
# alone does this part).
if [ $# = 0 ]; then
	for step in typecheck lint format:check; do
		if ! out=$(npm run -s "$step" 2>&1); then
			echo "$out"
			fix=
			[ "$step" = format:check ] && fix=' (npm run format rewrites the files)'
			echo "# not ok: npm run $step failed: fix what it reported above$fix"
			exit 1
		fi
	done
	echo "# ok: type-check, lint and format check (npm run check)"
fi

# What the tests leave behind fails the run (every test cleans up after
# itself): entries in /tmp by the names our tests and tools give them, and
# bpffs mounts, that were not there before the tap runs.
leftovers() {
	ls -A /tmp | grep -E '^(bpfpreload|bpf-preload|libbpf|exectrace|v8-compile-cache)' | sed 's|^|/tmp/|'
	findmnt -rn -t bpf -o TARGET
}
before=$(leftovers | sort)

# tap compiles TypeScript through ts-node, whose v8-compile-cache writes to
# /tmp by default; keep it beside the other build output instead.
export V8_COMPILE_CACHE_CACHE_DIR="$PWD/node_modules/.cache/v8-compile-cache"
npx tap "$@"
tap_status=$?

# The tests that run the built CLI (every file that imports test/lib/cli.ts)
# once more, the CLI running on Debian 12's own Node.js 18: the oldest we
# support, as distributions ship it. Not the files that kill or fail a run
# at a system call (those that import test/lib/strace.ts): their traced
# runs are this node's, since the node 18 wrapper's own system calls (its
# mount namespace) would move the steps they count.
node18_status=0
if [ $# = 0 ]; then
	if node18=$(bash test/node18/install.sh --check); then
		echo "# the CLI tests again, on Debian's Node.js 18 ($node18)"
		BPF_PRELOAD_TEST_NODE=$node18 npx tap $(grep -l "from './lib/cli.js'" test/*.test.ts | xargs grep -L "from './lib/strace.js'")
		node18_status=$?
	else
		echo "# not ok: Debian's Node.js 18 is not unpacked: run npm run deps"
		node18_status=1
	fi
fi

left=$(comm -13 <(echo "$before") <(leftovers | sort))
leftover_status=0
if [ -n "$left" ]; then
	echo "# not ok: the tests left behind (remove them, and fix the test that made them): $(echo $left)"
	leftover_status=1
fi

boot_status=0
if [ -z "${BPF_PRELOAD_SKIP_BOOT:-}" ] && [ $# = 0 ]; then
	node test/boot/run.mjs
	boot_status=$?
fi
[ $tap_status = 0 ] && [ $node18_status = 0 ] && [ $leftover_status = 0 ] && [ $boot_status = 0 ]
