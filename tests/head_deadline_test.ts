import assert from "node:assert/strict";
import { startScript, startWsChat, TcpPeer } from "./helpers.ts";
import { dribble } from "./slowloris.ts";

/**
 * The line-protocol TCP ports beyond the line servers (tests/line_server_cases.ts):
 * a started request dribbled a byte every 300 ms is closed at --head-timeout,
 * while a client silent between requests stays served.
 */

const HEAD_TIMEOUT = ["--head-timeout", "1s"];

function assertClosedInTime(closedAfterMs: number): void {
  assert.ok(closedAfterMs >= 900, `closed after ${closedAfterMs} ms, before the 1 s deadline`);
  assert.ok(closedAfterMs < 5_000, `closed only after ${closedAfterMs} ms`);
}

Deno.test("im_server closes a request line dribbled past --head-timeout; an idle client stays", async () => {
  await using server = await startScript("im_server", [
    "127.0.0.1:0",
    "--db",
    ":memory:",
    "-q",
    ...HEAD_TIMEOUT,
  ]);
  await using idle = await TcpPeer.connect(server.port);
  assert.match((await idle.readLine()) ?? "(closed)", /"type":"hello"/);
  const slow = await dribble(server.port, '{"type":"login","user":"', { filler: "x" });
  assert.equal(slow.lines.length, 2, JSON.stringify(slow.lines)); // hello, then the error
  assert.match(slow.lines[1], /"code":"head_timeout"/);
  assertClosedInTime(slow.closedAfterMs);
  await idle.send('{"type":"ping","id":1}\n');
  assert.match((await idle.readLine()) ?? "(closed)", /"id":1/, server.output);
});

Deno.test("rpc_server's TCP port closes a JSON value or gob message dribbled past --head-timeout", async () => {
  await using server = await startScript("rpc_server", [
    "--host=127.0.0.1",
    "--port=0",
    "--http-port=off",
    "-q",
    ...HEAD_TIMEOUT,
  ]);
  const request = '{"method":"Arith.Multiply","params":[{"A":7,"B":8}],"id":0}\n';
  await using idle = await TcpPeer.connect(server.port);
  await idle.send(request);
  assert.match((await idle.readLine()) ?? "(closed)", /"result":56/);
  // The dialects are binary streams: the server closes without a text line.
  const json = await dribble(server.port, '{"method":"Arith.Multiply","params":[{"A":1', {
    filler: "1",
  });
  assert.deepEqual(json.lines, []);
  assertClosedInTime(json.closedAfterMs);
  // A gob length prefix of 127 bytes, then a byte at a time.
  const gob = await dribble(server.port, Uint8Array.of(0x7f, 0xff, 0x81));
  assert.deepEqual(gob.lines, []);
  assertClosedInTime(gob.closedAfterMs);
  // Junk the JSON reader skips to the end of its line is a started line too.
  const junk = await dribble(server.port, Uint8Array.of(0x7f, 0x01));
  assert.equal(junk.lines.length, 1, JSON.stringify(junk.lines));
  assert.match(junk.lines[0], /"code":-32700/);
  assertClosedInTime(junk.closedAfterMs);
  await idle.send(request.replace('"id":0', '"id":1'));
  assert.match((await idle.readLine()) ?? "(closed)", /"result":56/, server.output);
});

Deno.test("rpc_server's HTTP port closes a gob message dribbled after CONNECT past --head-timeout", async () => {
  await using server = await startScript("rpc_server", [
    "--host=127.0.0.1",
    "--port=0",
    "--http-port=0",
    "-q",
    ...HEAD_TIMEOUT,
  ]);
  const line = await server.stdout.waitFor(/Listening on http:/);
  const port = Number(/:(\d+)(\/|$)/.exec(line)![1]);
  const connect = new TextEncoder().encode("CONNECT /_goRPC_ HTTP/1.0\n\n");
  const gob = await dribble(port, Uint8Array.of(...connect, 0x7f, 0xff, 0x81));
  assert.match(gob.lines[0] ?? "(closed)", /^HTTP\/1\.0 200 Connected/);
  assertClosedInTime(gob.closedAfterMs);
});

Deno.test("serveTcp() times a started line, not the handler's work on a finished one", async () => {
  const { serveTcp } = await import("../lib/net/server.ts");
  const { LineReader } = await import("../lib/io/lines.ts");
  await using server = await serveTcp(async (session) => {
    const reader = new LineReader(session);
    for (let line = await reader.readLine(); line !== null; line = await reader.readLine()) {
      // Work longer than the deadline on a complete line: not the peer's fault.
      if (line === "slow") await new Promise((resolve) => setTimeout(resolve, 600));
      await session.writeAll(`done ${line}\n`);
    }
  }, {
    address: { transport: "tcp", hostname: "127.0.0.1", port: 0 },
    headTimeoutMs: 300,
    onListen: () => {},
  });
  const port = (server.addr as Deno.NetAddr).port;
  await using peer = await TcpPeer.connect(port);
  // The half line after "slow" waits while the handler works (600 ms), then is
  // completed 150 ms into the server's wait for it: in time.
  await peer.send("slow\nha");
  assert.equal(await peer.readLine(), "done slow");
  await new Promise((resolve) => setTimeout(resolve, 150));
  await peer.send("lf\n");
  assert.equal(await peer.readLine(), "done half");
  const slow = await dribble(port, "x", { giveUpMs: 3_000 });
  assert.deepEqual(slow.lines, ["ERROR request not completed within 300 ms, closing"]);
});

Deno.test("tcp_chat_server and ws_chat_server's TCP side close a line dribbled past --head-timeout; an idle member stays", async () => {
  await using tcpChat = await startScript("tcp_chat_server", [
    "127.0.0.1:0",
    "-q",
    ...HEAD_TIMEOUT,
  ]);
  await using wsChat = await startWsChat(["-q", ...HEAD_TIMEOUT]);
  for (const port of [tcpChat.port, wsChat.tcpPort]) {
    await using idle = await TcpPeer.connect(port);
    await idle.readLine(); // the prompt for a name
    await idle.send("idle\n");
    assert.match((await idle.readLine()) ?? "(closed)", /Welcome, idle/);
    const slow = await dribble(port, "a nickname that never ends");
    assert.match(slow.lines.at(-1) ?? "(none)", /^ERROR request not completed within 1000 ms/);
    assertClosedInTime(slow.closedAfterMs);
    await idle.send("/who\n");
    assert.match(await idle.until(/online: idle/), /1 online: idle/);
  }
});

Deno.test("file_recv closes a sender whose sha256 trailer is dribbled past --head-timeout", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await using server = await startScript("file_recv", [
      "127.0.0.1:0",
      "--dir",
      dir,
      "-q",
      ...HEAD_TIMEOUT,
    ]);
    await using peer = await TcpPeer.connect(server.port);
    await peer.send("FILE 3 doc\n");
    assert.equal(await peer.readLine(), "ok");
    const began = Date.now();
    await peer.send("abcsha256 ");
    let open = true;
    const sending = (async () => {
      while (open && Date.now() - began < 8_000) {
        await new Promise((resolve) => setTimeout(resolve, 300));
        if (open) await peer.send("0").catch(() => open = false);
      }
    })();
    const lines = await peer.readAll(8_000);
    open = false;
    await sending;
    assert.match(lines.at(-1) ?? "(none)", /^error Line not completed within 1000 ms/);
    assertClosedInTime(Date.now() - began);
    assert.ok(!(await Deno.stat(`${dir}/doc`).then(() => true, () => false)), "doc was saved");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
