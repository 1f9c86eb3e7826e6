import assert from "node:assert/strict";
import { readAtMost } from "../lib/io/bounded_read.ts";

/** A stream of the given chunks that records whether it was cancelled. */
function source(chunks: string[]) {
  const state = { cancelled: false, pulled: 0 };
  const encoder = new TextEncoder();
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (state.pulled === chunks.length) return controller.close();
      controller.enqueue(encoder.encode(chunks[state.pulled++]));
    },
    cancel() {
      state.cancelled = true;
    },
  }, { highWaterMark: 0 }); // pulled only when read
  return { stream, state };
}

Deno.test("readAtMost joins every chunk of a stream within the bound", async () => {
  const { stream } = source(["ab", "", "cde", "f"]);
  assert.equal(new TextDecoder().decode((await readAtMost(stream, 6))!), "abcdef");
  assert.deepEqual(await readAtMost(source([]).stream, 0), new Uint8Array(0));
});

Deno.test("readAtMost gives null past the bound, stops reading and cancels the stream", async () => {
  const { stream, state } = source(["abc", "def", "ghi", "jkl"]);
  assert.equal(await readAtMost(stream, 5), null);
  assert.equal(state.pulled, 2, "nothing is read after the chunk that passed the bound");
  assert.equal(state.cancelled, true);
});
