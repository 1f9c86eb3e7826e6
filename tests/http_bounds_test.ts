import assert from "node:assert/strict";
import { delay, startScript, TcpPeer, withTimeout } from "./helpers.ts";

const SLOW_BODY = "POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{";
const PARTIAL_HEAD = "POST /rpc HTTP/1.1\r\nHost: x\r\n";

/** The HTTP servers, each started with 1 s deadlines and a cap of 3 connections. */
const SERVERS: [string, string[], string][] = [
  ["rpc_server", ["--host=127.0.0.1", "--port=0", "--http-port=0"], "http://"],
  ["http_server", ["127.0.0.1:0"], "http://"],
];
const LIMITS = ["--head-timeout=1s", "--body-timeout=1s", "--max-conns=3", "-q"];

/** Descriptors `pid` has open (through ls: Deno reads /proc only with --allow-all). */
async function openFds(pid: number): Promise<number> {
  const { stdout } = await new Deno.Command("ls", { args: [`/proc/${pid}/fd`] }).output();
  return new TextDecoder().decode(stdout).split("\n").filter(Boolean).length;
}

async function startHttp(name: string, args: string[], scheme: string) {
  const server = await startScript(name, [...args, ...LIMITS]);
  const line = await server.stdout.waitFor(new RegExp(`Listening on ${scheme}`));
  const port = Number(/:(\d+)(\/|$)/.exec(line)![1]);
  return { server, port };
}

for (const [name, args, scheme] of SERVERS) {
  Deno.test(`${name} closes a slow body and a partial head at their deadlines`, async () => {
    const { server, port } = await startHttp(name, args, scheme);
    await using _server = server;
    await using slow = await TcpPeer.connect(port);
    await slow.send(SLOW_BODY);
    await using head = await TcpPeer.connect(port);
    await head.send(PARTIAL_HEAD);
    // Without the deadlines both stay open (for 200 s and more).
    await slow.readAll(10_000);
    await head.readAll(10_000);
    const response = await fetch(`http://127.0.0.1:${port}/rpc`, {
      method: "POST",
      body: '{"jsonrpc":"2.0","method":"Algorithm.Sum","params":[3,4],"id":1}',
    });
    assert.equal(response.status, 200);
    await response.body?.cancel();
    server.kill("SIGTERM");
    assert.equal((await server.exit()).code, 0, server.output);
  });

  Deno.test(`${name} answers the connection past --max-conns with 503 and closes it`, async () => {
    const { server, port } = await startHttp(name, args, scheme);
    await using _server = server;
    const held = await Promise.all([1, 2, 3].map(() => TcpPeer.connect(port)));
    try {
      await Promise.all(held.map((peer) => peer.send(PARTIAL_HEAD)));
      await using extra = await TcpPeer.connect(port);
      const lines = await extra.readAll();
      assert.match(lines[0], /^HTTP\/1\.1 503 /);
    } finally {
      for (const peer of held) peer.close();
    }
    // Once they go, the server takes connections again.
    await withTimeout(
      (async () => {
        for (;;) {
          const response = await fetch(`http://127.0.0.1:${port}/`).catch(() => null);
          await response?.body?.cancel();
          if (response && response.status !== 503) return;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      })(),
      10_000,
      "a connection under the cap",
    );
    server.kill("SIGTERM");
    assert.equal((await server.exit()).code, 0, server.output);
  });
}

Deno.test("rpc_server gives back the descriptors of 300 slow bodies once their deadline passes", async () => {
  await using big = await startScript("rpc_server", [
    ...SERVERS[0][1],
    "--body-timeout=2s",
    "--max-conns=1000",
    "-q",
  ]);
  const httpLine = await big.stdout.waitFor(/Listening on http:\/\//);
  const httpPort = Number(/:(\d+)\//.exec(httpLine)![1]);
  const before = await openFds(big.child.pid);
  const peers = await Promise.all(
    Array.from({ length: 300 }, () => TcpPeer.connect(httpPort)),
  );
  try {
    await Promise.all(peers.map((peer) => peer.send(SLOW_BODY)));
    await withTimeout(
      (async () => {
        while (await openFds(big.child.pid) < before + 250) await delay(100);
      })(),
      10_000,
      "the server to hold the slow bodies",
    );
    await Promise.all(peers.map((peer) => peer.readAll(15_000)));
  } finally {
    for (const peer of peers) peer.close();
  }
  await withTimeout(
    (async () => {
      while (await openFds(big.child.pid) > before + 5) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })(),
    10_000,
    "the descriptors to come back",
  );
  big.kill("SIGTERM");
  assert.equal((await big.exit()).code, 0, big.output);
});
