import assert from "node:assert/strict";
import { formatBytes, formatEta, formatRate, ProgressBoard } from "../lib/cli/progress.ts";
import { Logger } from "../lib/cli/log.ts";

function sink() {
  const chunks: string[] = [];
  return {
    chunks,
    /** Everything written, with the clear-line sequence shown as <K>. */
    get text() {
      return chunks.join("").replaceAll("\x1b[K", "<K>");
    },
    writeSync(p: Uint8Array) {
      chunks.push(new TextDecoder().decode(p));
      return p.byteLength;
    },
  };
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test("formatBytes(), formatRate() and formatEta() read like ls -h and curl", () => {
  assert.equal(formatBytes(0), "0 B");
  assert.equal(formatBytes(1023), "1023 B");
  assert.equal(formatBytes(1536), "1.50 KiB");
  assert.equal(formatBytes(1024 ** 3), "1.00 GiB");
  assert.equal(formatBytes(300 * 1024 ** 2), "300 MiB");
  assert.equal(formatRate(45.5 * 1024 ** 2), "45.5 MiB/s");
  assert.equal(formatEta(4.2), "5s");
  assert.equal(formatEta(125), "2m05s");
  assert.equal(formatEta(3725), "1h02m");
  assert.equal(formatEta(Infinity), "--");
});

Deno.test("ProgressBoard on a terminal redraws one bar in place and clears it at the end", async () => {
  const out = sink();
  const board = new ProgressBoard({ tty: true, sink: out });
  const t = board.start("big.bin", 1000, 250);
  t.advance(250);
  await delay(250);
  assert.match(out.text, /\r<K>big\.bin \[#{10}-{10}\] 50% 500 B\/1000 B .*\/s ETA/);
  const log = new Logger({ sink: board.sink, timestamps: false });
  log.info("a log line");
  assert.match(out.text, /\r<K>a log line\n\r<K>big\.bin/); // cleared, logged, redrawn
  t.finish();
  assert.ok(out.text.endsWith("\r<K>"));
});

Deno.test("ProgressBoard without a terminal logs plain lines, never carriage returns", async () => {
  const out = sink();
  const lines: string[] = [];
  const board = new ProgressBoard({
    tty: false,
    sink: out,
    logEveryMs: 40,
    log: (l) => lines.push(l),
  });
  const a = board.start("a.bin", 2048);
  const b = board.start("b.bin", 100);
  a.advance(1024);
  await delay(150);
  a.finish();
  b.finish();
  assert.ok(
    lines.some((l) => /^a\.bin: 50% 1\.00 KiB of 2\.00 KiB, .*\/s, ETA/.test(l)),
    lines.join("\n"),
  );
  assert.ok(lines.some((l) => l.startsWith("b.bin: 0%")));
  assert.equal(out.text, "");
});
