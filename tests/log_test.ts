import assert from "node:assert/strict";
import { goLogTime, Logger } from "../lib/cli/log.ts";

function sink() {
  const lines: string[] = [];
  return {
    lines,
    writeSync(p: Uint8Array) {
      lines.push(new TextDecoder().decode(p));
      return p.byteLength;
    },
  };
}

Deno.test("goLogTime() formats as Go's log package: 2006/01/02 15:04:05", () => {
  assert.equal(goLogTime(new Date(2023, 9, 9, 8, 2, 5)), "2023/10/09 08:02:05");
});

Deno.test("Logger writes timestamped lines; quiet drops info but keeps errors", () => {
  const out = sink();
  const log = new Logger({ sink: out });
  log.info("Connection from:", "127.0.0.1:5");
  assert.match(
    out.lines[0],
    /^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d Connection from: 127\.0\.0\.1:5\n$/,
  );
  const quiet = new Logger({ sink: out, quiet: true });
  quiet.info("hidden");
  quiet.error(new Error("shown"));
  assert.equal(out.lines.length, 2);
  assert.match(out.lines[1], / shown\n$/);
});
