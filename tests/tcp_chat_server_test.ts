import assert from "node:assert/strict";
import { delay, missingPeer, runScript, startScript, TcpPeer } from "./helpers.ts";

const STAMP = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d /;

/** Connects, reads the prompt, sends a nickname and reads the welcome. */
async function member(port: number, name: string): Promise<TcpPeer> {
  const peer = await TcpPeer.connect(port);
  assert.match((await peer.readLine())!, /Type your nickname/);
  await peer.send(`${name}\n`);
  assert.match((await peer.readLine())!, /^\* Welcome, /);
  return peer;
}

Deno.test({
  name: "tcp_chat_server: two members and ncat talk in seed 001's format, commands work",
  ignore: missingPeer("ncat"),
  async fn() {
    await using server = await startScript("tcp_chat_server", ["127.0.0.1:0"]);
    await using alice = await member(server.port, "alice");
    await using alice2 = await member(server.port, "alice"); // taken: alice-2
    const nc = new Deno.Command("ncat", {
      args: ["127.0.0.1", String(server.port)],
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const ncIn = nc.stdin.getWriter();
    const enc = new TextEncoder();
    await ncIn.write(enc.encode("carol\n"));
    await alice.until(/\* carol joined$/);
    await alice.send("hello from alice\n");
    await alice2.until(/alice: hello from alice$/);
    await ncIn.write(enc.encode("hi, \x1b[31mred\x1b[0m <b>bold</b>\n"));
    const fromNc = await alice.until(/carol: /);
    assert.match(fromNc, STAMP);
    assert.equal(fromNc.slice(20), "carol: hi, \\x1b[31mred\\x1b[0m <b>bold</b>");
    await alice2.send("/who\n/ping\n/nick bob\n");
    assert.equal(await alice2.until(/online/), "* 3 online: alice, alice-2, carol");
    assert.equal(await alice2.readLine(), "/pong");
    await alice.until(/\* alice-2 is now known as bob$/);
    await alice2.send("as bob\n");
    await alice.until(/bob: as bob$/);
    await ncIn.write(enc.encode("/quit\n"));
    await ncIn.close();
    const ncOut = new TextDecoder().decode((await nc.output()).stdout).split("\n");
    assert.ok(ncOut.some((l) => /alice: hello from alice$/.test(l)), ncOut.join("\n"));
    assert.ok(ncOut.some((l) => /bob: as bob$/.test(l)), ncOut.join("\n"));
    assert.ok(!ncOut.some((l) => /carol: hi/.test(l)), "no echo of one's own lines on TCP");
    assert.equal(ncOut.at(-2), "* Bye");
    await alice.until(/\* carol left$/);
    server.kill("SIGTERM");
    assert.equal(await alice.until(/shutting down/), "* The server is shutting down");
    assert.equal((await server.exit()).code, 0, server.output);
  },
});

Deno.test("tcp_chat_server refuses bad names and messages with an error, and keeps serving", async () => {
  await using server = await startScript("tcp_chat_server", ["127.0.0.1:0", "--max-line=1024"]);
  await using peer = await TcpPeer.connect(server.port);
  await peer.readLine();
  await peer.send("\n");
  assert.equal(await peer.readLine(), "ERROR Invalid name: it is empty");
  await peer.send(`${"x".repeat(40)}\n`);
  assert.match((await peer.readLine())!, /^ERROR Invalid name "x+": longer than 32 characters$/);
  await peer.send("evil\x1b[2Jname\n");
  assert.equal(
    await peer.readLine(),
    'ERROR Invalid name "evil\\x1b[2Jname": it contains U+001B, an invisible or control character',
  );
  await peer.send("taken\n");
  assert.match((await peer.readLine())!, /^\* Welcome, taken\. 1 online: taken$/);
  await using other = await member(server.port, "taken");
  await peer.until(/\* taken-2 joined/);
  await peer.send("   \n");
  assert.equal(await peer.until(/^ERROR/), "ERROR Empty message: nothing to send");
  await peer.send(`${"y".repeat(600)}\n`);
  assert.equal(await peer.until(/^ERROR/), "ERROR Message too long: 600 bytes, the limit is 512");
  await peer.send("/bogus\n");
  assert.equal(await peer.readLine(), 'ERROR Unknown command "/bogus": try /help');
  await peer.send("//slash is fine\n");
  await other.until(/taken: \/slash is fine$/);
  // A line over the framing limit closes only that connection.
  await peer.send(`${"z".repeat(2000)}\n`).catch(() => {});
  assert.equal(await peer.until(/^ERROR/), "ERROR Line exceeds the limit of 1024 bytes");
  assert.equal(await peer.readLine(), null);
  await other.until(/\* taken left \(disconnected\)$/);
  await other.send("/ping\n");
  assert.equal(await other.readLine(), "/pong");
});

Deno.test("tcp_chat_server removes a member that pings and then goes silent, announcing it", async () => {
  await using server = await startScript("tcp_chat_server", [
    "127.0.0.1:0",
    "--heartbeat-timeout=600ms",
  ]);
  await using watcher = await member(server.port, "watcher");
  await using silent = await member(server.port, "silent");
  await silent.send("/ping\n");
  const keepAlive = setInterval(() => watcher.send("/ping\n").catch(() => {}), 150);
  try {
    const line = await watcher.until(/\* silent left/);
    assert.match(line, /^.{19} \* silent left \(timed out\)$/);
    assert.equal(await silent.until(/^ERROR/), "ERROR Timed out: nothing received for 0.6 s");
    assert.equal(await silent.until(/never/).catch(() => null), null);
  } finally {
    clearInterval(keepAlive);
  }
  assert.match(server.stderr.text, /silent left \(timed out\)/);
});

Deno.test("tcp_chat_server rate limit: 1000 lines at once, the excess is refused with one notice", async () => {
  await using server = await startScript("tcp_chat_server", ["127.0.0.1:0", "-q"]);
  await using flood = await member(server.port, "flood");
  await using calm = await member(server.port, "calm");
  await flood.until(/calm joined/);
  await flood.send(Array.from({ length: 1000 }, (_, i) => `spam ${i}\n`).join(""));
  await calm.send("calm speaks\n");
  const notice = await flood.until(/^ERROR/);
  assert.match(notice, /^ERROR Slow down: at most 10 messages per second \(20 at once\)/);
  let spam = 0;
  while (true) {
    const line = await calm.readLine();
    if (line === null || /flood: spam/.test(line)) spam++;
    else break;
  }
  await flood.send("/ping\n");
  // Room lines (calm's) may still arrive before the pong; a second notice may not.
  for (let line = await flood.readLine(); line !== "/pong"; line = await flood.readLine()) {
    assert.ok(line !== null && !/^ERROR/.test(line), `one notice, not more: got ${line}`);
  }
  assert.ok(spam <= 21, `calm saw ${spam} spam lines`);
});

Deno.test("tcp_chat_server drops a member that never reads; the others keep receiving", async () => {
  await using server = await startScript("tcp_chat_server", [
    "127.0.0.1:0",
    "--rate=0",
    "--max-queue=16",
    "--max-message=8000",
    "--max-line=9000",
    "-q",
  ]);
  await using sender = await member(server.port, "sender");
  await using reader = await member(server.port, "reader");
  await using stuck = await member(server.port, "stuck"); // never reads from here on
  await reader.until(/stuck joined/);
  const payload = "p".repeat(7000);
  let droppedAt = -1;
  let got = 0;
  let readerDone = false;
  let wake = () => {};
  const counting = (async () => {
    try {
      while (true) {
        const line = await reader.readLine(30_000);
        if (line === null) throw new Error("reader closed");
        if (line.endsWith("sender: END")) return got;
        if (line.endsWith(payload)) {
          got++;
          wake();
        } else if (/\* stuck left \(too slow\)$/.test(line)) droppedAt = got;
      }
    } finally {
      readerDone = true;
      wake();
    }
  })();
  // Far more than stuck's socket buffers and queue hold; stop 50 messages
  // after it is dropped.
  let sent = 0;
  for (; sent < 3000 && !readerDone && (droppedAt < 0 || sent < droppedAt + 50); sent++) {
    await sender.send(`${sent} ${payload}\n`);
    // Keep the reader (this test process) within 8 messages, far inside its
    // queue of 16, so that only stuck, which reads nothing, can fall behind.
    while (sent + 1 - got > 8 && !readerDone) await new Promise<void>((r) => wake = r);
  }
  await sender.send("END\n");
  assert.equal(await counting, sent, "the reader got every message");
  assert.ok(droppedAt >= 0, "stuck was dropped");
  // stuck's connection was closed: reading what it has ends in end-of-stream.
  await stuck.readAll(10_000).catch(() => {});
});

Deno.test("tcp_chat_client: talks, prints others' lines, and Ctrl-C sends /quit", async () => {
  await using server = await startScript("tcp_chat_server", ["127.0.0.1:0", "-q"]);
  await using peer = await member(server.port, "peer");
  await using client = await startScript("tcp_chat_client", [
    `127.0.0.1:${server.port}`,
  ], { stdin: true, waitReady: false });
  await client.stderr.waitFor("connect success!");
  await client.write("dora\n");
  await peer.until(/\* dora joined$/);
  await client.write("hello from the client\n");
  await peer.until(/dora: hello from the client$/);
  await peer.send("hi dora\n");
  const line = await client.stdout.waitFor(/peer: hi dora$/);
  assert.match(line, STAMP);
  await delay(1300); // at least one heartbeat, which the client does not print
  assert.equal(client.stdout.count("/pong"), 0);
  client.kill("SIGINT");
  await peer.until(/\* dora left$/);
  assert.equal((await client.exit()).code, 0, client.output);
});

Deno.test("tcp_chat_client says the server is not responding after the timeout and exits 1", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of listener) accepted.push(conn); // accepts, never answers
  })();
  try {
    await using client = await startScript("tcp_chat_client", [
      `127.0.0.1:${listener.addr.port}`,
      "--name=lonely",
      "--timeout=800ms",
    ], { stdin: true, waitReady: false }); // stdin stays open: the user is still there
    const status = await client.exit();
    assert.equal(status.code, 1, client.output);
    assert.match(client.stderr.text, /Server not responding: nothing received for 0.8 s/);
  } finally {
    listener.close();
    await accepting.catch(() => {});
    for (const c of accepted) c.close();
  }
});

Deno.test("tcp_chat_server and tcp_chat_client reject bad usage with exit 2", async () => {
  for (
    const [script, args, pattern] of [
      ["tcp_chat_server", ["x:99999"], /Cannot parse address "x:99999"/],
      ["tcp_chat_server", ["--heartbeat-timeout=soon"], /Invalid --heartbeat-timeout "soon"/],
      ["tcp_chat_server", ["--max-message=0"], /Invalid --max-message "0"/],
      ["tcp_chat_client", [], /Missing argument: HOST:PORT/],
      ["tcp_chat_client", ["8086"], /the host is missing/],
    ] as const
  ) {
    const { code, stderr } = await runScript(script, [...args]);
    assert.equal(code, 2, `${script} ${args}: ${stderr}`);
    assert.match(stderr, pattern);
  }
  const { code, stdout } = await runScript("tcp_chat_server", ["--help"]);
  assert.equal(code, 0);
  assert.match(stdout, /^Usage: tcp_chat_server \[ADDR\]/);
});
