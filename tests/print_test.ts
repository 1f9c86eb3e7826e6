import assert from "node:assert/strict";
import { plainOutput, printSync } from "../lib/io/print.ts";

Deno.test("printSync() loops over partial writes until everything is written", () => {
  const chunks: number[][] = [];
  const out = {
    writeSync: (p: Uint8Array) => (chunks.push([...p.subarray(0, 2)]), Math.min(2, p.byteLength)),
  };
  printSync("héllo", out);
  assert.equal(new TextDecoder().decode(Uint8Array.from(chunks.flat())), "héllo");
  assert.equal(chunks.length, 3);
  printSync(Uint8Array.of(0, 255), out);
  assert.deepEqual(chunks.at(-1), [0, 255]);
});

Deno.test("plainOutput() is plain with --raw or when stdout is not a terminal", () => {
  const terminal = { isTerminal: () => true };
  const pipe = { isTerminal: () => false };
  assert.equal(plainOutput(false, terminal), false);
  assert.equal(plainOutput(true, terminal), true);
  assert.equal(plainOutput(false, pipe), true);
});
