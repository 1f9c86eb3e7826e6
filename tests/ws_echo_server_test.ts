import assert from "node:assert/strict";
import { Browser } from "./browser.ts";
import { missingPeer, runScript, startScript, withTimeout } from "./helpers.ts";
import { OP, RawWsClient, text } from "./ws_raw.ts";

Deno.test("ws_echo_server answers / with the book's text, /client with the page, /ws plain with 426", async () => {
  await using server = await startScript("ws_echo_server", ["127.0.0.1:0"]);
  const base = `http://127.0.0.1:${server.port}`;
  const root = await fetch(`${base}/`);
  assert.equal(await root.text(), "Welcome!\nPlease use /ws for WebSocket!");
  const page = await fetch(`${base}/client`);
  assert.match(page.headers.get("content-type") ?? "", /text\/html/);
  const html = await page.text();
  assert.match(html, /new WebSocket\(scheme \+ location.host \+ "\/ws"\)/);
  assert.doesNotMatch(html, /innerHTML/);
  const plain = await fetch(`${base}/ws`);
  assert.equal(plain.status, 426);
  await plain.body?.cancel();
});

Deno.test("ws_echo_server echoes ws_client's lines and logs connection, messages and close", async () => {
  await using server = await startScript("ws_echo_server", ["127.0.0.1:0"]);
  const result = await runScript("ws_client", ["--raw", `ws://127.0.0.1:${server.port}/ws`], {
    stdin: "Hello from netkit!\nBye!\n",
  });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout, "Hello from netkit!\nBye!");
  await server.stderr.waitFor(/From 127\.0\.0\.1:\d+ read websocket: close 1000 \(normal\)/);
  assert.match(
    server.stderr.text,
    /\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d Connection from: 127\.0\.0\.1:\d+/,
  );
  assert.match(server.stderr.text, /Received: Hello from netkit!/);
  assert.match(server.stderr.text, /Received: Bye!/);
});

Deno.test("ws_echo_server keeps binary binary on /echo and text text", async () => {
  await using server = await startScript("ws_echo_server", ["127.0.0.1:0"]);
  const { client, reply } = await RawWsClient.open(server.port, "/echo");
  await using _c = client;
  assert.equal(reply.status, 101);
  const bytes = Uint8Array.from({ length: 70_000 }, (_, i) => (i * 31) % 256);
  await client.sendFrame(OP.binary, bytes);
  const echoed = await client.readFrame();
  assert.equal(echoed?.opcode, OP.binary);
  assert.deepEqual(echoed?.payload, bytes);
  await client.sendFrame(OP.text, "ünïcode ✓");
  const back = await client.readFrame();
  assert.equal(back?.opcode, OP.text);
  assert.equal(text(back), "ünïcode ✓");
  await client.sendClose();
  assert.equal((await client.readClose()).code, 1000);
});

Deno.test("ws_echo_server refuses a foreign Origin with 403 unless --allow-origin allows it", async () => {
  await using server = await startScript("ws_echo_server", [
    "127.0.0.1:0",
    "--allow-origin",
    "https://friend.example",
  ]);
  const foreign = await RawWsClient.open(server.port, "/ws", { Origin: "http://evil.example" });
  foreign.client.close();
  assert.equal(foreign.reply.status, 403);
  await server.stderr.waitFor(/refused Origin "http:\/\/evil\.example"/);
  for (const origin of [`http://127.0.0.1:${server.port}`, "https://friend.example", ""]) {
    const { client, reply } = await RawWsClient.open(server.port, "/ws", { Origin: origin });
    client.close();
    assert.equal(reply.status, 101, `Origin "${origin}": ${reply.head}`);
  }
});

Deno.test("ws_echo_server closes a message above --max-message with 1009; others go on", async () => {
  await using server = await startScript("ws_echo_server", [
    "127.0.0.1:0",
    "--max-message",
    "1000",
  ]);
  const { client } = await RawWsClient.open(server.port);
  await using _c = client;
  await client.sendFrame(OP.text, "x".repeat(1000));
  assert.equal(text(await client.readFrame()), "x".repeat(1000));
  await client.sendFrame(OP.binary, new Uint8Array(1001));
  assert.equal((await client.readClose()).code, 1009);
  const other = await RawWsClient.open(server.port);
  await using _o = other.client;
  await other.client.sendFrame(OP.text, "still here");
  assert.equal(text(await other.client.readFrame()), "still here");
});

Deno.test("ws_echo_server drops a client that never reads, and keeps serving others", async () => {
  await using server = await startScript("ws_echo_server", [
    "127.0.0.1:0",
    "--max-buffered",
    "524288", // half a frame: the first echo that stays unread passes it
  ]);
  const { client: stalled } = await RawWsClient.open(server.port);
  await using _s = stalled;
  const chunk = new Uint8Array(1 << 20);
  // Far more than the loopback buffers hold, never reading a byte back.
  // Once the server has closed it, the runtime may reset the connection;
  // and while its echo is pending, Deno may stop reading this socket, so a
  // send that does not finish within a second ends the flood.
  let blocked: Promise<boolean> | null = null;
  for (let i = 0; i < 32 && blocked === null; i++) {
    const sent = stalled.sendFrame(OP.binary, chunk).then(() => true, () => false);
    const finished = await withTimeout(sent, 1_000, "a send").then((ok) => ok, () => null);
    if (finished === false) break;
    if (finished === null) blocked = sent;
  }
  await server.stderr.waitFor(/more than 524288 bytes unread, closing/, 15_000);
  await server.stderr.waitFor(/read websocket: close/, 15_000);
  stalled.close();
  await blocked; // settles once the connection is closed
  const { client } = await RawWsClient.open(server.port);
  await using _c = client;
  await client.sendFrame(OP.text, "after the stall");
  assert.equal(text(await client.readFrame()), "after the stall");
});

Deno.test("ws_echo_server closes every socket with 1001 on SIGINT and exits 0", async () => {
  await using server = await startScript("ws_echo_server", ["127.0.0.1:0"]);
  const { client } = await RawWsClient.open(server.port);
  await using _c = client;
  await client.sendFrame(OP.text, "ping");
  assert.equal(text(await client.readFrame()), "ping");
  server.kill("SIGINT");
  const { code } = await client.readClose();
  assert.equal(code, 1001);
  await client.sendClose(1001);
  assert.equal((await server.exit()).code, 0, server.output);
});

Deno.test({
  name: "ws_echo_server's /client page in headless Chromium sends, shows the echo and the close",
  ignore: missingPeer("chromium"),
  async fn() {
    await using server = await startScript("ws_echo_server", ["127.0.0.1:0"]);
    await using browser = await Browser.open(`http://127.0.0.1:${server.port}/client`);
    await browser.waitFor(`document.getElementById("status")?.textContent === "open"`);
    await browser.evaluate(`(() => {
      document.getElementById("input").value = "<b>Hello Server!</b>";
      document.getElementById("send").click();
    })()`);
    const echoed = await browser.waitFor<string>(
      `[...document.querySelectorAll("#log .received")].map((e) => e.textContent).join("|")`,
    );
    assert.equal(echoed, "Data received from server: <b>Hello Server!</b>");
    assert.equal(await browser.evaluate(`document.querySelectorAll("#log b").length`), 0);
    await server.stderr.waitFor("Received: <b>Hello Server!</b>");
    server.kill("SIGTERM");
    const closed = await browser.waitFor<string>(
      `[...document.querySelectorAll("#log div")].map((e) => e.textContent)
        .find((t) => t.startsWith("Connection closed"))`,
    );
    assert.equal(closed, "Connection closed, code=1001, reason=server shutting down");
    assert.equal((await server.exit()).code, 0);
  },
});

Deno.test("ws_echo_server rejects bad options with exit 2 and prints --help", async () => {
  for (
    const [args, pattern] of [
      [["--max-message", "big"], /Invalid --max-message "big"/],
      [["--allow-origin", "example.com"], /Invalid --allow-origin "example.com"/],
      [["--idle-timeout", "soon"], /Invalid --idle-timeout "soon"/],
      [["unix:/tmp/x.sock"], /unix sockets are not supported/],
    ] as const
  ) {
    const { code, stderr } = await runScript("ws_echo_server", [...args]);
    assert.equal(code, 2, `${args}: ${stderr}`);
    assert.match(stderr, pattern);
  }
  const help = await runScript("ws_echo_server", ["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: ws_echo_server \[ADDR\]/);
});

Deno.test("ws_echo_server logs a message ending in a newline without an empty line after it", async () => {
  await using server = await startScript("ws_echo_server", ["127.0.0.1:0"]);
  const { client } = await RawWsClient.open(server.port, "/ws");
  await using _c = client;
  await client.sendFrame(OP.text, "line one\n");
  assert.equal(text(await client.readFrame()), "line one\n", "the echo keeps the newline");
  await client.sendFrame(OP.text, "line two");
  await client.readFrame();
  await server.stderr.waitFor(/Received: line two$/);
  const lines = server.stderr.lines;
  const at = lines.findIndex((l) => /Received: line one$/.test(l));
  assert.ok(at >= 0, server.stderr.text);
  assert.match(lines[at + 1], /Received: line two$/, "no empty line between");
  await client.sendClose();
  await client.readClose();
});
