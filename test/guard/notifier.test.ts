import { createServer } from 'node:http';
import type { IncomingMessage, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createWebhookNotifier } from '../../src/guard/notifier.js';
import type { NotificationMessage } from '../../src/guard/notifier.js';

const message: NotificationMessage = { flag: 'reports', event: 'rolled-back', text: '[rampart] reports: revert at stage 1', status: 'rolled-back', stage: 0, percentage: 10, at: '2026-11-24T00:00:00.000Z' };

async function listen(handler: (req: IncomingMessage, body: string, reply: (status: number) => void) => void): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      handler(req, body, (status) => res.writeHead(status).end());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook` };
}

describe('webhook notifier', () => {
  const servers: Server[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
  });

  it('retries with backoff against a webhook that fails twice, then delivers a Slack text with fields', async () => {
    const bodies: string[] = [];
    const { server, url } = await listen((_req, body, reply) => {
      bodies.push(body);
      reply(bodies.length <= 2 ? 500 : 200);
    });
    servers.push(server);
    const results: [boolean, number][] = [];
    const notifier = createWebhookNotifier({ backoffMs: 20, onDelivery: (ok, attempts) => results.push([ok, attempts]) });
    notifier.send([{ url, format: 'slack' }], message);
    await notifier.flush();
    expect(bodies).toHaveLength(3);
    expect(results).toEqual([[true, 3]]);
    expect(JSON.parse(bodies[2]!)).toMatchObject({ text: message.text, fields: { flag: 'reports', event: 'rolled-back', percentage: 10 } });
  });

  it('never stalls the caller on a webhook that hangs: send returns at once, delivery gives up after timeout and retries', async () => {
    let hits = 0;
    const { server, url } = await listen(() => {
      hits++; // never answers
    });
    servers.push(server);
    const results: [boolean, number][] = [];
    const notifier = createWebhookNotifier({ timeoutMs: 100, backoffMs: 10, onDelivery: (ok, attempts) => results.push([ok, attempts]) });
    const started = performance.now();
    notifier.send([{ url, format: 'json' }], message);
    expect(performance.now() - started).toBeLessThan(50);
    await notifier.flush();
    expect(hits).toBe(4);
    expect(results).toEqual([[false, 4]]);
  });

  it('deduplicates the same notification', async () => {
    let hits = 0;
    const { server, url } = await listen((_req, _body, reply) => {
      hits++;
      reply(204);
    });
    servers.push(server);
    const notifier = createWebhookNotifier();
    notifier.send([{ url, format: 'slack' }], message);
    notifier.send([{ url, format: 'slack' }], message);
    notifier.send([{ url, format: 'slack' }], { ...message, event: 'completed', text: 'done' });
    await notifier.flush();
    expect(hits).toBe(2);
  });
});
