// Run by libbpf-trace.test.ts inside a private mount namespace where tracefs
// is mounted (libbpf finds tracepoint ids there; the machine has none
// mounted): attaches the tracer fixture's tracepoint program by category and
// name, then as its section says, forks, and prints the counts as JSON.
//   unshare -m sh -c 'mount -t tracefs nodev /sys/kernel/tracing && node build/run.mjs test/lib/tracepoint-child.ts OBJECT'
import { spawnSync } from 'node:child_process';
import { BpfObject, codecs } from '../../src/libbpf/index.js';

const obj = BpfObject.openFile(process.argv[2]);
try {
  obj.load();
  const seen = obj.map('seen').typed(codecs.u32, codecs.u64);
  const prog = obj.program('on_newtask');
  const counts: number[] = [];
  for (const attach of [() => prog.attachTracepoint('task', 'task_newtask'), () => prog.attach()]) {
    const before = seen.get(4) ?? 0n;
    const link = attach();
    for (let i = 0; i < 3; i++) spawnSync('true');
    link.destroy();
    counts.push(Number((seen.get(4) ?? 0n) - before));
  }
  console.log(JSON.stringify({ counts, section: prog.sectionName }));
} finally {
  obj.close();
}
