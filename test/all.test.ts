// `--all`: every bpffs instance in the mount namespace, each once. The CLI
// runs in a private mount namespace of its own (unshare) with every bpffs
// but this test's unmounted there, so it sees exactly the instances made
// here, whatever else this machine has mounted.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { privateBpffs } from './lib/bpffs.js';
import { sh } from '../harness/command.mjs';
import { CLI, catFile, nodeCommand, runCli, userEnv, type Run } from './lib/cli.js';
import { bpffsInstances } from '../src/preload/mounts.js';
import { PROGS_HEADER } from '../src/preload/names.js';

/** Runs the CLI where the only bpffs mounts are those under `keep`. */
function runAlone(keep: string, args: string[]): Run {
  const others = bpffsInstances(readFileSync('/proc/self/mountinfo', 'utf8'))
    .flatMap((i) => i.mountPoints)
    .filter((p) => !p.startsWith(keep + '/'));
  // $1 is how many mount points follow; the command runs after them.
  const script = 'n=$1; shift; for m in "${@:1:n}"; do umount -l "$m" 2>/dev/null; done; shift "$n"; exec "$@"';
  const cli = nodeCommand(CLI, ...args);
  const r = spawnSync('unshare', ['--mount', '--propagation', 'private', 'bash', '-c', script, 'alone', String(others.length), ...others.reverse(), ...cli], {
    encoding: 'utf8',
    env: userEnv(),
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

t.test('mountinfo: one target per instance, at a mount point showing its root', async (t) => {
  const info = [
    '30 1 0:40 / /sys/fs/bpf rw - bpf bpf rw,mode=700',
    '31 1 0:41 /clean /tmp/x/dir rw - bpf bpf rw',
    '32 1 0:41 / /tmp/x/mnt rw - bpf bpf rw',
    '33 1 0:41 / /tmp/x/again rw - bpf bpf rw',
    '34 1 0:42 /sub /tmp/only\\040sub rw - bpf bpf rw',
    '35 1 0:43 / /tmp/notbpf rw - tmpfs tmpfs rw',
  ].join('\n');
  t.same(bpffsInstances(info), [
    { device: '0:40', mountPoint: '/sys/fs/bpf', mountPoints: ['/sys/fs/bpf'] },
    { device: '0:41', mountPoint: '/tmp/x/mnt', mountPoints: ['/tmp/x/dir', '/tmp/x/mnt', '/tmp/x/again'] },
    { device: '0:42', mountPoint: '/tmp/only sub', mountPoints: ['/tmp/only sub'] },
  ]);
});

t.test('populate, status and unpin --all: each instance once, one failure does not stop the others', async (t) => {
  // Instance A: a fresh mount (with the kernel's unopenable root entries) and a bind mount of its subdirectory.
  const a = privateBpffs(t);
  const tmp = a.tmp;
  // Instance B: mounted twice at its root (fresh, so it too has the kernel's entries and gets preload/).
  const b1 = join(tmp, 'b1');
  const b2 = join(tmp, 'b2');
  // Instance C: read-only, so populating it fails.
  const c = join(tmp, 'c');
  for (const d of [b1, b2, c]) mkdirSync(d);
  sh('mount', ['-t', 'bpf', 'bpf', b1]);
  sh('mount', ['--bind', b1, b2]);
  sh('mount', ['-t', 'bpf', '-o', 'ro', 'bpf', c]);
  t.teardown(() => {
    for (const d of [c, b2, b1]) spawnSync('umount', [d]);
  });

  const r = runAlone(tmp, ['populate', '--all']);
  t.equal(r.code, 1, 'exit 1: one instance failed');
  t.match(r.stderr, new RegExp(`^bpf-preload: [^\\n]*${c}[^\\n]*\\n$`), 'its failure is one line naming it');
  t.comment(`the read-only instance: ${r.stderr.trim()}`);
  t.match(r.stdout, `pinned into ${a.root}/preload/ instead`);
  t.match(r.stdout, `pinned into ${b1}/preload/ instead`);
  t.equal(r.stdout.match(/^pinned /gm)?.length, 4, 'two instances, two files each');
  t.notMatch(r.stdout, b2, 'the second mount of B is not a second target');
  t.notMatch(r.stdout, a.dir, "nor is the bind mount of A's subdirectory");
  for (const dir of [join(a.root, 'preload'), join(b1, 'preload')]) {
    t.ok(catFile(join(dir, 'progs.debug')).startsWith(PROGS_HEADER), `${dir}/progs.debug works`);
  }
  t.ok(catFile(join(b2, 'preload', 'progs.debug')).startsWith(PROGS_HEADER), 'and shows through the second mount');
  t.notOk(existsSync(join(c, 'preload')), 'nothing made on the failed instance');

  const s = runAlone(tmp, ['status', '--all', '--json']);
  t.equal(s.code, 0, s.stderr);
  const st = JSON.parse(s.stdout) as { bpffs: string; files: { state: string }[] }[];
  t.same(
    st.map((x) => x.bpffs),
    [a.root, b1, c],
  );
  t.same(
    st.map((x) => x.files.filter((f) => f.state === 'ours').length),
    [2, 2, 0],
  );

  const u = runAlone(tmp, ['unpin', '--all']);
  t.equal(u.code, 0, u.stderr);
  t.match(u.stdout, `removed ${a.root}/preload/`);
  t.match(u.stdout, `removed ${b1}/preload/`);
  t.match(u.stdout, `${c}/progs.debug: exists but cannot be opened (EROFS): left alone`);
  t.notMatch(u.stdout, `removed ${c}`, 'nothing removed from C');
  t.notOk(existsSync(join(b1, 'preload')), 'preload/ gone from B');
});

t.test('--all with --bpffs is a usage error', async (t) => {
  const r = runCli(['populate', '--all', '--bpffs', '/sys/fs/bpf']);
  t.equal(r.code, 2);
  t.equal(r.stderr, 'bpf-preload: --all and --bpffs exclude each other: give one\n');
});
