/**
 * Waiting with a time bound: {@link deadline} fails a promise that takes
 * too long, {@link settledWithin} waits for one at most so long, and
 * {@link delay} sleeps; every timer is cleared, so tests' sanitizers stay
 * quiet.
 *
 * @module
 */

/**
 * Resolves or rejects as `promise` does, unless `ms` pass first: then it
 * rejects with `Deno.errors.TimedOut(message)`. `ms` of 0 or less waits
 * forever. The promise itself is not cancelled.
 */
export async function deadline<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  if (!(ms > 0)) return await promise;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Deno.errors.TimedOut(message)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Waits until `promise` settles (fulfilled or rejected alike) or `ms` pass,
 * whichever comes first; resolves to whether it settled in time. Never
 * rejects: for best-effort waits such as a drain or a last write.
 */
export async function settledWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise.then(() => true, () => true),
      new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(false), ms)),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves after `ms`. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
