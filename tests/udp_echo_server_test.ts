import assert from "node:assert/strict";
import { missingPeer, runScript, startScript } from "./helpers.ts";
import { ncatUdpOnce, UdpPeer } from "./udp_peer.ts";

Deno.test({
  name: 'udp_echo_server answers ncat -u with "I am server" and prints from ADDR: text',
  ignore: missingPeer("ncat"),
  async fn() {
    await using server = await startScript("udp_echo_server", ["--host", "127.0.0.1", "0"]);
    assert.equal(await ncatUdpOnce(server.port, "hello from ncat\n"), "I am server");
    assert.match(
      await server.stdout.waitFor("from "),
      /^from 127\.0\.0\.1:\d+: hello from ncat$/,
    );
    server.kill("SIGTERM");
    assert.equal((await server.exit()).code, 0, server.output);
  },
});

Deno.test("udp_echo_server --echo returns empty and 65,507-byte datagrams intact", async () => {
  await using server = await startScript("udp_echo_server", ["--echo", "127.0.0.1:0"]);
  await using peer = new UdpPeer();
  await peer.send(server.port, new Uint8Array());
  assert.equal((await peer.next()).data.byteLength, 0);
  const big = new Uint8Array(65_507).map((_, i) => (i * 7919) % 256); // NULs, invalid UTF-8
  await peer.send(server.port, big);
  const back = await peer.next();
  assert.deepEqual(back.data, big);
  assert.equal(back.from.port, server.port);
  const line = await server.stdout.waitFor(/\(\d+ more bytes\)$/);
  assert.ok(line.length < 1000, "a huge datagram is elided in the log");
  server.kill("SIGINT");
  assert.equal((await server.exit()).code, 0, server.output);
});

Deno.test("udp_echo_server --reply TEXT answers every datagram and escapes control bytes in logs", async () => {
  await using server = await startScript("udp_echo_server", [
    "127.0.0.1:0",
    "--reply",
    "pong",
  ]);
  await using peer = new UdpPeer();
  assert.equal(await peer.ask(server.port, "\x1b[2Jwipe"), "pong");
  assert.equal(await peer.ask(server.port, ""), "pong");
  assert.match(await server.stdout.waitFor("wipe"), /: \\x1b\[2Jwipe$/);
});

Deno.test("udp_echo_server --rate limits each address on its own", async () => {
  await using server = await startScript("udp_echo_server", ["127.0.0.1:0", "--rate=2", "-q"]);
  await using peer = new UdpPeer();
  await using other = new UdpPeer("127.0.0.3");
  for (let i = 0; i < 20; i++) await peer.send(server.port, "x");
  const got = await peer.drain(200);
  assert.ok(got.length >= 2 && got.length <= 4, `${got.length} replies`);
  assert.equal(await other.ask(server.port, "y"), "I am server");
  await server.stderr.waitFor(/Rate limit: dropped \d+ datagrams from 1 address/);
});

Deno.test("udp_echo_server rejects bad arguments with exit 2", async () => {
  for (
    const [args, pattern] of [
      [["--reply", "x".repeat(1473)], /Invalid --reply of 1473 bytes: at most 1472 bytes/],
      [["--echo", "--reply", "hi"], /Give --echo or --reply, not both/],
      [["[::1"], /Cannot parse address "\[::1"/],
      [["--rate", "1.5"], /Invalid --rate "1\.5"/],
    ] as const
  ) {
    const { code, stderr } = await runScript("udp_echo_server", [...args]);
    assert.equal(code, 2, `${args}: ${stderr}`);
    assert.match(stderr, pattern);
  }
});

Deno.test("udp_echo_server serves IPv6 with --host ::1", async () => {
  await using server = await startScript("udp_echo_server", ["--host", "::1", "--echo", "0"]);
  assert.equal(server.hostname, "::1");
  await using peer = new UdpPeer("::1");
  await peer.send(server.port, "six", "::1");
  assert.equal(new TextDecoder().decode((await peer.next()).data), "six");
  assert.match(await server.stdout.waitFor("six"), /^from \[::1\]:\d+: six$/);
});
