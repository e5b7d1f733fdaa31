import type { SnapshotStorage } from './client.js';

/**
 * Keeps the last good snapshot in `localStorage` under `key` (quota errors are ignored by the client).
 *
 * @example
 * import { createClient } from '@rampart/sdk';
 * import { localStorageStorage } from '@rampart/sdk/browser';
 * const client = createClient({ url, token, storage: localStorageStorage('rampart:flags') });
 */
export function localStorageStorage(key: string): SnapshotStorage {
  return {
    load: async () => localStorage.getItem(key) ?? undefined,
    save: async (snapshot) => {
      localStorage.setItem(key, snapshot);
    },
  };
}
