// A round-robin TCP proxy on loopback: what a load balancer in front of server replicas does,
// reduced to what the fault tests need. Each new connection goes to the next live backend; a
// backend that refuses a connection is marked dead and the next one is tried; when a backend's
// side of a proxied connection closes (the replica was killed), the client side is destroyed,
// as a load balancer resets the connections of a backend that went away.
import { createConnection, createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';

/** A backend as the proxy sees it: where it listens, and the connections it carries now. */
export interface ProxyBackend {
  readonly port: number;
  /** False once it refused a connection or was marked down. */
  alive: boolean;
  /** Connections proxied to it that are open now. */
  readonly open: Set<Socket>;
  /** Connections ever proxied to it. */
  accepted: number;
}

export interface TcpProxy {
  readonly port: number;
  readonly url: string;
  readonly backends: readonly ProxyBackend[];
  /** Marks a backend down (new connections skip it) and destroys its proxied connections. */
  markDown(port: number): void;
  close(): Promise<void>;
}

/**
 * Starts the proxy on a free loopback port in front of `backendPorts` (127.0.0.1).
 *
 * @example
 * const proxy = await startTcpProxy([8081, 8082, 8083]);
 * createClient({ url: proxy.url });
 */
export async function startTcpProxy(backendPorts: readonly number[]): Promise<TcpProxy> {
  const backends: ProxyBackend[] = backendPorts.map((port) => ({ port, alive: true, open: new Set<Socket>(), accepted: 0 }));
  const clients = new Set<Socket>();
  let next = 0;

  /** The next live backend after the last one chosen, or undefined when none is left. */
  const pick = (): ProxyBackend | undefined => {
    for (let i = 0; i < backends.length; i++) {
      const candidate = backends[(next + i) % backends.length]!;
      if (candidate.alive) {
        next = (next + i + 1) % backends.length;
        return candidate;
      }
    }
    return undefined;
  };

  const route = (client: Socket): void => {
    const backend = pick();
    if (backend === undefined) {
      client.destroy();
      return;
    }
    let connected = false;
    const upstream = createConnection({ host: '127.0.0.1', port: backend.port });
    upstream.setNoDelay(true);
    upstream.once('connect', () => {
      connected = true;
      backend.accepted += 1;
      backend.open.add(upstream);
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
    });
    upstream.on('error', () => {
      // Refused before it was connected: this backend is gone; try the next one.
      if (!connected && !client.destroyed) {
        backend.alive = false;
        route(client);
      }
    });
    upstream.once('close', () => {
      backend.open.delete(upstream);
      if (connected) client.destroy();
    });
    client.once('close', () => upstream.destroy());
  };

  const server: Server = createServer({ pauseOnConnect: true }, (client) => {
    clients.add(client);
    client.setNoDelay(true);
    client.on('error', () => undefined);
    client.once('close', () => clients.delete(client));
    route(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    backends,
    markDown(backendPort) {
      for (const backend of backends) {
        if (backend.port !== backendPort) continue;
        backend.alive = false;
        for (const socket of backend.open) socket.destroy();
      }
    },
    async close() {
      for (const client of clients) client.destroy();
      for (const backend of backends) for (const socket of backend.open) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => {
        resolve();
      }));
    },
  };
}
