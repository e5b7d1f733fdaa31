// Run in a fresh Node process by test/sdk/fresh-process.test.ts:
//   node --conditions=rampart-source --import tsx test/support/bucket-worker.ts < request.json
// Reads { groupIds, unitIds } on stdin; writes { pid, hashes, buckets } (one row per groupId).
import { pathToFileURL } from 'node:url';
import { bucket, hashUnit } from '@rampart/sdk';

export interface WorkerRequest {
  readonly groupIds: readonly string[];
  readonly unitIds: readonly string[];
}

export interface WorkerResponse {
  readonly pid: number;
  readonly hashes: readonly (readonly number[])[];
  readonly buckets: readonly (readonly number[])[];
}

async function main(): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const { groupIds, unitIds } = JSON.parse(Buffer.concat(chunks).toString('utf8')) as WorkerRequest;
  const response: WorkerResponse = {
    pid: process.pid,
    hashes: groupIds.map((g) => unitIds.map((u) => hashUnit(g, u))),
    buckets: groupIds.map((g) => unitIds.map((u) => bucket(g, u))),
  };
  process.stdout.write(JSON.stringify(response));
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
