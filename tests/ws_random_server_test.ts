import assert from "node:assert/strict";
import { parseCount, writeDecimal } from "../scripts/ws_random_server.ts";
import { runScript, startScript } from "./helpers.ts";
import { OP, RawWsClient, text } from "./ws_raw.ts";

Deno.test("parseCount() accepts 1..100000 and explains anything else", () => {
  assert.equal(parseCount("1"), 1);
  assert.equal(parseCount(" 100000\n"), 100000);
  for (const bad of ["0", "100001", "-3", "abc", "", "1e3", "5 6"]) {
    assert.match(String(parseCount(bad)), /^ERROR expected a count 1-100000, got "/, bad);
  }
  assert.match(String(parseCount(new Uint8Array(2))), /got binary data/);
});

Deno.test("writeDecimal() writes what String() would, for every --min/--max range", () => {
  const into = new Uint8Array(11);
  const decoder = new TextDecoder();
  const samples = [0, 1, 9, 10, 999, 1000, -1, -10, 2 ** 31 - 1, -(2 ** 31)];
  for (let i = 0; i < 1000; i++) samples.push(Math.floor((Math.random() - 0.5) * 2 ** 32));
  for (const n of samples) {
    assert.equal(decoder.decode(into.subarray(0, writeDecimal(n, into))), String(n));
  }
});

Deno.test("ws_random_server sends one integer for N = 1, then closes with 1000", async () => {
  await using server = await startScript("ws_random_server", ["127.0.0.1:0", "--max", "10"]);
  const { client, reply } = await RawWsClient.open(server.port);
  await using _c = client;
  assert.equal(reply.status, 101);
  await client.sendFrame(OP.text, "1");
  const { code, messages } = await client.readClose();
  assert.equal(code, 1000);
  assert.equal(messages.length, 1);
  assert.match(text(messages[0]) ?? "", /^([1-9]|10)$/);
});

Deno.test("ws_random_server streams 100000 integers in range to ws_client", async () => {
  await using server = await startScript("ws_random_server", [
    "127.0.0.1:0",
    "--min=-5",
    "--max=5",
  ]);
  const result = await runScript("ws_client", ["--raw", `ws://127.0.0.1:${server.port}/ws`], {
    stdin: "100000\n",
    timeoutMs: 30_000,
  });
  assert.equal(result.code, 0, result.stderr);
  const numbers = result.stdout.split("\n").map(Number);
  assert.equal(numbers.length, 100_000);
  assert.ok(numbers.every((n) => Number.isInteger(n) && n >= -5 && n <= 5));
  assert.equal(new Set(numbers).size, 11, "every value of the range shows up");
  assert.match(result.stderr, /close 1000 \(normal\) done/);
});

Deno.test("ws_random_server answers a bad count with an error and close 1008", async () => {
  await using server = await startScript("ws_random_server", ["127.0.0.1:0"]);
  for (const bad of ["0", "100001", "lots"]) {
    const { client } = await RawWsClient.open(server.port);
    await using _c = client;
    await client.sendFrame(OP.text, bad);
    const { code, messages } = await client.readClose();
    assert.equal(code, 1008, bad);
    assert.equal(text(messages[0]), `ERROR expected a count 1-100000, got "${bad}"`);
    await client.sendClose(1008);
  }
  await server.stderr.waitFor(/close 1008 \(policy violation\)/);
});

Deno.test("ws_random_server rejects --min above --max with exit 2", async () => {
  const { code, stderr } = await runScript("ws_random_server", ["--min", "9", "--max", "3"]);
  assert.equal(code, 2);
  assert.match(stderr, /Invalid --min "9": above --max "3"/);
});
