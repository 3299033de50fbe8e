// What `bpf-preload --help` says, kept as data so that the same words make
// the --help text and the bpf-preload(8) man page (build/package.ts).
// Text marks literal commands with `backquotes` (bold in the man page).
import { DEFAULT_BPFFS } from '../preload/transaction/bpffs.js';
import { DEFAULT_LOCK_TIMEOUT, LOCK_TIMEOUT_ENV } from '../preload/transaction/lock.js';
import { LIBRARY_IMPORT } from '../preload/names.js';
import { DEFAULT_LISTEN } from '../exporter/address.js';

export interface Item {
  /** The command, option (with its argument), exit code or variable. */
  term: string;
  text: string;
}

export const NAME = 'bpf-preload';
/** One line: what it is (the man page's NAME line). */
export const SUMMARY = "pin the kernel's progs.debug and maps.debug BPF iterators into a bpffs";

/** Invocations, without the leading program name. */
export const SYNOPSIS = [
  '[populate] [--bpffs DIR | --all] [--mode OCTAL] [--replace] [--verbose]',
  'status [--bpffs DIR | --all] [--json]',
  'unpin [--bpffs DIR | --all]',
  'show progs|maps',
  'gen skeleton OBJ.bpf.o [--name NAME] [--import PATH] [--light]',
  'install-unit | uninstall-unit',
  'exporter [--listen ADDR:PORT] [--enable-stats] [--holders]',
  '--help | --version',
];

export const DESCRIPTION =
  'Pins two BPF iterators as DIR/progs.debug and DIR/maps.debug, so that ' +
  '`cat DIR/progs.debug` lists every loaded BPF program (full BTF name, what it ' +
  'is attached to) and `cat DIR/maps.debug` every map, as kernels built with ' +
  'CONFIG_BPF_PRELOAD do. Then exits: the pins keep the iterators alive.';

export const COMMANDS: Item[] = [
  { term: 'populate', text: "pin the two files (the default command); replaces our own earlier pins atomically, leaves anyone else's alone" },
  { term: 'status', text: 'show what is pinned: ours, foreign, missing or unusable' },
  { term: 'unpin', text: 'remove our pins (and the preload/ directory we made)' },
  { term: 'show progs|maps', text: 'print what progs.debug or maps.debug would show, without pinning anything (for hosts where the bpffs is not writable)' },
  {
    term: 'gen skeleton OBJ.bpf.o',
    text: 'write a TypeScript skeleton of a BPF object to stdout: its programs, maps and global variables, typed, with the object embedded, as bpftool gen skeleton does for C. Names from the object only become quoted strings; a malformed object (even one that crashes libbpf, which is run in a child process) is refused in one line',
  },
  {
    term: 'install-unit',
    text: 'install and enable the systemd unit bpf-preload.service (for npm -g installs; the Debian package ships its own). Refuses to replace a unit it did not write, and a node or CLI that a user other than root could change',
  },
  { term: 'uninstall-unit', text: 'disable and remove it' },
  {
    term: 'exporter',
    text: 'serve every BPF program, map and link on this host as Prometheus metrics at http://ADDR:PORT/metrics (OpenMetrics when the scraper asks for it), read with BPF iterators, until SIGTERM or SIGINT (which finish the scrapes in flight and exit 0). Run counters only while run-time statistics are on (--enable-stats, or the kernel.bpf_stats_enabled sysctl). The Debian package ships bpf-preload-exporter.service for it, not enabled',
  },
];

export const OPTIONS: Item[] = [
  {
    term: '--bpffs DIR',
    text: `bpffs directory (default ${DEFAULT_BPFFS}, mounted there if nothing is). When DIR holds entries that cannot be opened or replaced, the files go to DIR/preload/ instead.`,
  },
  {
    term: '--all',
    text: 'every bpffs mounted in this mount namespace, each bpffs instance once (at a mount point showing its root where there is one); one failing does not stop the others',
  },
  { term: '--mode OCTAL', text: "mode of the pinned files (default 0400, as the kernel's; 0444 lets other users read them)" },
  { term: '--replace', text: 'replace working entries that are not ours' },
  { term: '--json', text: 'status as JSON' },
  { term: '--verbose', text: "print libbpf's messages" },
  { term: '--name NAME', text: 'gen: the skeleton and object name (default: the file name without .bpf.o)' },
  { term: '--import PATH', text: `gen: where the generated module imports the library from (default ${LIBRARY_IMPORT})` },
  { term: '--light', text: 'gen: also embed a light-skeleton loader for all programs (libbpf records it; fails if it cannot)' },
  { term: '--listen ADDR:PORT', text: `exporter: where to listen (default ${DEFAULT_LISTEN}, loopback only; [::1]:PORT for IPv6, 0.0.0.0:PORT for every address)` },
  {
    term: '--enable-stats',
    text: "exporter: turn on the kernel's BPF run-time statistics (run count and time of every program, a few nanoseconds per run) for as long as the exporter runs, with a BPF_ENABLE_STATS fd the kernel drops when the exporter dies; never the sysctl",
  },
  { term: '--holders', text: 'exporter: also report which processes (pid, comm) hold each program, map and link' },
  { term: '--help', text: 'this text' },
  { term: '--version', text: 'version' },
];

/** How concurrent and interrupted runs behave (the man page's CONCURRENCY). */
export const CONCURRENCY =
  `One run at a time per directory: a second run waits for the first (up to ${DEFAULT_LOCK_TIMEOUT} seconds), ` +
  'then works on what it left. A run that was killed leaves a trail (DIR/bpf-preload-transaction); ' +
  'the next populate or unpin repairs what it left, and status reports it.';

export const EXIT_CODES: Item[] = [
  { term: '0', text: 'done, or nothing to do (including: left a foreign entry alone)' },
  { term: '1', text: 'failure; the bpffs is left as it was found' },
  { term: '2', text: 'usage error' },
];

export const ENVIRONMENT: Item[] = [
  { term: 'BPF_PRELOAD_TIMING=1', text: 'print how long each phase took, to stderr' },
  { term: 'BPF_PRELOAD_LOADER=light|libbpf|auto', text: 'how to load the iterators (default auto: light skeleton, libbpf where the kernel cannot run it)' },
  { term: `${LOCK_TIMEOUT_ENV}=SECONDS`, text: `how long to wait for another run on the same directory (default ${DEFAULT_LOCK_TIMEOUT})` },
  { term: 'BPF_PRELOAD_DEBUG=1', text: 'print a stack trace with unexpected errors' },
];

const WIDTH = 78;

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  if (line) lines.push(line);
  return lines;
}

/** Terms in one column, texts wrapped beside them; a term too wide for the column gets a line of its own. */
function table(items: Item[], column: number): string {
  const out: string[] = [];
  for (const { term, text } of items) {
    const body = wrap(text, WIDTH - column);
    const head = `  ${term}`;
    if (head.length + 2 <= column) {
      out.push(head.padEnd(column) + body[0]);
      body.slice(1).forEach((l) => out.push(' '.repeat(column) + l));
    } else {
      out.push(head);
      body.forEach((l) => out.push(' '.repeat(column) + l));
    }
  }
  return out.join('\n');
}

/** The text of `bpf-preload --help`. */
export function helpText(): string {
  const usage = SYNOPSIS.map((s, i) => `${i === 0 ? 'usage:' : '      '} ${NAME} ${s}`).join('\n');
  return [
    usage,
    wrap(DESCRIPTION, WIDTH).join('\n'),
    `commands:\n${table(COMMANDS, 18)}`,
    `options:\n${table(OPTIONS, 18)}`,
    wrap(CONCURRENCY, WIDTH).join('\n'),
    `exit codes:\n${table(EXIT_CODES, 5)}`,
    `environment:\n${table(ENVIRONMENT, 24)}`,
  ].join('\n\n');
}

/** Escapes text for roff: backslashes, minus signs, and `literals` in bold. */
function roff(text: string): string {
  return text
    .replaceAll('\\', '\\e')
    .replaceAll('-', '\\-')
    .replace(/`([^`]*)`/g, '\\fB$1\\fR');
}

/** An option or command term: the name in bold, its argument (upper case) in italics. */
function roffTerm(term: string): string {
  return term
    .split(' ')
    .map((w) => (/^[A-Z]+$/.test(w) ? `\\fI${roff(w)}\\fR` : `\\fB${roff(w)}\\fR`))
    .join(' ');
}

function roffItems(items: Item[], term: (t: string) => string): string {
  return items.map((i) => `.TP\n${term(i.term)}\n${roff(i.text)}`).join('\n');
}

/** The bpf-preload(8) man page, in roff (man macros). `date` as YYYY-MM-DD. */
export function manPage(version: string, date: string): string {
  const synopsis = SYNOPSIS.map((s) => `.B ${NAME}\n${roff(s)}`).join('\n.br\n');
  return `.TH ${NAME.toUpperCase().replaceAll('-', '\\-')} 8 ${date} "${NAME} ${version}" "System Administration"
.SH NAME
${roff(NAME)} \\- ${roff(SUMMARY)}
.SH SYNOPSIS
${synopsis}
.SH DESCRIPTION
${roff(DESCRIPTION)}
.SH COMMANDS
${roffItems(COMMANDS, roffTerm)}
.SH OPTIONS
${roffItems(OPTIONS, roffTerm)}
.SH CONCURRENCY
${roff(CONCURRENCY)}
.SH EXIT STATUS
${roffItems(EXIT_CODES, (t) => t)}
.SH ENVIRONMENT
${roffItems(ENVIRONMENT, (t) => `\\fB${roff(t)}\\fR`)}
.SH SEE ALSO
.BR bpftool (8),
.BR systemctl (1)
`;
}
