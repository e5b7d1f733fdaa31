/**
 * Runs every benchmark in sequence, each as its own child process, then prints one markdown table
 * of their key figures (also written to bench/results/summary.md). See bench/README.md.
 *
 * Run: npm run bench   (`node --import tsx bench/run-all.ts`; builds the SDK once first)
 * Exit code: 0 every benchmark passed; otherwise the highest exit code of the benchmarks.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const RESULTS = new URL('./results/', import.meta.url);
const started = new Date();

/** Runs a command with inherited stderr; echoes stdout and returns it. */
function run(command: string, args: readonly string[]): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve, reject) => {
    console.log(`\n$ ${[command, ...args].join(' ')}`);
    const child = spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      process.stdout.write(d);
    });
    child.once('error', reject);
    child.once('exit', (code, signal) => { resolve({ code: code ?? (signal === null ? 1 : 128), stdout }); });
  });
}

/** A results file written by this run (not left over from an earlier one), or undefined. */
function freshJson(name: string): Record<string, unknown> | undefined {
  const file = new URL(name, RESULTS);
  if (!existsSync(file)) return undefined;
  const parsed = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  return typeof parsed.date === 'string' && new Date(parsed.date) >= started ? parsed : undefined;
}

interface Row {
  benchmark: string;
  metric: string;
  value: string;
  goal: string;
  result: string;
}
const rows: Row[] = [];
const missing = (benchmark: string, code: number): void => {
  rows.push({ benchmark, metric: '(no results)', value: '-', goal: '-', result: `FAIL (exit ${code})` });
};
const verdict = (pass: boolean | undefined): string => (pass === undefined ? '-' : pass ? 'PASS' : 'FAIL');
const x = (n: number): string => `${n.toFixed(2)}x`;
const int = (n: number): string => Math.round(n).toLocaleString('en-US');
const codes: number[] = [];
const names: string[] = [];
const loadAtStart = loadavg();
const load = (l: readonly number[]): string => l.map((v) => v.toFixed(2)).join(' ');

const NODE = process.execPath;
const TSX = ['--import', 'tsx'];

const build = await run('npm', ['run', 'build', '--workspace', 'sdk']);
if (build.code !== 0) throw new Error(`npm run build --workspace sdk failed with exit code ${build.code}`);

// ---- SDK evaluation. -----------------------------------------------------------------------------
{
  const { code } = await run(NODE, ['--expose-gc', ...TSX, 'bench/sdk-eval.ts']);
  codes.push(code);
  names.push('sdk-eval');
  const r = freshJson('sdk-eval.json') as
    | {
        goal: { value: number; limit: number; pass: boolean };
        timing: Record<string, { medianNs: number }>;
        ratios: Record<string, { value: number }>;
        allocation: { bytesPerCall: Record<string, number> };
      }
    | undefined;
  if (r === undefined) missing('sdk-eval', code);
  else {
    rows.push({ benchmark: 'sdk-eval', metric: 'isEnabled / floor (median ns/call)', value: `${x(r.goal.value)} (${r.timing.rampart?.medianNs.toFixed(1) ?? '?'} ns)`, goal: `<= ${r.goal.limit}x`, result: verdict(r.goal.pass) });
    for (const name of ['unleash / isEnabled', 'growthbook / isEnabled']) {
      const ratio = r.ratios[name];
      if (ratio !== undefined) rows.push({ benchmark: 'sdk-eval', metric: `${name} (peers slower by)`, value: x(ratio.value), goal: '-', result: '-' });
    }
    const bytes = r.allocation.bytesPerCall.rampart;
    if (bytes !== undefined) rows.push({ benchmark: 'sdk-eval', metric: 'isEnabled bytes/call', value: bytes.toFixed(1), goal: '~0', result: '-' });
  }
}

// ---- Propagation at 1,000 and 5,000 clients (writes no JSON: parse its output). -----------------
// The goal (p99 <= 100 ms) is set at 1,000 clients; at 5,000 the figures are reported, and its
// exit code 3 (p99 over 100 ms) does not fail the run, while 1 (a client missed a change) does.
// 5,000 clients in one event loop delay their own change events (p50 about twice that of 2 worker
// threads in trials here), so at 5,000 they are spread over 2 worker threads.
for (const [clients, workers] of [[1000, 0], [5000, 2]] as const) {
  const { code, stdout } = await run(NODE, ['--expose-gc', ...TSX, 'bench/propagation.ts', '--clients', String(clients), '--workers', String(workers)]);
  const goalApplies = clients === 1000;
  codes.push(goalApplies || code !== 3 ? code : 0);
  names.push(`propagation ${int(clients)}`);
  const goal = /GOAL p99 = ([\d.]+) ms \(goal <= (\d+) ms\) at ([\d,]+) clients: (PASS|FAIL)/.exec(stdout);
  const all = /all ([\d,]+) deliveries[^:]*: p50 ([\d.]+) ms, p99 ([\d.]+) ms, max ([\d.]+) ms/.exec(stdout);
  const connect = /connect: ([\d,]+)\/([\d,]+) ready in ([\d.]+) ms/.exec(stdout);
  const busy = /event loop busy ([\d%, ]+?) of the PATCH phase/.exec(stdout);
  const heap = /heap: .*?: ([\d.]+) MiB per client \(([\d,]+) B per flag\)/.exec(stdout);
  const n = int(clients);
  if (goal === null || all === null) missing(`propagation ${n}`, code);
  else {
    rows.push({
      benchmark: 'propagation',
      metric: `PATCH -> change in all ${n} clients${workers > 0 ? ` (${workers} worker threads)` : ''}, p50/p99/max (${all[1] ?? '?'} deliveries)`,
      value: `${all[2] ?? '?'} / ${all[3] ?? '?'} / ${all[4] ?? '?'} ms${busy === null ? '' : ` (clients' event loop busy ${busy[1] ?? '?'})`}`,
      goal: goalApplies ? `p99 <= ${goal[2] ?? '?'} ms` : '-',
      result: goalApplies ? (goal[4] ?? '?') : '-',
    });
    if (connect !== null) rows.push({ benchmark: 'propagation', metric: `connect ${connect[2] ?? '?'} streaming clients`, value: `${connect[1] ?? '?'} ready in ${connect[3] ?? '?'} ms`, goal: '-', result: '-' });
  }
  // The heap part is the same in both runs (it does not depend on --clients): report it once.
  if (goalApplies && heap !== null) rows.push({ benchmark: 'propagation', metric: 'SDK heap per client, 10,000-flag snapshot', value: `${heap[1] ?? '?'} MiB (${heap[2] ?? '?'} B/flag)`, goal: '-', result: '-' });
}

// ---- Guard tick over 10,000 running plans. ---------------------------------------------------------
{
  const { code } = await run(NODE, ['--conditions=rampart-source', ...TSX, 'bench/guard-tick.ts']);
  codes.push(code);
  names.push('guard-tick');
  const r = freshJson('guard-tick.json') as
    | { loadAverage: number[]; results: { store: string; ticks: number; tickP50: number; tickP99: number; floorP50: number; ratio: number; duePerTick: number; stagesPerTick: number }[] }
    | undefined;
  if (r === undefined) missing('guard-tick', code);
  else {
    for (const g of r.results) {
      rows.push({
        benchmark: 'guard-tick',
        metric: `tick, 10,000 running plans, ${g.store} store: p50/p99 (${g.ticks} ticks); tick / floor (reading every plan and flag)`,
        value: `${int(g.tickP50)} / ${int(g.tickP99)} ms; ${x(g.ratio)} (floor ${int(g.floorP50)} ms); ${int(g.duePerTick)} due, ${int(g.stagesPerTick)} stages applied per tick`,
        goal: '-',
        result: '-',
      });
    }
  }
}

// ---- Server throughput. --------------------------------------------------------------------------
{
  const { code } = await run(NODE, [...TSX, 'bench/server.ts']);
  codes.push(code);
  names.push('server');
  interface Run { reqPerSec: number; p99: number }
  const r = freshJson('server.json') as
    | {
        options: { store: string; connections: number };
        reads?: { route: string; rampart: Run; bare: Run; ratio: number; cpuRatio: number; inGoal: boolean; pass: boolean }[];
        writes?: { store: string; concurrent: Run; sequential: { p50: number; p99: number } }[];
      }
    | undefined;
  if (r === undefined) missing('server', code);
  else {
    for (const read of r.reads ?? []) {
      rows.push({
        benchmark: 'server',
        metric: `${read.route}: rampart/bare req/s (${r.options.store} store)`,
        value: `${x(read.ratio)} (${int(read.rampart.reqPerSec)} vs ${int(read.bare.reqPerSec)}; p99 ${read.rampart.p99} vs ${read.bare.p99} ms; CPU per request bare/rampart ${x(read.cpuRatio)})`,
        goal: read.inGoal ? '>= 0.8x' : '-',
        result: read.inGoal ? verdict(read.pass) : '-',
      });
    }
    for (const w of r.writes ?? []) {
      rows.push({
        benchmark: 'server',
        metric: `${w.store} store write latency: sequential PATCH /flags/x p50/p99`,
        value: `${w.sequential.p50.toFixed(2)} / ${w.sequential.p99.toFixed(2)} ms`,
        goal: '-',
        result: '-',
      });
      rows.push({
        benchmark: 'server',
        metric: `${w.store} store writes: PATCH /flags/x at ${r.options.connections} connections, req/s (p99)`,
        value: `${int(w.concurrent.reqPerSec)} req/s (${w.concurrent.p99} ms)`,
        goal: '-',
        result: '-',
      });
    }
  }
}

// ---- Peer flag server (the Unleash Proxy from npm), same flags and context. ----------------------
{
  const { code } = await run(NODE, [...TSX, 'bench/peer-server.ts']);
  codes.push(code);
  names.push('peer-server');
  interface Run { reqPerSec: number; p50: number; p99: number }
  const r = freshJson('peer-server.json') as { results: { route: string; ratio: number; rampart: Run; peer: Run; rounds: { ratio: number }[] }[] } | undefined;
  if (r === undefined) missing('peer-server', code);
  else {
    for (const p of r.results) {
      rows.push({
        benchmark: 'peer-server',
        metric: `${p.route}: rampart (OFREP) / Unleash Proxy req/s`,
        value: `${x(p.ratio)} (${int(p.rampart.reqPerSec)} vs ${int(p.peer.reqPerSec)}; p99 ${p.rampart.p99} vs ${p.peer.p99} ms; rounds ${p.rounds.map((q) => q.ratio.toFixed(2)).join(' ')})`,
        goal: '-',
        result: code === 0 ? '-' : `FAIL (exit ${code})`,
      });
    }
  }
}

const cell = (s: string): string => s.replace(/\|/g, '\\|');
const markdown = [
  `# Rampart benchmarks, ${started.toISOString()}`,
  '',
  `node ${process.version} ${process.platform}/${process.arch}, ${cpus().length} CPUs (${cpus()[0]?.model ?? 'unknown'}); ` +
    `load average (1, 5, 15 min) at the start ${load(loadAtStart)}, at the end ${load(loadavg())}`,
  '',
  '| benchmark | metric | value | goal | result |',
  '|---|---|---|---|---|',
  ...rows.map((r) => `| ${[r.benchmark, r.metric, r.value, r.goal, r.result].map(cell).join(' | ')} |`),
  '',
  `exit codes: ${names.map((name, i) => `${name} ${codes[i] ?? '-'}`).join(', ')}`,
  '',
].join('\n');
mkdirSync(RESULTS, { recursive: true });
const summary = new URL('summary.md', RESULTS);
writeFileSync(summary, markdown);
console.log(`\n${markdown}`);
console.log(`summary: ${summary.pathname}`);
process.exitCode = Math.max(0, ...codes);
