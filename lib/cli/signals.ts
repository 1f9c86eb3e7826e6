/**
 * Ending a program on SIGINT or SIGTERM: servers drain, clients say goodbye.
 *
 * @module
 */

/**
 * Aborts `controller` on SIGINT or SIGTERM; dispose the result to remove
 * the listeners. A second signal is left to the default action, so a stuck
 * shutdown can still be interrupted.
 */
export function abortOnSignals(controller: AbortController): Disposable {
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  const onSignal = () => {
    remove();
    controller.abort();
  };
  const remove = () => {
    for (const sig of signals) {
      try {
        Deno.removeSignalListener(sig, onSignal);
      } catch {
        // Never added.
      }
    }
  };
  for (const sig of signals) Deno.addSignalListener(sig, onSignal);
  return { [Symbol.dispose]: remove };
}
