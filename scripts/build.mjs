// Builds the server into dist/ (one ESM bundle per entry); npm dependencies stay external and
// the SDK is bundled from its source, so `npm start` needs no SDK build first.
import { copyFileSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
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
  // esbuild: the ops page routes import it only to bundle from source when dist/ui is missing.
  external: [...Object.keys(pkg.dependencies ?? {}), 'esbuild'],
  banner: { js: '#!/usr/bin/env node' },
  logLevel: 'warning',
});

// The ops page (src/ui): one browser bundle and its stylesheet, served by the server from dist/ui.
await build({
  entryPoints: [`${root}src/ui/app.ts`],
  outfile: `${root}dist/ui/app.js`,
  bundle: true,
  platform: 'browser',
  format: 'esm',
  target: 'es2022',
  minify: true,
  // No map: the page would ask /ui/app.js.map, which is not served; the source is src/ui.
  sourcemap: false,
  logLevel: 'warning',
});
mkdirSync(`${root}dist/ui`, { recursive: true });
copyFileSync(`${root}src/ui/app.css`, `${root}dist/ui/app.css`);
