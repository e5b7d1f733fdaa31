// Starts a private three-master Redis Cluster for tests: real redis-server processes in cluster
// mode, joined by `redis-cli --cluster create`. Never an imitation of Redis.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { keysWithPrefix } from './redis.js';
import { freePort, waitForRedis, which } from './redis-server.js';

export interface RedisCluster {
  /** Comma-separated `redis://127.0.0.1:<port>` of every master: REDIS_URL with REDIS_CLUSTER=on. */
  readonly url: string;
  readonly ports: readonly number[];
  readonly processes: readonly ChildProcess[];
  /** Stops every node (SIGTERM, then SIGKILL) and removes their folders. */
  stop(): Promise<void>;
}

const INSTALL_HINT = 'install them (apt-get install redis-server redis-tools) to run the Redis Cluster tests';

/**
 * Starts `masters` cluster-enabled redis-servers on free loopback ports, without persistence,
 * creates the cluster with no replicas and resolves once every node reports cluster_state:ok.
 * Always a fresh cluster of its own, whatever REDIS_URL says. `spread` names hash tags whose
 * slots are then moved to different masters (the first tag's to the first master...): an even
 * split would put `{flags}`, `{rollouts}` and `{outcomes}` (slots 12971, 13560, 13218) all on one.
 *
 * @example
 * const cluster = await startRedisCluster(); try { ... } finally { await cluster.stop(); }
 */
export async function startRedisCluster(options: { readonly masters?: number; readonly spread?: readonly string[] } = {}): Promise<RedisCluster> {
  const masters = options.masters ?? 3;
  const server = which('redis-server');
  const cli = which('redis-cli');
  if (server === undefined || cli === undefined) {
    const missing = [server === undefined ? 'redis-server' : undefined, cli === undefined ? 'redis-cli' : undefined].filter((m) => m !== undefined);
    throw new Error(`${missing.join(' and ')} not on PATH: ${INSTALL_HINT}`);
  }
  const dirs: string[] = [];
  const processes: ChildProcess[] = [];
  const exits: Promise<void>[] = [];
  const stop = async (): Promise<void> => {
    for (const child of processes) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    }
    const timer = setTimeout(() => {
      for (const child of processes) child.kill('SIGKILL');
    }, 3000);
    await Promise.all(exits);
    clearTimeout(timer);
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  };
  try {
    const ports: number[] = [];
    for (let i = 0; i < masters; i++) {
      // A cluster node also listens on port + 10000 (the cluster bus); both must be free.
      let port = await freePort();
      while (port + 10_000 > 65_535 || !(await portFree(port + 10_000))) port = await freePort();
      ports.push(port);
      const dir = mkdtempSync(join(tmpdir(), 'rampart-cluster-'));
      dirs.push(dir);
      const child = spawn(
        server,
        [
          '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--daemonize', 'no', '--loglevel', 'warning',
          '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, 'nodes.conf'), '--cluster-node-timeout', '2000',
          '--save', '', '--appendonly', 'no',
        ],
        { stdio: 'ignore' },
      );
      processes.push(child);
      exits.push(new Promise<void>((resolve) => child.once('exit', () => { resolve(); })));
    }
    await Promise.all(ports.map((port) => waitForRedis(port)));
    const created = await run(cli, ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], 30_000);
    if (created.code !== 0) throw new Error(`redis-cli --cluster create failed (${created.code}):\n${created.output}`);
    await waitForClusterOk(ports, 20_000);
    if (options.spread !== undefined) await spreadTags(ports, options.spread);
    return { url: ports.map((p) => `redis://127.0.0.1:${p}`).join(','), ports, processes, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * Runs `work` with a plain (non-cluster) client of the node on `port`, then disconnects it.
 *
 * @example
 * await onNode(cluster.ports[0], (node) => node.call('CLIENT', 'KILL', 'TYPE', 'pubsub'));
 */
export async function onNode<T>(port: number, work: (node: Redis) => Promise<T>): Promise<T> {
  const node = new Redis({ host: '127.0.0.1', port, lazyConnect: true, commandTimeout: 2000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  node.on('error', () => undefined);
  try {
    await node.connect();
    return await work(node);
  } finally {
    node.disconnect();
  }
}

/** Port of the master serving `slot`, as the node on `port` sees it. */
async function ownerSeenBy(port: number, slot: number): Promise<number | undefined> {
  const ranges = await onNode(port, (node) => node.cluster('SLOTS'));
  const range = ranges.find(([from, to]) => from <= slot && slot <= to);
  return range?.[2]?.[1];
}

/** Resolves once `CLUSTER INFO` on every node says cluster_state:ok and all 16384 slots are served. */
async function waitForClusterOk(ports: readonly number[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const infos = await Promise.all(ports.map((port) => onNode(port, (node) => node.cluster('INFO')).catch((e: unknown) => String(e))));
    if (infos.every((info) => /cluster_state:ok/.test(info) && /cluster_slots_ok:16384/.test(info))) return;
    if (Date.now() > deadline) throw new Error(`Redis Cluster on ports ${ports.join(', ')} not ok within ${timeoutMs} ms:\n${infos.join('\n')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Moves the (empty) slot of each tag to the master of the same index, the documented SETSLOT way. */
async function spreadTags(ports: readonly number[], tags: readonly string[]): Promise<void> {
  const ids = await Promise.all(ports.map((port) => onNode(port, (node) => node.cluster('MYID'))));
  for (const [i, tag] of tags.entries()) {
    const to = ports[i % ports.length]!;
    const toId = ids[i % ports.length]!;
    const slot = await onNode(to, (node) => node.cluster('KEYSLOT', `{${tag}}`));
    const from = await ownerSeenBy(to, slot);
    if (from === undefined) throw new Error(`slot ${slot} of {${tag}} has no owner`);
    if (from === to) continue;
    const fromId = ids[ports.indexOf(from)]!;
    await onNode(to, (node) => node.cluster('SETSLOT', slot, 'IMPORTING', fromId));
    await onNode(from, (node) => node.cluster('SETSLOT', slot, 'MIGRATING', toId));
    for (const port of [to, from, ...ports.filter((p) => p !== to && p !== from)]) {
      await onNode(port, (node) => node.cluster('SETSLOT', slot, 'NODE', toId));
    }
    const deadline = Date.now() + 10_000;
    while ((await Promise.all(ports.map((port) => ownerSeenBy(port, slot)))).some((owner) => owner !== to)) {
      if (Date.now() > deadline) throw new Error(`the nodes did not agree on the new owner of slot ${slot} within 10 s`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  await waitForClusterOk(ports, 10_000);
}

/** Runs a command to its end with a deadline; its exit code (null when killed) and output. */
function run(command: string, args: readonly string[], timeoutMs: number): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** Whether 127.0.0.1:port can be listened on right now. */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.unref();
    probe.once('error', () => {
      resolve(false);
    });
    probe.listen(port, '127.0.0.1', () => {
      probe.close(() => {
        resolve(true);
      });
    });
  });
}

/**
 * Every key starting with `prefix` on each master, by port: shows where the data landed.
 *
 * @example
 * const placed = await clusterKeys(cluster, 'test:x:'); placed.get(cluster.ports[0]);
 */
export async function clusterKeys(cluster: RedisCluster, prefix: string): Promise<Map<number, string[]>> {
  const byPort = new Map<number, string[]>();
  for (const port of cluster.ports) {
    const keys = await onNode(port, (node) => keysWithPrefix(node, prefix));
    byPort.set(port, keys);
  }
  return byPort;
}

/** Deletes every key starting with `prefix` from every master (one DEL per key: they span slots). */
export async function deleteClusterKeys(cluster: RedisCluster, prefix: string): Promise<void> {
  for (const [port, keys] of await clusterKeys(cluster, prefix)) {
    if (keys.length > 0) await onNode(port, (node) => Promise.all(keys.map((key) => node.del(key))));
  }
}
