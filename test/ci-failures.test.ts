// .ci/failures.awk, which names what failed at the end of CI's output (all
// that CI keeps of it), run on what tap itself prints for a file that fails
// in each way a file can: a nested point, a top-level point, and a crash
// with no failed point at all; and on the boot test's FAIL lines.
import t, { type Test } from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

// tap runs every test file from the repository's root.
const repo = process.cwd();

function failures(output: string): string[] {
  return execFileSync('awk', ['-f', join(repo, '.ci/failures.awk')], { input: output, encoding: 'utf8' })
    .split('\n')
    .filter(Boolean);
}

// Runs tap, as `npm test` runs it under CI=true (the TAP reporter), on files
// made here; returns what it printed. tap runs in their directory, which it
// takes for the project (its results stay in there, not in this repository),
// with this repository's node_modules linked in.
function tapOutput(t: Test, files: Record<string, string>): string {
  const dir = mkdtempSync('/tmp/bpfpreloadcifail');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  symlinkSync(join(repo, 'node_modules'), join(dir, 'node_modules'));
  for (const [name, body] of Object.entries(files)) writeFileSync(join(dir, name), `import t from 'tap';\n${body}\n`);
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TAP')));
  const r = spawnSync(join(repo, 'node_modules/.bin/tap'), ['--reporter=tap', '--disable-coverage', '--jobs=1', ...Object.keys(files)], {
    cwd: dir,
    env,
    encoding: 'utf8',
  });
  t.not(r.status, 0, 'tap itself failed');
  return r.stdout;
}

t.test('each failed point by file and subtest; a crashed file by itself; passes not named', async (t) => {
  const out = tapOutput(t, {
    'nested.test.mjs': `
t.test('outer', async (t) => {
  t.test('inner', async (t) => { t.ok(true, 'a point that passes'); t.equal(1, 2, 'one is two'); });
  t.ok(true, 'another that passes');
});
t.ok(false, 'a top-level point');`,
    'crash.test.mjs': `t.ok(true, 'passes before the crash'); process.exit(3);`,
    'fine.test.mjs': `t.ok(true, 'all well');`,
  });
  t.same(failures(out), [
    '  not ok: crash.test.mjs',
    '  not ok: nested.test.mjs > outer > inner > one is two',
    '  not ok: nested.test.mjs > a top-level point',
  ]);
});

t.test("the second tap run's failures are marked as Node.js 18's; test/run.sh's own; the boot test's FAIL lines", async (t) => {
  const text =
    '# Subtest: test/a.test.ts\n    not ok 1 - first\nnot ok 1 - test/a.test.ts # time=1ms\n' +
    "# the CLI tests again, on Debian's Node.js 18 (/x/node)\n" +
    '# Subtest: test/a.test.ts\n    not ok 1 - first\nnot ok 1 - test/a.test.ts # time=1ms\n' +
    '# not ok: the tests left behind (remove them, and fix the test that made them): /tmp/bpfpreloadpackXYZ\n' +
    '  PASS 6.1 kernel-btf\n  FAIL 6.1 cat-progs.debug: empty\n';
  t.same(failures(text), [
    '  not ok: test/a.test.ts > first',
    '  not ok: test/a.test.ts > first (on Node.js 18)',
    '  not ok: the tests left behind (remove them, and fix the test that made them): /tmp/bpfpreloadpackXYZ',
    '  boot: 6.1 cat-progs.debug: empty',
  ]);
  t.same(failures('# Subtest: test/a.test.ts\n    ok 1 - fine\nok 1 - test/a.test.ts\n'), [], 'nothing failed, nothing named');
});
