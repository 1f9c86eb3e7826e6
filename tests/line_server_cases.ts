/**
 * The "bad input" cases every line server must pass (time, concurrent,
 * random, echo --reply): over-long lines, bytes one at a time, many lines
 * in one packet, invalid UTF-8 and NUL bytes, silent clients, clients that
 * vanish mid-line, one connection too many, and bad command lines.
 * `lineServerCases(script, reply)` registers one test per case.
 *
 * @module
 */
import assert from "node:assert/strict";
import { delay, runScript, type ScriptProcess, startScript, TcpPeer } from "./helpers.ts";
import { dribble } from "./slowloris.ts";

/** What a case needs to know about the server under test. */
export interface LineServerCase {
  /** Extra arguments for every start, e.g. `["--reply", "ok"]`. */
  args?: string[];
  /** Matches one answer line. */
  reply: RegExp;
  /** Whether the server also listens on unix sockets (else `unix:` must be refused). Default false. */
  unix?: boolean;
}

const LONG_LINE = "ERROR Line exceeds the limit of 65536 bytes";
const BUSY = "ERROR too many connections, try again later";
const IDLE = "ERROR idle timeout, closing";
const HEAD = "ERROR request not completed within 1000 ms, closing";

/** Asserts that a fresh client still gets an answer: the server is unharmed. */
async function assertServing(server: ScriptProcess, reply: RegExp): Promise<void> {
  await using peer = await TcpPeer.connect(server.port);
  await peer.send("still there?\n");
  assert.match((await peer.readLine()) ?? "(closed)", reply, server.output);
}

/** Registers the bad-input tests for `script`. */
export function lineServerCases(
  script: string,
  { args = [], reply, unix = false }: LineServerCase,
): void {
  const start = (extra: string[] = []) =>
    startScript(script, [...args, ...extra, "--quiet", "127.0.0.1:0"]);

  Deno.test(`${script} closes a 1 MiB line with an error line; others are unaffected`, async () => {
    await using server = await start();
    await using flood = await TcpPeer.connect(server.port);
    await using other = await TcpPeer.connect(server.port);
    const sending = flood.send(new Uint8Array(1 << 20).fill(0x61)).catch(() => {});
    assert.deepEqual(await flood.readAll(), [LONG_LINE]);
    await sending;
    await other.send("fine\n");
    assert.match((await other.readLine()) ?? "(closed)", reply);
  });

  Deno.test(`${script} answers a line that arrives one byte at a time`, async () => {
    await using server = await start();
    await using peer = await TcpPeer.connect(server.port);
    for (const byte of new TextEncoder().encode("slowly\r\n")) {
      await peer.send(Uint8Array.of(byte));
      await delay(2);
    }
    assert.match((await peer.readLine()) ?? "(closed)", reply);
    await peer.send("next\n");
    assert.match((await peer.readLine()) ?? "(closed)", reply);
  });

  Deno.test(`${script} answers every one of many lines sent in one packet`, async () => {
    await using server = await start();
    await using peer = await TcpPeer.connect(server.port);
    await peer.send(Array.from({ length: 500 }, (_, i) => `line ${i}\n`).join(""));
    for (let i = 0; i < 500; i++) assert.match((await peer.readLine()) ?? "(closed)", reply);
    await peer.closeWrite();
    assert.deepEqual(await peer.readAll(), []);
  });

  Deno.test(`${script} answers lines with invalid UTF-8 and NUL bytes`, async () => {
    await using server = await start();
    await using peer = await TcpPeer.connect(server.port);
    await peer.send(Uint8Array.of(0xff, 0xfe, 0x00, 0x41, 0xc3, 0x0a, 0x00, 0x0a));
    assert.match((await peer.readLine()) ?? "(closed)", reply);
    assert.match((await peer.readLine()) ?? "(closed)", reply);
    await assertServing(server, reply);
  });

  Deno.test(`${script} closes a silent client at the idle timeout`, async () => {
    await using server = await start(["--idle-timeout", "300ms"]);
    await using silent = await TcpPeer.connect(server.port);
    const started = Date.now();
    assert.deepEqual(await silent.readAll(), [IDLE]);
    assert.ok(Date.now() - started >= 250, "closed before the idle timeout");
  });

  Deno.test(`${script} closes a line dribbled past --head-timeout; an idle client stays`, async () => {
    await using server = await start(["--head-timeout", "1s"]);
    await using idle = await TcpPeer.connect(server.port);
    await idle.send("first\n");
    assert.match((await idle.readLine()) ?? "(closed)", reply);
    // A byte every 300 ms: never idle, never done.
    const slow = await dribble(server.port, "GET /");
    assert.deepEqual(slow.lines, [HEAD], server.output);
    assert.ok(slow.closedAfterMs >= 900, `closed after ${slow.closedAfterMs} ms, before 1 s`);
    assert.ok(slow.closedAfterMs < 5_000, `closed only after ${slow.closedAfterMs} ms`);
    // Silent between lines all that time (over twice the deadline): still served.
    await idle.send("second\n");
    assert.match((await idle.readLine()) ?? "(closed)", reply, server.output);
  });

  Deno.test(`${script} survives a client that vanishes mid-line`, async () => {
    await using server = await start();
    for (let i = 0; i < 5; i++) {
      const peer = await TcpPeer.connect(server.port);
      await peer.send("half a li");
      peer.close();
    }
    await assertServing(server, reply);
    assert.doesNotMatch(server.stderr.text, /Uncaught|panic/);
  });

  Deno.test(`${script} refuses connection N+1 beyond --max-conns with an error line`, async () => {
    await using server = await start(["--max-conns", "2"]);
    await using a = await TcpPeer.connect(server.port);
    await using b = await TcpPeer.connect(server.port);
    for (const peer of [a, b]) {
      await peer.send("hi\n");
      assert.match((await peer.readLine()) ?? "(closed)", reply);
    }
    await using c = await TcpPeer.connect(server.port);
    assert.deepEqual(await c.readAll(), [BUSY]);
    await a.send("still served\n");
    assert.match((await a.readLine()) ?? "(closed)", reply);
    a.close();
    await delay(100);
    await assertServing(server, reply);
  });

  Deno.test(`${script} rejects bad ports and addresses with exit 2, quoting the value`, async () => {
    for (
      const [bad, pattern] of [
        [["x:99999"], /Cannot parse address "x:99999": port must be 0-65535/],
        [["70000"], /"70000"/],
        [["--port", "http"], /Cannot parse address "http"/],
        [["[::1"], /Cannot parse address "\[::1"/],
        ...(unix ? [] : [[["unix:/tmp/x.sock"], /"unix:\/tmp\/x.sock"/]] as const),
        [["--max-conns", "0"], /Invalid --max-conns "0"/],
        [["--idle-timeout", "soon"], /Invalid --idle-timeout "soon"/],
        [["1", "2"], /Unexpected argument "2"/],
      ] as const
    ) {
      const { code, stderr } = await runScript(script, [...args, ...bad]);
      assert.equal(code, 2, `${bad.join(" ")}: ${stderr}`);
      assert.match(stderr, pattern);
    }
  });

  Deno.test(`${script} --help prints usage and exits 0`, async () => {
    const { code, stdout } = await runScript(script, ["--help"]);
    assert.equal(code, 0);
    assert.match(stdout, new RegExp(`^Usage: ${script} `));
  });
}
