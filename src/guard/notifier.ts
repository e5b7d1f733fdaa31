// Webhook notifications: fire and forget from the guard's point of view. Each delivery has a
// timeout and a few retries with backoff, and runs detached, so a failing or hanging webhook
// never delays a tick.
import type { Logger } from 'pino';
import type { NoticeKind } from '../core/rollout/decide.js';
import type { Notifier as NotifyTarget } from '../core/rollout/plan.js';

/** One notification: a Slack-compatible `text` plus structured fields. */
export interface NotificationMessage {
  readonly flag: string;
  readonly event: NoticeKind;
  readonly text: string;
  readonly status: string;
  readonly stage: number;
  readonly percentage: number;
  readonly at: string;
}

/**
 * Sends notifications to a plan's webhooks without ever blocking the caller.
 *
 * @example
 * notifier.send(plan.notify, message); await notifier.flush();
 */
export interface RolloutNotifier {
  send(targets: readonly NotifyTarget[], message: NotificationMessage): void;
  /** Resolves when every delivery in flight has finished (tests, shutdown). */
  flush(): Promise<void>;
}

/**
 * Settings of createWebhookNotifier.
 *
 * @example
 * const options: WebhookNotifierOptions = { timeoutMs: 2000, retries: 3, backoffMs: 250 };
 */
export interface WebhookNotifierOptions {
  /** Per attempt; default 2000 ms. */
  readonly timeoutMs?: number;
  /** Attempts after the first; default 3. */
  readonly retries?: number;
  /** First retry delay, doubled each time; default 250 ms. */
  readonly backoffMs?: number;
  /** The same (flag, event, text) is sent once within this period; default 10 minutes. */
  readonly dedupeMs?: number;
  readonly logger?: Logger;
  readonly fetch?: typeof fetch;
  /** Called after each delivery with its outcome (metrics). */
  readonly onDelivery?: (ok: boolean, attempts: number) => void;
}

/**
 * Notifies webhooks over HTTP POST with JSON bodies.
 *
 * @example
 * const notifier = createWebhookNotifier({ logger });
 */
export function createWebhookNotifier(options: WebhookNotifierOptions = {}): RolloutNotifier {
  const timeoutMs = options.timeoutMs ?? 2000;
  const retries = options.retries ?? 3;
  const backoffMs = options.backoffMs ?? 250;
  const dedupeMs = options.dedupeMs ?? 600_000;
  const doFetch = options.fetch ?? fetch;
  const inFlight = new Set<Promise<void>>();
  const recent = new Map<string, number>();

  const deliver = async (target: NotifyTarget, message: NotificationMessage): Promise<void> => {
    // Slack reads `text` and ignores the rest; other receivers get the same structured fields.
    const body = JSON.stringify(target.format === 'slack' ? { text: message.text, fields: message } : message);
    for (let attempt = 0; attempt <= retries; attempt++) {
      if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, backoffMs * 2 ** (attempt - 1)));
      try {
        const response = await doFetch(target.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
          signal: AbortSignal.timeout(timeoutMs),
        });
        await response.body?.cancel().catch(() => undefined);
        if (response.ok) {
          options.onDelivery?.(true, attempt + 1);
          return;
        }
        options.logger?.warn({ component: 'notifier', flag: message.flag, status: response.status, attempt: attempt + 1 }, 'webhook answered with an error');
      } catch (error) {
        options.logger?.warn({ component: 'notifier', flag: message.flag, err: error, attempt: attempt + 1 }, 'webhook failed');
      }
    }
    options.onDelivery?.(false, retries + 1);
    options.logger?.error({ component: 'notifier', flag: message.flag, event: message.event }, 'webhook gave up after retries');
  };

  return {
    send(targets, message) {
      const now = Date.now();
      const key = `${message.flag}\u0000${message.event}\u0000${message.text}`;
      const last = recent.get(key);
      if (last !== undefined && now - last < dedupeMs) return;
      recent.set(key, now);
      if (recent.size > 10_000) recent.clear();
      for (const target of targets) {
        const task = deliver(target, message).catch(() => undefined);
        inFlight.add(task);
        void task.finally(() => inFlight.delete(task));
      }
    },
    async flush() {
      await Promise.all([...inFlight]);
    },
  };
}
