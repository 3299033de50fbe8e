// uninstall-unit removes only a unit install-unit wrote: it recognises the
// first line only install-unit writes, not any mention of bpf-preload.
import t from 'tap';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UNIT_DIR, UNIT_NAME, installUnit, renderUnit, uninstallUnit } from '../src/unit.js';

t.test('uninstall-unit removes its own unit and leaves others alone', async (t) => {
  const root = mkdtempSync('/tmp/bpfpreloadunit');
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const path = join(root, UNIT_DIR, UNIT_NAME);
  mkdirSync(join(root, UNIT_DIR), { recursive: true });

  const packaged = renderUnit('/usr/lib/bpf-preload/bpf-preload.mjs', '/usr/bin/node', 'package');
  for (const [what, text] of [
    ['a unit of the package, moved here by hand', packaged],
    ['a hand-written unit running bpf-preload', '[Service]\nExecStart=/usr/bin/bpf-preload populate\n'],
  ]) {
    writeFileSync(path, text);
    t.throws(() => uninstallUnit({ root, now: false }), { message: `${path} was not written by bpf-preload install-unit: left alone` }, what);
    t.equal(readFileSync(path, 'utf8'), text, `${what}: still there`);
  }
  rmSync(path);

  installUnit({ root, cliPath: '/opt/bpf-preload/dist/bpf-preload.js', nodePath: '/usr/bin/node', now: false });
  t.ok(existsSync(path), 'install-unit wrote it');
  t.equal(uninstallUnit({ root, now: false }), `removed ${path}`);
  t.notOk(existsSync(path), 'and uninstall-unit removed it');
  t.equal(uninstallUnit({ root, now: false }), `${path} is not installed: nothing to do`);
});
