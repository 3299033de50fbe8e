# Names what failed in `npm test`'s output, one line each, so that the end of
# CI's output (often all that is kept of it) says which test to look at.
#   tap (TAP 14, four spaces a level): each failed point as
#     "file > subtest > point"; a failed subtest or file whose points all
#     passed (a timeout, a crash, a plan mismatch) as itself.
#   the boot test: its own "  FAIL guest check: why" lines.
#   test/run.sh's own "# not ok: ..." lines (a check step, leftovers).
function level(s) { match(s, /^ */); return RLENGTH / 4 }
function mark(p,   parts, n, i, q) {
	n = split(p, parts, " > ")
	q = parts[1]; shown[q] = 1
	for (i = 2; i <= n; i++) { q = q " > " parts[i]; shown[q] = 1 }
}
/^# the CLI tests again, on Debian's Node\.js 18/ { run = " (on Node.js 18)"; delete shown }
/^ *# Subtest: / {
	d = level($0); s = $0; sub(/^ *# Subtest: /, "", s); name[d] = s; next
}
/^ *not ok [0-9]+ - / {
	d = level($0); point = $0
	sub(/^ *not ok [0-9]+ - /, "", point); sub(/ # time=[0-9.]+m?s$/, "", point)
	path = ""
	for (i = 0; i < d; i++) path = path name[i] " > "
	if (point == name[d] && (path point) in shown) next
	print "  not ok: " path point run; mark(path point)
	next
}
/^  FAIL / { print "  boot:" substr($0, 7) }
/^# not ok: / { print "  " substr($0, 3) }
