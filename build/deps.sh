#!/usr/bin/env bash
# Makes sure what building and testing need is on the machine: the npm
# packages, and clang, llvm, bpftool and libbpf from the distribution (and
# dpkg-dev and lintian, for the Debian package; prometheus, for the exporter's tests). Installs
# what is missing with apt-get when it can (root, Debian/Ubuntu); otherwise
# says exactly what to install. Without options (`npm run deps`) also what
# the test suite needs beyond building: the boot test's host tools (qemu,
# debootstrap, ...) and Debian's Node.js 18, unpacked for the CLI's second
# test pass. With --check it installs nothing: it names what building and
# the tap tests need that is missing and the command that installs it, in
# one line, and fails (npm test runs it so). Usage: build/deps.sh [--runtime-only | --check]
set -euo pipefail
cd "$(dirname "$0")/.."

runtime_only=0 check=0
[ "${1:-}" = "--runtime-only" ] && runtime_only=1
[ "${1:-}" = "--check" ] && check=1

if [ ! -d node_modules/koffi ] || { [ $runtime_only = 0 ] && [ ! -d node_modules/tap ]; }; then
	if [ $check = 1 ]; then
		echo "bpf-preload: the npm packages are not installed: run npm run deps (or npm ci)" >&2
		exit 1
	fi
	echo "bpf-preload: installing npm packages (npm ci)" >&2
	npm ci --no-audit --no-fund --loglevel=error >&2
fi

missing=()
# grep reads to the end: with -q it would exit early and, through pipefail,
# turn ldconfig's SIGPIPE into "missing".
have_lib() { ldconfig -p 2>/dev/null | grep "$1" >/dev/null; }
have_lib 'libbpf.so.1 ' || missing+=(libbpf1)
if [ $runtime_only = 0 ]; then
	command -v clang >/dev/null || missing+=(clang)
	command -v llvm-strip >/dev/null || missing+=(llvm)
	command -v bpftool >/dev/null || missing+=(bpftool)
	[ -f /usr/include/bpf/bpf_helpers.h ] || missing+=(libbpf-dev)
	# The Debian package: building it (npm run package) and its tests.
	command -v dpkg-shlibdeps >/dev/null || missing+=(dpkg-dev)
	command -v lintian >/dev/null || missing+=(lintian)
	# The exporter's tests: a real Prometheus scrapes it, promtool checks its output.
	command -v prometheus >/dev/null && command -v promtool >/dev/null || missing+=(prometheus)
fi
if [ ${#missing[@]} != 0 ]; then
	if [ $check = 1 ]; then
		echo "bpf-preload: missing ${missing[*]}: run npm run deps as root (it runs apt-get install ${missing[*]})" >&2
		exit 1
	fi
	if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
		echo "bpf-preload: missing ${missing[*]}: install them as root (apt-get install ${missing[*]})" >&2
		exit 1
	fi
	echo "bpf-preload: installing ${missing[*]} (apt-get)" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# The rest of what the whole npm test needs: where it is missing, the boot
# test and the node 18 pass (test/run.sh) each say so in one line.
if [ $check = 0 ] && [ $runtime_only = 0 ]; then
	node test/boot/run.mjs --install-host-tools
	bash test/node18/install.sh >/dev/null
fi
