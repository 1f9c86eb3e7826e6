import assert from "node:assert/strict";
import { missingPeer, OutputLines, runScript, startScript } from "./helpers.ts";
import { UdpPeer } from "./udp_peer.ts";

const encoder = new TextEncoder();

Deno.test("udp_client --book talks to udp_random_server like udpC.go: banner, replies, STOP", async () => {
  await using server = await startScript("udp_random_server", ["127.0.0.1:0"]);
  const { code, stdout, stderr } = await runScript("udp_client", [
    "--book",
    `localhost:${server.port}`,
  ], {
    stdin: "Hello from client!\nGoing to terminate the connection now.\nSTOP\nnot sent\n",
  });
  assert.equal(code, 0, stderr);
  const lines = stdout.split("\n");
  assert.equal(lines[0], `The UDP server is 127.0.0.1:${server.port}`, "localhost resolved");
  assert.match(lines[1], /^Reply: ([1-9]\d{0,2}|1000)$/);
  assert.match(lines[2], /^Reply: ([1-9]\d{0,2}|1000)$/);
  assert.equal(lines[3], "Exiting UDP client!");
  assert.ok(!stdout.includes(">> "), "no prompt when stdin is not a terminal");
  await server.stdout.waitFor("-> STOP");
  assert.equal(server.stdout.count("-> not sent"), 0);
  assert.equal(server.stdout.count("-> Hello from client!"), 1, "one newline per line, no drift");
});

Deno.test("udp_client --raw round-trips a 65,507-byte datagram through udp_echo_server --echo", async () => {
  await using server = await startScript("udp_echo_server", ["--echo", "-q", "127.0.0.1:0"]);
  const line = "x".repeat(65_506); // plus the newline: 65,507 bytes
  const { code, stdout, stderr } = await runScript(
    "udp_client",
    ["--raw", `127.0.0.1:${server.port}`],
    { stdin: `${line}\n${"y".repeat(65_507)}\nsmall\n` },
  );
  assert.equal(code, 0, stderr);
  assert.equal(stdout, `${line}\nsmall`, "no banner, the reply as it is");
  assert.match(stderr, /line of 65507 bytes not sent: a datagram holds at most 65506 bytes/);
});

Deno.test("udp_client reports a lost reply, resends, and keeps going", async () => {
  await using lossy = new UdpPeer();
  // Drops the first two datagrams (the first line and its one resend), answers the rest.
  let seen = 0;
  const answering = (async () => {
    while (seen < 4) {
      const { data, from } = await lossy.next(10_000);
      seen++;
      if (seen > 2) await lossy.send(from.port, `ack ${new TextDecoder().decode(data).trim()}`);
    }
  })();
  const { code, stdout, stderr } = await runScript(
    "udp_client",
    ["--timeout", "200ms", "--retries", "1", `127.0.0.1:${lossy.port}`],
    { stdin: "first\nsecond\nthird\n" },
  );
  await answering;
  assert.equal(code, 0, stderr);
  assert.match(
    stderr,
    new RegExp(`no reply from 127\\.0\\.0\\.1:${lossy.port} after 2 attempts \\(timeout 200 ms`),
  );
  assert.deepEqual(stdout.split("\n"), ["ack second", "ack third"]);
});

Deno.test("udp_client in a pipe writes only the replies, and STOP is only a line", async () => {
  await using server = await startScript("udp_echo_server", ["--echo", "-q", "127.0.0.1:0"]);
  const { code, stdout, stderr } = await runScript("udp_client", [`127.0.0.1:${server.port}`], {
    stdin: "one\nSTOP\ntwo\n",
  });
  assert.equal(code, 0, stderr);
  assert.equal(stdout, "one\nSTOP\ntwo");
});

Deno.test("udp_client against a port where nothing answers reports each line and exits 0", async () => {
  const silent = new UdpPeer();
  const port = silent.port;
  await silent[Symbol.asyncDispose](); // Nothing listens there now.
  const { code, stderr } = await runScript(
    "udp_client",
    ["-w", "100ms", "-r", "0", `127.0.0.1:${port}`],
    { stdin: "one\ntwo\n" },
  );
  assert.equal(code, 0, stderr);
  assert.equal(stderr.match(/no reply from .* after 1 attempt \(/g)?.length, 2, stderr);
});

Deno.test({
  name: "udp_client talks to ncat -u -l as the book does with nc -l -u",
  ignore: missingPeer("ncat"),
  async fn() {
    const probe = new UdpPeer();
    const port = probe.port;
    await probe[Symbol.asyncDispose]();
    const nc = new Deno.Command("ncat", {
      args: ["-u", "-l", "127.0.0.1", String(port)],
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const ncOut = new OutputLines(nc.stdout);
    const ncIn = nc.stdin.getWriter();
    await using client = await startScript("udp_client", ["--book", `127.0.0.1:${port}`], {
      stdin: true,
      waitReady: false,
    });
    try {
      await client.stdout.waitFor("The UDP server is 127.0.0.1:");
      await client.write("Hello!\n");
      assert.equal(await ncOut.waitFor("Hello!"), "Hello!");
      await ncIn.write(encoder.encode("Hi from the server.\n"));
      assert.equal(await client.stdout.waitFor("Reply:"), "Reply: Hi from the server.");
      await client.write("STOP\n");
      assert.equal(await ncOut.waitFor("STOP"), "STOP");
      assert.equal((await client.exit()).code, 0, client.output);
      assert.match(client.stdout.text, /Exiting UDP client!$/);
    } finally {
      await ncIn.close().catch(() => {});
      nc.kill("SIGTERM");
      await nc.status;
      await ncOut.done;
    }
  },
});

Deno.test("udp_client exits 1 for a name that does not resolve and 2 for a bad address", async () => {
  const unresolved = await runScript("udp_client", ["no-such-host.invalid:1234"], { stdin: "" });
  assert.equal(unresolved.code, 1, unresolved.stderr);
  assert.match(unresolved.stderr, /Cannot resolve "no-such-host\.invalid"/);
  for (
    const [args, pattern] of [
      [["1234"], /the host is missing/],
      [["localhost:99999"], /Cannot parse address "localhost:99999"/],
      [["-w", "soon", "localhost:1"], /Invalid --timeout "soon"/],
      [["-4", "-6", "localhost:1"], /Give -4 or -6, not both/],
      [[], /Missing argument: HOST:PORT/],
    ] as const
  ) {
    const { code, stderr } = await runScript("udp_client", [...args], { stdin: "" });
    assert.equal(code, 2, `${args}: ${stderr}`);
    assert.match(stderr, pattern);
  }
});

Deno.test("udp_client prints nothing after its exit line, not even a late reply to STOP", async () => {
  await using peer = new UdpPeer();
  const answering = (async () => {
    await peer.next(10_000); // "slow": never answered in time
    const { from } = await peer.next(10_000); // STOP: answered at once, too late to matter
    for (let i = 0; i < 5; i++) await peer.send(from.port, `late ${i}`);
  })();
  const { code, stdout, stderr } = await runScript(
    "udp_client",
    ["--book", "--timeout", "100ms", "--retries", "0", `127.0.0.1:${peer.port}`],
    { stdin: "slow\nSTOP\n" },
  );
  await answering;
  assert.equal(code, 0, stderr);
  assert.equal(stdout.split("\n").at(-1), "Exiting UDP client!");
  assert.match(stderr, /no reply from/);
  assert.doesNotMatch(stderr, /late reply/);
});
