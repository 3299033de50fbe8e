// The boot harness's own error messages: a failed install step names what the
// tool said (apt's unmet dependency and its E: line), not only the command
// and its exit code, so a one-line FAIL in the boot test says what to fix.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const work = mkdtempSync(join(tmpdir(), 'bpf-preload-harness-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));

/** Runs `code` (an ES module) with the harness's util.mjs imported as `util`, its cache in `work`. */
function withUtil(code: string): string {
  const r = spawnSync(
    process.execPath,
    ['--input-type=module', '-e', `import * as util from ${JSON.stringify(join(process.cwd(), 'test/boot/lib/util.mjs'))};\n${code}`],
    { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '', BPF_PRELOAD_BOOT_CACHE: join(work, 'cache') } },
  );
  if (r.status !== 0) throw new Error(`node exited ${r.status}: ${r.stderr}`);
  return r.stdout.trim();
}

t.test("apt's unmet dependency is in the one-line error of a failed install", async (t) => {
  const pkg = join(work, 'probe');
  mkdirSync(join(pkg, 'DEBIAN'), { recursive: true });
  writeFileSync(
    join(pkg, 'DEBIAN/control'),
    'Package: bpf-preload-harness-probe\nVersion: 1\nArchitecture: all\nMaintainer: probe <probe@example.org>\nDepends: bpf-preload-no-such-package\nDescription: probe\n probe\n',
  );
  const deb = join(work, 'probe.deb');
  t.equal(spawnSync('dpkg-deb', ['--build', pkg, deb]).status, 0, 'probe package built');
  // -s: apt only simulates; nothing on this machine changes.
  for (const call of ['util.sh', 'await util.shAsync']) {
    const message = withUtil(
      `try { ${call}('bash', ['-c', 'apt-get install -s "$0"', ${JSON.stringify(deb)}]); console.log('no error'); } catch (err) { console.log(err.message); }`,
    );
    t.equal(message.split('\n').length, 1, `${call}: one line`);
    t.match(message, /^bash -c SCRIPT exited 100: /, `${call}: the command, shortly, and its exit code`);
    t.match(message, /bpf-preload-harness-probe : Depends: bpf-preload-no-such-package but it is not installable/, `${call}: the unmet dependency`);
    t.match(message, /E: Unable to correct problems/, `${call}: apt's E: line`);
  }
});

t.test('a tool that prints no error lines: its last line', async (t) => {
  const message = withUtil(`try { util.sh('sh', ['-c', 'echo first; echo the last words; exit 3']); } catch (err) { console.log(err.message); }`);
  t.equal(message, 'sh -c SCRIPT exited 3: the last words');
});
