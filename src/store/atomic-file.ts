import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { RampartError } from '../core/errors.js';

let counter = 0;

/**
 * Replaces `file` atomically and durably: write a temp file, fsync it, rename it over, fsync the
 * folder so the rename itself survives a crash. Either the old or the new content is there,
 * never half of one. Failures are `store-unavailable`, and the temp file is removed.
 *
 * @example
 * await writeFileAtomic('.rampart/state.json', JSON.stringify(state));
 */
export async function writeFileAtomic(file: string, text: string): Promise<void> {
  const dir = dirname(file);
  const temp = join(dir, `${basename(file)}.${process.pid}.${++counter}.tmp`);
  try {
    const handle = await open(temp, 'w', 0o600);
    try {
      await handle.writeFile(text, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, file);
    await syncFolder(dir);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw new RampartError('store-unavailable', `could not write ${file}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}

/**
 * Makes a folder's entries (a new or renamed file) survive a crash.
 *
 * @example
 * await syncFolder('.rampart');
 */
export async function syncFolder(dir: string): Promise<void> {
  const folder = await open(dir, 'r');
  try {
    await folder.sync();
  } finally {
    await folder.close();
  }
}
