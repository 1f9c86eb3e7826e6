/**
 * Tasks run one after another per key, so that work for one user (storing,
 * delivering, flushing its messages) never interleaves and keeps its order.
 *
 * @module
 */

/**
 * Runs tasks one after another per key (per user), so that storing,
 * delivering and flushing a user's messages never interleave and order
 * is kept.
 */
export class KeyedQueue {
  #tails = new Map<string, Promise<unknown>>();

  /**
   * Runs `task` after every earlier task of `key`; resolves with its
   * result. With nothing queued for `key` it runs at once, and a task
   * that returns no promise leaves nothing queued.
   */
  run<T>(key: string, task: () => T | Promise<T>): Promise<T> {
    const before = this.#tails.get(key);
    let result: Promise<T>;
    if (before) {
      result = before.then(task, task);
    } else {
      let value: T | Promise<T>;
      try {
        value = task();
      } catch (error) {
        return Promise.reject(error);
      }
      if (!(value instanceof Promise)) return Promise.resolve(value);
      result = value;
    }
    const tail = result.catch(() => {});
    this.#tails.set(key, tail);
    tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return result;
  }

  /** Resolves when every queued task has finished. */
  async idle(): Promise<void> {
    while (this.#tails.size > 0) await Promise.all([...this.#tails.values()]);
  }
}
