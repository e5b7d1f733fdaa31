/**
 * `promise`, or a rejection with "`what` did not answer within `ms` ms" once `ms` pass first. The
 * timer is cleared either way; the work itself is not cancelled.
 *
 * @example
 * await withTimeout(store.ping(), 1000, 'the flag store');
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`${what} did not answer within ${ms} ms`));
    }, ms);
  });
  return Promise.race([promise, expired]).finally(() => {
    clearTimeout(timer);
  });
}
