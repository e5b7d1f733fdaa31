// Against a real HTTP server on a loopback socket (test/support/metrics-app.ts).
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpJsonSource, pathTokens } from '../../src/metrics/http-json-source.js';
import type { Observation } from '../../src/metrics/metric-source.js';
import { createMetricSources } from '../../src/metrics/sources.js';
import { startMetricsApp } from '../support/metrics-app.js';
import type { MetricsApp } from '../support/metrics-app.js';
import { freePort } from '../support/redis-server.js';

/** Asserts an observation's kind and that its detail contains `fragment` (or matches it). */
function expectObservation(observation: Observation, kind: 'empty' | 'error', fragment: string | RegExp): void {
  expect(observation.kind).toBe(kind);
  const detail = observation.kind === 'empty' || observation.kind === 'error' ? observation.detail : '';
  if (typeof fragment === 'string') expect(detail).toContain(fragment);
  else expect(detail).toMatch(fragment);
}

let app: MetricsApp;
const source = createHttpJsonSource({ timeoutMs: 2000 });

const stats = {
  errorRate: 0.02,
  rate: '0.5',
  blank: '',
  name: 'payments',
  nothing: null,
  healthy: true,
  huge: 0,
  queues: [{ depth: 5 }, { depth: 9 }],
  'a/b': 3,
  'm~n': 4,
  'x.y': 6,
};

function observe(path: string, url = `${app.url}/stats`, headers?: Record<string, string>): Promise<Observation> {
  const spec = headers === undefined ? { type: 'http' as const, url, path } : { type: 'http' as const, url, path, headers };
  return source.observe(spec, 'checkout', new Date());
}

beforeAll(async () => {
  app = await startMetricsApp();
  // JSON.stringify cannot write 1e400 (it is Infinity in JS, written as null); splice it into the text.
  app.respond('/stats', { text: JSON.stringify(stats).replace('"huge":0', '"huge":1e400'), contentType: 'application/json' });
});

afterAll(async () => {
  await source.close();
  await app.stop();
});

describe('http json source', () => {
  it('reads a top-level number with a JSON Pointer', async () => {
    expect(await observe('/errorRate')).toEqual({ kind: 'value', value: 0.02 });
  });

  it('reads a nested number through an array index', async () => {
    expect(await observe('/queues/1/depth')).toEqual({ kind: 'value', value: 9 });
  });

  it('reads a decimal string as a number', async () => {
    expect(await observe('/rate')).toEqual({ kind: 'value', value: 0.5 });
  });

  it('reads the dotted form as well', async () => {
    expect(await observe('queues.0.depth')).toEqual({ kind: 'value', value: 5 });
    expect(await observe('errorRate')).toEqual({ kind: 'value', value: 0.02 });
  });

  it('unescapes ~1 and ~0 in pointer tokens', async () => {
    expect(await observe('/a~1b')).toEqual({ kind: 'value', value: 3 });
    expect(await observe('/m~0n')).toEqual({ kind: 'value', value: 4 });
    expect(await observe('/x.y')).toEqual({ kind: 'value', value: 6 });
  });

  it('reads a missing key, index or past-the-end "-" as empty', async () => {
    expectObservation(await observe('/latency'), 'empty', "nothing at '/latency'");
    expect(await observe('/queues/7/depth')).toMatchObject({ kind: 'empty' });
    expect(await observe('/queues/-')).toMatchObject({ kind: 'empty' });
    expect(await observe('/queues/01/depth')).toMatchObject({ kind: 'empty' });
    expect(await observe('/errorRate/deeper')).toMatchObject({ kind: 'empty' });
  });

  it('reads null as empty', async () => {
    expectObservation(await observe('/nothing'), 'empty', 'is null');
  });

  it('reports a non-numeric string, an empty string, a boolean or an object as an error', async () => {
    expectObservation(await observe('/name'), 'error', "value 'payments' at '/name' is not a number");
    expectObservation(await observe('/blank'), 'error', 'is not a number');
    expectObservation(await observe('/healthy'), 'error', 'is a boolean, not a number');
    expectObservation(await observe('/queues'), 'error', 'is an array, not a number');
  });

  it('reports a number out of double range as an error', async () => {
    expectObservation(await observe('/huge'), 'error', 'out of range');
  });

  it('reports a bad ~ escape in a pointer as an error', async () => {
    expectObservation(await observe('/a~2b'), 'error', 'not a valid JSON Pointer');
  });

  it('reads the whole document with the empty pointer', async () => {
    app.respond('/bare', { json: 42 });
    expect(await observe('', `${app.url}/bare`)).toEqual({ kind: 'value', value: 42 });
  });

  it('sends the spec headers', async () => {
    app.respond('/secure', { json: { depth: 11 }, requireHeaders: { authorization: 'Bearer t0ken' } });
    expectObservation(await observe('/depth', `${app.url}/secure`), 'error', 'HTTP 401');
    expect(await observe('/depth', `${app.url}/secure`, { Authorization: 'Bearer t0ken' })).toEqual({ kind: 'value', value: 11 });
  });

  it('reports a 500 as an error with the status and the start of the body', async () => {
    app.respond('/broken', { status: 500, json: { error: 'database is down' } });
    const observation = await observe('/errorRate', `${app.url}/broken`);
    expectObservation(observation, 'error', 'answered HTTP 500');
    expectObservation(observation, 'error', 'database is down');
  });

  it('reports a body that is not JSON as an error', async () => {
    app.respond('/html', { text: '<html><body>maintenance</body></html>', contentType: 'text/html' });
    const observation = await observe('/errorRate', `${app.url}/html`);
    expectObservation(observation, 'error', 'not JSON (text/html)');
  });

  it('reports a server that never answers as an error within the timeout', async () => {
    app.hang('/slow');
    const quick = createHttpJsonSource({ timeoutMs: 300 });
    const started = performance.now();
    const observation = await quick.observe({ type: 'http', url: `${app.url}/slow`, path: '/x' }, 'checkout', new Date());
    const elapsed = performance.now() - started;
    expectObservation(observation, 'error', 'no answer within 300 ms');
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(700);
  });

  it('reports a server that stalls in the middle of the body as an error within the timeout', async () => {
    app.respond('/stall', { json: { errorRate: 0.1 }, stallBody: true });
    const quick = createHttpJsonSource({ timeoutMs: 300 });
    const started = performance.now();
    const observation = await quick.observe({ type: 'http', url: `${app.url}/stall`, path: '/errorRate' }, 'checkout', new Date());
    expectObservation(observation, 'error', 'no answer within 300 ms');
    expect(performance.now() - started).toBeLessThan(700);
  });

  it('reports a refused connection as an error at once', async () => {
    const port = await freePort();
    const started = performance.now();
    const observation = await observe('/x', `http://127.0.0.1:${port}/stats`);
    expectObservation(observation, 'error', 'ECONNREFUSED');
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('sends credentials in the URL as basic auth', async () => {
    app.respond('/basic', { json: { depth: 2 }, requireHeaders: { authorization: `Basic ${Buffer.from('ops:pa ss').toString('base64')}` } });
    expect(await observe('/depth', `http://ops:pa%20ss@${app.target}/basic`)).toEqual({ kind: 'value', value: 2 });
  });

  it('keeps a password in the URL out of the detail', async () => {
    const port = await freePort();
    const observation = await observe('/x', `http://user:s3cret@127.0.0.1:${port}/stats`);
    expect(observation.kind).toBe('error');
    expect(JSON.stringify(observation)).not.toContain('s3cret');
  });

  it('is reached through createMetricSources for http specs', async () => {
    const sources = createMetricSources({ outcomes: { summary: () => Promise.reject(new Error('unused')) } });
    try {
      expect(await sources.observe({ type: 'http', url: `${app.url}/stats`, path: '/errorRate' }, 'checkout', new Date())).toEqual({ kind: 'value', value: 0.02 });
    } finally {
      await sources.close();
    }
  });
});

describe('pathTokens', () => {
  it('splits a JSON Pointer and unescapes ~01 to ~1, not /', () => {
    expect(pathTokens('/a~01b/0')).toEqual(['a~1b', '0']);
    expect(pathTokens('/')).toEqual(['']);
    expect(pathTokens('')).toEqual([]);
  });

  it('splits the dotted form on dots', () => {
    expect(pathTokens('a.b.0')).toEqual(['a', 'b', '0']);
  });
});
