// The size budget of the client entry (createClient with evaluation, bucketing, stream, poll and
// track): what a browser app that imports `createClient` pays, bundled, minified with terser (the
// minifier of most production builds) and gzipped. OpenFeature providers and Node file storage
// live in other entries and do not count.
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { minify } from 'terser';
import { describe, expect, it } from 'vitest';

/** 3 KB, counted as 3 × 1024 bytes. */
const BUDGET_BYTES = 3 * 1024;

const SDK_SRC = new URL('../../sdk/src/', import.meta.url).pathname;

async function bundle(entry: { file: string } | { contents: string }, minifyWithEsbuild = true): Promise<string> {
  const result = await build({
    ...('file' in entry ? { entryPoints: [SDK_SRC + entry.file] } : { stdin: { contents: entry.contents, resolveDir: SDK_SRC, loader: 'ts' as const } }),
    bundle: true,
    minify: minifyWithEsbuild,
    format: 'esm',
    write: false,
    external: ['@openfeature/*', '@rampart/sdk', 'node:*'],
  });
  return result.outputFiles[0]!.text;
}

describe('SDK size', () => {
  it(`keeps the client entry within ${BUDGET_BYTES} bytes minified and gzipped`, async () => {
    const source = await bundle({ contents: "export { createClient } from './index.ts';" }, false);
    const minified = (await minify(source, { module: true, compress: { passes: 2 }, mangle: true })).code ?? '';
    const gzipped = gzipSync(minified, { level: 9 }).length;
    const esbuildOnly = gzipSync(await bundle({ contents: "export { createClient } from './index.ts';" }), { level: 9 }).length;
    console.log(`@rampart/sdk createClient entry: ${minified.length} B minified, ${gzipped} B gzipped with terser (${esbuildOnly} B with esbuild's minifier); budget ${BUDGET_BYTES} B`);
    expect(minified).toContain('createClient');
    expect(gzipped).toBeLessThanOrEqual(BUDGET_BYTES);
  });

  it('keeps node: imports out of every entry but @rampart/sdk/node', async () => {
    for (const file of ['index.ts', 'browser.ts', 'openfeature/index.ts']) {
      expect(await bundle({ file })).not.toMatch(/node:/);
    }
  });
});
