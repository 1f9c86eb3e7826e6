/**
 * Login throttling: failed logins counted per account in a sliding window,
 * the same for accounts that do not exist.
 *
 * @module
 */

/** Failed logins per account within {@link FAILURE_WINDOW_MS} before attempts must wait. */
export const MAX_LOGIN_FAILURES = 5;
/** The throttling window: one minute, as the issue asks. */
export const FAILURE_WINDOW_MS = 60_000;
/** Accounts whose failures are remembered; beyond it the oldest are forgotten. */
const MAX_THROTTLED_ACCOUNTS = 100_000;
/**
 * Counts failed logins per account in a sliding minute: after
 * {@link MAX_LOGIN_FAILURES}, attempts for that account are refused until
 * the oldest failure leaves the window. Unknown accounts are counted the
 * same way, so throttling tells nothing about which accounts exist.
 */
export class LoginThrottle {
  #failures = new Map<string, number[]>();
  #max: number;
  #windowMs: number;

  constructor(max = MAX_LOGIN_FAILURES, windowMs = FAILURE_WINDOW_MS) {
    this.#max = max;
    this.#windowMs = windowMs;
  }

  /** Milliseconds `user` must wait before trying again; 0 to go ahead. */
  waitMs(user: string, now = Date.now()): number {
    const times = this.#recent(user, now);
    return times.length >= this.#max ? times[0] + this.#windowMs - now : 0;
  }

  /** Records a failure. */
  fail(user: string, now = Date.now()): void {
    const times = this.#recent(user, now);
    times.push(now);
    this.#failures.delete(user); // re-insert: the Map keeps the most recent last
    this.#failures.set(user, times.slice(-this.#max));
    if (this.#failures.size > MAX_THROTTLED_ACCOUNTS) {
      this.#failures.delete(this.#failures.keys().next().value!);
    }
  }

  /** Forgets failures after a successful login. */
  clear(user: string): void {
    this.#failures.delete(user);
  }

  #recent(user: string, now: number): number[] {
    const times = this.#failures.get(user) ?? [];
    const fresh = times.filter((t) => t > now - this.#windowMs);
    if (fresh.length === 0) this.#failures.delete(user);
    return fresh;
  }
}
