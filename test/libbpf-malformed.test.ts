// Malformed objects: 300 deterministic mutations of a real object (flipped
// bytes, truncations, corrupted BTF header lengths, flipped BTF bytes) given
// to BpfObject.openMem and loaded where that works, in a process of its own
// (test/lib/open-mutants.ts) so that a crash shows as one. Each must end in a
// LibbpfError with a one-line message or a loaded object: never a crash, a
// hang or another kind of error. libbpf 1.1 alone crashed on 7 of these 300
// (bad string offsets and type ids in .BTF); btf/check.ts refuses those
// first. `gen skeleton` of such an object says so in one line, exit 1.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BpfObject, LibbpfError } from '../src/libbpf/index.js';
import { runCli } from './lib/cli.js';
import { fixture } from './lib/fixtures.js';

const MUTANTS = 300;

t.test(`${MUTANTS} mutations of an object: each a LibbpfError in one line or a loaded object, none a crash`, async (t) => {
  const r = spawnSync(process.execPath, ['build/run.mjs', 'test/lib/open-mutants.ts', fixture('library'), String(MUTANTS), '1'], {
    encoding: 'utf8',
    timeout: 240_000,
    maxBuffer: 1 << 24,
  });
  const lines = r.stdout.trim().split('\n');
  t.equal(r.signal, null, `no signal (last attempt: ${lines.filter((l) => l.startsWith('try ')).pop()})`);
  t.equal(r.status, 0, r.stderr);
  t.equal(lines.pop(), 'finished', 'all of them tried');
  const outcomes = new Map<string, number>();
  for (let i = 0; i < MUTANTS; i++) {
    const tried = lines[2 * i] ?? '';
    const done = lines[2 * i + 1] ?? '';
    if (!tried.startsWith(`try ${i} `) || !done.startsWith(`done ${i} `)) {
      t.fail(`mutation ${i}: ${JSON.stringify(tried)} then ${JSON.stringify(done)}`);
      break;
    }
    const outcome = done.slice(`done ${i} `.length);
    const kind = outcome === 'loaded' ? 'loaded' : outcome.startsWith('LibbpfError: "') ? 'LibbpfError' : outcome;
    if (kind !== 'loaded' && kind !== 'LibbpfError') t.fail(`mutation ${i} (${tried}): ${outcome}`);
    if (kind === 'LibbpfError') {
      const message = JSON.parse(outcome.slice('LibbpfError: '.length)) as string;
      if (!/^(open|load) BPF object mutant: [^\n]+$/.test(message)) t.fail(`mutation ${i}: message ${JSON.stringify(message)}`);
      if (message.includes('malformed BTF')) outcomes.set('refused by the BTF check', (outcomes.get('refused by the BTF check') ?? 0) + 1);
    }
    outcomes.set(kind, (outcomes.get(kind) ?? 0) + 1);
  }
  t.comment([...outcomes].map(([k, n]) => `${k}: ${n}`).join(', '));
  t.ok((outcomes.get('loaded') ?? 0) > 0, 'some still load (harmless flips)');
  t.ok((outcomes.get('refused by the BTF check') ?? 0) > 0, 'some are refused by the BTF check');
});

t.test('what the BTF check refuses, it names; a sound object passes it', async (t) => {
  const bytes = readFileSync(fixture('library'));
  t.doesNotThrow(() => BpfObject.openMem(bytes).close(), 'the object itself');
  // The first byte of .BTF's string offset field (struct btf_header at the
  // section's start: str_off at 16), pushed past the section.
  const btfAt = bytes.indexOf(Buffer.from([0x9f, 0xeb, 1, 0]));
  const bad = Buffer.from(bytes);
  bad.writeUInt32LE(0x7fffffff, btfAt + 16);
  const err = t.throws(() => BpfObject.openMem(bad, { name: 'bad' })) as LibbpfError;
  t.type(err, LibbpfError);
  t.equal(err.code, 'EINVAL');
  t.equal(err.message, 'open BPF object bad: malformed BTF (.BTF string section lies outside section .BTF): EINVAL (invalid argument)');

  const dir = mkdtempSync('/tmp/libbpfmalformed');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'bad.bpf.o');
  writeFileSync(file, bad);
  t.match(
    (t.throws(() => BpfObject.openFile(file)) as LibbpfError).message,
    /^open BPF object \/tmp\/libbpfmalformed\w+\/bad\.bpf\.o: malformed BTF/,
    'openFile checks too',
  );
  const gen = runCli(['gen', 'skeleton', file]);
  t.equal(gen.code, 1, 'gen skeleton: exit 1');
  t.equal(gen.stdout, '');
  t.match(gen.stderr, /^bpf-preload: [^\n]+\n$/, 'gen skeleton: one line');
});
