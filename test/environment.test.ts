// How the runner meets its surroundings: the Node.js it runs on, the default
// /sys/fs/bpf with nothing mounted, an unprivileged caller, a machine without
// libbpf. Each runs in a
// private mount namespace (unshare -m), so the host's mounts stay untouched
// and everything made there disappears with the namespace.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { chmodSync, readFileSync } from 'node:fs';
import { OLDEST_NODE } from '../build/bundle-options.js';
import { privateBpffs } from './lib/bpffs.js';
import { CLI, NODE, nodeVersion, runCli, userEnv } from './lib/cli.js';
import { run, type CommandResult } from '../harness/command.mjs';

function inNamespace(script: string): CommandResult {
  return run('unshare', ['-m', '--propagation', 'private', 'env', '-u', 'NODE_OPTIONS', 'sh', '-ec', script], { env: userEnv({ NODE, CLI }) });
}

/** Whether version a.b.c is at least x.y.z (missing parts are 0). */
function atLeast(version: string, oldest: string): boolean {
  const a = version.split('.').map(Number);
  const b = oldest.split('.').map(Number);
  for (let i = 0; i < 3; i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) > (b[i] ?? 0);
  return true;
}

const version = nodeVersion();
t.test(`runs on Node.js ${version} (${NODE}), which package.json's engines allows`, async (t) => {
  t.ok(atLeast(version, OLDEST_NODE), `${version} >= ${OLDEST_NODE}`);
  const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
  const r = runCli(['--version']);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, `bpf-preload ${pkg.version}\n`);
  t.equal(r.stderr, '');
});

t.test('default location: mounts a bpffs at /sys/fs/bpf (mode 0700) when none is there', async (t) => {
  const r = inNamespace(`
    if mountpoint -q /sys/fs/bpf; then umount /sys/fs/bpf; fi
    # A node that runs in a mount namespace of its own (test/node18/node)
    # mounts into this one only through a shared /sys (shared within this
    # private namespace: nothing reaches the host).
    mount --make-rshared /sys
    "$NODE" "$CLI"
    echo "mode=$(stat -c %a /sys/fs/bpf) fs=$(stat -f -c %T /sys/fs/bpf)"
    for f in /sys/fs/bpf/progs.debug /sys/fs/bpf/preload/progs.debug; do
      if cat "$f" >/dev/null 2>&1; then echo "first=$(cat "$f" | sed -n 1p)"; fi
    done
  `);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /mode=1?700 fs=bpf_fs/, 'mounted with mode 0700 (bpffs keeps the sticky bit)');
  t.match(r.stdout, /pinned \/sys\/fs\/bpf\/(preload\/)?progs\.debug/);
  t.match(r.stdout, 'first=  id name             attached');
});

t.test('an unprivileged user gets one line saying what it needs', async (t) => {
  const { dir, tmp } = privateBpffs(t);
  chmodSync(tmp, 0o755);
  chmodSync(dir, 0o777);
  const r = runCli(['--bpffs', dir], {}, 65534);
  t.equal(r.code, 1);
  t.equal(r.stdout, '');
  t.equal(r.stderr.split('\n').length, 2, 'one line');
  t.match(r.stderr, /^bpf-preload: .*needs root, or CAP_BPF \+ CAP_PERFMON/);
});

t.test('without libbpf.so.1: one line saying how to install it, exit 1', async (t) => {
  const lib = spawnSync('sh', ['-c', "ldconfig -p | awk '/libbpf\\.so\\.1 /{print $NF; exit}'"], { encoding: 'utf8' }).stdout.trim();
  t.ok(lib, `found ${lib}`);
  const r = inNamespace(`mount --bind /dev/null "$(readlink -f ${lib})"; "$NODE" "$CLI" --bpffs /nonexistent-bpffs-dir`);
  t.equal(r.code, 1);
  t.equal(
    r.stderr,
    'bpf-preload: /nonexistent-bpffs-dir does not exist: create it on a bpffs, or mount one (mount -t bpf bpf /nonexistent-bpffs-dir)\n',
    'argument checks come first',
  );
  const { dir } = privateBpffs(t);
  const s = inNamespace(`mount --bind /dev/null "$(readlink -f ${lib})"; "$NODE" "$CLI" --bpffs ${dir}`);
  t.equal(s.code, 1);
  t.equal(s.stderr, 'bpf-preload: libbpf.so.1 not found or not loadable: install libbpf ≥ 1.0 (apt-get install libbpf1, dnf install libbpf)\n');
});
