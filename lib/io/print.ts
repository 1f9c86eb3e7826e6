/**
 * Writing to stdout from code that prints as events arrive: each call
 * writes its whole text at once, so lines printed for many clients (or
 * replies and prompts) never interleave.
 *
 * @module
 */

const encoder = new TextEncoder();

/** Something with a synchronous write, such as `Deno.stdout`. */
export interface SyncWriter {
  writeSync(p: Uint8Array): number;
}

/** Writes all of `text` (UTF-8) or `bytes` to `out` (default stdout) before returning. */
export function printSync(text: string | Uint8Array, out: SyncWriter = Deno.stdout): void {
  writeAllSync(out, typeof text === "string" ? encoder.encode(text) : text);
}

/** Writes all of `data`, looping over partial writes: the synchronous twin of lines.ts's `writeAll`. */
export function writeAllSync(out: SyncWriter, data: Uint8Array): void {
  let offset = 0;
  while (offset < data.byteLength) offset += out.writeSync(data.subarray(offset));
}

/**
 * Whether a client writes plain data (only what came from the peer, one
 * message per line, nothing else on stdout): with `--raw`, or whenever
 * stdout is not a terminal (a pipe or a file), so `| jq` and `| wc -l`
 * see the peer's messages alone.
 */
export function plainOutput(raw: boolean, out: { isTerminal(): boolean } = Deno.stdout): boolean {
  return raw || !out.isTerminal();
}
