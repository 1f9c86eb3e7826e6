import assert from "node:assert/strict";
import { missingPeer, runNcat, startScript, TcpPeer } from "./helpers.ts";
import { lineServerCases } from "./line_server_cases.ts";

Deno.test("conc_tcp_server numbers clients from 0, prints . and lines, STOP ends one client", async () => {
  await using server = await startScript("conc_tcp_server", ["127.0.0.1:0"]);
  await using first = await TcpPeer.connect(server.port);
  await first.send("Hello\n");
  assert.equal(await first.readLine(), "Client number: 0");
  await server.stdout.waitFor(/^\.Hello$/);
  await using second = await TcpPeer.connect(server.port);
  await second.send("Hi from nc localhost 1234\nagain\n");
  assert.equal(await second.readLine(), "Client number: 1");
  assert.equal(await second.readLine(), "Client number: 1");
  await server.stdout.waitFor(/^\.Hi from nc localhost 1234$/);
  await first.send("  STOP \n");
  assert.deepEqual(await first.readAll(), []);
  await second.send("still here\n");
  assert.equal(await second.readLine(), "Client number: 1");
  second.close();
  server.kill("SIGINT");
  assert.equal((await server.exit()).code, 0, server.output);
  assert.doesNotMatch(server.stdout.text, /STOP/);
});

Deno.test("conc_tcp_server lets a busy client finish on SIGTERM, then exits 0", async () => {
  await using server = await startScript("conc_tcp_server", ["-q", "127.0.0.1:0"]);
  await using peer = await TcpPeer.connect(server.port);
  await peer.send("one\n");
  assert.equal(await peer.readLine(), "Client number: 0");
  server.kill("SIGTERM");
  assert.deepEqual(await peer.readAll(), []);
  assert.equal((await server.exit()).code, 0, server.output);
  await assert.rejects(TcpPeer.connect(server.port));
});

Deno.test({
  name: "conc_tcp_server answers ncat",
  ignore: missingPeer("ncat"),
  async fn() {
    await using server = await startScript("conc_tcp_server", ["127.0.0.1:0"]);
    const { stdout } = await runNcat(["127.0.0.1", String(server.port)], "a\nb\n");
    assert.equal(stdout, "Client number: 0\nClient number: 0\n");
  },
});

lineServerCases("conc_tcp_server", { reply: /^Client number: \d+$/ });
