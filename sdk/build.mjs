// Builds @rampart/sdk: ESM and CommonJS bundles with esbuild, declarations with tsc.
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { build } from 'esbuild';

const here = new URL('.', import.meta.url).pathname;
rmSync(`${here}dist`, { recursive: true, force: true });
const common = { entryPoints: [`${here}src/index.ts`], bundle: true, platform: 'neutral', target: 'es2022', sourcemap: true };
await build({ ...common, format: 'esm', outfile: `${here}dist/index.js` });
await build({ ...common, format: 'cjs', outfile: `${here}dist/index.cjs` });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-p', `${here}tsconfig.build.json`], { stdio: 'inherit' });
