/**
 * Peer server benchmark: `rampart serve` against the Unleash Proxy (@unleash/proxy, the one peer
 * flag server that installs from npm and runs here without external services), each a child
 * process with the same 50 flags, loaded by autocannon in the same run with the same context.
 * Reported as ratios rampart/peer of req/s. See bench/README.md.
 *
 * Run: npm run bench:peer-server [-- --connections 50] [-- --duration 5] [-- --rounds 3]
 * (`node --import tsx bench/peer-server.ts`).
 * Exit code: 0 all good; 1 unexpected statuses, errors, or the two servers disagree on a flag.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { RequestListener } from 'node:http';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildDist, startServerProcess, TS_NODE_ARGS } from '../test/support/server-process.js';
import type { ServerProcess } from '../test/support/server-process.js';
import { autocannon } from './autocannon.js';
import type { AutocannonRequest } from './autocannon.js';
import { fmtInt, median, table } from './measure.js';


/** The part of @unleash/proxy used here (its types need express's, which are not installed). */
type CreateApp = (options: Record<string, unknown>) => RequestListener;

/** One flag, as both servers get it. */
interface BenchFlag {
  readonly key: string;
  readonly enabled: boolean;
  readonly percentage: number;
}

const { values } = parseArgs({
  options: {
    flags: { type: 'string', default: '50' },
    connections: { type: 'string', default: '50' },
    duration: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '1' },
    rounds: { type: 'string', default: '3' },
    'peer-child': { type: 'string' },
  },
});

const PROXY_KEY = 'bench-proxy-key';

if (values['peer-child'] !== undefined) {
  // Child mode: the Unleash Proxy with the flags as bootstrap data and an unreachable upstream
  // (no refresh, no metrics), so it serves only what it was given, as an offline edge would.
  const flags = JSON.parse(readFileSync(values['peer-child'], 'utf8')) as BenchFlag[];
  const { createApp } = createRequire(import.meta.url)('@unleash/proxy') as { createApp: CreateApp };
  const app = createApp({
    unleashUrl: 'http://127.0.0.1:1/api/',
    unleashApiToken: 'unused',
    clientKeys: [PROXY_KEY],
    refreshInterval: 0,
    metricsInterval: 0,
    enableAllEndpoint: true,
    logLevel: 'error',
    expBootstrap: {
      data: flags.map((f) => ({
        name: f.key,
        enabled: f.enabled,
        strategies: [{ name: 'flexibleRollout', parameters: { rollout: String(f.percentage), stickiness: 'default', groupId: f.key } }],
      })),
    },
  });
  const server = createServer(app);
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    console.log(`LISTENING http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`);
  });
  process.once('SIGTERM', () => server.close(() => process.exit(0)));
} else {
  await main();
}

interface Peer {
  readonly url: string;
  readonly process: ChildProcess;
  stop(): Promise<void>;
}

async function startPeer(flagsFile: string): Promise<Peer> {
  const child = spawn(process.execPath, [...TS_NODE_ARGS, fileURLToPath(import.meta.url), '--peer-child', flagsFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`the Unleash Proxy did not start within 20 s:\n${output}`)); }, 20_000);
    const onData = (d: Buffer): void => {
      output += d.toString();
      const match = /LISTENING (\S+)/.exec(output);
      if (match?.[1] !== undefined) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => { reject(new Error(`the Unleash Proxy exited with ${code ?? 'a signal'}:\n${output}`)); });
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => { resolve(); }));
  return {
    url,
    process: child,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

async function main(): Promise<void> {
  const FLAGS = Number(values.flags);
  const CONNECTIONS = Number(values.connections);
  const DURATION = Number(values.duration);
  const WARMUP = Number(values.warmup);
  const ROUNDS = Math.max(1, Number(values.rounds));
  const SDK_TOKEN = 'bench-sdk';
  const ADMIN_TOKEN = 'bench-admin';
  const USER = 'user-42';
  // The same flags as bench/server.ts: whole percentages, where Rampart's rule and Unleash's
  // flexible rollout (groupId = flag key) put every ASCII id in the same bucket.
  const flags: BenchFlag[] = Array.from({ length: FLAGS }, (_, i) => ({ key: `flag-${i}`, enabled: i % 5 !== 0, percentage: (i * 7) % 100 }));

  console.log('Rampart vs peer server benchmark');
  console.log(`node ${process.version} ${process.platform}/${process.arch}, ${cpus().length} CPUs (${cpus()[0]?.model ?? 'unknown'}); load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  console.log(`peer: @unleash/proxy ${(createRequire(import.meta.url)('@unleash/proxy/package.json') as { version: string }).version} (bootstrap data, no upstream)`);
  console.log(`autocannon: ${CONNECTIONS} connections, ${ROUNDS} rounds of ${DURATION} s per server per route after ${WARMUP} s warm-up, loopback; ${FLAGS} flags\n`);

  const dir = mkdtempSync(join(tmpdir(), 'rampart-bench-peer-'));
  const flagsFile = join(dir, 'flags.json');
  writeFileSync(flagsFile, JSON.stringify(flags));
  const failures: string[] = [];
  let rampart: ServerProcess | undefined;
  let peer: Peer | undefined;
  try {
    // Rampart as users run it (`npm start`): the dist/ bundle, built from the sources first.
    buildDist();
    rampart = await startServerProcess({
      RAMPART_DATA_DIR: join(dir, 'data'),
      RAMPART_GUARD: 'off',
      RAMPART_ADMIN_TOKENS: `ops:${ADMIN_TOKEN}`,
      RAMPART_SDK_TOKENS: `bench:${SDK_TOKEN}`,
      LOG_LEVEL: 'warn',
    }, 15_000, { dist: true });
    for (const f of flags) {
      const res = await fetch(`${rampart.url}/flags/${f.key}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ enabled: f.enabled, percentage: f.percentage, description: `bench flag ${f.key}` }),
        signal: AbortSignal.timeout(5000),
      });
      if (!res.ok) throw new Error(`PUT /flags/${f.key}: ${res.status} ${await res.text()}`);
    }
    peer = await startPeer(flagsFile);

    // Each route: the request both servers get, the status expected, and how to read the answer.
    const rampartHeaders = { authorization: `Bearer ${SDK_TOKEN}`, 'content-type': 'application/json' };
    const peerHeaders = { authorization: PROXY_KEY, 'content-type': 'application/json' };
    let newUsers = 0;
    const routes = [
      {
        name: `evaluate all ${FLAGS} flags for one user`,
        rampart: { method: 'POST', path: '/ofrep/v1/evaluate/flags', headers: rampartHeaders, body: JSON.stringify({ context: { targetingKey: USER, plan: 'pro' } }) },
        peer: { method: 'POST', path: '/proxy/all', headers: peerHeaders, body: JSON.stringify({ context: { userId: USER, properties: { plan: 'pro' } } }) },
      },
      {
        name: 'evaluate one flag for one user',
        rampart: { method: 'POST', path: '/ofrep/v1/evaluate/flags/flag-13', headers: rampartHeaders, body: JSON.stringify({ context: { targetingKey: USER, plan: 'pro' } }) },
        peer: { method: 'POST', path: '/proxy', headers: peerHeaders, body: JSON.stringify({ context: { userId: USER, properties: { plan: 'pro' } }, toggles: ['flag-13'] }) },
      },
      {
        // A user never seen before on every request: Rampart cannot reuse a kept bulk answer.
        name: `evaluate all ${FLAGS} flags, a new user each request`,
        rampart: {
          method: 'POST',
          path: '/ofrep/v1/evaluate/flags',
          headers: rampartHeaders,
          body: JSON.stringify({ context: { targetingKey: USER, plan: 'pro' } }),
          setupRequest: (r: AutocannonRequest) => ({ ...r, body: JSON.stringify({ context: { targetingKey: `user-${newUsers++}`, plan: 'pro' } }) }),
        },
        peer: {
          method: 'POST',
          path: '/proxy/all',
          headers: peerHeaders,
          body: JSON.stringify({ context: { userId: USER, properties: { plan: 'pro' } } }),
          setupRequest: (r: AutocannonRequest) => ({ ...r, body: JSON.stringify({ context: { userId: `user-${newUsers++}`, properties: { plan: 'pro' } } }) }),
        },
      },
    ];

    // Same answers first: which flags are on for the user, on both servers and both routes.
    const ask = async (base: string, r: AutocannonRequest): Promise<{ status: number; json: unknown; bytes: number }> => {
      const res = await fetch(`${base}${r.path ?? ''}`, { method: r.method ?? 'GET', headers: r.headers ?? {}, body: r.body ?? null, signal: AbortSignal.timeout(5000) });
      const text = await res.text();
      return { status: res.status, json: JSON.parse(text) as unknown, bytes: Buffer.byteLength(text) };
    };
    const onFromRampart = (json: unknown): string[] => {
      const list = (json as { flags?: { key: string; value?: unknown }[] }).flags ?? [json as { key: string; value?: unknown }];
      return list.filter((f) => f.value === true).map((f) => f.key).sort();
    };
    const onFromPeer = (json: unknown): string[] => (json as { toggles: { name: string; enabled: boolean }[] }).toggles.filter((t) => t.enabled).map((t) => t.name).sort();
    const sizes: { rampart: number; peer: number }[] = [];
    for (const route of routes) {
      const a = await ask(rampart.url, route.rampart);
      const b = await ask(peer.url, route.peer);
      sizes.push({ rampart: a.bytes, peer: b.bytes });
      if (a.status !== 200 || b.status !== 200) failures.push(`${route.name}: status ${a.status} (rampart) and ${b.status} (peer)`);
      const onA = onFromRampart(a.json).join(',');
      const onB = onFromPeer(b.json).join(',');
      console.log(`${route.name}: rampart ${fmtInt(a.bytes)} B, peer ${fmtInt(b.bytes)} B; flags on for ${USER}: ${onA === onB ? `the same on both (${onA === '' ? 'none' : onA.split(',').length})` : `DIFFERENT: rampart [${onA}] peer [${onB}]`}`);
      if (onA !== onB) failures.push(`${route.name}: the servers disagree on which flags are on`);
    }
    console.log('');

    interface Run { reqPerSec: number; p50: number; p99: number }
    const load = async (base: string, request: AutocannonRequest, label: string): Promise<Run> => {
      const options = { url: base, connections: CONNECTIONS, timeout: 10, requests: [request] };
      if (WARMUP > 0) await autocannon({ ...options, duration: WARMUP });
      const r = await autocannon({ ...options, duration: DURATION });
      const ok = r.statusCodeStats['200']?.count ?? 0;
      if (r.errors > 0 || r.timeouts > 0 || ok !== r.requests.total) failures.push(`${label}: ${r.errors} errors, ${r.timeouts} timeouts, ${fmtInt(r.requests.total - ok)} answers other than 200`);
      return { reqPerSec: r.requests.average, p50: r.latency.p50, p99: r.latency.p99 };
    };
    const results: { route: string; rounds: { rampart: Run; peer: Run; ratio: number }[]; ratio: number; rampart: Run; peer: Run }[] = [];
    for (const [i, route] of routes.entries()) {
      const rounds: { rampart: Run; peer: Run; ratio: number }[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        // Which server goes first alternates, so a busy moment does not always hit the same one.
        const rampartFirst = (i + round) % 2 === 0;
        const first = rampartFirst ? await load(rampart.url, route.rampart, `rampart ${route.name}`) : await load(peer.url, route.peer, `peer ${route.name}`);
        const second = rampartFirst ? await load(peer.url, route.peer, `peer ${route.name}`) : await load(rampart.url, route.rampart, `rampart ${route.name}`);
        const r = rampartFirst ? { rampart: first, peer: second } : { rampart: second, peer: first };
        rounds.push({ ...r, ratio: r.rampart.reqPerSec / r.peer.reqPerSec });
      }
      const med = (pick: (x: { rampart: Run; peer: Run }) => Run): Run => ({
        reqPerSec: median(rounds.map((x) => pick(x).reqPerSec)),
        p50: median(rounds.map((x) => pick(x).p50)),
        p99: median(rounds.map((x) => pick(x).p99)),
      });
      results.push({ route: route.name, rounds, ratio: median(rounds.map((x) => x.ratio)), rampart: med((x) => x.rampart), peer: med((x) => x.peer) });
    }

    console.log(table(
      ['route', 'rampart req/s', 'peer req/s', 'rampart p50/p99 ms', 'peer p50/p99 ms', 'rampart/peer (median)', 'per round'],
      results.map((r) => [
        r.route,
        fmtInt(Math.round(r.rampart.reqPerSec)),
        fmtInt(Math.round(r.peer.reqPerSec)),
        `${r.rampart.p50}/${r.rampart.p99}`,
        `${r.peer.p50}/${r.peer.p99}`,
        `${r.ratio.toFixed(2)}x`,
        r.rounds.map((x) => x.ratio.toFixed(2)).join(' '),
      ]),
      [false, true, true, true, true, true, false],
    ));
    for (const r of results) console.log(`PEER ${r.route}: rampart/unleash-proxy req/s = ${r.ratio.toFixed(2)}x`);
    if (failures.length > 0) console.log(`\nFAILURES:\n${failures.map((f) => `  ${f}`).join('\n')}`);
    mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
    const out = new URL('./results/peer-server.json', import.meta.url);
    writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), loadAverage: loadavg(), options: { flags: FLAGS, connections: CONNECTIONS, duration: DURATION, warmup: WARMUP, rounds: ROUNDS }, sizes, results, failures }, null, 2)}\n`);
    console.log(`results: ${out.pathname}`);
    process.exitCode = failures.length > 0 ? 1 : 0;
  } finally {
    await peer?.stop();
    await rampart?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
