// No Docker engine runs in CI, so the compose file, the Dockerfile and the Prometheus config are
// held to the code by reading them, and scripts/stack.sh runs the same topology natively.
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { freePort, which } from './support/redis-server.js';
import { TS_NODE_ARGS } from './support/server-process.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');

interface Service {
  image?: string;
  build?: { context: string; target?: string };
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  healthcheck?: { test?: string[]; disable?: boolean };
  depends_on?: Record<string, { condition: string }>;
  volumes?: string[];
}
interface Compose {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

const composeText = read('docker-compose.yml');
const compose = parse(composeText) as Compose;
const services = Object.entries(compose.services);
const dockerfile = read('Dockerfile');

/** The commands `rampart --help` lists, asked of the CLI itself. */
function cliCommands(): string[] {
  const help = spawnSync(process.execPath, [...TS_NODE_ARGS, 'src/cli.ts', '--help'], { cwd: ROOT, encoding: 'utf8', timeout: 20_000 });
  expect(help.status).toBe(0);
  const section = help.stdout.split(/^Commands:\s*$/m)[1] ?? '';
  return [...section.matchAll(/^ {2}([a-z][a-z-]*)\s/gm)].map((m) => m[1] ?? '');
}

/** Variables documented in a markdown table's first column: | `NAME` | ... */
function documentedVariables(markdown: string): Set<string> {
  return new Set([...markdown.matchAll(/^\|\s*`([A-Z][A-Z0-9_]*)`\s*\|/gm)].map((m) => m[1] ?? ''));
}

const portOf = (url: string): number | undefined => {
  const match = /https?:\/\/[^/:]+:(\d+)\//.exec(url);
  return match?.[1] === undefined ? undefined : Number(match[1]);
};

/** [hostIp?, hostPort, containerPort] of a `ports:` entry. */
function mapping(entry: string): { host: number; container: number } {
  const parts = entry.split(':');
  return { host: Number(parts.at(-2)), container: Number(parts.at(-1)) };
}

describe('docker-compose.yml', () => {
  it('has the topology: redis, two rampart replicas, guard, prometheus and demo', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['demo', 'guard', 'prometheus', 'rampart-a', 'rampart-b', 'redis']);
  });

  it('runs only real `rampart` subcommands from the Rampart image, and plain images otherwise', () => {
    const commands = cliCommands();
    expect(commands).toEqual(expect.arrayContaining(['serve', 'guard']));
    for (const [name, service] of services) {
      if (service.build?.target === 'runtime') {
        const [command] = service.command ?? [];
        expect(commands, `${name}: ${String(command)}`).toContain(command);
      } else if (service.build?.target === 'demo') {
        expect(dockerfile).toMatch(/FROM runtime AS demo[\s\S]*CMD \["examples\/demo-service\/server\.js"\]/);
      } else {
        expect(service.image, name).toMatch(/^(redis:7|prom\/prometheus:v[\d.]+)$/);
      }
    }
    expect(compose.services['rampart-a']?.command).toEqual(['serve']);
    expect(compose.services['rampart-b']?.command).toEqual(['serve']);
    expect(compose.services.guard?.command).toEqual(['guard']);
  });

  it('shares one Redis between the replicas and keeps the guard out of them', () => {
    for (const name of ['rampart-a', 'rampart-b']) {
      expect(compose.services[name]?.environment).toMatchObject({ REDIS_URL: 'redis://redis:6379', RAMPART_GUARD: 'off', HOST: '0.0.0.0' });
    }
    expect(compose.services.guard?.environment?.REDIS_URL).toBe('redis://redis:6379');
  });

  it('runs Redis with an append-only file fsynced on every write on a named volume and a ping healthcheck', () => {
    const redis = compose.services.redis!;
    const args = (redis.command ?? []).join(' ');
    expect(args).toContain('--appendonly yes');
    expect(args).toContain('--appendfsync always');
    expect(args).toContain('--maxmemory-policy noeviction');
    const volume = (redis.volumes ?? [])[0]?.split(':')[0] ?? '';
    expect(Object.keys(compose.volumes ?? {})).toContain(volume);
    expect(redis.healthcheck?.test).toEqual(['CMD', 'redis-cli', 'ping']);
  });

  it('takes tokens from .env and fails fast when they are missing', () => {
    expect(composeText).toContain('${RAMPART_ADMIN_TOKENS:?');
    expect(composeText).toContain('${RAMPART_SDK_TOKENS:?');
    expect(composeText).not.toMatch(/RAMPART_ADMIN_TOKENS:\s*[a-z0-9]+:/i);
  });

  it('documents every variable it or .env.example uses (README table, or docs/operations-cli.md)', () => {
    const documented = new Set([...documentedVariables(read('README.md')), ...documentedVariables(read('docs/operations-cli.md'))]);
    const used = new Set<string>();
    for (const [, service] of services) for (const key of Object.keys(service.environment ?? {})) used.add(key);
    for (const match of composeText.matchAll(/\$\{([A-Z][A-Z0-9_]*)/g)) used.add(match[1] ?? '');
    for (const line of read('.env.example').split('\n')) {
      const match = /^([A-Z][A-Z0-9_]*)=/.exec(line);
      if (match?.[1] !== undefined) used.add(match[1]);
    }
    expect(used.size).toBeGreaterThan(5);
    expect([...used].filter((v) => !documented.has(v))).toEqual([]);
  });

  it('health-checks each service on the port it listens on, with unique host ports', () => {
    const hostPorts: number[] = [];
    for (const [name, service] of services) {
      const check = service.healthcheck;
      expect(check, `${name} needs a healthcheck (or disable: true with a reason)`).toBeDefined();
      if (check?.disable === true) continue;
      const test = (check?.test ?? []).join(' ');
      const listens = service.environment?.PORT === undefined ? undefined : Number(service.environment.PORT);
      const mappings = (service.ports ?? []).map(mapping);
      hostPorts.push(...mappings.map((m) => m.host));
      const checked = portOf(test);
      if (checked === undefined) continue; // redis-cli ping
      if (listens !== undefined) expect(checked, name).toBe(listens);
      for (const m of mappings) expect(m.container, name).toBe(checked);
      if (name.startsWith('rampart-')) expect(test).toContain('/readyz');
    }
    expect(new Set(hostPorts).size).toBe(hostPorts.length);
    expect(hostPorts).toHaveLength(4);
  });

  it('depends only on services it defines', () => {
    for (const [name, service] of services) {
      for (const dependency of Object.keys(service.depends_on ?? {})) expect(compose.services, `${name} -> ${dependency}`).toHaveProperty(dependency);
    }
  });
});

describe('prometheus/prometheus.yml', () => {
  const config = parse(read('prometheus/prometheus.yml')) as { scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[] };

  it('scrapes both replicas and the demo on the ports they listen on', () => {
    const targets = config.scrape_configs.flatMap((job) => job.static_configs.flatMap((c) => c.targets));
    expect(targets).toEqual(expect.arrayContaining(['rampart-a:8080', 'rampart-b:8080', 'demo:3000']));
    for (const target of targets) {
      const [host = '', port = ''] = target.split(':');
      const service = compose.services[host];
      expect(service, target).toBeDefined();
      expect(service?.environment?.PORT, target).toBe(port);
    }
  });

  it('is valid for promtool (shipped with Debian prometheus, which CI installs)', () => {
    if (which('promtool') === undefined) throw new Error('promtool is not on PATH: apt-get install prometheus (CI installs it)');
    const check = spawnSync('promtool', ['check', 'config', 'prometheus/prometheus.yml'], { cwd: ROOT, encoding: 'utf8', timeout: 20_000 });
    expect(check.status, check.stdout + check.stderr).toBe(0);
  });
});

describe('Dockerfile', () => {
  const stages = [...dockerfile.matchAll(/^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/gim)].map((m) => ({ from: m[1] ?? '', name: m[2] }));
  const runtime = dockerfile.split(/^FROM node:20-slim AS runtime$/m)[1]?.split(/^FROM /m)[0] ?? '';

  it('builds in one stage and runs production dependencies only in a node:20-slim runtime stage', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(stages.find((s) => s.name === 'build')?.from).toBe('node:20-slim');
    expect(stages.find((s) => s.name === 'runtime')?.from).toBe('node:20-slim');
    expect(dockerfile).toMatch(/AS build[\s\S]*RUN npm ci\n[\s\S]*RUN npm run build/);
    expect(runtime).toContain('npm ci --omit=dev');
    expect(runtime).toContain('COPY --from=build /app/dist ./dist');
    expect(runtime).toContain('COPY openapi ./openapi');
    // The default target (the last stage) is the server.
    expect(stages.at(-1)?.from).toBe('runtime');
  });

  it('runs as the non-root node user, health-checks /readyz and starts the CLI', () => {
    const users = [...runtime.matchAll(/^USER\s+(\S+)/gm)].map((m) => m[1]);
    expect(users.at(-1)).toBe('node');
    expect(runtime).toMatch(/^HEALTHCHECK .*\\\n.*\/readyz/m);
    expect(runtime).toContain('ENTRYPOINT ["node", "dist/cli.js"]');
  });

  it('copies only paths that exist in the build context (the demo service comes later)', () => {
    const ignored = read('.dockerignore').split('\n').filter((l) => l !== '' && !l.startsWith('#') && !l.startsWith('!'));
    const sources = [...dockerfile.matchAll(/^COPY\s+(?!--from)(?:--chown=\S+\s+)?(.+)\s+\S+$/gm)].flatMap((m) => (m[1] ?? '').split(/\s+/));
    expect(sources).toEqual(expect.arrayContaining(['package.json', 'package-lock.json', 'sdk/package.json', 'openapi', '.']));
    for (const source of sources) {
      if (source === 'examples/demo-service') continue;
      expect(existsSync(join(ROOT, source)), source).toBe(true);
      expect(ignored, source).not.toContain(source);
    }
  });

  it('keeps secrets and local state out of the build context', () => {
    const ignored = read('.dockerignore').split('\n');
    for (const entry of ['.env', 'node_modules', 'dist', '.rampart', '.git']) expect(ignored).toContain(entry);
    expect(ignored).toContain('!.env.example');
  });

  it('ships placeholder tokens only in .env.example, the demo token among the SDK tokens', () => {
    const env = Object.fromEntries(read('.env.example').split('\n').filter((l) => /^[A-Z]/.test(l)).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    for (const key of ['RAMPART_ADMIN_TOKENS', 'RAMPART_SDK_TOKENS', 'RAMPART_SDK_TOKEN']) expect(env[key], key).toMatch(/replace-with/);
    const sdkSecrets = (env.RAMPART_SDK_TOKENS ?? '').split(',').map((t) => t.slice(t.indexOf(':') + 1));
    expect(sdkSecrets).toContain(env.RAMPART_SDK_TOKEN);
  });
});

describe('scripts/stack.sh', () => {
  let dir: string;
  let env: Record<string, string>;
  const stack = (command: string): Promise<{ code: number; out: string }> =>
    new Promise((resolve) => {
      execFile('bash', ['scripts/stack.sh', command], { cwd: ROOT, env, timeout: 60_000 }, (error, stdout, stderr) => {
        resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, out: stdout + stderr });
      });
    });

  beforeAll(async () => {
    if (which('redis-server') === undefined) throw new Error('redis-server is not on PATH: apt-get install redis-server (CI installs it)');
    dir = mkdtempSync(join(tmpdir(), 'rampart-stack-'));
    const [redis, a, b, prometheus, demo] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
    env = {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      STACK_DIR: dir,
      STACK_RUNTIME: 'source',
      REDIS_PORT: String(redis),
      RAMPART_A_PORT: String(a),
      RAMPART_B_PORT: String(b),
      PROMETHEUS_PORT: String(prometheus),
      DEMO_PORT: String(demo),
      RAMPART_ADMIN_TOKENS: 'ops:stack-test-secret',
      LOG_LEVEL: 'warn',
    };
  });

  afterAll(async () => {
    await stack('down');
    rmSync(dir, { recursive: true, force: true });
  });

  it('is valid bash with strict mode', () => {
    expect(read('scripts/stack.sh')).toContain('set -euo pipefail');
    expect(spawnSync('bash', ['-n', 'scripts/stack.sh'], { cwd: ROOT }).status).toBe(0);
  });

  it('starts two ready replicas sharing flags through Redis, reports status, and stops every process', async () => {
    const up = await stack('up');
    expect(up.code, up.out).toBe(0);
    const a = `http://127.0.0.1:${env.RAMPART_A_PORT}`;
    const b = `http://127.0.0.1:${env.RAMPART_B_PORT}`;
    for (const base of [a, b]) expect((await fetch(`${base}/readyz`)).status).toBe(200);
    const headers = { authorization: 'Bearer stack-test-secret', 'content-type': 'application/json' };
    const put = await fetch(`${a}/flags/shared-flag`, { method: 'PUT', headers, body: JSON.stringify({ enabled: true, percentage: 7 }) });
    expect(put.status).toBe(201);
    const got = (await (await fetch(`${b}/flags/shared-flag`, { headers })).json()) as { percentage: number; updatedBy: string };
    expect(got).toMatchObject({ percentage: 7, updatedBy: 'ops' });
    expect(readFileSync(join(dir, 'redis', 'appendonlydir', readdirSync(join(dir, 'redis', 'appendonlydir')).find((f) => f.endsWith('.incr.aof')) ?? ''), 'utf8')).toContain('shared-flag');

    if (which('prometheus') !== undefined) {
      // Prometheus discovers static targets shortly after it reports ready.
      let urls: string[] = [];
      for (let i = 0; i < 50 && urls.length < 2; i++) {
        const targets = (await (await fetch(`http://127.0.0.1:${env.PROMETHEUS_PORT}/api/v1/targets`)).json()) as { data: { activeTargets: { scrapeUrl: string }[] } };
        urls = targets.data.activeTargets.map((t) => t.scrapeUrl);
        if (urls.length < 2) await new Promise((r) => setTimeout(r, 200));
      }
      expect(urls).toEqual(expect.arrayContaining([`${a}/metrics`, `${b}/metrics`]));
    }

    // The guard (when this build has one) shares the Redis: it ticks a plan installed through a replica.
    if (existsSync(join(dir, 'guard.pid'))) {
      await fetch(`${a}/flags/guarded-flag`, { method: 'PUT', headers, body: JSON.stringify({ enabled: false }) });
      const plan = await fetch(`${a}/flags/guarded-flag/rollout`, { method: 'PUT', headers, body: JSON.stringify({ stages: [{ percentage: 5, hold: '1h' }, { percentage: 100 }] }) });
      expect(plan.status).toBe(201);
      let actors: string[] = [];
      for (let i = 0; i < 100 && !actors.includes('guard'); i++) {
        const page = (await (await fetch(`${b}/flags/guarded-flag/rollout/decisions`, { headers })).json()) as { entries: { actor: string }[] };
        actors = page.entries.map((e) => e.actor);
        if (!actors.includes('guard')) await new Promise((r) => setTimeout(r, 200));
      }
      expect(actors).toContain('guard');
    } else {
      expect(up.out).toContain('skipping guard');
    }

    const status = await stack('status');
    expect(status.code).toBe(0);
    expect(status.out).toMatch(/rampart-a\s+ready/);
    expect(status.out).toMatch(/rampart-b\s+ready/);

    const pids = readdirSync(dir).filter((f) => f.endsWith('.pid')).map((f) => Number(readFileSync(join(dir, f), 'utf8')));
    expect(pids.length).toBeGreaterThanOrEqual(3);
    const down = await stack('down');
    expect(down.code, down.out).toBe(0);
    for (const pid of pids) expect(() => process.kill(pid, 0), `pid ${pid} still running`).toThrow();
    expect(readdirSync(dir).filter((f) => f.endsWith('.pid'))).toEqual([]);
    expect(existsSync(join(dir, 'rampart-a.log'))).toBe(true);
    expect((await stack('status')).code).not.toBe(0);
  }, 60_000);
});
