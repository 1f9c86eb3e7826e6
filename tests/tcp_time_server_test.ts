import assert from "node:assert/strict";
import { rfc3339 } from "../scripts/tcp_time_server.ts";
import { missingPeer, runNcat, startScript, TcpPeer } from "./helpers.ts";
import { lineServerCases } from "./line_server_cases.ts";

const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)$/;

Deno.test("rfc3339() formats local time with its offset, as Go's time.RFC3339", () => {
  const now = new Date();
  const text = rfc3339(now);
  assert.match(text, RFC3339);
  assert.equal(Math.floor(Date.parse(text) / 1000), Math.floor(now.getTime() / 1000));
});

Deno.test({
  name: "tcp_time_server answers ncat's lines with the time and prints -> line",
  ignore: missingPeer("ncat"),
  async fn() {
    await using server = await startScript("tcp_time_server", ["127.0.0.1:0"]);
    const result = await runNcat(
      ["127.0.0.1", String(server.port)],
      "Hello!\nHave to leave now!\n",
    );
    const lines = result.stdout.split("\n");
    assert.equal(lines.length, 3, lines.join("|"));
    assert.match(lines[0], RFC3339);
    assert.match(lines[1], RFC3339);
    assert.equal(lines[2], "");
    await server.stdout.waitFor("-> Hello!");
    await server.stdout.waitFor("-> Have to leave now!");
  },
});

Deno.test("tcp_time_server serves clients at once; STOP ends only that client", async () => {
  await using server = await startScript("tcp_time_server", ["--port", "0", "--host", "127.0.0.1"]);
  await using a = await TcpPeer.connect(server.port);
  await using b = await TcpPeer.connect(server.port);
  await b.send("from b\n");
  assert.match((await b.readLine()) ?? "", RFC3339);
  await a.send("from a\nSTOP\nnever answered\n");
  assert.match((await a.readLine()) ?? "", RFC3339);
  assert.deepEqual(await a.readAll(), []);
  await b.send("b again\n");
  assert.match((await b.readLine()) ?? "", RFC3339);
  b.close();
  server.kill("SIGTERM");
  assert.equal((await server.exit()).code, 0, server.output);
  assert.doesNotMatch(server.stdout.text, /never answered/);
});

Deno.test("tcp_time_server --exit-on-stop exits 0 on STOP, as the book's server does", async () => {
  await using server = await startScript("tcp_time_server", ["--exit-on-stop", "127.0.0.1:0"]);
  await using peer = await TcpPeer.connect(server.port);
  await peer.send("Hello!\n");
  assert.match((await peer.readLine()) ?? "", RFC3339);
  await peer.send("STOP\n");
  assert.deepEqual(await peer.readAll(), []);
  assert.equal((await server.exit()).code, 0, server.output);
  assert.match(server.stdout.text, /-> Hello!\nExiting TCP server!$/);
});

lineServerCases("tcp_time_server", { reply: RFC3339 });
