// Builds @rampart/sdk: ESM and CommonJS bundles with esbuild, declarations with tsc.
// Entries: the client (browser-safe), Node file storage, browser localStorage, OpenFeature providers.
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { build } from 'esbuild';

const here = new URL('.', import.meta.url).pathname;
rmSync(`${here}dist`, { recursive: true, force: true });
const entries = { index: 'index', node: 'node', browser: 'browser', 'openfeature/index': 'openfeature/index' };
for (const [out, src] of Object.entries(entries)) {
  const common = {
    entryPoints: [`${here}src/${src}.ts`],
    bundle: true,
    // node.ts runs only on Node; the others must stay platform-neutral (no node: imports).
    platform: out === 'node' ? 'node' : 'neutral',
    target: 'es2022',
    sourcemap: true,
    // Peers and the main entry stay imports, so the providers share the user's client module.
    external: ['@openfeature/*', '@rampart/sdk', 'node:*'],
  };
  await build({ ...common, format: 'esm', outfile: `${here}dist/${out}.js` });
  await build({ ...common, format: 'cjs', outfile: `${here}dist/${out}.cjs` });
}
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-p', `${here}tsconfig.build.json`], { stdio: 'inherit' });
