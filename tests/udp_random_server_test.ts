import assert from "node:assert/strict";
import { missingPeer, runScript, startScript } from "./helpers.ts";
import { ncatUdpOnce, UdpPeer } from "./udp_peer.ts";

const NUMBER = /^([1-9]\d{0,2}|1000)$/;

Deno.test({
  name: "udp_random_server answers ncat -u with 1..1000 and prints -> text and data: N",
  ignore: missingPeer("ncat"),
  async fn() {
    await using server = await startScript("udp_random_server", ["--host", "127.0.0.1", "0"]);
    const reply = await ncatUdpOnce(server.port, "Hello from client!\n");
    assert.match(reply, NUMBER, "one number, no newline: nothing larger than needed");
    assert.equal(await server.stdout.waitFor(/^-> /), "-> Hello from client!");
    assert.equal(await server.stdout.waitFor(/^data: /), `data: ${reply}`);
    server.kill("SIGINT");
    assert.equal((await server.exit()).code, 0, server.output);
  },
});

Deno.test("udp_random_server answers an empty datagram and, without --allow-stop, STOP", async () => {
  await using server = await startScript("udp_random_server", ["127.0.0.1:0"]);
  await using peer = new UdpPeer();
  assert.match(await peer.ask(server.port, new Uint8Array()), NUMBER);
  assert.match(await peer.ask(server.port, "STOP\n"), NUMBER);
  assert.match(await peer.ask(server.port, new Uint8Array(70_000).subarray(0, 65_507)), NUMBER);
  assert.equal(server.stdout.count("Exiting UDP server!"), 0);
  server.kill("SIGTERM");
  assert.equal((await server.exit()).code, 0, server.output);
});

Deno.test({
  name: "udp_random_server --allow-stop stops on STOP from socat, without replying",
  ignore: missingPeer("socat"),
  async fn() {
    await using server = await startScript("udp_random_server", [
      "--allow-stop",
      "--host=127.0.0.1",
      "--port=0",
    ]);
    const socat = await new Deno.Command("socat", {
      args: ["-t", "0.5", "-", `UDP:127.0.0.1:${server.port}`],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const w = socat.stdin.getWriter();
    await w.write(new TextEncoder().encode("  STOP \n"));
    await w.close();
    const out = await socat.output();
    assert.equal(new TextDecoder().decode(out.stdout), "", "no reply to STOP");
    assert.equal((await server.exit()).code, 0, server.output);
    assert.match(server.stdout.text, /\n-> {3}STOP \nExiting UDP server!$/);
  },
});

Deno.test("udp_random_server --rate drops excess datagrams and logs once per second", async () => {
  await using server = await startScript("udp_random_server", ["127.0.0.1:0", "--rate", "5", "-q"]);
  await using peer = new UdpPeer();
  await using other = new UdpPeer("127.0.0.2");
  for (let i = 0; i < 50; i++) await peer.send(server.port, `#${i}`);
  const replies = await peer.drain(300);
  assert.ok(replies.length >= 5 && replies.length <= 10, `${replies.length} replies`);
  assert.match(await other.ask(server.port, "another address"), NUMBER, "others are unaffected");
  const line = await server.stderr.waitFor(/Rate limit: dropped \d+ datagrams from 1 address/);
  assert.match(line, /\(limit 5\/s per address\)/);
  assert.equal(server.stdout.count(/^-> /), 0, "--quiet prints nothing per datagram");
});

Deno.test("udp_random_server rejects bad arguments with exit 2, quoting the value", async () => {
  for (
    const [args, pattern] of [
      [["70000"], /port must be 0-65535/],
      [["x:99999"], /Cannot parse address "x:99999"/],
      [["--rate", "fast"], /Invalid --rate "fast"/],
      [["--rate=-1"], /Invalid --rate "-1"/],
      [["unix:/tmp/x"], /unix sockets are not supported/],
    ] as const
  ) {
    const { code, stderr } = await runScript("udp_random_server", [...args]);
    assert.equal(code, 2, `${args}: ${stderr}`);
    assert.match(stderr, pattern);
  }
});

Deno.test("udp_random_server exits 1 when the port is taken", async () => {
  await using peer = new UdpPeer();
  const { code, stderr } = await runScript("udp_random_server", [`127.0.0.1:${peer.port}`]);
  assert.equal(code, 1, stderr);
  assert.match(stderr, /udp_random_server: .*(in use|Address)/i);
});

Deno.test("udp_random_server --help prints usage and exits 0", async () => {
  const { code, stdout } = await runScript("udp_random_server", ["--help"]);
  assert.equal(code, 0);
  assert.match(stdout, /^Usage: udp_random_server \[ADDR\]/);
  assert.match(stdout, /--allow-stop/);
});
