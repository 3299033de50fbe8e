// The command line: arguments, what gets printed, exit codes. Everything a
// user sees as text comes from here; the work is done in populate/status/unpin.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { parseArgs as parseArgsUtil } from 'node:util';
import { DEFAULT_BPFFS, octal } from '../preload/transaction/bpffs.js';
import type { Entry } from '../preload/entries.js';
import { DEBUG_ENV, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError } from './errors.js';
import { PreloadError, envSecondsMs } from '../errors.js';
import {
  COMMANDS,
  COMMAND_NAMES,
  DEFAULT_COMMAND,
  DEFAULT_GEN_TIMEOUT,
  DEFAULT_MODE,
  GEN_TIMEOUT_ENV,
  GLOBAL_OPTIONS,
  OPTIONS,
  type CommandName,
  type CommandSpec,
  type OptionName,
  type OptionSpec,
} from './commands.js';
import { helpText } from './help.js';
import { ErrnoError, LibraryMissingError, LogLevel, configureLog } from '../libbpf/index.js';
import { populate, type PopulateResult } from '../preload/populate.js';
import { status, type Status } from '../preload/status.js';
import { bpffsInstances } from '../preload/mounts.js';
import type { LockOptions } from '../preload/transaction/lock.js';
import type { Interrupted, Repair, Stranger } from '../preload/transaction/trail.js';
import { unpin } from '../preload/unpin.js';
import { LIBRARY_IMPORT } from '../preload/names.js';
import { LISTINGS, show, type Listing } from '../preload/show.js';
import { generateSkeleton, objectPrograms, skeletonName } from '../gen/skeleton.js';
import { installUnit, uninstallUnit } from './unit.js';
import { startExporter } from '../exporter/server.js';
import { DEFAULT_LISTEN, parseListen, type ListenAddress } from '../exporter/address.js';

declare const __VERSION__: string | undefined;
const VERSION = typeof __VERSION__ === 'string' ? __VERSION__ : 'dev';

type Command = CommandName | 'help' | 'version';

interface Args {
  command: Command;
  bpffs: string;
  all: boolean;
  mode: number;
  replace: boolean;
  json: boolean;
  verbose: boolean;
  /** show: which listing. */
  listing: Listing;
  /** gen skeleton: the object file, and the generator's options. */
  object: string;
  name?: string;
  importPath: string;
  light: boolean;
  /** exporter: where to listen, and what to switch on. */
  listen: ListenAddress;
  enableStats: boolean;
  holders: boolean;
}

/** What `gen` generates. */
const GENERATED = ['skeleton'] as const;

/** node:util's description of the options: the table's, typed by whether each takes an argument. */
const UTIL_OPTIONS = Object.fromEntries(
  Object.entries(OPTIONS).map(([name, spec]: [string, OptionSpec]) => [
    name,
    { type: spec.arg ? 'string' : 'boolean', ...(spec.short ? { short: spec.short } : {}) },
  ]),
) as Record<OptionName, { type: 'string' | 'boolean'; short?: string }>;

type Token = NonNullable<ReturnType<typeof parseArgsUtil>['tokens']>[number];
type OptionToken = Extract<Token, { kind: 'option' }>;

function defaultArgs(): Args {
  return {
    command: DEFAULT_COMMAND,
    bpffs: DEFAULT_BPFFS,
    all: false,
    mode: DEFAULT_MODE,
    replace: false,
    json: false,
    verbose: false,
    listing: 'progs',
    object: '',
    importPath: LIBRARY_IMPORT,
    light: false,
    listen: parseListen(DEFAULT_LISTEN) as ListenAddress,
    enableStats: false,
    holders: false,
  };
}

/**
 * node:util's parseArgs splits the words (long and short options, inline
 * values); the rules and messages are ours, checked word by word in order,
 * so the first problem is the one reported, and --help or --version wins
 * over whatever follows it.
 */
export function parseArgs(argv: readonly string[]): Args {
  const args = defaultArgs();
  const { tokens } = parseArgsUtil({ args: [...argv], options: UTIL_OPTIONS, strict: false, allowPositionals: true, tokens: true });
  const seen: OptionName[] = [];
  const operands: string[] = [];
  for (const token of tokens) {
    if (token.kind === 'positional') {
      if (token.index === 0) args.command = commandNamed(token.value);
      else if ((COMMANDS[args.command as CommandName] as CommandSpec).operands) operands.push(token.value);
      else throw new UsageError(`unexpected argument '${token.value}' (see --help)`);
      continue;
    }
    if (token.kind === 'option-terminator') throw new UsageError("unknown option '--' (see --help)");
    const name = optionNamed(token);
    if (isGlobal(name)) return { ...args, command: name };
    applyOption(args, name, token);
    seen.push(name);
  }
  checkOptionsApply(args, seen);
  takeOperands(args, operands);
  return args;
}

const isGlobal = (name: OptionName): name is (typeof GLOBAL_OPTIONS)[number] => (GLOBAL_OPTIONS as readonly OptionName[]).includes(name);

function commandNamed(word: string): CommandName {
  if (!(COMMAND_NAMES as readonly string[]).includes(word)) {
    throw new UsageError(`unknown command '${word}': expected one of ${COMMAND_NAMES.join(', ')} (see --help)`);
  }
  return word as CommandName;
}

/** The table's name of the option a word spells (`--NAME`, or a short alias). */
function optionNamed(token: OptionToken): OptionName {
  const known = token.name in OPTIONS && (token.rawName.startsWith('--') || token.rawName === `-${(OPTIONS[token.name as OptionName] as OptionSpec).short}`);
  if (!known) throw new UsageError(`unknown option '${token.rawName}' (see --help)`);
  return token.name as OptionName;
}

/** Records one option's value in `args`, refusing a value it cannot take. */
function applyOption(args: Args, name: Exclude<OptionName, (typeof GLOBAL_OPTIONS)[number]>, token: OptionToken): void {
  const flag = token.rawName;
  const takesArg = (OPTIONS[name] as OptionSpec).arg !== undefined;
  if (!takesArg) {
    if (token.inlineValue) throw new UsageError(`${flag} takes no value`);
  } else if (token.value === undefined || token.value === '') {
    throw new UsageError(`${flag} needs a value (see --help)`);
  }
  const value = token.value ?? '';
  switch (name) {
    case 'bpffs':
      args.bpffs = resolve(value);
      return;
    case 'mode':
      if (!/^0?[0-7]{3}$/.test(value)) throw new UsageError(`--mode takes an octal file mode such as 0400 or 0444, not '${value}'`);
      args.mode = parseInt(value, 8);
      return;
    case 'name':
      args.name = value;
      return;
    case 'import':
      args.importPath = value;
      return;
    case 'listen': {
      const listen = parseListen(value);
      if (!listen) throw new UsageError(`--listen takes ADDR:PORT such as ${DEFAULT_LISTEN} or [::1]:10099, not '${value}'`);
      args.listen = listen;
      return;
    }
    case 'enable-stats':
      args.enableStats = true;
      return;
    case 'all':
    case 'replace':
    case 'json':
    case 'verbose':
    case 'light':
    case 'holders':
      args[name] = true;
      return;
    default:
      name satisfies never; // an option in the table that parsing does not know
  }
}

/** Every option given must be one its command accepts, and of an exclusive pair only one. */
function checkOptionsApply(args: Args, seen: readonly OptionName[]): void {
  const spec: CommandSpec = COMMANDS[args.command as CommandName];
  for (const name of seen) {
    if (!spec.options.includes(name)) throw new UsageError(`--${name} does not apply to '${args.command}' (see --help)`);
  }
  const pair = spec.exclusive;
  if (pair && pair.every((o) => seen.includes(o))) throw new UsageError(`--${pair[1]} and --${pair[0]} exclude each other: give one`);
}

/** The words after the command: show's listing, gen's kind and object. */
function takeOperands(args: Args, operands: readonly string[]): void {
  if (args.command === 'show') args.listing = oneOf('show', operands, LISTINGS);
  if (args.command === 'gen') {
    oneOf('gen', operands.slice(0, 1), GENERATED);
    if (operands.length < 2) throw new UsageError('gen skeleton needs a BPF object file (see --help)');
    if (operands.length > 2) throw new UsageError(`unexpected argument '${operands[2]}' (see --help)`);
    args.object = operands[1];
  }
}

/** The one word a command takes from a fixed set. */
function oneOf<T extends string>(command: string, words: readonly string[], allowed: readonly T[]): T {
  const expected = allowed.join(' or ');
  if (words.length === 0) throw new UsageError(`${command} needs ${expected} (see --help)`);
  if (!(allowed as readonly string[]).includes(words[0])) throw new UsageError(`${command} takes ${expected}, not '${words[0]}' (see --help)`);
  if (words.length > 1) throw new UsageError(`unexpected argument '${words[1]}' (see --help)`);
  return words[0] as T;
}

function describeEntry(e: Entry): string {
  const ids = e.linkId !== undefined ? ` (link ${e.linkId}, program ${e.progId}${e.progName ? ` ${e.progName}` : ''})` : '';
  switch (e.state) {
    case 'missing':
      return `${e.path}: missing`;
    case 'ours':
      return `${e.path}: ours${ids}`;
    case 'foreign':
      return `${e.path}: ${e.kernelPreload ? "the kernel's own preload" : 'not ours'}${ids}`;
    case 'unusable':
      return `${e.path}: exists but cannot be opened (${e.reason})`;
  }
}

function printRepair(r: Repair | null): void {
  if (!r) return;
  const who = r.pid !== undefined ? ` (${r.op}, pid ${r.pid})` : '';
  console.log(`repaired what an interrupted run${who} left: ${r.done.join(', ')}`);
}

function describeInterrupted(i: Interrupted, root: string): string {
  const left: string[] = [];
  if (i.trail && i.modeNow !== undefined && i.modeNow !== i.trail.mode) {
    left.push(`${i.dir} at mode ${octal(i.modeNow)} (was ${octal(i.trail.mode)})`);
  }
  if (i.tempPins.length) left.push(`temporary pins ${i.tempPins.map((p) => p.path).join(', ')}`);
  if (i.untrusted) left.push(`a trail naming ${i.dir}, which it leaves alone (it ${i.untrusted})`);
  const who = i.trail ? ` (${i.trail.op}, pid ${i.trail.owner.pid})` : '';
  return `interrupted run${who} left ${left.length ? left.join(' and ') : 'its trail'}: run '${repairCommand(root)}' (or unpin) to repair it`;
}

const repairCommand = (root: string) => `bpf-preload populate --bpffs ${root}`;

/** Says once that this run waits for another one. */
const lockOptions: LockOptions = {
  onWait: (dir, holder) => console.error(`bpf-preload: waiting for another run${holder ? ` (pid ${holder})` : ''} to finish with ${dir}`),
};

function printPopulate(r: PopulateResult): void {
  if (r.kind === 'left-alone') {
    if (r.foreign.every((e) => e.kernelPreload)) {
      const names = r.foreign.map((e) => basename(e.path)).join(' and ');
      console.log(`the kernel's own ${names} (its BPF preload) are in ${r.dir}: left alone; run with --replace to replace them`);
      return;
    }
    for (const e of r.foreign) console.log(`${describeEntry(e)}: left alone; run with --replace to replace it`);
    return;
  }
  if (r.fallbackFrom) {
    const which = r.fallbackFrom.map((e) => `${e.path} (${e.reason})`).join(', ');
    console.log(`cannot open or replace ${which}: pinned into ${r.dir}/ instead`);
  }
  for (const f of r.files) {
    const was =
      f.replaced.state === 'ours'
        ? `, replaced link ${f.replaced.linkId}`
        : f.replaced.state === 'foreign'
          ? `, replaced a foreign link ${f.replaced.linkId}`
          : '';
    console.log(`pinned ${f.path} (link ${f.linkId}, program ${f.progId}${was})`);
  }
  for (const p of r.removedStale) console.log(`removed ${p}: our earlier pin, now that ${r.dir} holds the files`);
}

function statusJson(s: Status) {
  const files = s.entries.map((e) => ({
    name: basename(e.path),
    path: e.path,
    state: e.state,
    linkId: e.linkId ?? null,
    progId: e.progId ?? null,
    progName: e.progName ?? null,
    kernelPreload: e.kernelPreload === true,
    reason: e.reason ?? null,
  }));
  const i = s.interrupted;
  const interrupted = i && {
    op: i.trail?.op ?? null,
    pid: i.trail?.owner.pid ?? null,
    dir: i.dir,
    mode: i.modeNow === undefined ? null : octal(i.modeNow),
    recordedMode: i.trail ? octal(i.trail.mode) : null,
    temporaryPins: i.tempPins.map((p) => p.path),
    untrusted: i.untrusted ?? null,
    repair: repairCommand(s.dir),
  };
  const notOurs = s.strangers.map((x) => ({ path: x.path, what: x.what, owner: x.uid, why: x.why }));
  return { bpffs: s.dir, files, running: s.running, interrupted, notOurs, untrusted: s.untrusted };
}

function printStatus(s: Status): void {
  for (const e of s.entries) console.log(describeEntry(e));
  if (s.running !== null) console.log(`a bpf-preload run${s.running ? ` (pid ${s.running})` : ''} is changing ${s.dir} right now`);
  if (s.interrupted) console.log(describeInterrupted(s.interrupted, s.dir));
  for (const x of s.strangers) console.log(describeStranger(x));
  if (s.untrusted) console.log(`${s.dir} ${s.untrusted}: bpf-preload will not pin there (mount the bpffs with mode=0700)`);
}

/** Something under one of our names that another user made, or that is not in our form. */
const describeStranger = (x: Stranger) => `${x.path}: ${x.what} of uid ${x.uid}, not ours (${x.why}): left alone`;

/** One line saying what failed and what to do. */
export function explain(err: unknown): string {
  if (err instanceof PreloadError || err instanceof LibraryMissingError) return err.message;
  if (err instanceof ErrnoError) {
    if (err.code === 'EPERM' || err.code === 'EACCES') {
      const last = err.log.filter((l) => !l.startsWith('libbpf:')).pop();
      return `${err.message}: needs root, or CAP_BPF + CAP_PERFMON${last && err.op.startsWith('load') ? ` (verifier: ${last})` : ''}`;
    }
    const hint = err.log.length ? ` (${err.log[err.log.length - 1]})` : '';
    return `${err.message}${hint}; rerun with --verbose for libbpf's messages`;
  }
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'EACCES' || e?.code === 'EPERM') return `${e.message}: needs root`;
  if (e?.code) return e.message;
  return `internal error: ${e?.message ?? String(err)} (please report it; ${DEBUG_ENV}=1 shows a stack trace)`;
}

/** One bpffs directory: the command's work and output. Throws on failure. */
function runOn(args: Args, dir: string, json: unknown[]): void {
  switch (args.command) {
    case 'populate':
      printPopulate(
        populate({
          bpffs: dir,
          mode: args.mode,
          replace: args.replace,
          mountIfMissing: !args.all && dir === DEFAULT_BPFFS,
          lock: lockOptions,
          onRepair: printRepair,
        }),
      );
      return;
    case 'status': {
      const s = status(dir);
      if (args.json) json.push(statusJson(s));
      else printStatus(s);
      return;
    }
    case 'unpin': {
      const r = unpin(dir, lockOptions);
      printRepair(r.repaired);
      for (const p of r.removed) console.log(`removed ${p}`);
      for (const e of r.kept) console.log(`${describeEntry(e)}: left alone`);
      if (r.untrusted) console.log(`${r.untrusted}: left alone`);
      if (r.removed.length === 0 && r.kept.length === 0 && !r.untrusted) console.log(`nothing of ours pinned under ${dir}`);
      return;
    }
  }
}

/**
 * populate, status, unpin on --bpffs DIR or on every bpffs (--all). With
 * --all one failing instance does not stop the others: each failure is its
 * own line, and the exit code is 1 if any failed.
 */
function eachBpffs(args: Args): number {
  const dirs = args.all ? bpffsInstances().map((i) => i.mountPoint) : [args.bpffs];
  if (dirs.length === 0) {
    if (args.command === 'populate') throw new PreloadError(`no bpffs is mounted here: mount one (mount -t bpf bpf ${DEFAULT_BPFFS}) or give --bpffs`);
    if (!args.json) console.log('no bpffs is mounted here');
  }
  const json: unknown[] = [];
  let failed = false;
  for (const dir of dirs) {
    try {
      runOn(args, dir, json);
    } catch (err) {
      if (!args.all) throw err;
      if (process.env[DEBUG_ENV]) console.error(err);
      const line = explain(err);
      console.error(`bpf-preload: ${line.includes(dir) ? line : `${dir}: ${line}`}`);
      failed = true;
    }
  }
  if (args.json) console.log(JSON.stringify(args.all ? json : json[0], null, 2));
  return failed ? EXIT_FAILURE : EXIT_OK;
}

/**
 * Marks the child process that `gen skeleton` runs the generator in. The
 * objects it reads are often someone else's, and libbpf 1.1's
 * bpf_object__open_mem dies with SIGSEGV on some malformed ones (so does
 * bpftool gen skeleton): in a child of its own, the CLI re-executed with
 * this variable set, a crash costs only the child and is reported as one line.
 */
const GEN_CHILD = 'BPF_PRELOAD_GEN_CHILD';

/** The signals a process gets for its own faults, not from someone else. */
const CRASHES: readonly NodeJS.Signals[] = ['SIGSEGV', 'SIGBUS', 'SIGILL', 'SIGFPE', 'SIGABRT'];

/**
 * Starts the child with core files off: a crash is expected there, and with
 * the kernel's default core_pattern (`core`) and a shell that allows core
 * files it would leave node's whole memory image in the user's directory.
 * Node cannot set a resource limit itself, so sh does, then execs node.
 */
const NO_CORE_FILES = ['-c', 'ulimit -c 0 && exec "$@"', 'sh'];

/**
 * `gen skeleton` in a child process (the same CLI and arguments): its output
 * and its exit code are passed on; a crash becomes one line and exit 1.
 */
function genSkeletonIsolated(argv: readonly string[], args: Args): number {
  const timeout = envSecondsMs(GEN_TIMEOUT_ENV, DEFAULT_GEN_TIMEOUT);
  const r = spawnSync('/bin/sh', [...NO_CORE_FILES, process.execPath, ...process.execArgv, process.argv[1], ...argv], {
    env: { ...process.env, [GEN_CHILD]: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 1 << 30,
    timeout,
    // SIGKILL: a process stopped or stuck in libbpf would keep a SIGTERM pending.
    killSignal: 'SIGKILL',
  });
  if (r.error && 'code' in r.error && r.error.code === 'ETIMEDOUT') {
    throw new PreloadError(
      `gen skeleton ${args.object}: the generator did not finish in ${timeout / 1000} s (libbpf may loop on a malformed object): rebuild it from its source, or raise ${GEN_TIMEOUT_ENV}`,
    );
  }
  if (r.error) throw new PreloadError(`gen skeleton: cannot run the generator's process: ${r.error.message}`);
  process.stderr.write(r.stderr);
  if (r.signal !== null) {
    if (!CRASHES.includes(r.signal)) throw new PreloadError(`gen skeleton ${args.object}: the generator's process was killed (${r.signal}): run it again`);
    throw new PreloadError(`${args.object}: libbpf crashed (${r.signal}) opening it, so the object is malformed: rebuild it from its source`);
  }
  process.stdout.write(r.stdout);
  return r.status ?? EXIT_FAILURE;
}

/** `gen skeleton OBJ`: the generated module's text. */
function genSkeleton(args: Args): string {
  let bytes: Buffer;
  try {
    bytes = readFileSync(args.object);
  } catch (err) {
    throw new PreloadError(`cannot read ${args.object}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const name = args.name ?? skeletonName(args.object);
  // every program in one loader: the choice of variants is the tool's own (build/skeletons.ts)
  try {
    const light = args.light ? { objectName: name, variants: { all: objectPrograms(bytes, name) } } : undefined;
    return generateSkeleton({ bytes, name, libbpfImport: args.importPath, light });
  } catch (err) {
    if (err instanceof ErrnoError) throw err;
    throw new PreloadError((err as Error).message);
  }
}

/**
 * `exporter`: loads its iterators (a failure is the usual one line and exit
 * 1), then serves until SIGTERM or SIGINT, which finish the scrapes in flight
 * and exit 0. A later failure to listen is one line and exit code 1.
 */
function runExporter(args: Args): void {
  const exporter = startExporter({
    listen: args.listen,
    enableStats: args.enableStats,
    holders: args.holders,
    onListening: (url) => console.log(`bpf-preload: exporter serving ${url}${args.enableStats ? ' (run-time statistics on while it runs)' : ''}`),
    onFatal: (line) => {
      console.error(`bpf-preload: ${line}`);
      process.exitCode = EXIT_FAILURE;
    },
  });
  let stopping = false;
  const onSignal = () => {
    if (stopping) return;
    stopping = true;
    void exporter.stop().then(() => {
      process.exitCode = EXIT_OK;
    });
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

export function main(argv: readonly string[]): number {
  let args: Args;
  try {
    args = parseArgs(argv);
  } catch (err) {
    console.error(`bpf-preload: ${(err as Error).message}`);
    return EXIT_USAGE;
  }
  try {
    if (args.verbose) configureLog(LogLevel.Debug, (line) => console.error(line));
    switch (args.command) {
      case 'help':
        console.log(helpText());
        return EXIT_OK;
      case 'version':
        console.log(`bpf-preload ${VERSION}`);
        return EXIT_OK;
      case 'populate':
      case 'status':
      case 'unpin':
        return eachBpffs(args);
      case 'show':
        process.stdout.write(show(args.listing));
        return EXIT_OK;
      case 'gen':
        if (process.env[GEN_CHILD] === undefined) return genSkeletonIsolated(argv, args);
        process.stdout.write(genSkeleton(args));
        return EXIT_OK;
      case 'install-unit':
        console.log(installUnit());
        return EXIT_OK;
      case 'uninstall-unit':
        console.log(uninstallUnit());
        return EXIT_OK;
      case 'exporter':
        runExporter(args);
        return EXIT_OK;
    }
  } catch (err) {
    if (process.env[DEBUG_ENV]) console.error(err);
    console.error(`bpf-preload: ${explain(err)}`);
    return EXIT_FAILURE;
  }
}
