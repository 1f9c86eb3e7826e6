/**
 * Ending a program on SIGINT or SIGTERM: servers drain, clients say goodbye.
 *
 * @module
 */

/**
 * How long after a first signal the same signal again counts as its copy.
 * Under `deno task`, Ctrl-C reaches the program twice: the terminal
 * signals the whole foreground process group, and `deno task` forwards
 * what it got to its child, a few milliseconds later (12 ms seen on a
 * loaded machine). Taken as a second Ctrl-C, the copy killed the program
 * mid-drain with exit 130 instead of 0.
 */
export const DUPLICATE_SIGNAL_MS = 1_000;

/**
 * Aborts `controller` on SIGINT or SIGTERM; dispose the result to remove
 * the listeners. A second signal (after {@link DUPLICATE_SIGNAL_MS}) is
 * left to the default action, so a stuck shutdown can still be
 * interrupted. Disposed within that time of a signal, the listeners stay
 * until it has passed (on a timer that does not keep the program alive): a
 * server with nothing to drain is done before the copy arrives.
 */
export function abortOnSignals(controller: AbortController): Disposable {
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  let timer: ReturnType<typeof setTimeout> | undefined;
  let signalled = false;
  const onSignal = () => {
    if (signalled) return; // the forwarded copy of the first
    signalled = true;
    controller.abort();
    timer = setTimeout(remove, DUPLICATE_SIGNAL_MS);
    Deno.unrefTimer(timer);
  };
  const remove = () => {
    clearTimeout(timer);
    for (const sig of signals) {
      try {
        Deno.removeSignalListener(sig, onSignal);
      } catch {
        // Never added, or removed already.
      }
    }
  };
  for (const sig of signals) Deno.addSignalListener(sig, onSignal);
  return { [Symbol.dispose]: () => signalled ? undefined : remove() };
}

/** Resolves once `signal` is aborted (at once if it already is); never rejects. */
export function whenAborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener("abort", () => resolve(), { once: true });
  });
}
