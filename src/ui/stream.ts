// The change stream read with fetch, like the SDK reads it: EventSource cannot send the
// Authorization header the stream requires.

/** What one `snapshot` or `change` frame says: the revision, and the keys it touched (all for a snapshot). */
export interface StreamEvent {
  readonly kind: 'snapshot' | 'change';
  readonly revision: number;
  readonly keys: readonly string[];
}

export interface StreamHandlers {
  onEvent(event: StreamEvent): void;
  onState(state: 'live' | 'reconnecting', detail?: string): void;
  /** The token was refused: reconnecting would not help. */
  onUnauthorized(detail: string): void;
}

function parse(block: string): StreamEvent | undefined {
  const field = (name: string): string | undefined => new RegExp(`^${name}: ?(.*)$`, 'm').exec(block)?.[1];
  const kind = field('event');
  if (kind !== 'snapshot' && kind !== 'change') return undefined;
  const data = JSON.parse(field('data') ?? '{}') as { revision?: number; flags?: Record<string, unknown> | readonly { key: string }[] };
  const flags = data.flags ?? {};
  const keys = Array.isArray(flags) ? flags.map((f: { key: string }) => f.key) : Object.keys(flags);
  return { kind, revision: data.revision ?? 0, keys };
}

/**
 * Follows `/sdk/v1/stream` until `stop()`; reconnects with backoff after a drop.
 *
 * @example
 * const stop = followStream(() => token, { onEvent: (e) => refresh(e.keys), onState: show, onUnauthorized: signOut });
 */
export function followStream(token: () => string | null, handlers: StreamHandlers): () => void {
  let stopped = false;
  let controller: AbortController | undefined;
  let failures = 0;
  const run = async (): Promise<void> => {
    while (!stopped) {
      controller = new AbortController();
      try {
        const current = token();
        const res = await fetch('/sdk/v1/stream', {
          headers: { accept: 'text/event-stream', ...(current === null ? {} : { authorization: `Bearer ${current}` }) },
          signal: controller.signal,
          cache: 'no-store',
        });
        if (res.status === 401 || res.status === 403) {
          handlers.onUnauthorized(`the stream refused the token (HTTP ${res.status})`);
          return;
        }
        if (!res.ok || res.body === null) throw new Error(`HTTP ${res.status}`);
        const reader = res.body.getReader();
        const decoder = new TextDecoder();
        let buffer = '';
        handlers.onState('live');
        failures = 0;
        for (;;) {
          const { done, value } = await reader.read();
          if (done) throw new Error('the server closed the stream');
          buffer += decoder.decode(value, { stream: true });
          for (let end; (end = /\r\n\r\n|\n\n|\r\r/.exec(buffer)); buffer = buffer.slice(end.index + end[0].length)) {
            const event = parse(buffer.slice(0, end.index));
            if (event !== undefined) handlers.onEvent(event);
          }
        }
      } catch (error) {
        // stop() may have run during the await: its abort is not a failure.
        // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
        if (stopped) return;
        handlers.onState('reconnecting', error instanceof Error ? error.message : String(error));
      }
      failures += 1;
      await new Promise((resolve) => setTimeout(resolve, Math.min(30_000, 500 * 2 ** Math.min(failures, 6))));
    }
  };
  void run();
  return () => {
    stopped = true;
    controller?.abort();
  };
}
