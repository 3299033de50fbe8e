#!/usr/bin/env bash
# Puts Debian 12's own Node.js 18 (nodejs and libnode108 from the archive, and
# what libnode108 needs that this machine lacks: the node-* packages whose
# files it loads from /usr/share/nodejs, libc-ares2) under
# node_modules/.cache/debian-node18/root, unpacked with dpkg-deb, not
# installed: the machine's own node and dpkg database stay as they are.
# Prints the path of the wrapper that runs it (test/node18/node). With
# --check it unpacks nothing (npm test: `npm run deps` does the unpacking) and
# fails, naming the command, if it is not there yet.
set -euo pipefail
cd "$(dirname "$0")/../.."
dest=node_modules/.cache/debian-node18
root=$dest/root
wrapper=$PWD/test/node18/node

if [ -e "$root/.complete" ]; then
	echo "$wrapper"
	exit 0
fi
if [ "${1:-}" = --check ]; then
	echo "debian-node18: Debian's Node.js 18 is not unpacked in $dest: run npm run deps" >&2
	exit 1
fi

newest18() { apt-cache madison nodejs 2>/dev/null | awk -F'|' '{gsub(/ /, "", $2)} $2 ~ /^18\./ {print $2}' | sort -V | tail -n 1; }
version=$(newest18)
if [ -z "$version" ]; then
	apt-get update -qq >&2
	version=$(newest18)
fi
[ -n "$version" ] || { echo "debian-node18: no nodejs 18 in this machine's apt sources (Debian 12 has it)" >&2; exit 1; }

# libnode108's dependencies that are not installed here (first alternative of each).
missing=()
deps=$(apt-cache show "libnode108=$version" | sed -n 's/^Depends: //p' | head -n 1)
IFS=',' read -ra items <<<"$deps"
for item in "${items[@]}"; do
	name=$(echo "$item" | sed 's/|.*//; s/(.*)//; s/ //g')
	dpkg-query -W -f='${Status}' "$name" 2>/dev/null | grep -q 'install ok installed' || missing+=("$name")
done

rm -rf "$dest"
mkdir -p "$dest/debs"
echo "debian-node18: downloading nodejs $version ${missing[*]}" >&2
(cd "$dest/debs" && apt-get download -qq -o APT::Sandbox::User=root "nodejs=$version" "libnode108=$version" "${missing[@]}" >&2)
for deb in "$dest"/debs/*.deb; do dpkg-deb -x "$deb" "$root"; done
rm -rf "$dest/debs"
echo "$version" >"$root/.complete"
echo "$wrapper"
