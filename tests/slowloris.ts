/**
 * A slowloris for the head deadline tests: a client that starts a line
 * (or a JSON value, a gob message) and sends one more byte every 300 ms,
 * never finishing it, until the server closes the connection.
 *
 * @module
 */
import { TcpPeer, withTimeout } from "./helpers.ts";

/** How often the slowloris sends its next byte: well inside any idle timeout. */
export const DRIBBLE_MS = 300;

/** What a slowloris saw: the lines the server sent and how long until it closed. */
export interface Dribbled {
  lines: string[];
  closedAfterMs: number;
}

/**
 * Sends `start`, then one byte of `filler` every {@link DRIBBLE_MS} until
 * the server closes (or `giveUpMs` pass); returns the server's lines.
 */
export async function dribble(
  port: number,
  start: string | Uint8Array,
  { filler = "a", giveUpMs = 8_000 } = {},
): Promise<Dribbled> {
  await using peer = await TcpPeer.connect(port);
  const began = Date.now();
  await peer.send(start);
  let open = true;
  const sending = (async () => {
    while (open && Date.now() - began < giveUpMs) {
      await new Promise((resolve) => setTimeout(resolve, DRIBBLE_MS));
      if (!open) break;
      // A failed write means the server closed: what readAll is waiting for.
      await peer.send(filler).catch(() => open = false);
    }
  })();
  const lines: string[] = [];
  const collect = async () => {
    try {
      for (let l = await peer.reader.readLine(); l !== null; l = await peer.reader.readLine()) {
        lines.push(l);
      }
    } catch (error) {
      // Closed while our next byte was on its way: a reset is a close too.
      if (!(error instanceof Deno.errors.ConnectionReset)) throw error;
    }
  };
  try {
    await withTimeout(collect(), giveUpMs + 2_000, `the server to close (got ${lines})`);
    return { lines, closedAfterMs: Date.now() - began };
  } finally {
    open = false;
    await sending;
  }
}
