// Starts a real, private Prometheus (the `prometheus` binary from PATH) for tests: a temporary
// TSDB, a generated config scraping the given targets every second, a free loopback port.
// There is no fallback: without the binary the tests that need it fail and say how to get it.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, which } from './redis-server.js';

export interface PrometheusServer {
  /** Base URL, e.g. `http://127.0.0.1:9091`. */
  readonly url: string;
  /** `prometheus --version`, first line. */
  readonly version: string;
  readonly process: ChildProcess;
  /** Runs an instant query; resolves with `data.result` of a success, rejects otherwise. */
  query(expression: string): Promise<unknown>;
  /** Resolves once every scrape target of `job` reports `up == 1`. */
  waitForTarget(job: string, timeoutMs?: number): Promise<void>;
  /** Stops Prometheus (SIGTERM, then SIGKILL) and removes its folder. */
  stop(): Promise<void>;
}

export interface PrometheusOptions {
  /** Scrape targets (`host:port`) of the job `app`. */
  readonly targets: readonly string[];
  /** Default 1000 ms. */
  readonly scrapeIntervalMs?: number;
  /** Longest wait for `/-/ready`; default 20 s. */
  readonly startTimeoutMs?: number;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function versionOf(binary: string): Promise<string> {
  const child = spawn(binary, ['--version'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  await new Promise<void>((resolve) => child.once('close', () => { resolve(); }));
  return output.split('\n')[0]?.trim() ?? '';
}

/** Starts Prometheus and waits until it is ready (not until it has scraped; see waitForTarget). */
export async function startPrometheus(options: PrometheusOptions): Promise<PrometheusServer> {
  const binary = which('prometheus');
  if (binary === undefined) {
    throw new Error(
      'prometheus is not on PATH: these tests need a real Prometheus. Install it (apt-get install prometheus, ' +
        'or put the binary from https://prometheus.io/download/ on PATH); CI installs it.',
    );
  }
  const version = await versionOf(binary);
  const dir = mkdtempSync(join(tmpdir(), 'rampart-prometheus-'));
  const interval = `${options.scrapeIntervalMs ?? 1000}ms`;
  const config = [
    'global:',
    `  scrape_interval: ${interval}`,
    // The default 10 s timeout is longer than the interval, which Prometheus refuses.
    `  scrape_timeout: ${interval}`,
    `  evaluation_interval: ${interval}`,
    'scrape_configs:',
    '  - job_name: app',
    '    static_configs:',
    `      - targets: [${options.targets.map((t) => `'${t}'`).join(', ')}]`,
    '',
  ].join('\n');
  const configPath = join(dir, 'prometheus.yml');
  writeFileSync(configPath, config);
  const port = await freePort();
  const child = spawn(
    binary,
    [
      `--config.file=${configPath}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--storage.tsdb.retention.time=1h',
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => { resolve(); }));
  const url = `http://127.0.0.1:${port}`;

  async function stop(): Promise<void> {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  }

  const deadline = Date.now() + (options.startTimeoutMs ?? 20_000);
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      await stop();
      throw new Error(`prometheus (${version}) exited during startup: ${stderr.trim()}`);
    }
    const ready = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1000) }).then(
      (response) => response.status === 200,
      () => false,
    );
    if (ready) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`prometheus (${version}) on ${url} was not ready within ${options.startTimeoutMs ?? 20_000} ms: ${stderr.trim()}`);
    }
    await sleep(100);
  }

  async function query(expression: string): Promise<unknown> {
    const address = `${url}/api/v1/query?query=${encodeURIComponent(expression)}`;
    const response = await fetch(address, { signal: AbortSignal.timeout(5000) });
    const body = (await response.json()) as { status?: string; error?: string; data?: { result?: unknown } };
    if (body.status !== 'success') throw new Error(`query ${expression} failed: ${body.error ?? response.status}`);
    return body.data?.result;
  }

  return {
    url,
    version,
    process: child,
    query,
    async waitForTarget(job, timeoutMs = 15_000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const result = await query(`min(up{job="${job}"})`).catch(() => []);
        const value = Array.isArray(result) ? (result[0] as { value?: [number, string] } | undefined)?.value?.[1] : undefined;
        if (value === '1') return;
        if (Date.now() > until) throw new Error(`prometheus did not scrape job ${job} successfully within ${timeoutMs} ms: ${stderr.trim()}`);
        await sleep(200);
      }
    },
    stop,
  };
}
