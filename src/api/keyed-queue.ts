/**
 * Runs tasks for the same key one after another within this process. Writers to one flag then
 * compete only with other replicas, so compare-and-set retries stay few under heavy contention.
 *
 * @example
 * const queue = new KeyedQueue();
 * await queue.run('async-reports', () => readModifyWrite());
 */
export class KeyedQueue {
  readonly #tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    const result = previous.then(task, task);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.#tails.set(key, tail);
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return result;
  }
}
