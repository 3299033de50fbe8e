// exectrace: prints one line per exec on this machine, as it happens.
// Built only on the public library (bpf-preload/libbpf) and the skeleton
// `bpf-preload gen skeleton` made of exectrace.bpf.o: .rodata configures the
// program before load, a ring buffer carries the records (struct exec_event,
// decoded by the skeleton), .bss counts them.
//
//   node dist/examples/exectrace/exectrace.js [--duration SECONDS] [--uid UID]
//
// Exit codes: 0 traced until the duration ran out or SIGINT/SIGTERM came,
// 1 failed (the BPF side could not be loaded or attached, say), 2 bad options.
import { parseArgs } from 'node:util';
import { ErrnoError } from 'bpf-preload/libbpf';
import { ExectraceSkeleton, type ExectraceExecEvent } from './exectrace.skel.js';

const USAGE = 'usage: exectrace [--duration SECONDS] [--uid UID]';
const HELP = `${USAGE}
Prints a line for every exec: PID, parent PID, UID, command name and the file executed.
  --duration SECONDS  stop after this long (default: at SIGINT or SIGTERM)
  --uid UID           only execs by this user`;
const EXIT_OK = 0;
const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;

class UsageError extends Error {}

interface Options {
  durationMs?: number;
  uid?: number;
}

function parseOptions(argv: string[]): Options | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: { duration: { type: 'string' }, uid: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: false,
    });
  } catch (err) {
    // node's own message, first sentence: "Unknown option '--x'", "Option '--uid <value>' argument missing"
    throw new UsageError((err as Error).message.split('. ')[0]);
  }
  const { values } = parsed;
  if (values.help) return 'help';
  const options: Options = {};
  if (values.duration !== undefined) {
    const seconds = Number(values.duration);
    if (values.duration.trim() === '' || !Number.isFinite(seconds) || seconds <= 0) {
      throw new UsageError(`--duration takes a positive number of seconds, not '${values.duration}'`);
    }
    options.durationMs = seconds * 1000;
  }
  if (values.uid !== undefined) {
    if (!/^\d+$/.test(values.uid) || Number(values.uid) > 0xfffffffe) throw new UsageError(`--uid takes a user id (a number), not '${values.uid}'`);
    options.uid = Number(values.uid);
  }
  return options;
}

// Control characters and backslashes escaped, so one exec is one line.
const printable = (s: string) => s.replace(/[\\\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);

const row = (pid: string, ppid: string, uid: string, comm: string, file: string) =>
  `${pid.padEnd(8)}${ppid.padEnd(8)}${uid.padEnd(8)}${comm.padEnd(16)} ${file}`;

async function trace(options: Options): Promise<void> {
  using open = ExectraceSkeleton.open();
  if (options.uid !== undefined) {
    open.rodata.filter_uid = true;
    open.rodata.target_uid = options.uid;
  }
  const skel = open.load();
  skel.attach();

  const print = (e: ExectraceExecEvent) => console.log(row(String(e.pid), String(e.ppid), String(e.uid), printable(e.comm), printable(e.filename)));
  // struct exec_event records, decoded by the skeleton.
  using events = skel.ringbuf('events', 'exec_event');

  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const timer = options.durationMs === undefined ? undefined : setTimeout(onSignal, options.durationMs);
  // The header says the probe is attached: from here on every exec is traced.
  console.log(row('PID', 'PPID', 'UID', 'COMM', 'FILENAME'));
  try {
    // Waits off the main thread; the signals and the timer get through.
    for await (const e of events.records({ signal: stop.signal })) print(e);
  } catch (err) {
    if (!stop.signal.aborted) throw err;
  } finally {
    clearTimeout(timer);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  while (events.consume(print) > 0); // what arrived meanwhile
  console.error(`exectrace: ${skel.bss.execs_traced} execs traced, ${skel.bss.records_dropped} dropped (ring buffer full)`);
}

async function main(argv: string[]): Promise<number> {
  let options;
  try {
    options = parseOptions(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`exectrace: ${err.message} (${USAGE})`);
    return EXIT_USAGE;
  }
  if (options === 'help') {
    console.log(HELP);
    return EXIT_OK;
  }
  try {
    await trace(options);
    return EXIT_OK;
  } catch (err) {
    const hint = err instanceof ErrnoError && err.code === 'EPERM' ? ' (run as root, or with CAP_BPF and CAP_PERFMON)' : '';
    console.error(`exectrace: ${(err as Error).message}${hint}`);
    return EXIT_FAILURE;
  }
}

process.exitCode = await main(process.argv.slice(2));
