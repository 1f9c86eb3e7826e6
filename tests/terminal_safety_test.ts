import assert from "node:assert/strict";
import { startScript, TcpPeer } from "./helpers.ts";

/** Clears the screen and sets the window title, then rings the bell. */
const ATTACK = "\x1b[2J\x1b]0;title\x07\u009b31m\u202eevil";
const LONG = "z".repeat(100_000);

/** Checks that no ESC, CSI, BEL or bidi override reached the output, and that the long line was cut. */
function assertSafe(output: string, name: string): void {
  // deno-lint-ignore no-control-regex
  assert.doesNotMatch(output, /[\x1b\x07\u009b\u202e]/, `${name} printed raw control bytes`);
  assert.ok(!output.includes("z".repeat(1_000)), `${name} logged the whole long payload`);
}

for (const name of ["tcp_time_server", "conc_tcp_server", "tcp_random_server", "tcp_echo_server"]) {
  Deno.test(`${name} escapes and cuts what clients send before it logs it`, async () => {
    await using server = await startScript(name, ["127.0.0.1:0", "--max-line=200000"]);
    await using peer = await TcpPeer.connect(server.port);
    await peer.send(`${ATTACK}\n${LONG}\n`);
    await peer.readLine();
    await peer.readLine();
    peer.close();
    await server.stdout.waitFor("more bytes)").catch(() => server.stderr.waitFor("more bytes)"));
    server.kill("SIGTERM");
    assert.equal((await server.exit()).code, 0, server.output);
    const output = server.stdout.text + server.stderr.text;
    assertSafe(output, name);
    assert.match(output, /\\x1b\[2J\\x1b\]0;title\\x07\\x9b31m\\u202eevil/);
  });
}

Deno.test("http_server escapes a percent-encoded ESC in the path it logs", async () => {
  await using server = await startScript("http_server", ["127.0.0.1:0"]);
  const response = await fetch(
    `http://127.0.0.1:${server.port}/%1b%5b2J%1b%5d0;title%07${"z".repeat(5000)}`,
  );
  await response.body?.cancel();
  await server.stderr.waitFor("more bytes)");
  server.kill("SIGTERM");
  assert.equal((await server.exit()).code, 0, server.output);
  assertSafe(server.stdout.text + server.stderr.text, "http_server");
});
