/**
 * Interop of the WebSocket engine with other implementations' clients:
 * gorilla/websocket (built from tests/fixtures/go_ws_client at test time),
 * npm:ws, and Deno's own WebSocket. Chromium is in ws_echo_server_test.ts
 * (/client) and ws_chat_server_test.ts (the chat page).
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import WebSocket from "ws";
import { buildGoFixture } from "./go_fixtures.ts";
import { missingPeer, startScript, startWsChat, withTimeout } from "./helpers.ts";

Deno.test({
  name:
    "ws_echo_server talks to gorilla/websocket's client: text, a fragmented binary, ping, close",
  ignore: missingPeer("go"),
  async fn() {
    await using client = await buildGoFixture("go_ws_client");
    await using server = await startScript("ws_echo_server", ["127.0.0.1:0", "-q"]);
    const { code, stdout, stderr } = await new Deno.Command(client.path, {
      args: ["-url", `ws://127.0.0.1:${server.port}/ws`],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const out = new TextDecoder().decode(stdout);
    assert.equal(code, 0, out + new TextDecoder().decode(stderr));
    assert.deepEqual(out.trim().split("\n"), [
      "text héllo from gorilla",
      "binary 70000 true 2",
      "pong are you there",
      "close 1000",
    ]);
  },
});

/** Opens an npm:ws client and collects what it receives. */
function npmClient(url: string) {
  const ws = new WebSocket(url);
  const messages: Array<{ data: Buffer; binary: boolean }> = [];
  const opened = new Promise<void>((resolve, reject) => {
    ws.on("open", () => resolve());
    ws.on("error", reject);
    ws.on(
      "unexpected-response",
      (_req: unknown, res: { statusCode: number }) => reject(new Error(`status ${res.statusCode}`)),
    );
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on("close", (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() }))
  );
  ws.on("message", (data: Buffer, binary: boolean) => messages.push({ data, binary }));
  const until = async (n: number) => {
    while (messages.length < n) await new Promise((r) => setTimeout(r, 10));
  };
  return { ws, messages, opened, closed, until };
}

Deno.test("ws_echo_server talks to npm:ws's client: text, binary, fragments, ping, close", async () => {
  await using server = await startScript("ws_echo_server", ["127.0.0.1:0", "-q"]);
  const c = npmClient(`ws://127.0.0.1:${server.port}/ws`);
  await withTimeout(c.opened, 5_000, "npm:ws to open");
  c.ws.send("héllo from ws");
  const big = Buffer.alloc(200_000, 7);
  c.ws.send(big, { binary: true });
  // A message in three fragments.
  c.ws.send("one ", { fin: false });
  c.ws.send("two ", { fin: false });
  c.ws.send("three", { fin: true });
  const pong = new Promise<string>((resolve) =>
    c.ws.once("pong", (d: Buffer) => resolve(d.toString()))
  );
  c.ws.ping("hi");
  assert.equal(await withTimeout(pong, 5_000, "a pong"), "hi");
  await withTimeout(c.until(3), 5_000, "three echoes");
  assert.equal(c.messages[0].data.toString(), "héllo from ws");
  assert.equal(c.messages[0].binary, false);
  assert.equal(c.messages[1].binary, true);
  assert.equal(Buffer.compare(c.messages[1].data, big), 0);
  assert.equal(c.messages[2].data.toString(), "one two three");
  c.ws.close(1000, "bye");
  const { code } = await withTimeout(c.closed, 5_000, "the close");
  assert.equal(code, 1000);
});

Deno.test("ws_chat_server talks to npm:ws's client and to Deno's WebSocket in one room", async () => {
  await using server = await startWsChat(["--tcp-port=off", "-q"]);
  const c = npmClient(`ws://127.0.0.1:${server.port}/ws?name=npm`);
  await withTimeout(c.opened, 5_000, "npm:ws to open");
  const deno = new globalThis.WebSocket(`ws://127.0.0.1:${server.port}/ws?name=deno`);
  deno.binaryType = "arraybuffer";
  const got: string[] = [];
  deno.onmessage = (e) => got.push(new TextDecoder().decode(e.data));
  await new Promise((resolve) => deno.onopen = resolve);
  // The npm client hears deno join, then deno's message.
  deno.send("hello from deno");
  await withTimeout(
    (async () => {
      while (!c.messages.some((m) => m.data.toString().includes("hello from deno"))) {
        await new Promise((r) => setTimeout(r, 10));
      }
    })(),
    5_000,
    "npm:ws to hear deno",
  );
  c.ws.send("hello from npm");
  await withTimeout(
    (async () => {
      while (!got.some((t) => t.includes("hello from npm"))) {
        await new Promise((r) => setTimeout(r, 10));
      }
    })(),
    5_000,
    "deno to hear npm:ws",
  );
  const denoClosed = new Promise<number>((resolve) => deno.onclose = (e) => resolve(e.code));
  deno.close(1000);
  c.ws.close(1000);
  assert.equal(await denoClosed, 1000);
  assert.equal((await c.closed).code, 1000);
});
