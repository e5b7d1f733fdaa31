// Starts a private redis-server for tests (non-persistent unless asked). Never an imitation of Redis.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

export interface RedisServer {
  readonly url: string;
  readonly port: number;
  /** The running redis-server (a new one after `restart()`). */
  readonly process: ChildProcess;
  /** The data folder (AOF, RDB), kept across `restart()` and removed by `stop()`. */
  readonly dir: string;
  /**
   * Starts redis-server again on the same port, folder and arguments, after the current one
   * exited (killed by a test, say); a live one is stopped first. Resolves once it answers PING.
   */
  restart(): Promise<void>;
  /** Stops the server (SIGTERM, then SIGKILL) and removes its folder. */
  stop(): Promise<void>;
}

/** Finds an executable on PATH, or undefined. */
export function which(command: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, command);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this folder
    }
  }
  return undefined;
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => {
        resolve(port);
      });
    });
  });
}

/** Resolves when `PING` on host:port answers `+PONG`, rejects after `timeoutMs`. */
export async function waitForRedis(port: number, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = createConnection({ host: '127.0.0.1', port });
      socket.setTimeout(500);
      socket.on('connect', () => socket.write('PING\r\n'));
      socket.on('data', (data) => {
        socket.destroy();
        resolve(data.toString().startsWith('+PONG'));
      });
      socket.on('error', () => {
        resolve(false);
      });
      socket.on('timeout', () => {
        socket.destroy();
        resolve(false);
      });
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer PING within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface Launched {
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
}

function launch(binary: string, args: readonly string[]): Launched {
  const child = spawn(binary, args, { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => { resolve(); }));
  return { child, exited };
}

/** SIGTERM (SIGKILL after 3 s; a stopped process is continued so it can exit) and waits for the exit. */
async function terminate({ child, exited }: Launched): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  child.kill('SIGCONT');
  const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(timer);
}

/**
 * Starts `redis-server` from PATH on a free loopback port with no persistence
 * (pass `extraArgs` to turn AOF on, e.g. for durability tests).
 *
 * @example
 * const redis = await startRedisServer(['--appendonly', 'yes', '--appendfsync', 'always']);
 * redis.process.kill('SIGKILL');
 * await redis.restart(); // same port, same folder: the AOF is replayed
 */
export async function startRedisServer(extraArgs: readonly string[] = [], port?: number): Promise<RedisServer> {
  const binary = which('redis-server');
  if (binary === undefined) {
    throw new Error('redis-server is not on PATH and REDIS_URL is not set: install redis-server (apt-get install redis-server) or set REDIS_URL');
  }
  const dir = mkdtempSync(join(tmpdir(), 'rampart-redis-'));
  const chosen = port ?? (await freePort());
  const args = ['--port', String(chosen), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no', '--loglevel', 'warning', ...extraArgs];
  let current = launch(binary, args);
  try {
    await waitForRedis(chosen);
  } catch (error) {
    current.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    url: `redis://127.0.0.1:${chosen}`,
    port: chosen,
    dir,
    get process() {
      return current.child;
    },
    async restart() {
      await terminate(current);
      current = launch(binary, args);
      try {
        await waitForRedis(chosen);
      } catch (error) {
        current.child.kill('SIGKILL');
        throw error;
      }
    },
    async stop() {
      await terminate(current);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
