import assert from "node:assert/strict";
import { readOpening } from "../lib/file/opening.ts";
import type { Reader } from "../lib/io/lines.ts";

const encoder = new TextEncoder();

/** A reader that hands out `pieces` one per read, then waits `endMs` before the end. */
function pieces(parts: Uint8Array[], endMs = 0): Reader {
  let i = 0;
  return {
    async read(p: Uint8Array) {
      if (i >= parts.length) {
        if (endMs > 0) await new Promise((resolve) => setTimeout(resolve, endMs));
        return null;
      }
      const part = parts[i];
      const n = Math.min(p.byteLength, part.byteLength);
      p.set(part.subarray(0, n));
      if (n === part.byteLength) i++;
      else parts[i] = part.subarray(n);
      return n;
    },
  };
}

/** Every way to cut `bytes` in two. */
function splits(bytes: Uint8Array): Uint8Array[][] {
  const out = [[bytes]];
  for (let at = 1; at < bytes.byteLength; at++) {
    out.push([bytes.subarray(0, at), bytes.subarray(at)]);
  }
  return out;
}

Deno.test("readOpening() reads netkit's opening lines however they are split", async () => {
  const text = `token abc\nkey ${"f".repeat(64)}\nFILE 5 a b.txt\n`;
  for (
    const parts of [
      ...splits(encoder.encode(text)),
      [...encoder.encode(text)].map((b) => Uint8Array.of(b)),
    ]
  ) {
    const opening = await readOpening(pieces(parts), 1_000);
    assert.deepEqual(opening, {
      kind: "lines",
      lines: ["token abc", `key ${"f".repeat(64)}`, "FILE 5 a b.txt"],
      extra: 0,
    });
  }
  const early = await readOpening(pieces([encoder.encode("FILE 5 x\nhello")]), 1_000);
  assert.deepEqual(early, { kind: "lines", lines: ["FILE 5 x"], extra: 5 });
});

Deno.test("readOpening() takes a bare name at once, or after the grace when it could be a header", async () => {
  const started = Date.now();
  const bare = await readOpening(pieces([encoder.encode("report.pdf")], 5_000), 5_000);
  assert.equal(bare.kind, "bare");
  assert.equal(
    new TextDecoder().decode(bare.kind === "bare" ? bare.bytes : undefined),
    "report.pdf",
  );
  assert.ok(Date.now() - started < 1_000, "no waiting for a name that is no header");
  const held = await readOpening(pieces([encoder.encode("FILE")], 100), 50);
  assert.equal(held.kind, "bare");
  if (held.kind === "bare") {
    assert.equal(new TextDecoder().decode(held.bytes), "FILE");
    assert.equal(
      await held.content.read(new Uint8Array(10)),
      null,
      "the pending read ends the content",
    );
  }
  assert.deepEqual(await readOpening(pieces([]), 50), { kind: "none" });
  const long = await readOpening(pieces([encoder.encode("token " + "x".repeat(5000))]), 50);
  assert.equal(long.kind, "too-long");
});
