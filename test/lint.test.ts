// The gate npm test runs on the real tree before the tap tests (npm run
// check, in test/run.sh; not again here) can fail: each of its tools fails
// on a fixture made to fail it: tsc on a type error, ESLint on a floating
// promise (and not on a tap subtest, whose promise tap handles), Prettier on
// a misformatted line.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';

const TSC = resolve('node_modules/typescript/bin/tsc');
const ESLINT = resolve('node_modules/eslint/bin/eslint.js');
const PRETTIER = resolve('node_modules/prettier/bin/prettier.cjs');

interface Ran {
  code: number | null;
  output: string;
}

/** Runs a command as a developer's shell would: without tap's loaders in NODE_OPTIONS. */
function run(cmd: string, args: string[]): Ran {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const r = spawnSync(cmd, args, { encoding: 'utf8', env, maxBuffer: 1 << 26 });
  return { code: r.status, output: r.stdout + r.stderr };
}

const node = (script: string, args: string[]) => run(process.execPath, [script, ...args]);

t.test('a type error, a floating promise and a misformatted line each fail their tool', async (t) => {
  // In test/, so that tsconfig.json (and with it ESLint's types) takes these files in.
  const dir = mkdtempSync(resolve('test/lint-fixture-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, text: string) => {
    writeFileSync(join(dir, name), text);
    return join(dir, name);
  };
  file('tsconfig.json', '{ "extends": "../../tsconfig.json", "include": ["."] }\n');
  const typeError = file('type-error.ts', "export const count: number = 'three';\n");
  const floating = file(
    'floating.ts',
    [
      "import t from 'tap';",
      '',
      'async function work(): Promise<void> {',
      '  await Promise.resolve();',
      '}',
      '',
      'export function start(): void {',
      '  work();',
      '}',
      '',
      "t.test('a subtest', async () => {",
      '  await work();',
      '});',
      '',
    ].join('\n'),
  );
  const misformatted = file('misformatted.ts', 'export const point = { x:1, y : 2 };\n');

  const tsc = node(TSC, ['--noEmit', '-p', dir]);
  t.not(tsc.code, 0, 'tsc fails');
  t.match(tsc.output, `${basename(dir)}/type-error.ts(1,14): error TS2322`, 'on the type error');
  t.notMatch(tsc.output, /floating\.ts|misformatted\.ts/, 'and nowhere else');

  const eslint = node(ESLINT, ['--max-warnings', '0', '--format', 'json', typeError, floating, misformatted]);
  t.not(eslint.code, 0, 'ESLint fails');
  const findings = (JSON.parse(eslint.output) as { filePath: string; messages: { ruleId: string | null; line: number }[] }[]).flatMap((f) =>
    f.messages.map((m) => `${basename(f.filePath)}:${m.line} ${m.ruleId}`),
  );
  t.same(findings, ['floating.ts:8 @typescript-eslint/no-floating-promises'], 'on the floating promise alone, not on the tap subtest');

  const prettier = node(PRETTIER, ['--check', dir]);
  t.not(prettier.code, 0, 'Prettier fails');
  t.match(prettier.output, 'misformatted.ts', 'on the misformatted file');
  t.notMatch(prettier.output, /floating\.ts|type-error\.ts|tsconfig\.json/, 'and on no other');
});
