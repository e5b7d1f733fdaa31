// Serves the ops page: one static HTML shell, its script and its stylesheet. The page holds no
// data; every data call it makes carries the admin token the person typed in.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { PROBLEM_BASE, sendProblem } from '../api/problem.js';
import { PAGE_HTML } from './page.js';

/** Where the page's script and stylesheet come from. */
export interface UiRoutesOptions {
  /** Folder holding the built `app.js` and `app.css` (`npm run build` writes dist/ui). */
  readonly distDir?: string;
  /** Folder holding `app.ts` and `app.css`, bundled with esbuild when no build exists (dev, tests). */
  readonly sourceDir?: string;
}

interface Asset {
  readonly body: string;
  readonly type: string;
}

type Loaded = { readonly ok: true; readonly js: Asset; readonly css: Asset } | { readonly ok: false; readonly detail: string };

// Strict: the shell loads only its own script and stylesheet and talks only to this origin.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const JS = 'text/javascript; charset=utf-8';
const CSS = 'text/css; charset=utf-8';

// A variable specifier, so the server bundle neither inlines esbuild nor needs it installed.
const ESBUILD = 'esbuild';
interface Esbuild {
  build(options: Record<string, unknown>): Promise<{ outputFiles?: { text: string }[] }>;
}

async function fromDist(dir: string): Promise<Loaded | undefined> {
  const js = `${dir}/app.js`;
  if (!existsSync(js)) return undefined;
  return { ok: true, js: { body: await readFile(js, 'utf8'), type: JS }, css: { body: await readFile(`${dir}/app.css`, 'utf8'), type: CSS } };
}

async function fromSource(dir: string): Promise<Loaded | undefined> {
  const entry = `${dir}/app.ts`;
  if (!existsSync(entry)) return undefined;
  let esbuild: Esbuild;
  try {
    esbuild = (await import(ESBUILD)) as Esbuild;
  } catch {
    return { ok: false, detail: 'the ops page is not built (no dist/ui/app.js) and esbuild is not installed to bundle it from src/ui; run `npm run build`' };
  }
  const result = await esbuild.build({ entryPoints: [entry], bundle: true, format: 'esm', platform: 'browser', target: 'es2022', write: false, minify: true, logLevel: 'silent' });
  const text = result.outputFiles?.[0]?.text;
  if (text === undefined) return { ok: false, detail: 'bundling src/ui/app.ts produced no output' };
  return { ok: true, js: { body: text, type: JS }, css: { body: await readFile(`${dir}/app.css`, 'utf8'), type: CSS } };
}

/**
 * The ops page at `GET /ui` (public: the shell holds no data) with `/ui/app.js` and `/ui/app.css`.
 * Serves the build in dist/ui when there is one, else bundles src/ui once with esbuild, else 503.
 *
 * @example
 * await buildApp({ ...deps, plugins: [uiRoutes()] });
 */
export function uiRoutes(options: UiRoutesOptions = {}) {
  // Bundled into dist/cli.js, import.meta.url is dist/cli.js; run from source, it is this file.
  const distDir = options.distDir ?? fileURLToPath(new URL('./ui', import.meta.url));
  const sourceDir = options.sourceDir ?? fileURLToPath(new URL('.', import.meta.url)).replace(/\/$/, '');
  let loading: Promise<Loaded> | undefined;
  const load = (): Promise<Loaded> => {
    loading ??= (async (): Promise<Loaded> => {
      try {
        return (await fromDist(distDir)) ?? (await fromSource(sourceDir)) ?? { ok: false, detail: `the ops page is not built: no ${distDir}/app.js and no source to bundle; run \`npm run build\`` };
      } catch (error) {
        loading = undefined;
        return { ok: false, detail: `the ops page could not be loaded: ${error instanceof Error ? error.message : String(error)}` };
      }
    })();
    return loading;
  };
  const asset = async (reply: FastifyReply, pick: (loaded: Loaded & { ok: true }) => Asset): Promise<FastifyReply> => {
    const loaded = await load();
    if (!loaded.ok) {
      void reply.header('retry-after', '60');
      return sendProblem(reply, { type: `${PROBLEM_BASE}ui-unavailable`, title: 'Ops page unavailable', status: 503, detail: loaded.detail });
    }
    const { body, type } = pick(loaded);
    return reply.type(type).header('cache-control', 'no-cache').header('x-content-type-options', 'nosniff').send(body);
  };

  return async (app: FastifyInstance): Promise<void> => {
    app.get('/ui', { config: { access: 'public' } }, async (_request, reply) =>
      reply
        .type('text/html; charset=utf-8')
        .header('content-security-policy', CSP)
        .header('x-content-type-options', 'nosniff')
        .header('referrer-policy', 'no-referrer')
        .header('cache-control', 'no-cache')
        .send(PAGE_HTML),
    );
    app.get('/ui/app.js', { config: { access: 'public' } }, async (_request, reply) => asset(reply, (l) => l.js));
    app.get('/ui/app.css', { config: { access: 'public' } }, async (_request, reply) => asset(reply, (l) => l.css));
  };
}
