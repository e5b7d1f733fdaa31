/**
 * Runs tasks for the same key one after another within this process. Writers to one flag then
 * compete only with other replicas, so compare-and-set retries stay few under heavy contention.
 *
 * A failure that `shared` accepts (the store timing out, say) is passed to the tasks that were
 * waiting behind it instead of running them: each would otherwise wait for the store in turn, so
 * the n-th caller would wait n store timeouts. They fail without having changed anything.
 *
 * @example
 * const queue = new KeyedQueue({ shared: isStoreUnavailable });
 * await queue.run('async-reports', () => readModifyWrite());
 */
export class KeyedQueue {
  /** Per key, the last task's end: undefined, or the failure to pass on. */
  readonly #tails = new Map<string, Promise<{ readonly error: unknown } | undefined>>();
  readonly #shared: (error: unknown) => error is Error;

  constructor(options: { readonly shared?: (error: unknown) => error is Error } = {}) {
    this.#shared = options.shared ?? ((_error: unknown): _error is Error => false);
  }

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve(undefined);
    const result = previous.then((failed) => {
      const error = failed?.error;
      return failed !== undefined && this.#shared(error) ? Promise.reject(error) : task();
    });
    const tail = result.then(
      () => undefined,
      (error: unknown) => ({ error }),
    );
    this.#tails.set(key, tail);
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return result;
  }
}
