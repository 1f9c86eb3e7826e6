/**
 * The attacks issue 15 names, each against the spawned servers: frames of
 * 60 MiB held part-sent, and clients that never read. Each test checks that
 * the attacker's connection is closed by the server and that the server's
 * memory (its RSS, from `ps`) stays bounded while others are served.
 */
import assert from "node:assert/strict";
import {
  delay,
  readRandomStream,
  type ScriptProcess,
  startScript,
  startWsChat,
  withTimeout,
} from "./helpers.ts";
import { buildFrame, OP, RawWsClient, text } from "./ws_raw.ts";

const MIB = 1024 * 1024;

/** The server's resident memory in bytes, from `ps` (reading /proc needs --allow-all). */
async function rss(server: ScriptProcess): Promise<number> {
  const { stdout } = await new Deno.Command("ps", {
    args: ["-o", "rss=", "-p", String(server.child.pid)],
    stdout: "piped",
  }).output();
  const kb = Number(new TextDecoder().decode(stdout).trim());
  assert.ok(kb > 0, "the server's RSS from ps");
  return kb * 1024;
}

/** Connects `n` raw clients that hold a frame declaring 60 MiB with 1 MiB of it sent. */
async function holdHugeFrames(port: number, path: (i: number) => string, n: number) {
  const clients: RawWsClient[] = [];
  const codes: Array<number | null> = [];
  for (let i = 0; i < n; i++) {
    const { client, reply } = await RawWsClient.open(port, path(i));
    assert.equal(reply.status, 101, reply.head);
    clients.push(client);
    const header = buildFrame({ opcode: OP.binary, length: 60 * MIB });
    // The masked header, then a first MiB of the payload; the rest never comes.
    await client.sendRaw(header.subarray(0, 14));
    await client.sendRaw(new Uint8Array(MIB)).catch(() => {});
  }
  for (const client of clients) codes.push((await client.readClose()).code);
  const closed = await Promise.all(clients.map((c) => c.closedByServer()));
  for (const client of clients) client.close();
  return { codes, closed };
}

for (
  const [script, args, path] of [
    ["ws_echo_server", ["127.0.0.1:0", "-q"], () => "/ws"],
    [
      "ws_chat_server",
      ["--port", "0", "--host", "127.0.0.1", "--tcp-port", "off", "-q", "--max-message", "512"],
      (i: number) => `/ws?name=holder${i}`,
    ],
  ] as const
) {
  Deno.test(`${script}: four held 60 MiB frames are refused with 1009 from their headers`, async () => {
    await using server = await startScript(script, [...args]);
    const before = await rss(server);
    const { codes, closed } = await holdHugeFrames(server.port, path, 4);
    const grown = (await rss(server)) - before;
    assert.deepEqual(codes, [1009, 1009, 1009, 1009]);
    assert.deepEqual(closed, [true, true, true, true], "TCP closed by the server");
    // Deno.serve grew by ~245 MB here; the engine reads no payload it refused.
    assert.ok(grown < 40 * MIB, `server grew by ${(grown / MIB).toFixed(1)} MiB`);
  });
}

Deno.test("ws_echo_server: clients that flood and never read are closed; memory stays bounded", async () => {
  await using server = await startScript("ws_echo_server", [
    "127.0.0.1:0",
    "-q",
    "--max-buffered",
    String(MIB),
  ]);
  const before = await rss(server);
  const floods = await Promise.all([0, 1, 2, 3].map(async () => {
    const { client } = await RawWsClient.open(server.port);
    const chunk = buildFrame({ opcode: OP.binary, payload: new Uint8Array(256 * 1024) });
    // Writes stop completing once both directions' buffers are full; the
    // server must drop us anyway.
    const flood = (async () => {
      for (let i = 0; i < 400; i++) await client.sendRaw(chunk);
    })().catch(() => {});
    return { client, flood };
  }));
  let peak = 0;
  const closed = await Promise.all(floods.map(async ({ client, flood }) => {
    await withTimeout(flood, 20_000, "the flood to end (the server dropped the client)");
    peak = Math.max(peak, await rss(server));
    return client.closedByServer(10_000);
  }));
  for (const { client } of floods) client.close();
  assert.deepEqual(closed, [true, true, true, true]);
  assert.ok(peak - before < 100 * MIB, `server grew by ${((peak - before) / MIB).toFixed(1)} MiB`);
  const { client } = await RawWsClient.open(server.port);
  await using _c = client;
  await client.sendFrame(OP.text, "still here");
  assert.equal(text(await client.readFrame()), "still here");
});

Deno.test("ws_random_server: ten clients asking for 100000 and never reading are dropped within 8 s and leave no memory behind", async () => {
  await using server = await startScript("ws_random_server", ["127.0.0.1:0"]);
  // One ordinary client first: what any first use costs (compiled code, the
  // binary's pages, the allocator's pools) is not what the attackers leave.
  assert.equal(await readRandomStream(server.port, 100_000), 100_000);
  const before = await rss(server);
  const clients: RawWsClient[] = [];
  for (let i = 0; i < 10; i++) {
    const { client } = await RawWsClient.open(server.port);
    await client.sendFrame(OP.text, "100000");
    clients.push(client);
  }
  const started = Date.now();
  let peak = 0;
  await withTimeout(
    (async () => {
      while (server.stderr.count(/: close /) < 10) {
        peak = Math.max(peak, await rss(server));
        await delay(100);
      }
    })(),
    8_000,
    "the server to close all ten never-reading clients",
  );
  const took = Date.now() - started;
  // Reading now drains what the kernel holds, then the end of the stream.
  const closed = await Promise.all(clients.map((c) => c.closedByServer(10_000)));
  for (const client of clients) client.close();
  assert.deepEqual(closed, Array(10).fill(true));
  assert.ok(took < 8_000, `took ${took} ms`);
  assert.ok(peak - before < 150 * MIB, `server grew by ${((peak - before) / MIB).toFixed(1)} MiB`);
  await delay(500);
  const kept = (await rss(server)) - before;
  // Measured 1-6 MiB (allocator noise); one that kept 1 MiB per client kept 11.7 MiB.
  assert.ok(kept < 8 * MIB, `the server kept ${(kept / MIB).toFixed(1)} MiB after they left`);
});

Deno.test("ws_chat_server: members that never read are dropped and closed; memory stays bounded", async () => {
  await using server = await startWsChat([
    "--tcp-port=off",
    "-q",
    "--rate",
    "0",
    "--max-message",
    "8000",
  ]);
  const before = await rss(server);
  const stuck: RawWsClient[] = [];
  for (let i = 0; i < 5; i++) {
    stuck.push((await RawWsClient.open(server.port, `/ws?name=stuck${i}`)).client);
  }
  const { client: sender } = await RawWsClient.open(server.port, "/ws?name=sender");
  await using _s = sender;
  const payload = "p".repeat(7000);
  let peak = 0;
  // The sender reads as it goes, so only the stuck members fall behind.
  const drain = (async () => {
    while ((await sender.conn.read(new Uint8Array(1 << 16))) !== null) { /* discard */ }
  })().catch(() => {});
  for (let i = 0; i < 1500; i++) {
    await sender.sendFrame(OP.text, `${i} ${payload}`);
    if (i % 100 === 0) peak = Math.max(peak, await rss(server));
  }
  const closed = await Promise.all(stuck.map((c) => c.closedByServer(15_000)));
  peak = Math.max(peak, await rss(server));
  for (const client of stuck) client.close();
  sender.close();
  await drain;
  assert.deepEqual(closed, Array(5).fill(true));
  assert.ok(peak - before < 100 * MIB, `server grew by ${((peak - before) / MIB).toFixed(1)} MiB`);
});
