// Run as a child process by test/sdk/process.test.ts: a streaming client that must let node exit
// on its own right after close(), with no process.exit().
import { createClient } from '@rampart/sdk';

const [url, token] = process.argv.slice(2);
const client = createClient({ url: url ?? '', token: token ?? '', stream: true, pollIntervalMs: 1000 });
await client.ready({ timeoutMs: 5000 });
process.stdout.write(`ready ${client.revision} ${client.isEnabled('exit-flag', 'u')}\n`);
client.track('exit-flag', 'u', { ok: true, latencyMs: 1 });
await client.close();
process.stdout.write('closed\n');
