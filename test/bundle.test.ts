// The bundle's preamble where Node.js lacks Symbol.dispose (before 18.18):
// a tiny program built with the CLI's own bundle options, `using` and a class
// disposing through [Symbol.dispose], run in a fresh V8 context, which has no
// Symbol.dispose of its own.
import t from 'tap';
import { build } from 'esbuild';
import { runInNewContext } from 'node:vm';
import { cliBundleOptions } from '../build/bundle-options.js';

const PROGRAM = `
class Resource {
  [Symbol.dispose]() { disposed.push('resource'); }
}
{
  using r = new Resource();
  disposed.push('used');
}
`;

async function bundle(options: object): Promise<string> {
  const r = await build({ ...cliBundleOptions, ...options, stdin: { contents: PROGRAM, loader: 'ts' }, write: false, format: 'iife' });
  return r.outputFiles[0].text;
}

t.test('using and [Symbol.dispose] work where Node.js has no Symbol.dispose', async (t) => {
  t.equal(runInNewContext('typeof Symbol.dispose'), 'undefined', 'a fresh context lacks Symbol.dispose, as Node.js < 18.18 does');
  const disposed: string[] = [];
  runInNewContext(await bundle({}), { disposed });
  t.same(disposed, ['used', 'resource']);
});

t.test('without the preamble the same program would not dispose (what the preamble is for)', async (t) => {
  const code = await bundle({ banner: {} });
  t.throws(() => {
    runInNewContext(code, { disposed: [] });
  }, /not disposable|dispose/i);
});
