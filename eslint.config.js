// Lint rules, including the import boundaries of ARCHITECTURE.md: imports point inward.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const serverOnly = ['fastify', 'fastify-plugin', 'ioredis', 'pino', 'zod', '@opentelemetry/*', 'yaml'];
const pattern = (group, message) => ({ group, message });

// Store adapters (Redis, embedded file); interfaces such as flag-store.ts stay importable.
const storeAdapters = ['../store/redis-*', '../store/embedded-*', '../../store/redis-*', '../../store/embedded-*'];

/** Folder -> import patterns it may not use. */
const boundaries = {
  'sdk/src/**': [
    pattern(serverOnly, 'The SDK never imports server dependencies.'),
    pattern(['**/src/*', '../../src/**'], 'The SDK does not import the server.'),
  ],
  'src/core/**': [
    pattern(['fastify', 'fastify-plugin', 'ioredis', 'pino', 'zod', '@opentelemetry/*', 'yaml', 'node:*'], 'core is pure: no I/O and no npm imports.'),
    pattern(['../store/*', '../api/*', '../guard/*', '../metrics/*', '../config.js', '../telemetry.js'], 'core imports nothing outside core.'),
  ],
  'src/store/**': [
    pattern(['../api/*', '../guard/*', '../metrics/*'], 'store imports core only.'),
  ],
  'src/metrics/**': [
    pattern(['../api/*', '../guard/*', ...storeAdapters], 'metrics imports core and interfaces only.'),
  ],
  'src/guard/**': [
    pattern(['../api/*', ...storeAdapters, '../metrics/*-source.js', '!../metrics/metric-source.js', '../metrics/sources.js'], 'guard uses interfaces, never adapters.'),
    pattern(['fastify', 'fastify-plugin'], 'guard does not depend on the HTTP layer.'),
  ],
  'src/api/**': [
    pattern([...storeAdapters, '../guard/*', '../../guard/*'], 'api uses interfaces; only the composition root wires adapters.'),
  ],
};

export default tseslint.config(
  { ignores: ['dist/**', 'sdk/dist/**', 'node_modules/**', 'coverage/**', '.rampart/**'] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: { allowDefaultProject: ['*.js', '*.mjs', 'sdk/*.mjs', 'scripts/*.mjs'] }, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-restricted-syntax': ['error', { selector: 'ExportDefaultDeclaration', message: 'Named exports only.' }],
      // Fastify handlers and hooks are async by contract, with or without an await inside.
      '@typescript-eslint/require-await': 'off',
    },
  },
  ...Object.entries(boundaries).map(([files, patterns]) => ({
    files: [files],
    rules: { '@typescript-eslint/no-restricted-imports': ['error', { patterns }] },
  })),
  {
    files: ['**/*.mjs', '**/*.js'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly' } },
  },
  {
    files: ['eslint.config.js', 'vitest.config.ts'],
    rules: { 'no-restricted-syntax': 'off' },
  },
  {
    files: ['test/**', 'bench/**'],
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-floating-promises': 'off',
    },
  },
);
