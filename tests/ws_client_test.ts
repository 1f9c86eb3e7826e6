import assert from "node:assert/strict";
import { describeMessage } from "../scripts/ws_client.ts";
import {
  delay,
  missingPeer,
  runInTerminal,
  runScript,
  startScript,
  withTimeout,
} from "./helpers.ts";

Deno.test("ws_client shows text, a binary message's UTF-8 text, or else its size", () => {
  const bytes = (...b: number[]) => Uint8Array.from(b).buffer;
  assert.equal(describeMessage("hi"), "Received: hi");
  assert.equal(
    describeMessage(new TextEncoder().encode("h\u00e9").buffer),
    "Received (binary): h\u00e9",
  );
  assert.equal(describeMessage(bytes(0xff, 0xfe, 0x00)), "Received: (binary, 3 bytes)");
});

Deno.test("ws_client in a pipe writes ws_chat_server's JSON events one per line", async () => {
  await using server = await startScript("ws_chat_server", [
    "--host=127.0.0.1",
    "--port=0",
    "--tcp-port=off",
  ]);
  await using client = await startScript("ws_client", [
    `ws://127.0.0.1:${server.port}/ws?name=cli`,
  ], { stdin: true, waitReady: false });
  await client.stdout.waitFor(/^\{"type":"welcome",.*"name":"cli"/);
  await client.write("hello room\n");
  await client.stdout.waitFor(/^\{"type":"message",.*"name":"cli","text":"hello room"\}$/);
  await client.closeStdin();
  assert.equal((await client.exit()).code, 0, client.output);
  assert.ok(client.stdout.lines.length >= 2, client.output);
  for (const line of client.stdout.lines) assert.equal(typeof JSON.parse(line).type, "string");
});

Deno.test("ws_client in a pipe prints all 100000 of ws_random_server's lines, then exits 0", async () => {
  await using server = await startScript("ws_random_server", ["127.0.0.1:0"]);
  for (const args of [[], ["--raw"]]) {
    const result = await runScript("ws_client", [...args, `ws://127.0.0.1:${server.port}/ws`], {
      stdin: "100000\n",
      timeoutMs: 60_000,
    });
    assert.equal(result.code, 0, result.stderr);
    const lines = result.stdout.split("\n");
    assert.equal(lines.length, 100_000, `${args}: ${result.stderr}`);
    assert.ok(lines.every((l) => /^-?\d+$/.test(l)), `${args}: only the numbers on stdout`);
  }
});

Deno.test("ws_client -n leaves the close to the server; without it the end of input closes", async () => {
  await using server = await startScript("ws_echo_server", ["127.0.0.1:0"]);
  await using held = await startScript("ws_client", ["-n", `ws://127.0.0.1:${server.port}/ws`], {
    stdin: true,
    waitReady: false,
  });
  await held.write("kept\n");
  await held.closeStdin();
  await held.stdout.waitFor(/^kept$/);
  await delay(1_500); // past the default --linger
  assert.equal(held.stdout.lines.length, 1);
  held.kill("SIGINT");
  assert.equal((await held.exit()).code, 0, held.output);
  const closing = await runScript("ws_client", [
    "--linger",
    "200ms",
    `ws://127.0.0.1:${server.port}/ws`,
  ], { stdin: "gone\n" });
  assert.equal(closing.code, 0, closing.stderr);
  assert.equal(closing.stdout, "gone");
});

Deno.test("ws_client --book prompts 'Please give me input! N' six times, then closes with 1000", async () => {
  await using server = await startScript("ws_echo_server", ["127.0.0.1:0"]);
  await using client = await startScript("ws_client", [
    "--book",
    "--idle-interval",
    "150ms",
    `127.0.0.1:${server.port}`,
    "ws",
  ], { stdin: true, waitReady: false });
  await client.stdout.waitFor(`Connecting to: 127.0.0.1:${server.port} at ws`);
  await client.write("Hello there!\n");
  await client.stdout.waitFor(/^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d Received: Hello there!$/);
  assert.equal((await client.exit()).code, 0, client.output);
  const prompts = client.stderr.lines.filter((l) => /Please give me input! \d$/.test(l));
  assert.deepEqual(prompts.map((l) => l.slice(-1)), ["0", "1", "2", "3", "4", "5"]);
  assert.match(client.stderr.text, /Caught interrupt signal - quitting!/);
  await server.stderr.waitFor(/read websocket: close 1000 \(normal\)/);
});

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.test(`ws_client on ${signal} says so, sends close 1000 and exits 0`, async () => {
    await using server = await startScript("ws_echo_server", ["127.0.0.1:0"]);
    await using client = await startScript("ws_client", [`ws://127.0.0.1:${server.port}/ws`], {
      stdin: true,
      waitReady: false,
    });
    await client.write("before the signal\n");
    await client.stdout.waitFor(/^before the signal$/);
    client.kill(signal);
    assert.equal((await client.exit()).code, 0, client.output);
    assert.match(client.stderr.text, /Caught interrupt signal - quitting!/);
    assert.match(client.stderr.text, /Connection closed: close 1000 \(normal\)/);
    await server.stderr.waitFor(/read websocket: close 1000 \(normal\)/);
  });
}

Deno.test("ws_client --raw --binary sends binary, and the end of stdin closes cleanly", async () => {
  await using server = await startScript("ws_echo_server", ["127.0.0.1:0"]);
  const result = await runScript("ws_client", [
    "--raw",
    "--binary",
    `ws://127.0.0.1:${server.port}/echo`,
  ], { stdin: "one\ntwo\n" });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout, "one\ntwo"); // binary comes back as its bytes, one per line
  await server.stderr.waitFor("Received: 3 bytes (binary)");
});

Deno.test("ws_client sends --origin and -H; a refused handshake exits 1", async () => {
  await using server = await startScript("ws_echo_server", ["127.0.0.1:0"]);
  const refused = await runScript("ws_client", [
    "--raw",
    "--origin",
    "http://evil.example",
    `ws://127.0.0.1:${server.port}/ws`,
  ], { stdin: "x\n" });
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /Error: cannot connect to ws:\/\/127\.0\.0\.1:\d+\/ws/);
  const allowed = await runScript("ws_client", [
    "--raw",
    "-H",
    `Origin: http://127.0.0.1:${server.port}`,
    "-H",
    "X-Test: yes",
    `ws://127.0.0.1:${server.port}/ws`,
  ], { stdin: "fine\n" });
  assert.equal(allowed.code, 0, allowed.stderr);
  assert.equal(allowed.stdout, "fine");
});

Deno.test("ws_client exits 1 when nothing listens, and 2 on bad usage", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  const refused = await runScript("ws_client", ["--raw", `ws://127.0.0.1:${port}/ws`], {
    stdin: "",
  });
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /Error: cannot connect/);
  for (
    const [args, pattern] of [
      [["ftp://x/y"], /the scheme must be ws:\/\/ or wss:\/\//],
      [["localhost"], /Invalid URL "localhost"/],
      [["-H", "no colon", "ws://x/"], /Invalid -H "no colon"/],
      [["--idle-max=many", "ws://x/"], /Invalid --idle-max "many"/],
      [["a:1", "b", "c"], /Unexpected argument "c"/],
    ] as const
  ) {
    const { code, stderr } = await runScript("ws_client", [...args]);
    assert.equal(code, 2, `${args}: ${stderr}`);
    assert.match(stderr, pattern);
  }
});

/** Accepts one WebSocket handshake by hand and resolves with the opcodes of the frames that follow. */
async function frameWatcher(listener: Deno.TcpListener, frames: number) {
  const conn = await listener.accept();
  try {
    let head = "";
    const buf = new Uint8Array(4096);
    while (!head.includes("\r\n\r\n")) {
      const n = await conn.read(buf);
      if (n === null) throw new Error("closed during the handshake");
      head += new TextDecoder().decode(buf.subarray(0, n));
    }
    const key = /sec-websocket-key: *(\S+)/i.exec(head)![1];
    const digest = await crypto.subtle.digest(
      "SHA-1",
      new TextEncoder().encode(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"),
    );
    const accept = btoa(String.fromCharCode(...new Uint8Array(digest)));
    await conn.write(new TextEncoder().encode(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        `Sec-WebSocket-Accept: ${accept}\r\n\r\n`,
    ));
    const opcodes: number[] = [];
    let pending = new Uint8Array(0);
    while (opcodes.length < frames) {
      // Client frames are masked and, here, short: 2 header bytes, 4 mask bytes, the payload.
      while (pending.length >= 6 && pending.length >= 6 + (pending[1] & 0x7f)) {
        opcodes.push(pending[0] & 0x0f);
        pending = pending.subarray(6 + (pending[1] & 0x7f));
      }
      if (opcodes.length >= frames) break;
      const n = await conn.read(buf);
      if (n === null) break;
      pending = Uint8Array.from([...pending, ...buf.subarray(0, n)]);
    }
    return opcodes;
  } finally {
    conn.close();
  }
}

Deno.test("ws_client --ping-interval sends WebSocket pings while idle", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const watching = frameWatcher(listener, 2);
    await using client = await startScript("ws_client", [
      "--ping-interval",
      "100ms",
      `ws://127.0.0.1:${listener.addr.port}/`,
    ], { stdin: true, waitReady: false });
    const opcodes = await withTimeout(watching, 5_000, "two pings from ws_client");
    assert.deepEqual(opcodes, [0x9, 0x9], "two ping frames, nothing else");
    client.kill("SIGINT");
    await client.exit();
  } finally {
    listener.close();
  }
});

Deno.test({
  name: "ws_client in a terminal keeps the book's look but not its idle trap (that needs --book)",
  ignore: missingPeer("script"),
  async fn() {
    await using server = await startScript("ws_echo_server", ["127.0.0.1:0"]);
    const tty = runInTerminal("ws_client", [
      "--idle-interval",
      "100ms",
      "--idle-max",
      "1",
      `127.0.0.1:${server.port}`,
      "ws",
    ]);
    await delay(1_000); // connected, and idle for ten --idle-interval periods
    await tty.type("typed\n");
    await delay(500);
    await tty.end(); // Ctrl-D: the end of input
    const { text } = await tty.output;
    assert.match(text, new RegExp(`^Connecting to: 127\\.0\\.0\\.1:${server.port} at ws$`, "m"));
    assert.match(text, /^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d Received: typed$/m);
    assert.doesNotMatch(text, /Please give me input|Caught interrupt signal/);
  },
});

Deno.test("ws_client at the end of input waits for a slow server's first answer, then lingers", async () => {
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const { socket, response } = Deno.upgradeWebSocket(req);
    // Answers each line after 1.5 s, past the default --linger of 1 s, and never closes.
    socket.onmessage = (event) => {
      const timer = setTimeout(() => {
        timers.delete(timer);
        if (socket.readyState === WebSocket.OPEN) socket.send(`late ${event.data}`);
      }, 1_500);
      timers.add(timer);
    };
    return response;
  });
  try {
    const result = await runScript("ws_client", [`ws://127.0.0.1:${server.addr.port}/`], {
      stdin: "one\n",
    });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, "late one");
  } finally {
    for (const timer of timers) clearTimeout(timer);
    await server.shutdown();
  }
});
