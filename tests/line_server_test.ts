import assert from "node:assert/strict";
import {
  answerLines,
  isWord,
  LINE_SERVER_OPTIONS,
  lineServerSettings,
} from "../lib/net/line_server.ts";
import { parseCommand, UsageError } from "../lib/cli/cli.ts";
import { serveTcp } from "../lib/net/server.ts";
import { TcpPeer } from "./helpers.ts";

const spec = { name: "t", summary: "", args: "[PORT]", options: { ...LINE_SERVER_OPTIONS } };

Deno.test("answerLines() answers each line, batches, and stops at STOP", async () => {
  const ends: string[] = [];
  await using server = await serveTcp(async (session) => {
    ends.push(await answerLines(session, (line) => `<${line}>`, { maxLineBytes: 16 }));
  }, { address: { transport: "tcp", hostname: "127.0.0.1", port: 0 }, onListen: () => {} });
  const port = (server.addr as Deno.NetAddr).port;
  await using a = await TcpPeer.connect(port);
  await a.send("one\r\ntwo\n\nSTOP\nthree\n");
  assert.deepEqual(await a.readAll(), ["<one>", "<two>", "<>"]);
  await using b = await TcpPeer.connect(port);
  await b.send("x".repeat(17));
  assert.deepEqual(await b.readAll(), ["ERROR Line exceeds the limit of 16 bytes"]);
  await using c = await TcpPeer.connect(port);
  await c.send("last, no newline");
  await c.closeWrite();
  assert.deepEqual(await c.readAll(), ["<last, no newline>"]);
  await server.shutdown();
  assert.deepEqual(ends.sort(), ["eof", "stop", "too-long"]);
});

Deno.test("lineServerSettings() reads the port argument and the shared options", () => {
  const parsed = parseCommand(spec, [
    "--host",
    "127.0.0.1",
    "--idle-timeout",
    "2s",
    "--workers",
    "2",
    "8000",
  ]);
  const settings = lineServerSettings(parsed.values, parsed.positionals);
  assert.deepEqual(settings, {
    address: { transport: "tcp", hostname: "127.0.0.1", port: 8000 },
    maxConns: 10000,
    idleTimeoutMs: 2000,
    headTimeoutMs: 10000,
    bodyTimeoutMs: 30000,
    maxLineBytes: 65536,
    quiet: false,
    workers: 2,
    tls: undefined,
  });
  const defaults = parseCommand(spec, []);
  assert.deepEqual(lineServerSettings(defaults.values, defaults.positionals).address, {
    transport: "tcp",
    hostname: "0.0.0.0",
    port: 1234,
  });
  const bad = parseCommand(spec, ["unix:/tmp/s"]);
  assert.throws(() => lineServerSettings(bad.values, bad.positionals), UsageError);
});

Deno.test("answerLines() with a constant reply never decodes, and still stops at STOP", async () => {
  const ends: string[] = [];
  await using server = await serveTcp(async (session) => {
    ends.push(await answerLines(session, "ok", { maxLineBytes: 16 }));
  }, { address: { transport: "tcp", hostname: "127.0.0.1", port: 0 }, onListen: () => {} });
  const port = (server.addr as Deno.NetAddr).port;
  await using a = await TcpPeer.connect(port);
  await a.send("one\r\n\xff\n\n".repeat(100) + " \tSTOP\r\nthree\n");
  const lines = await a.readAll();
  assert.equal(lines.length, 300);
  assert.ok(lines.every((l) => l === "ok"));
  await using b = await TcpPeer.connect(port);
  await b.send("x".repeat(17));
  assert.deepEqual(await b.readAll(), ["ERROR Line exceeds the limit of 16 bytes"]);
  await using c = await TcpPeer.connect(port);
  await c.send("ST");
  await c.send("OP");
  await c.closeWrite();
  assert.deepEqual(await c.readAll(), []);
  await server.shutdown();
  assert.deepEqual(ends.sort(), ["stop", "stop", "too-long"]);
});

Deno.test("isWord() matches a line trimmed as String.trim() does, from bytes", () => {
  const stop = new TextEncoder().encode("STOP");
  const check = (text: string) => {
    const bytes = new TextEncoder().encode(`xx${text}yy`);
    return isWord(bytes, 2, bytes.byteLength - 2, stop, "STOP");
  };
  for (const text of ["STOP", "  STOP", "STOP\t\r", "\u00a0STOP\u3000", "\ufeffSTOP"]) {
    assert.equal(check(text), text.trim() === "STOP", JSON.stringify(text));
  }
  for (const text of ["STO", "STOPS", "S TOP", "stop", "", "\u00e9STOP"]) {
    assert.equal(check(text), false, JSON.stringify(text));
  }
});
