import assert from "node:assert/strict";
import { answerRandom } from "../scripts/tcp_random_server.ts";
import { runScript, startScript, TcpPeer } from "./helpers.ts";
import { lineServerCases } from "./line_server_cases.ts";

Deno.test("answerRandom() reads RANGE A B and refuses bad ranges with ERROR", () => {
  const range = { min: 1, max: 1000 };
  assert.equal(answerRandom("RANGE 5 7", range), "OK RANGE 5 7");
  assert.deepEqual(range, { min: 5, max: 7 });
  for (let i = 0; i < 100; i++) assert.match(answerRandom("go", range), /^[567]$/);
  assert.equal(answerRandom("range -3 -3", range), "OK RANGE -3 -3");
  assert.equal(answerRandom("", range), "-3");
  assert.match(answerRandom("RANGE 9 1", range), /^ERROR 9 is greater than 1$/);
  assert.match(answerRandom("RANGE 1", range), /^ERROR usage: RANGE A B/);
  assert.match(answerRandom("RANGE 1 x", range), /^ERROR "x" is not an integer$/);
  assert.match(answerRandom("RANGE 1.5 2", range), /^ERROR "1.5" is not an integer$/);
  assert.match(answerRandom("RANGE 1 99999999999999999", range), /not an integer/);
  assert.match(
    answerRandom(`RANGE -${Number.MAX_SAFE_INTEGER} ${Number.MAX_SAFE_INTEGER}`, range),
    /too wide/,
  );
  assert.deepEqual(range, { min: -3, max: -3 }, "a refused RANGE keeps the old one");
});

Deno.test("tcp_random_server answers in 1..1000, then in the client's RANGE", async () => {
  await using server = await startScript("tcp_random_server", ["127.0.0.1:0"]);
  await using peer = await TcpPeer.connect(server.port);
  await peer.send("x\n".repeat(50));
  for (let i = 0; i < 50; i++) {
    const n = Number(await peer.readLine());
    assert.ok(Number.isInteger(n) && n >= 1 && n <= 1000, String(n));
  }
  await peer.send("RANGE 10 12\n");
  assert.equal(await peer.readLine(), "OK RANGE 10 12");
  await peer.send("RANGE ten 12\n");
  assert.equal(await peer.readLine(), 'ERROR "ten" is not an integer');
  await peer.send("n\n".repeat(60));
  const seen = new Set<string>();
  for (let i = 0; i < 60; i++) seen.add((await peer.readLine()) ?? "");
  assert.deepEqual([...seen].sort(), ["10", "11", "12"]);
  await using other = await TcpPeer.connect(server.port);
  await other.send("n\n");
  assert.ok(Number(await other.readLine()) >= 1, "another client keeps the default range");
  await peer.send("STOP\n");
  assert.deepEqual(await peer.readAll(), []);
  await server.stdout.waitFor("-> RANGE 10 12");
});

Deno.test("tcp_random_server --min and --max set the default range; a bad one exits 2", async () => {
  await using server = await startScript("tcp_random_server", [
    "--min=-2",
    "--max=-2",
    "-q",
    "127.0.0.1:0",
  ]);
  await using peer = await TcpPeer.connect(server.port);
  await peer.send("a\n");
  assert.equal(await peer.readLine(), "-2");
  const { code, stderr } = await runScript("tcp_random_server", ["--min", "10", "--max", "1"]);
  assert.equal(code, 2);
  assert.match(stderr, /Invalid --min "10" and --max "1": 10 is greater than 1/);
  const bad = await runScript("tcp_random_server", ["--max", "lots"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /Invalid --max "lots"/);
});

lineServerCases("tcp_random_server", { reply: /^-?\d+$/ });
