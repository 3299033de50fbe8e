// The one table of the command line: every command, the words it takes and
// the options it accepts, and every option with its argument and its words.
// Parsing (cli.ts), `--help` and the man page (help.ts) and README's
// synopsis (checked by test/docs.test.ts) all come from it.
import { DEFAULT_BPFFS, octal } from '../preload/transaction/bpffs.js';
import { LIBRARY_IMPORT } from '../preload/names.js';
import { DEFAULT_LISTEN } from '../exporter/address.js';

/** --mode's default: the mode of the kernel's own files. */
export const DEFAULT_MODE = 0o400;

/** Seconds gen skeleton's generator process may take: a malformed object must not hang the CLI in libbpf. */
export const GEN_TIMEOUT_ENV = 'BPF_PRELOAD_GEN_TIMEOUT';
/** A skeleton takes about a second here; a minute leaves room for a slow machine and a large object. */
export const DEFAULT_GEN_TIMEOUT = 60;

export interface OptionSpec {
  /** The name of its argument (upper case) when it takes one; a flag otherwise. */
  arg?: string;
  /** A one-letter alias. */
  short?: string;
  /** What it does (`--help`, the man page). */
  text: string;
}

/** Every option, by its long name (`--NAME`), in the order `--help` lists them. */
export const OPTIONS = {
  bpffs: {
    arg: 'DIR',
    text: `bpffs directory (default ${DEFAULT_BPFFS}, mounted there if nothing is). When DIR holds entries that cannot be opened or replaced, the files go to DIR/preload/ instead.`,
  },
  all: {
    text: 'every bpffs mounted in this mount namespace, each bpffs instance once (at a mount point showing its root where there is one); one failing does not stop the others',
  },
  mode: { arg: 'OCTAL', text: `mode of the pinned files (default ${octal(DEFAULT_MODE)}, as the kernel's; 0444 lets other users read them)` },
  replace: { text: 'replace working entries that are not ours' },
  json: { text: 'status as JSON' },
  verbose: { text: "print libbpf's messages" },
  name: { arg: 'NAME', text: 'gen: the skeleton and object name (default: the file name without .bpf.o)' },
  import: { arg: 'PATH', text: `gen: where the generated module imports the library from (default ${LIBRARY_IMPORT})` },
  light: { text: 'gen: also embed a light-skeleton loader for all programs (libbpf records it; fails if it cannot)' },
  listen: {
    arg: 'ADDR:PORT',
    text: `exporter: where to listen (default ${DEFAULT_LISTEN}, loopback only; [::1]:PORT for IPv6, 0.0.0.0:PORT for every address)`,
  },
  'enable-stats': {
    text: "exporter: turn on the kernel's BPF run-time statistics (run count and time of every program, a few nanoseconds per run) for as long as the exporter runs, with a BPF_ENABLE_STATS fd the kernel drops when the exporter dies; never the sysctl",
  },
  holders: { text: 'exporter: also report which processes (pid, comm) hold each program, map and link' },
  help: { short: 'h', text: 'this text' },
  version: { text: 'version' },
} as const satisfies Record<string, OptionSpec>;

export type OptionName = keyof typeof OPTIONS;

/** Options that make the command line a question about the CLI itself, whatever else it holds. */
export const GLOBAL_OPTIONS = ['help', 'version'] as const satisfies readonly OptionName[];

export interface CommandSpec {
  /** The words it takes after its name, as the synopsis shows them. */
  operands?: string;
  /** The options it accepts, in synopsis order. */
  options: readonly OptionName[];
  /** Two of them that exclude each other (shown as `[A | B]`). */
  exclusive?: readonly [OptionName, OptionName];
  text: string;
}

/** The command when none is given. */
export const DEFAULT_COMMAND = 'populate';

/** Every command, in the order `--help` lists them. */
export const COMMANDS = {
  populate: {
    options: ['bpffs', 'all', 'mode', 'replace', 'verbose'],
    exclusive: ['bpffs', 'all'],
    text: "pin the two files (the default command); replaces our own earlier pins atomically, leaves anyone else's alone",
  },
  status: {
    options: ['bpffs', 'all', 'json', 'verbose'],
    exclusive: ['bpffs', 'all'],
    text: 'show what is pinned: ours, foreign, missing or unusable',
  },
  unpin: {
    options: ['bpffs', 'all', 'verbose'],
    exclusive: ['bpffs', 'all'],
    text: 'remove our pins (and the preload/ directory we made)',
  },
  show: {
    operands: 'progs|maps',
    options: ['verbose'],
    text: 'print what progs.debug or maps.debug would show, without pinning anything (for hosts where the bpffs is not writable)',
  },
  gen: {
    operands: 'skeleton OBJ.bpf.o',
    options: ['name', 'import', 'light', 'verbose'],
    text: 'write a TypeScript skeleton of a BPF object to stdout: its programs, maps and global variables, typed, with the object embedded, as bpftool gen skeleton does for C. Names from the object only become quoted strings; a malformed object (even one that crashes libbpf, which is run in a child process) is refused in one line',
  },
  'install-unit': {
    options: [],
    text: 'install and enable the systemd unit bpf-preload.service (for npm -g installs; the Debian package ships its own). Refuses to replace a unit it did not write, and a node or CLI that a user other than root could change',
  },
  'uninstall-unit': { options: [], text: 'disable and remove it' },
  exporter: {
    options: ['listen', 'enable-stats', 'holders', 'verbose'],
    text: 'serve every BPF program, map and link on this host as Prometheus metrics at http://ADDR:PORT/metrics (OpenMetrics when the scraper asks for it), read with BPF iterators, until SIGTERM or SIGINT (which finish the scrapes in flight and exit 0). Run counters only while run-time statistics are on (--enable-stats, or the kernel.bpf_stats_enabled sysctl). The Debian package ships bpf-preload-exporter.service for it, not enabled',
  },
} as const satisfies Record<string, CommandSpec>;

export type CommandName = keyof typeof COMMANDS;
export const COMMAND_NAMES = Object.keys(COMMANDS) as CommandName[];

/** `--NAME`, with ` ARG` when it takes one. */
export function optionTerm(name: OptionName): string {
  const spec: OptionSpec = OPTIONS[name];
  return spec.arg ? `--${name} ${spec.arg}` : `--${name}`;
}

/** The command with the words it takes, as `--help` lists it. */
export function commandTerm(name: CommandName): string {
  const spec: CommandSpec = COMMANDS[name];
  return spec.operands ? `${name} ${spec.operands}` : name;
}

/** One synopsis line of a command, without the program name. */
function synopsisOf(name: CommandName): string {
  const spec: CommandSpec = COMMANDS[name];
  const words = [name === DEFAULT_COMMAND ? `[${name}]` : name];
  if (spec.operands) words.push(spec.operands);
  const pair = spec.exclusive;
  for (const option of spec.options) {
    if (pair && option === pair[1]) continue;
    words.push(pair && option === pair[0] ? `[${optionTerm(pair[0])} | ${optionTerm(pair[1])}]` : `[${optionTerm(option)}]`);
  }
  return words.join(' ');
}

/** Every way to invoke the CLI, without the leading program name: one line per command, then the global options. */
export const SYNOPSIS: readonly string[] = [...COMMAND_NAMES.map(synopsisOf), GLOBAL_OPTIONS.map((o) => optionTerm(o)).join(' | ')];
