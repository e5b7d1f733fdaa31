// A lock file that keeps a second live process out of a folder. No OS advisory locks are
// available from Node without native modules, so liveness is judged by the pid in the file.
import { randomUUID } from 'node:crypto';
import { link, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RampartError } from '../core/errors.js';

/**
 * A lock held by this process.
 *
 * @example
 * const lock: FileLock = await acquireFileLock(dir); await lock.release();
 */
export interface FileLock {
  readonly path: string;
  /** Removes the lock file if it is still ours. */
  release(): Promise<void>;
}

interface Holder {
  readonly pid: number;
  readonly raw: string;
}

/**
 * Takes `dir/lock` for this process; a lock whose pid is dead is taken over, a live one refused.
 *
 * @example
 * const lock = await acquireFileLock('/var/lib/rampart'); try { ... } finally { await lock.release(); }
 */
export async function acquireFileLock(dir: string, name = 'lock'): Promise<FileLock> {
  const path = join(dir, name);
  const token = randomUUID();
  const content = `${process.pid} ${token}\n`;
  // The lock appears with its content already in it (link of a complete temp file), so a
  // reader never sees an empty lock from a live process.
  const temp = `${path}.${token}.tmp`;
  await writeFile(temp, content, { flag: 'wx' });
  try {
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        await link(temp, path);
        return { path, release: () => releaseIfOurs(path, content) };
      } catch (error) {
        if (!hasCode(error, 'EEXIST')) throw error;
      }
      const holder = await readHolder(path);
      if (holder === undefined) continue;
      if (holder.pid === -1) {
        throw new RampartError('conflict', `lock file ${path} was not written by Rampart; remove it if no Rampart process uses ${dir}`);
      }
      if (isAlive(holder.pid)) {
        throw new RampartError('conflict', `folder ${dir} is in use by process ${holder.pid} (lock file ${path}); stop that process or choose another folder`);
      }
      await takeOverStale(path, holder, token);
    }
  } finally {
    await unlink(temp).catch(() => undefined);
  }
  throw new RampartError('conflict', `could not take lock ${path}: other processes keep taking it`);
}

/**
 * Moves a dead holder's lock aside. Two processes may judge the same lock stale at once; the
 * rename is atomic, and whoever moved a lock that is no longer the stale one puts it back.
 */
async function takeOverStale(path: string, stale: Holder, token: string): Promise<void> {
  const aside = `${path}.stale.${token}`;
  try {
    await rename(path, aside);
  } catch (error) {
    if (hasCode(error, 'ENOENT')) return;
    throw error;
  }
  const moved = await readFile(aside, 'utf8').catch(() => '');
  if (moved !== stale.raw) await link(aside, path).catch(() => undefined);
  await unlink(aside).catch(() => undefined);
}

async function readHolder(path: string): Promise<Holder | undefined> {
  let raw: string;
  try {
    raw = await readFile(path, 'utf8');
  } catch (error) {
    if (hasCode(error, 'ENOENT')) return undefined;
    throw error;
  }
  // An empty lock can only be left by a machine that crashed before the content reached the
  // disk: its holder is gone. Pid 0 stands for "dead" here.
  if (raw.trim() === '') return { pid: 0, raw };
  const pid = Number(raw.trim().split(/\s+/)[0]);
  return { pid: Number.isSafeInteger(pid) && pid > 0 ? pid : -1, raw };
}

/**
 * Whether a process with this pid exists (signal 0 only checks); EPERM means it exists as another user.
 *
 * @example
 * isAlive(process.pid); // true
 */
export function isAlive(pid: number): boolean {
  if (pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return !hasCode(error, 'ESRCH');
  }
}

async function releaseIfOurs(path: string, content: string): Promise<void> {
  const current = await readFile(path, 'utf8').catch(() => undefined);
  if (current === content) await unlink(path).catch(() => undefined);
}

function hasCode(error: unknown, code: string): boolean {
  return error instanceof Error && 'code' in error && error.code === code;
}
