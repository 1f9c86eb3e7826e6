import assert from "node:assert/strict";
import { delay, type ScriptProcess, startScript, withTimeout } from "./helpers.ts";

/**
 * Memory of held requests through rpc_server's HTTP port (the front and its
 * loopback runner), in soft bounds: what a held slow body costs, and that a
 * second wave reuses what the first left rather than adding to it.
 */

const SLOW_BODY = new TextEncoder().encode(
  "POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{",
);
const HELD = 1_000;
const WAVES = 5;
const KIB = 1024;
const MIB = 1024 * KIB;

/** The process's resident memory in bytes and open descriptors (through ps and ls: /proc needs --allow-all). */
async function usage(server: ScriptProcess): Promise<{ rss: number; fds: number }> {
  const pid = String(server.child.pid);
  const ps = await new Deno.Command("ps", { args: ["-o", "rss=", "-p", pid] }).output();
  const ls = await new Deno.Command("ls", { args: [`/proc/${pid}/fd`] }).output();
  const decoder = new TextDecoder();
  return {
    rss: Number(decoder.decode(ps.stdout).trim()) * KIB,
    fds: decoder.decode(ls.stdout).split("\n").filter(Boolean).length,
  };
}

/** Holds `HELD` slow bodies until the server holds them all, then closes them; returns the peak RSS. */
async function wave(server: ScriptProcess, port: number, baseFds: number): Promise<number> {
  const conns: Deno.Conn[] = [];
  try {
    for (let i = 0; i < HELD; i++) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      conns.push(conn);
      await conn.write(SLOW_BODY);
    }
    // Three descriptors per held request: the client's, the pipe's, the runner's.
    await withTimeout(
      (async () => {
        while ((await usage(server)).fds < baseFds + 3 * HELD - 30) await delay(100);
      })(),
      20_000,
      "the server to hold every slow body",
    );
    return (await usage(server)).rss;
  } finally {
    for (const conn of conns) conn.close();
    await withTimeout(
      (async () => {
        while ((await usage(server)).fds > baseFds + 5) await delay(100);
      })(),
      20_000,
      "the descriptors to come back",
    );
  }
}

Deno.test("rpc_server's HTTP port holds 1,000 slow bodies in bounded memory that later waves reuse", async () => {
  await using server = await startScript("rpc_server", [
    "--host=127.0.0.1",
    "--port=0",
    "--http-port=0",
    "--body-timeout=60s",
    "-q",
  ]);
  const line = await server.stdout.waitFor(/Listening on http:\/\//);
  const port = Number(/:(\d+)\//.exec(line)![1]);
  const start = await usage(server);
  const peaks: number[] = [];
  for (let i = 0; i < WAVES; i++) {
    if (i > 0) await delay(2_000); // the connections go, then a new wave comes
    peaks.push(await wave(server, port, start.fds));
  }
  const growth = peaks.map((peak) => peak - start.rss);
  const msg = `RSS start ${start.rss / MIB | 0} MiB, peaks ${
    peaks.map((peak) => peak / MIB | 0).join(" / ")
  } MiB`;
  // Measured about 80 KB per held request (front, pipe and runner) in the first wave.
  assert.ok(
    growth[0] / HELD < 150 * KIB,
    `${(growth[0] / HELD / KIB) | 0} KiB per request; ${msg}`,
  );
  // The allocator and V8 keep what a wave freed (about 2x the first wave's growth,
  // measured) and later waves reuse it: a plateau, not a climb.
  assert.ok(Math.max(...growth) < 3 * growth[0], msg);
  assert.ok(peaks[WAVES - 1] - peaks[2] < growth[0], msg);
  server.kill("SIGTERM");
  assert.equal((await server.exit()).code, 0, server.output);
});
