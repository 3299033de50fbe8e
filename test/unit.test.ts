// install-unit and uninstall-unit: each touches only a unit install-unit
// wrote (recognised by the first line only install-unit writes, not by any
// mention of bpf-preload); install-unit refuses a node or CLI that a user
// other than root could change; the unit's command lines are what systemd
// parses back to the paths given (systemd-analyze verify, and the words read
// back by systemd.syntax's rules); ProtectHome= lets a node under /root run.
import t from 'tap';
import type { Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { UNIT_DIR, UNIT_NAME, installUnit, renderUnit, uninstallUnit } from '../src/cli/unit.js';

const NOBODY = 65534;

/** A root file system for `systemctl --root`, under a temp directory the test removes. */
function tempRoot(t: Test): string {
  const root = mkdtempSync('/tmp/bpfpreloadunit');
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  mkdirSync(join(root, UNIT_DIR), { recursive: true });
  return root;
}

/** A file at `path` under `root` (directories made 0755, owned by root), executable. */
function file(root: string, path: string): string {
  mkdirSync(dirname(join(root, path)), { recursive: true, mode: 0o755 });
  writeFileSync(join(root, path), '', { mode: 0o755 });
  return path;
}

const CLI = '/opt/bpf-preload/dist/bpf-preload.js';
const NODE = '/usr/bin/node';

t.test('uninstall-unit removes its own unit and leaves others alone', async (t) => {
  const root = tempRoot(t);
  const path = join(root, UNIT_DIR, UNIT_NAME);
  file(root, CLI);
  file(root, NODE);

  const packaged = renderUnit('/usr/lib/bpf-preload/bpf-preload.mjs', NODE, 'package');
  for (const [what, text] of [
    ['a unit of the package, moved here by hand', packaged],
    ['a hand-written unit running bpf-preload', '[Service]\nExecStart=/usr/bin/bpf-preload populate\n'],
  ]) {
    writeFileSync(path, text);
    t.throws(() => uninstallUnit({ root, now: false }), { message: `${path} was not written by bpf-preload install-unit: left alone` }, what);
    t.equal(readFileSync(path, 'utf8'), text, `${what}: still there`);
  }
  rmSync(path);

  installUnit({ root, cliPath: CLI, nodePath: NODE, now: false });
  t.ok(existsSync(path), 'install-unit wrote it');
  t.equal(uninstallUnit({ root, now: false }), `removed ${path}`);
  t.notOk(existsSync(path), 'and uninstall-unit removed it');
  t.equal(uninstallUnit({ root, now: false }), `${path} is not installed: nothing to do`);
});

t.test('install-unit does not overwrite a unit it did not write', async (t) => {
  const root = tempRoot(t);
  const path = join(root, UNIT_DIR, UNIT_NAME);
  file(root, CLI);
  file(root, NODE);
  const refusal = `${path} exists and was not written by bpf-preload install-unit: left alone; move it away first to install bpf-preload's`;

  const admins = '[Service]\nExecStart=/usr/local/sbin/our-own-preload\n';
  writeFileSync(path, admins);
  t.throws(() => installUnit({ root, cliPath: CLI, nodePath: NODE, now: false }), { message: refusal }, "an administrator's own unit");
  t.equal(readFileSync(path, 'utf8'), admins, 'is left as it was');

  // a link to a unit elsewhere, even one whose text install-unit wrote: the link is not ours
  rmSync(path);
  const elsewhere = join(root, 'elsewhere.service');
  writeFileSync(elsewhere, renderUnit(CLI, NODE));
  symlinkSync(elsewhere, path);
  t.throws(() => installUnit({ root, cliPath: CLI, nodePath: NODE, now: false }), { message: refusal }, 'a symlink');
  t.equal(readFileSync(elsewhere, 'utf8'), renderUnit(CLI, NODE), 'the file it points at is left as it was');
  rmSync(path);

  installUnit({ root, cliPath: CLI, nodePath: NODE, now: false });
  installUnit({ root, cliPath: file(root, '/opt/bpf-preload/other.js'), nodePath: NODE, now: false });
  t.match(readFileSync(path, 'utf8'), /^ExecStart=\/usr\/bin\/node \/opt\/bpf-preload\/other\.js populate$/m, 'its own unit it replaces');
});

t.test('install-unit refuses a node or CLI that users other than root can change', async (t) => {
  const root = tempRoot(t);
  file(root, CLI);
  file(root, NODE);
  const install =
    (nodePath: string, cliPath = CLI) =>
    () =>
      installUnit({ root, cliPath, nodePath, now: false });
  const path = join(root, UNIT_DIR, UNIT_NAME);
  const tail =
    ', so that user could change what the unit runs as root at boot: install it where only root can write, or make root own every directory on the way (not group- or world-writable)';

  const owned = file(root, '/home/someone/.nvm/node');
  chownSync(join(root, '/home/someone'), NOBODY, NOBODY);
  t.throws(install(owned), { message: `node ${join(root, owned)}: ${join(root, '/home/someone')} belongs to uid ${NOBODY}${tail}` }, 'a directory a user owns');

  const open = file(root, '/srv/open/node');
  chmodSync(join(root, '/srv/open'), 0o777);
  t.throws(install(open), { message: `node ${join(root, open)}: ${join(root, '/srv/open')} is writable by every user${tail}` }, 'a world-writable directory');

  const group = file(root, '/srv/group/bpf-preload.js');
  chownSync(join(root, '/srv/group'), 0, NOBODY);
  chmodSync(join(root, '/srv/group'), 0o775);
  t.throws(
    install(NODE, group),
    { message: `the CLI ${join(root, group)}: ${join(root, '/srv/group')} is writable by group ${NOBODY}${tail}` },
    'a group-writable directory',
  );

  const writable = file(root, '/srv/file/node');
  chmodSync(join(root, writable), 0o757);
  t.throws(install(writable), { message: `node ${join(root, writable)}: ${join(root, writable)} is writable by every user${tail}` }, 'a world-writable file');

  // a root-owned path that links to a node nobody owns
  const target = file(root, '/home/nobody/node');
  chownSync(join(root, target), NOBODY, NOBODY);
  mkdirSync(join(root, '/usr/local/bin'), { recursive: true });
  symlinkSync(join(root, target), join(root, '/usr/local/bin/node'));
  t.throws(
    install('/usr/local/bin/node'),
    { message: `node ${join(root, '/usr/local/bin/node')}: ${join(root, target)} belongs to uid ${NOBODY}${tail}` },
    'through a symlink',
  );

  // a chain of links whose middle one lies in a directory anyone can write (as /etc/alternatives would be)
  const real = file(root, '/opt/node/bin/node');
  mkdirSync(join(root, '/etc/alternatives'), { recursive: true, mode: 0o777 });
  chmodSync(join(root, '/etc/alternatives'), 0o777);
  symlinkSync(join(root, real), join(root, '/etc/alternatives/node'));
  symlinkSync('../../../etc/alternatives/node', join(root, '/usr/local/bin/nodejs'));
  t.throws(
    install('/usr/local/bin/nodejs'),
    { message: `node ${join(root, '/usr/local/bin/nodejs')}: ${join(root, '/etc/alternatives')} is writable by every user${tail}` },
    'the middle of a chain of symlinks',
  );

  t.throws(install('/usr/bin/nodejs'), { message: `node ${join(root, '/usr/bin/nodejs')}: ENOENT` }, 'a node that is not there');
  t.notOk(existsSync(path), 'no unit written by any of them');

  // a sticky world-writable directory (as /tmp): others cannot rename what root owns in it
  const sticky = file(root, '/srv/sticky/bin/node');
  chmodSync(join(root, '/srv/sticky'), 0o1777);
  installUnit({ root, cliPath: CLI, nodePath: sticky, now: false });
  t.ok(existsSync(path), 'a root-owned node below a sticky directory is fine');
});

/**
 * An ExecStart= line's words as systemd reads them back (systemd.syntax
 * "Quoting", systemd.service "Command lines"): quotes removed, C escapes
 * decoded, %% is %, and in the arguments (not the program) $$ is $. Any
 * other % or $ fails the test: it would be a specifier or a variable.
 */
function execWords(line: string): string[] {
  const escapes: Record<string, string> = { a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\\': '\\', '"': '"', "'": "'", s: ' ' };
  const words: string[] = [];
  let i = 0;
  while (i < line.length) {
    if (/\s/.test(line[i])) {
      i++;
      continue;
    }
    const quote = line[i] === '"' || line[i] === "'" ? line[i++] : '';
    let word = '';
    for (; i < line.length && (quote ? line[i] !== quote : !/\s/.test(line[i])); i++) {
      if (line[i] !== '\\') word += line[i];
      else if (line[++i] in escapes) word += escapes[line[i]];
      else throw new Error(`unknown escape \\${line[i]}`);
    }
    if (quote && line[i++] !== quote) throw new Error('unbalanced quote');
    const specifiers = word.replace(/%%/g, '');
    if (specifiers.includes('%')) throw new Error(`a specifier in ${word}`);
    word = word.replace(/%%/g, '%');
    if (words.length > 0) {
      if (word.replace(/\$\$/g, '').includes('$')) throw new Error(`a variable in ${word}`);
      word = word.replace(/\$\$/g, '$');
    }
    words.push(word);
  }
  return words;
}

/** systemd-analyze verify on a unit file: its exit code and what it printed. */
function verify(unitFile: string) {
  const r = spawnSync('systemd-analyze', ['verify', unitFile], { encoding: 'utf8' });
  return { code: r.status, output: `${r.stdout}${r.stderr}`.trim() };
}

t.test('paths with $, %, spaces, quotes and backslashes: systemd reads back the same paths', async (t) => {
  const haveVerify = spawnSync('systemd-analyze', ['--version']).status === 0;
  const dir = mkdtempSync('/tmp/bpfpreloadunit');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const unitFile = join(dir, UNIT_NAME);

  // the program's path: systemd-analyze verify checks that it is there and executable
  const node = join(dir, 'node $HOME ${X} 100%n ;', 'node');
  mkdirSync(dirname(node));
  symlinkSync(process.execPath, node);
  const cli = join(dir, `it's "$HOME" %n \\ $$ ; x`, 'bpf-preload.js');
  const text = renderUnit(cli, node);
  const lines = text.split('\n');
  for (const directive of ['ExecStart', 'ExecStop', 'ExecReload']) {
    const line = lines.find((l) => l.startsWith(`${directive}=`)) ?? '';
    t.same(
      execWords(line.slice(directive.length + 1)),
      [node, cli, directive === 'ExecStop' ? 'unpin' : 'populate'],
      `${directive} reads back as the paths given`,
    );
  }
  if (haveVerify) {
    writeFileSync(unitFile, text);
    t.same(verify(unitFile), { code: 0, output: '' }, 'systemd-analyze verify accepts it, and finds the program at its path');
  } else {
    t.comment('systemd-analyze is not installed: the unit is not verified by systemd');
  }

  // systemd itself refuses quotes and backslashes in the program's path, so install-unit says so
  for (const name of [`o'brien`, 'say "hi"', 'back\\slash']) {
    const odd = join(dir, name, 'node');
    t.throws(
      () => renderUnit(cli, odd),
      {
        message: `${JSON.stringify(odd)} has a quote or backslash, which systemd does not allow in the program a unit runs: install node at a plain path`,
      },
      `refused: ${name}`,
    );
    if (!haveVerify) continue;
    mkdirSync(dirname(odd));
    symlinkSync(process.execPath, odd);
    writeFileSync(unitFile, `[Service]\nType=oneshot\nExecStart="${odd.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}" x\n`);
    const v = verify(unitFile);
    t.equal(v.code, 1, `systemd refuses it too: ${name}`);
    t.match(v.output, 'Executable name contains special characters');
  }
  t.throws(() => renderUnit(join(dir, 'new\nline.js'), node), {
    message: /^"[^"]*new\\nline\.js" has a control character, which systemd does not allow in a command line: install it at a plain path$/,
  });
});

t.test('ProtectHome: hidden, unless node or the CLI lives under /home, /root or /run/user', async (t) => {
  const protectHome = (text: string) => text.split('\n').filter((l) => l.startsWith('ProtectHome='));
  t.same(protectHome(renderUnit(CLI, NODE)), ['ProtectHome=yes']);
  const nvm = '/root/.nvm/versions/node/v20.19.0/bin/node';
  const unit = renderUnit('/root/.nvm/versions/node/v20.19.0/lib/node_modules/bpf-preload/dist/bpf-preload.js', nvm);
  t.same(protectHome(unit), ['ProtectHome=read-only'], 'a node from nvm under /root');
  t.match(
    unit,
    '# node or the CLI lives under /home, /root, /run/user: read-only, not hidden,\n# or the service could not start.\nProtectHome=read-only\n',
    'and the unit says why',
  );
  t.same(protectHome(renderUnit('/home/admin/bpf-preload/dist/bpf-preload.js', NODE)), ['ProtectHome=read-only'], 'a CLI under /home');
  t.same(protectHome(renderUnit('/homework/bpf-preload.js', NODE)), ['ProtectHome=yes'], '/homework is not /home');
});
