// Builds the server into dist/ (one ESM bundle per entry); npm dependencies stay external and
// the SDK is bundled from its source, so `npm start` needs no SDK build first.
import { readFileSync, rmSync } from 'node:fs';
import { build } from 'esbuild';

const root = new URL('..', import.meta.url).pathname;
const pkg = JSON.parse(readFileSync(`${root}package.json`, 'utf8'));
rmSync(`${root}dist`, { recursive: true, force: true });
await build({
  entryPoints: [`${root}src/cli.ts`],
  outdir: `${root}dist`,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: true,
  conditions: ['rampart-source'],
  external: Object.keys(pkg.dependencies ?? {}),
  banner: { js: '#!/usr/bin/env node' },
  logLevel: 'warning',
});
