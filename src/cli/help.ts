// What `bpf-preload --help` says, kept as data so that the same words make
// the --help text and the bpf-preload(8) man page (build/package.ts). The
// commands, options and synopsis come from the CLI's one table (commands.ts).
// Text marks literal commands with `backquotes` (bold in the man page).
import { DEFAULT_LOCK_TIMEOUT, LOCK_TIMEOUT_ENV } from '../preload/transaction/lock.js';
import { LOADER_ENV } from '../preload/iterators.js';
import { COMMANDS, COMMAND_NAMES, DEFAULT_GEN_TIMEOUT, GEN_TIMEOUT_ENV, OPTIONS, SYNOPSIS, commandTerm, optionTerm, type OptionName } from './commands.js';
import { DEBUG_ENV } from './errors.js';
import { TIMING_ENV } from '../timing.js';

export interface Item {
  /** The command, option (with its argument), exit code or variable. */
  term: string;
  text: string;
}

export const NAME = 'bpf-preload';
/** One line: what it is (the man page's NAME line). */
export const SUMMARY = "pin the kernel's progs.debug and maps.debug BPF iterators into a bpffs";

export const DESCRIPTION =
  'Pins two BPF iterators as DIR/progs.debug and DIR/maps.debug, so that ' +
  '`cat DIR/progs.debug` lists every loaded BPF program (full BTF name, what it ' +
  'is attached to) and `cat DIR/maps.debug` every map, as kernels built with ' +
  'CONFIG_BPF_PRELOAD do. Then exits: the pins keep the iterators alive.';

/** The commands as --help and the man page list them (from the one table, commands.ts). */
export const COMMAND_ITEMS: Item[] = COMMAND_NAMES.map((name) => ({ term: commandTerm(name), text: COMMANDS[name].text }));

/** The options as --help and the man page list them. */
export const OPTION_ITEMS: Item[] = (Object.keys(OPTIONS) as OptionName[]).map((name) => ({ term: optionTerm(name), text: OPTIONS[name].text }));

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
  { term: `${TIMING_ENV}=1`, text: 'print how long each phase took, to stderr' },
  { term: `${LOADER_ENV}=light|libbpf|auto`, text: 'how to load the iterators (default auto: light skeleton, libbpf where the kernel cannot run it)' },
  { term: `${LOCK_TIMEOUT_ENV}=SECONDS`, text: `how long to wait for another run on the same directory (default ${DEFAULT_LOCK_TIMEOUT})` },
  { term: `${GEN_TIMEOUT_ENV}=SECONDS`, text: `how long gen skeleton's generator may take before it is killed (default ${DEFAULT_GEN_TIMEOUT})` },
  { term: `${DEBUG_ENV}=1`, text: 'print a stack trace with unexpected errors' },
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
    `commands:\n${table(COMMAND_ITEMS, 18)}`,
    `options:\n${table(OPTION_ITEMS, 18)}`,
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
${roffItems(COMMAND_ITEMS, roffTerm)}
.SH OPTIONS
${roffItems(OPTION_ITEMS, roffTerm)}
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
