/// <reference types="node" />
// Node-only helpers, kept out of the main entry so browser bundles never see `node:fs`.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { SnapshotStorage } from './client.js';

/**
 * Keeps the last good snapshot in a JSON file (written atomically: temp file, then rename), so a
 * process restarted while the server is unreachable starts from it.
 *
 * @example
 * import { createClient } from '@rampart/sdk';
 * import { fileStorage } from '@rampart/sdk/node';
 * const client = createClient({ url, token, storage: fileStorage('/var/cache/app/rampart.json') });
 */
export function fileStorage(path: string): SnapshotStorage {
  let writes: Promise<void> = Promise.resolve();
  return {
    load: () => readFile(path, 'utf8').catch((error: unknown) => {
      if ((error as { code?: string }).code === 'ENOENT') return undefined;
      throw error;
    }),
    save(snapshot) {
      // One write at a time, in order, so an older snapshot never lands after a newer one.
      writes = writes.catch(() => undefined).then(async () => {
        const temp = `${path}.${process.pid}.tmp`;
        await mkdir(dirname(path), { recursive: true });
        await writeFile(temp, snapshot);
        await rename(temp, path);
      });
      return writes;
    },
  };
}
