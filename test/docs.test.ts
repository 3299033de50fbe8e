// The documents say what the code does: README's synopsis and its tables of
// commands and options are the CLI's one table (src/cli/commands.ts); every
// relative link in README.md and docs/*.md leads to a file that exists (and
// to a heading that exists, for #anchors); every `npm run X` shown names a
// script of package.json; every `bpf-preload ...` command shown is one the
// CLI's parser accepts (parsed, not run); README's sample error for a
// missing libbpf is the library's message; every repository path named
// exists; ARCHITECTURE's rules that only src/libbpf imports koffi and that
// status and unpin never import the loader hold for the imports.
import t from 'tap';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import {
  COMMANDS,
  COMMAND_NAMES,
  OPTIONS,
  SYNOPSIS,
  commandTerm,
  optionTerm,
  type CommandSpec,
  type OptionName,
  type OptionSpec,
} from '../src/cli/commands.js';
import { parseArgs } from '../src/cli/cli.js';
import { UsageError } from '../src/cli/errors.js';
import { LibraryMissingError } from '../src/libbpf/index.js';
import { LIBBPF_SONAME } from '../src/libbpf/sys/native.js';

const REPO = resolve('.');
const DOCS = [
  'README.md',
  ...readdirSync('docs')
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];
const read = (doc: string) => readFileSync(join(REPO, doc), 'utf8');
const PROGRAM = 'bpf-preload';

/** Fenced code blocks (```), with the line each starts on. */
function fencedBlocks(text: string): { lang: string; body: string; line: number }[] {
  const blocks: { lang: string; body: string; line: number }[] = [];
  const re = /^```(\S*)\n([\s\S]*?)^```$/gm;
  for (let m; (m = re.exec(text));) blocks.push({ lang: m[1], body: m[2], line: text.slice(0, m.index).split('\n').length });
  return blocks;
}

/** The text outside fenced blocks (replaced by blank lines, so line numbers hold). */
const prose = (text: string) => text.replace(/^```[\s\S]*?^```$/gm, (b) => b.replace(/[^\n]/g, ''));

/** Inline code spans of the prose, whitespace (a span may wrap) made single spaces, and table pipes unescaped. */
function codeSpans(text: string): { code: string; line: number }[] {
  const spans: { code: string; line: number }[] = [];
  const body = prose(text);
  const re = /`([^`]+)`/g;
  for (let m; (m = re.exec(body));)
    spans.push({ code: m[1].replace(/\s+/g, ' ').replaceAll('\\|', '|').trim(), line: body.slice(0, m.index).split('\n').length });
  return spans;
}

/** Every shell command shown: inline code, and each line of the shell blocks (comments dropped). */
function shownCommands(text: string): { code: string; line: number }[] {
  const lines = fencedBlocks(text)
    .filter((b) => ['', 'sh', 'bash', 'console'].includes(b.lang))
    .flatMap((b) => b.body.split('\n').map((code, i) => ({ code: code.replace(/\s#.*$/, '').trim(), line: b.line + 1 + i })));
  return [...codeSpans(text), ...lines].filter((c) => c.code !== '');
}

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens. */
const slug = (heading: string) =>
  heading
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');

function anchors(doc: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const m of prose(read(doc)).matchAll(/^#{1,6}\s+(.+?)\s*$/gm)) {
    const base = slug(m[1]);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

t.test("README's synopsis is the CLI's, line for line", async (t) => {
  const usage = read('README.md').split('## Usage\n')[1];
  const block = fencedBlocks(usage ?? '')[0];
  t.ok(block, 'README has a code block under ## Usage');
  t.same(
    block?.body.trimEnd().split('\n'),
    SYNOPSIS.map((s) => `${PROGRAM} ${s}`),
  );
});

t.test("README's sample error for a missing libbpf is the CLI's (test/environment.test.ts runs it without libbpf)", async (t) => {
  const samples = fencedBlocks(read('README.md').split('Errors are one line, for example:')[1] ?? '')[0]?.body ?? '';
  t.ok(samples.split('\n').includes(`bpf-preload: ${new LibraryMissingError(LIBBPF_SONAME).message}`), samples);
});

t.test("README's tables list every command and option of the CLI's table", async (t) => {
  const text = read('README.md');
  const rows = new Set([...text.matchAll(/^\| `([^`]+)`/gm)].map((m) => m[1].replaceAll('\\|', '|')));
  for (const name of COMMAND_NAMES) t.ok(rows.has(commandTerm(name)), `command ${commandTerm(name)}`);
  for (const name of Object.keys(OPTIONS) as OptionName[]) {
    if (name === 'help' || name === 'version') continue; // the synopsis' last line
    t.ok(rows.has(optionTerm(name)), `option ${optionTerm(name)}`);
  }
});

t.test('every relative link leads to a file, and every #anchor to a heading there', async (t) => {
  for (const doc of DOCS) {
    const body = prose(read(doc));
    for (const m of body.matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = m[1];
      if (/^[a-z]+:/.test(target)) continue; // https:, mailto:
      const line = body.slice(0, m.index).split('\n').length;
      const [path, anchor] = target.split('#');
      const file = path === '' ? join(REPO, doc) : resolve(REPO, dirname(doc), path);
      const where = `${doc}:${line} (${target})`;
      if (!existsSync(file)) {
        t.fail(`${where}: ${relative(REPO, file)} does not exist`);
        continue;
      }
      if (anchor !== undefined && file.endsWith('.md')) t.ok(anchors(relative(REPO, file)).has(anchor), `${where}: #${anchor} is a heading`);
      else t.pass(where);
    }
  }
});

t.test('every `npm run X` shown names a script of package.json', async (t) => {
  const scripts = Object.keys((JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts);
  for (const doc of DOCS) {
    for (const { code, line } of shownCommands(read(doc))) {
      for (const m of code.matchAll(/\bnpm (?:run(?: -s)? ([\w:-]+)|(start|test)\b)/g)) {
        const script = m[1] ?? m[2];
        t.ok(scripts.includes(script), `${doc}:${line}: npm ${m[1] ? 'run ' : ''}${script}`);
      }
    }
  }
});

/**
 * The CLI invocations in a shown command: the words after `bpf-preload`
 * (or `node dist/bpf-preload.js`) where it is the command run, after only
 * VAR=value words, `sudo` or `nsenter ...`; up to a pipe, redirection or
 * `&&`; `…` (any arguments) dropped; each A|B alternative its own invocation.
 */
function invocations(code: string): string[][] {
  const words = code.split(' ');
  const at = words.findIndex((w) => w === PROGRAM || w.endsWith('/bpf-preload.js'));
  if (at < 0) return [];
  const before = words.slice(0, at);
  const runs = words[at] === PROGRAM ? before.every((w) => /^[A-Z_]+=\S*$/.test(w) || w === 'sudo') || before[0] === 'nsenter' : before.join(' ') === 'node';
  if (!runs) return [];
  const args: string[] = [];
  for (const w of words.slice(at + 1)) {
    if (['|', '>', '<', '&&', ';', '2>&1'].includes(w)) break;
    if (w !== '…' && w !== '...') args.push(w);
  }
  let all: string[][] = [[]];
  for (const w of args) {
    const alternatives = /^[a-z-]+(\|[a-z-]+)+$/.test(w) ? w.split('|') : [w];
    all = all.flatMap((a) => alternatives.map((alt) => [...a, alt]));
  }
  return all;
}

/**
 * A command named in prose without the words it takes (`bpf-preload gen
 * skeleton`, `bpf-preload show`) gets the synopsis' placeholders for them:
 * what is checked is that the command exists and takes those options.
 */
function withOperands(args: string[]): string[] {
  const command = COMMAND_NAMES.find((c) => c === args[0]);
  const operands = command ? ((COMMANDS[command] as CommandSpec).operands?.split(' ') ?? []) : [];
  let given = 0;
  for (let i = 1; i < args.length; i++) {
    const option = args[i].startsWith('--') ? (OPTIONS[args[i].slice(2) as OptionName] as OptionSpec | undefined) : undefined;
    if (option?.arg) i++;
    else if (!args[i].startsWith('-')) given++;
  }
  return [...args, ...operands.slice(given).map((w) => w.split('|')[0])];
}

t.test("every `bpf-preload ...` command shown is accepted by the CLI; every synopsis line shown is the CLI's", async (t) => {
  const synopsis = SYNOPSIS.map((s) => `${PROGRAM} ${s}`);
  let count = 0;
  for (const doc of DOCS) {
    for (const { code, line } of shownCommands(read(doc))) {
      if (code.startsWith(`${PROGRAM} `) && /[[\]]/.test(code)) {
        t.ok(synopsis.includes(code), `${doc}:${line}: synopsis line ${code}`);
        continue;
      }
      for (const args of invocations(code)) {
        count++;
        try {
          parseArgs(withOperands(args));
          t.pass(`${doc}:${line}: ${PROGRAM} ${args.join(' ')}`);
        } catch (err) {
          t.fail(`${doc}:${line}: ${PROGRAM} ${args.join(' ')}: ${err instanceof UsageError ? err.message : String(err)}`);
        }
      }
    }
  }
  t.ok(count >= 10, `${count} commands checked`);
});

t.test('every path in the repository that the documents name exists', async (t) => {
  // A path under one of the repository's own folders, as prose or code names
  // it; globs (`bpf/*.bpf.c`) and dist/ (built, not committed) are not checked.
  const TOP = ['src', 'build', 'test', 'bpf', 'skel', 'bench', 'harness', 'examples', '.ci'];
  const PLACEHOLDER = 'test/x.test.ts'; // README's "any test file"
  const re = new RegExp(`(?<![\\w./-])((?:${TOP.map((d) => d.replace('.', '\\.')).join('|')})/[\\w./*-]*[\\w*/-])`, 'g');
  let count = 0;
  for (const doc of DOCS) {
    const text = read(doc);
    for (const m of text.matchAll(re)) {
      const path = m[1];
      if (path.includes('*') || path === PLACEHOLDER) continue;
      count++;
      t.ok(existsSync(join(REPO, path)), `${doc}:${text.slice(0, m.index).split('\n').length}: ${path}`);
    }
  }
  t.ok(count >= 100, `${count} paths checked`);
});

/** The modules a module imports for their values (not `import type`), relative ones only, as repository paths. */
function valueImports(file: string): string[] {
  const text = read(file);
  const specs = [...text.matchAll(/^(?:import|export)\s+(?!type\s)(?:[^;]*?\sfrom\s+)?'([^']+)'/gm)].map((m) => m[1]);
  return specs.filter((s) => s.startsWith('.')).map((s) => relative(REPO, resolve(REPO, dirname(file), s.replace(/\.js$/, '.ts'))));
}

/** Every module `file` reaches through value imports, itself included. */
function reached(file: string): Set<string> {
  const seen = new Set<string>();
  const todo = [file];
  for (let f; (f = todo.pop()) !== undefined;) {
    if (seen.has(f) || !existsSync(join(REPO, f))) continue;
    seen.add(f);
    todo.push(...valueImports(f));
  }
  return seen;
}

/** The repository paths of the relative modules `file` imports or re-exports, `import type` too. */
function allImports(file: string): string[] {
  const specs = [...read(file).matchAll(/^(?:import|export)\s+(?:[^;]*?\sfrom\s+)?'([^']+)'/gm)].map((m) => m[1]);
  return specs.filter((s) => s.startsWith('.')).map((s) => relative(REPO, resolve(REPO, dirname(file), s.replace(/\.js$/, '.ts'))));
}

t.test("ARCHITECTURE's import rules hold: koffi only in src/libbpf; nothing imports src/cli/; status and unpin never reach the loader", async (t) => {
  const arch = read('docs/ARCHITECTURE.md');
  t.match(arch, /src\/libbpf\/ +the only module that imports koffi/);
  t.match(arch, /nothing outside src\/cli\/ imports from it/);
  const src = (readdirSync('src', { recursive: true }) as string[]).filter((f) => f.endsWith('.ts')).map((f) => `src/${f}`);
  const upwards = src
    .filter((f) => !f.startsWith('src/cli/'))
    .flatMap((f) =>
      allImports(f)
        .filter((i) => i.startsWith('src/cli/'))
        .map((i) => `${f} imports ${i}`),
    );
  t.same(upwards, [], 'no module outside src/cli/ imports from it');
  t.ok(allImports('src/cli/cli.ts').includes('src/cli/errors.ts'), 'cli.ts imports src/cli/errors.ts (else the pattern is wrong)');
  t.match(arch, /status\.ts, unpin\.ts +the other two commands \(neither imports the loader\)/);
  const sources = ['src', 'skel', 'examples', 'build', 'bench', 'harness'].flatMap((d) =>
    (readdirSync(d, { recursive: true }) as string[]).filter((f) => /\.(ts|mts|mjs)$/.test(f)).map((f) => `${d}/${f}`),
  );
  // import (type or not), import() or require() of koffi or of a file in it
  const koffi = sources.filter((f) => /(?:\bfrom\s+|\bimport\s*\(\s*|\brequire\(\s*|^import\s+)['"`]koffi['"`/]/m.test(read(f)));
  t.same(
    koffi.filter((f) => !f.startsWith('src/libbpf/')),
    [],
    `imports koffi: ${koffi.join(', ')}`,
  );
  t.ok(koffi.includes('src/libbpf/sys/native.ts'), 'native.ts imports koffi (else the pattern is wrong)');
  // the loader: the runner's, the skeleton it loads from (and its objects' bytes)
  const loader = ['src/preload/iterators.ts', 'skel/iterators.skel.ts'];
  const populate = reached('src/preload/populate.ts');
  for (const f of loader) t.ok(populate.has(f), `populate reaches ${f} (else the walk is wrong)`);
  for (const command of ['src/preload/status.ts', 'src/preload/unpin.ts']) {
    const modules = reached(command);
    for (const f of loader) t.notOk(modules.has(f), `${command} does not reach ${f}`);
  }
});
