// ESLint (typescript-eslint, type-aware) over every TypeScript and JavaScript
// file: `npm run lint`, part of `npm run check`, which test/run.sh runs
// before the tap tests. Zero warnings: a finding fails the run.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

/**
 * The rules about using a value typed any, for code where any is the norm.
 * src/libbpf is not such code, though koffi types every C function it
 * declares as any: sys/native.ts gives each its C signature (interface Native).
 * @type {Record<string, 'off'>}
 */
const unsafeAnyOff = {
  '@typescript-eslint/no-unsafe-argument': 'off',
  '@typescript-eslint/no-unsafe-assignment': 'off',
  '@typescript-eslint/no-unsafe-call': 'off',
  '@typescript-eslint/no-unsafe-member-access': 'off',
  '@typescript-eslint/no-unsafe-return': 'off',
};

export default defineConfig(
  { ignores: ['node_modules/', 'dist/', '.tap/', 'coverage/'] },
  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        // Every file belongs to exactly one of these projects; type-aware
        // rules (no-floating-promises above all) need its types.
        project: ['./tsconfig.json', './tsconfig.examples.json', './tsconfig.js.json'],
        tsconfigRootDir: import.meta.dirname,
      },
    },
  },
  {
    files: ['**/*.mjs', '**/*.js'],
    // tsc (tsconfig.js.json) already resolves every name in these files.
    // Their parameters are untyped (implicit any, see tsconfig.js.json), so
    // the rules about using an any would flag every parameter use.
    rules: { 'no-undef': 'off', ...unsafeAnyOff },
  },
  {
    // These import a skeleton generated at run time: its module is any.
    files: ['test/globals.test.ts', 'test/libbpf-closed.test.ts', 'test/libbpf-lifecycle.test.ts', 'test/skelgen-records.test.ts'],
    rules: unsafeAnyOff,
  },
  {
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          // tap queues a subtest and reports its failure itself: the
          // promise t.test() returns is there for those who want to wait.
          allowForKnownSafePromises: [{ from: 'package', name: 'PromiseWithSubtest', package: '@tapjs/core' }],
        },
      ],
      // An async function without await is deliberate where a caller
      // expects a promise (tap's callbacks, API methods that may await
      // later): its throws become rejections, as the caller handles them.
      '@typescript-eslint/require-await': 'off',
      // An AbortSignal's reason and a callback's error are typed any or
      // unknown: a promise rejects with them as they are.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingAny: true, allowThrowingUnknown: true }],
      // Control characters in a regular expression are what the code means
      // here: escaping them for display, refusing them in a unit's command.
      'no-control-regex': 'off',
      // `using _lock = ...` holds a resource to the end of the scope, and
      // `for (const _ of ...)` counts: an underscore says unused on purpose.
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_', caughtErrors: 'all' },
      ],
    },
  },
);
