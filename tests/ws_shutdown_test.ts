import assert from "node:assert/strict";
import { startScript, withTimeout } from "./helpers.ts";
import { RawWsClient } from "./ws_raw.ts";

/** Raw clients read the close frame itself; Deno's WebSocket reports the code it saw (once 0). */
const RAW_CLIENTS = 4;
const DENO_CLIENTS = 3;

const servers: Array<[string, string[], string]> = [
  ["ws_echo_server", ["127.0.0.1:0"], "/ws"],
  ["ws_random_server", ["127.0.0.1:0"], "/ws"],
  ["ws_chat_server", ["--host=127.0.0.1", "--port=0", "--tcp-port=off", "-q"], "/ws?name=c"],
];

for (const [script, args, path] of servers) {
  Deno.test(`${script}: on SIGINT every WebSocket client sees close code 1001, then it exits 0`, async () => {
    await using server = await startScript(script, args);
    const raw = await Promise.all(
      Array.from({ length: RAW_CLIENTS }, () => RawWsClient.open(server.port, path)),
    );
    try {
      for (const { reply } of raw) assert.equal(reply.status, 101);
      const deno = Array.from({ length: DENO_CLIENTS }, () => {
        const ws = new WebSocket(`ws://127.0.0.1:${server.port}${path}`);
        const opened = new Promise((resolve, reject) => {
          ws.onopen = resolve;
          ws.onerror = () => reject(new Error("a client could not connect"));
        });
        const closed = new Promise<number>((resolve) => ws.onclose = (e) => resolve(e.code));
        return { opened, closed };
      });
      await withTimeout(Promise.all(deno.map((c) => c.opened)), 5_000, "the clients to open");
      server.kill("SIGINT");
      const rawCodes = await Promise.all(raw.map(async ({ client }) => {
        const { code } = await client.readClose();
        await client.sendClose(code ?? 1000);
        return code;
      }));
      const denoCodes = await withTimeout(
        Promise.all(deno.map((c) => c.closed)),
        5_000,
        "the clients to see the close",
      );
      assert.deepEqual(rawCodes, Array(RAW_CLIENTS).fill(1001));
      assert.deepEqual(denoCodes, Array(DENO_CLIENTS).fill(1001));
      assert.equal((await server.exit()).code, 0, server.output);
    } finally {
      for (const { client } of raw) client.close();
    }
  });
}
