// The bindings against the real libbpf.so.1 and kernel: errors carry errno
// names and libbpf's own lines, a failed load carries the verifier's log,
// and what we load is released.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { BpfObject, ErrnoError, LibbpfError, SysError, errnoName, libbpfVersion, objGet, progFdById, progIds, progInfo, withFd } from '../src/libbpf/index.js';
import { fixture } from './lib/fixtures.js';
import { eventually } from './lib/kernel.js';

t.test('libbpf.so.1 is at least 1.0', async (t) => {
  t.match(libbpfVersion(), /^1\.\d+$/);
});

t.test('errno names', async (t) => {
  t.equal(errnoName(2), 'ENOENT');
  t.equal(errnoName(-1), 'EPERM');
  t.equal(errnoName(4001), 'LIBBPF_ERRNO__FORMAT');
});

t.test('a failed bpf(2) call on a path or fd is a SysError naming the operation and errno', async (t) => {
  const err = t.throws(() => objGet('/sys/fs/bpf/no/such/pin')) as SysError;
  t.type(err, SysError);
  t.notOk(err instanceof LibbpfError, 'not a LibbpfError: no libbpf object was involved');
  t.type(err, ErrnoError);
  t.equal(err.syscall, 'bpf');
  t.equal(err.code, 'ENOENT');
  t.equal(err.errno, 2);
  t.equal(err.message, 'open pinned object /sys/fs/bpf/no/such/pin: ENOENT (no such file or directory)');
});

t.test('a verifier rejection carries the verifier log', async (t) => {
  const obj = BpfObject.openMem(readFileSync(fixture('invalid')), { name: 'invalid' });
  t.teardown(() => obj.close());
  const err = t.throws(() => obj.load()) as LibbpfError;
  t.type(err, LibbpfError);
  t.equal(err.code, 'EACCES');
  t.match(err.message, /^load BPF object invalid: EACCES/);
  t.ok(
    err.log.some((l) => l.includes('-- BEGIN PROG LOAD LOG --')),
    'libbpf framed the verifier log',
  );
  t.ok(
    err.log.some((l) => /invalid mem access/.test(l)),
    "the verifier's own complaint is there",
  );
});

t.test('garbage and truncated objects are refused with libbpf reasons', async (t) => {
  const garbage = t.throws(() => BpfObject.openMem(Buffer.from('not an ELF file'), { name: 'garbage' })) as LibbpfError;
  t.equal(garbage.code, 'LIBBPF_ERRNO__FORMAT');
  t.match(garbage.log.join('\n'), /not a proper ELF object/);
  const bytes = readFileSync(fixture('foreign'));
  const truncated = t.throws(() => BpfObject.openMem(bytes.subarray(0, bytes.length / 2), { name: 'half' }));
  t.type(truncated, LibbpfError);
});

t.test('load, inspect, close: programs go away with the object', async (t) => {
  const obj = BpfObject.openMem(readFileSync(fixture('foreign')), { name: 'inspect' });
  t.same([...obj.programs.keys()], ['dump_bpf_prog']);
  obj.load();
  const prog = obj.program('dump_bpf_prog');
  const info = progInfo(prog.fd);
  t.equal(info.name, 'dump_bpf_prog');
  t.ok(progIds().includes(info.id));
  t.equal(
    withFd(progFdById(info.id), (fd) => progInfo(fd).id),
    info.id,
  );
  obj.close();
  t.throws(() => obj.load(), /used after close/);
  t.ok(await eventually(() => !progIds().includes(info.id)), 'program unloaded after close');
});
