import assert from "node:assert/strict";
import { UsageError } from "../lib/cli/cli.ts";
import { parseWorkers, SharedCounter } from "../lib/net/workers.ts";
import { runScript, startScript, TcpPeer } from "./helpers.ts";
import { OP, RawWsClient, text } from "./ws_raw.ts";

Deno.test("parseWorkers() reads a count or auto, and refuses the rest quoting them", () => {
  assert.equal(parseWorkers("1"), 1);
  assert.equal(parseWorkers("auto"), navigator.hardwareConcurrency);
  for (const bad of ["0", "-1", "two", "65"]) {
    assert.throws(() => parseWorkers(bad), (e: unknown) => {
      assert.ok(e instanceof UsageError);
      assert.match(e.message, new RegExp(`Invalid --workers "${bad}"`));
      return true;
    });
  }
});

Deno.test("SharedCounter hands out each number once, also through a copy of its buffer", () => {
  const a = new SharedCounter();
  const b = new SharedCounter(a.buffer);
  assert.deepEqual([a.next(), b.next(), a.next()], [0, 1, 2]);
  assert.equal(b.value, 3);
});

Deno.test("tcp_echo_server --workers 2: clients spread over both, and shutdown drains both", async () => {
  await using server = await startScript("tcp_echo_server", ["--workers", "2", "127.0.0.1:0"]);
  const peers: TcpPeer[] = [];
  try {
    for (let i = 0; i < 24; i++) {
      const peer = await TcpPeer.connect(server.port);
      peers.push(peer);
      await peer.send(`hello ${i}\n`);
      assert.equal(await peer.readLine(), `hello ${i}`);
    }
    await server.stderr.waitFor(/Connection from: .* \(worker 0\)/);
    await server.stderr.waitFor(/Connection from: .* \(worker 1\)/);
    server.kill("SIGTERM");
    for (const peer of peers) assert.equal(await peer.readLine(), null, "drained and closed");
    assert.equal((await server.exit()).code, 0, server.output);
    assert.equal(server.stderr.count(/Closed: /), 24, server.output);
  } finally {
    for (const peer of peers) peer.close();
  }
});

Deno.test("conc_tcp_server --workers 2 numbers clients uniquely across both workers", async () => {
  await using server = await startScript("conc_tcp_server", ["--workers=2", "-q", "127.0.0.1:0"]);
  const numbers: number[] = [];
  for (let i = 0; i < 20; i++) {
    await using peer = await TcpPeer.connect(server.port);
    await peer.send("hello\n");
    const reply = await peer.readLine();
    const match = /^Client number: (\d+)$/.exec(reply ?? "");
    assert.ok(match, `unexpected reply ${reply}`);
    numbers.push(Number(match[1]));
  }
  assert.deepEqual([...numbers].sort((a, b) => a - b), [...Array(20).keys()]);
  server.kill("SIGINT");
  assert.equal((await server.exit()).code, 0, server.output);
});

Deno.test("tcp_time_server --workers 2 --exit-on-stop: STOP in any worker stops them all", async () => {
  await using server = await startScript("tcp_time_server", [
    "--workers=2",
    "--exit-on-stop",
    "127.0.0.1:0",
  ]);
  await using idle = await TcpPeer.connect(server.port);
  await using stopper = await TcpPeer.connect(server.port);
  await stopper.send("STOP\n");
  assert.equal((await server.exit()).code, 0, server.output);
  assert.match(server.stdout.text, /Exiting TCP server!/);
  assert.equal(await idle.readLine(), null, "the other client is closed too");
});

Deno.test("--workers with a unix socket is refused with exit 2", async () => {
  const { code, stderr } = await runScript("tcp_echo_server", ["--workers=2", "unix:/tmp/x.sock"]);
  assert.equal(code, 2);
  assert.match(stderr, /--workers 2 needs a TCP port/);
});

Deno.test("ws_echo_server --workers 2: sockets spread over both, SIGTERM closes all with 1001", async () => {
  await using server = await startScript("ws_echo_server", ["--workers=2", "127.0.0.1:0"]);
  const clients: RawWsClient[] = [];
  try {
    for (let i = 0; i < 16; i++) {
      const { client } = await RawWsClient.open(server.port);
      clients.push(client);
      await client.sendFrame(OP.text, `hello ${i}`);
      assert.equal(text(await client.readFrame()), `hello ${i}`);
    }
    await server.stderr.waitFor(/Connection from: .* \(worker 0\)/);
    await server.stderr.waitFor(/Connection from: .* \(worker 1\)/);
    server.kill("SIGTERM");
    for (const client of clients) {
      assert.equal((await client.readClose()).code, 1001);
      await client.sendClose(1001);
    }
    assert.equal((await server.exit()).code, 0, server.output);
  } finally {
    for (const client of clients) client.close();
  }
});
