import assert from "node:assert/strict";
import { runScript, startScript, TcpPeer } from "./helpers.ts";
import { missingPeer, runNcat } from "./helpers.ts";
import { lineServerCases } from "./line_server_cases.ts";

Deno.test("tcp_echo_server echoes bytes exactly, binary included, and stops on SIGTERM", async () => {
  await using server = await startScript("tcp_echo_server", ["--host", "127.0.0.1", "0"]);
  await using peer = await TcpPeer.connect(server.port);
  const bytes = new Uint8Array(300_000).map((_, i) => (i * 7919) % 256); // NULs, invalid UTF-8
  const received: number[] = [];
  const reading = (async () => {
    const buf = new Uint8Array(65536);
    while (received.length < bytes.length) {
      const n = await peer.conn.read(buf);
      if (n === null) break;
      received.push(...buf.subarray(0, n));
    }
  })();
  await peer.send(bytes);
  await reading;
  assert.deepEqual(Uint8Array.from(received), bytes);
  await peer.send("no newline at all");
  const buf = new Uint8Array(64);
  const n = await peer.conn.read(buf);
  assert.equal(new TextDecoder().decode(buf.subarray(0, n ?? 0)), "no newline at all");
  peer.close();
  server.kill("SIGTERM");
  assert.equal((await server.exit()).code, 0, server.output);
});

Deno.test("tcp_echo_server --reply answers every line, many per packet or a byte at a time", async () => {
  await using server = await startScript("tcp_echo_server", [
    "--host=127.0.0.1",
    "--port=0",
    "--reply",
    "Hello, Client!",
  ]);
  await using peer = await TcpPeer.connect(server.port);
  await peer.send("one\ntwo\r\nthree\n");
  for (let i = 0; i < 3; i++) assert.equal(await peer.readLine(), "Hello, Client!");
  for (const byte of new TextEncoder().encode("slow\n")) await peer.send(Uint8Array.of(byte));
  assert.equal(await peer.readLine(), "Hello, Client!");
  await peer.send("STOP\n");
  assert.equal(await peer.readLine(), null);
});

Deno.test("tcp_echo_server serves a unix socket and removes it on shutdown", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await using server = await startScript("tcp_echo_server", [`unix:${dir}/echo.sock`]);
    const conn = await Deno.connect({ transport: "unix", path: `${dir}/echo.sock` });
    await conn.write(new TextEncoder().encode("via unix\n"));
    const buf = new Uint8Array(64);
    const n = await conn.read(buf);
    assert.equal(new TextDecoder().decode(buf.subarray(0, n ?? 0)), "via unix\n");
    conn.close();
    server.kill("SIGINT");
    assert.equal((await server.exit()).code, 0);
    await assert.rejects(Deno.lstat(`${dir}/echo.sock`), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "tcp_echo_server answers ncat, which half-closes after its input",
  ignore: missingPeer("ncat"),
  async fn() {
    await using server = await startScript("tcp_echo_server", ["127.0.0.1:0"]);
    const result = await runNcat(
      ["127.0.0.1", String(server.port)],
      "hello from ncat\nsecond line\n",
    );
    assert.equal(result.stdout, "hello from ncat\nsecond line\n");
  },
});

Deno.test("tcp_echo_server rejects bad addresses with exit 2, quoting the value", async () => {
  for (
    const [arg, pattern] of [
      ["x:99999", /Cannot parse address "x:99999": port must be 0-65535/],
      ["70000", /port must be 0-65535/],
      ["--max-conns=0", /Invalid --max-conns "0"/],
      ["--bogus", /Unknown option "--bogus"$/m],
    ] as const
  ) {
    const { code, stderr } = await runScript("tcp_echo_server", [arg]);
    assert.equal(code, 2, `${arg}: ${stderr}`);
    assert.match(stderr, pattern);
  }
});

Deno.test("tcp_echo_server --help prints usage and exits 0", async () => {
  const { code, stdout } = await runScript("tcp_echo_server", ["--help"]);
  assert.equal(code, 0);
  assert.match(stdout, /^Usage: tcp_echo_server \[ADDR\]/);
});

lineServerCases("tcp_echo_server", {
  unix: true,
  args: ["--reply", "Hello, Client!"],
  reply: /^Hello, Client!$/,
});
