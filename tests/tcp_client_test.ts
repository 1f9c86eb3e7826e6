import assert from "node:assert/strict";
import { LineReader, writeAll } from "../lib/io/lines.ts";
import {
  delay,
  missingPeer,
  ROOT,
  runInTerminal,
  runScript,
  startScript,
  taskArgs,
  withTimeout,
} from "./helpers.ts";

const encoder = new TextEncoder();

/** A free port on 127.0.0.1 for peers that cannot listen on port 0 and tell. */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** A one-connection server in the test: `serve` gets the connection, then it is closed. */
function oneShotServer(serve: (conn: Deno.Conn) => Promise<void>) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const done = (async () => {
    const conn = await listener.accept();
    try {
      await serve(conn);
    } finally {
      conn.close();
      listener.close();
    }
  })();
  return { port: (listener.addr as Deno.NetAddr).port, done };
}

Deno.test({
  name:
    "tcp_client --book talks to an ncat -l server as tcpC.go does, replies printed as they arrive",
  ignore: missingPeer("ncat"),
  async fn() {
    const port = freePort();
    const nc = new Deno.Command("ncat", {
      args: ["-v", "-l", "127.0.0.1", String(port)],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const ncOut = new LineReader(nc.stdout);
    const ncErr = new LineReader(nc.stderr);
    const ncIn = nc.stdin.getWriter();
    try {
      while (!/Listening on/.test((await withTimeout(ncErr.readLine(), 5000, "ncat")) ?? "")) {
        // Wait for ncat's listening notice.
      }
      await using client = await startScript("tcp_client", ["--book", `127.0.0.1:${port}`], {
        stdin: true,
        waitReady: false,
      });
      // Unasked lines are printed at once, before the user sends anything.
      await ncIn.write(encoder.encode("Welcome\nto ncat\n"));
      await client.stdout.waitFor("->: to ncat");
      await client.write("Hello!\n");
      assert.equal(await withTimeout(ncOut.readLine(), 5000, "ncat"), "Hello!");
      await ncIn.write(encoder.encode("Hi from nc -l 1234\n"));
      await client.stdout.waitFor("->: Hi from nc -l 1234");
      await client.write("STOP\n");
      assert.equal(await withTimeout(ncOut.readLine(), 5000, "ncat"), "STOP");
      await ncIn.write(encoder.encode("Bye!\n"));
      const status = await client.exit();
      assert.equal(status.code, 0, client.output);
      assert.deepEqual(client.stdout.lines, [
        "->: Welcome",
        "->: to ncat",
        "->: Hi from nc -l 1234",
        "->: Bye!",
        "TCP client exiting...",
      ]);
      // One newline per line sent, not the seed's two.
      assert.equal(await withTimeout(ncOut.readLine(), 5000, "ncat"), null);
    } finally {
      await ncIn.close().catch(() => {});
      try {
        nc.kill();
      } catch {
        // ncat exits by itself once the client has closed.
      }
      await nc.status;
      // Drain what ncat still printed, so both pipes reach their end.
      for (const reader of [ncOut, ncErr]) {
        while (await reader.readLine().catch(() => null) !== null);
      }
    }
  },
});

Deno.test("tcp_client half-closes at end of input and prints what the server sends after", async () => {
  const server = await oneShotServer(async (conn) => {
    const got: string[] = [];
    for await (const line of new LineReader(conn)) got.push(line);
    await delay(50);
    await writeAll(conn, encoder.encode(`got ${got.length} lines: ${got.join(",")}\nbye\n`));
  });
  const { code, stdout, stderr } = await runScript("tcp_client", [`127.0.0.1:${server.port}`], {
    stdin: "a\nb\nno newline",
  });
  await server.done;
  assert.equal(code, 0, stderr);
  assert.equal(stdout, "got 3 lines: a,b,no newline\nbye");
});

/** Runs tcp_client with `args` and `input` on stdin, stdout piped, and returns its exact bytes. */
async function pipeThrough(args: string[], input: Uint8Array) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [...taskArgs("tcp_client"), ...args],
    cwd: ROOT,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(input);
  await writer.close();
  const result = await withTimeout(child.output(), 15_000, `tcp_client ${args.join(" ")}`);
  return { ...result, stderr: new TextDecoder().decode(result.stderr) };
}

Deno.test("tcp_client in a pipe writes exactly the server's bytes, and STOP is only a line", async () => {
  await using server = await startScript("tcp_echo_server", ["-q", "127.0.0.1:0"]);
  const input = encoder.encode("first\nSTOP\nafter STOP\n\u00e9 no newline");
  const result = await pipeThrough([`127.0.0.1:${server.port}`], input);
  assert.equal(result.code, 0, result.stderr);
  assert.deepEqual(result.stdout, input);
  const book = await pipeThrough(["--book", `127.0.0.1:${server.port}`], input);
  assert.equal(book.code, 0, book.stderr);
  assert.equal(
    new TextDecoder().decode(book.stdout),
    "->: first\n->: STOP\nTCP client exiting...\n",
  );
});

Deno.test("tcp_client --exit-word exit and --send against conc_tcp_server", async () => {
  await using server = await startScript("conc_tcp_server", ["-q", "127.0.0.1:0"]);
  const address = `127.0.0.1:${server.port}`;
  const once = await runScript("tcp_client", ["--book", "--send", "Hello, Server!", address]);
  assert.deepEqual([once.code, once.stdout], [0, "->: Client number: 0"]);
  const raw = await runScript("tcp_client", ["--send", "hi", address]);
  assert.deepEqual([raw.code, raw.stdout], [0, "Client number: 1"]);
  const exit = await runScript("tcp_client", ["--exit-word", "exit", address], {
    stdin: "one\nSTOP is just a line here\nexit\nnever sent\n",
  });
  assert.equal(exit.code, 0, exit.stderr);
  assert.deepEqual(exit.stdout.split("\n"), [
    "Client number: 2",
    "Client number: 2",
    "Client number: 2",
  ]);
  assert.match(exit.stderr, /TCP client exiting\.\.\./);
});

Deno.test("tcp_client --book exits at once after STOP to a server that just closes", async () => {
  await using server = await startScript("tcp_time_server", ["-q", "127.0.0.1:0"]);
  const started = Date.now();
  const { code, stdout } = await runScript("tcp_client", ["--book", `127.0.0.1:${server.port}`], {
    stdin: "STOP\n",
  });
  assert.equal(code, 0);
  assert.equal(stdout, "TCP client exiting...");
  assert.ok(Date.now() - started < 1500, "waited for the exit answer though the server closed");
});

Deno.test("tcp_client --raw passes bytes through unchanged, NULs and invalid UTF-8 included", async () => {
  await using server = await startScript("tcp_echo_server", ["-q", "127.0.0.1:0"]);
  const bytes = Uint8Array.from({ length: 100_000 }, (_, i) => (i * 31) % 256);
  const result = await pipeThrough(["--raw", `127.0.0.1:${server.port}`], bytes);
  assert.equal(result.code, 0, result.stderr);
  assert.deepEqual(result.stdout, bytes);
});

Deno.test("tcp_client reports a refused connection and a silent server, exit 1", async () => {
  const port = freePort();
  const refused = await runScript("tcp_client", [`127.0.0.1:${port}`], { stdin: "" });
  assert.equal(refused.code, 1);
  assert.match(
    refused.stderr,
    new RegExp(`Cannot connect to 127.0.0.1:${port}: Connection refused`),
  );
  const server = await oneShotServer(async (conn) => {
    await conn.read(new Uint8Array(64));
    await delay(600);
  });
  const silent = await runScript("tcp_client", [
    "--timeout",
    "300ms",
    "--send",
    "anyone?",
    `127.0.0.1:${server.port}`,
  ]);
  await server.done;
  assert.equal(silent.code, 1);
  assert.match(silent.stderr, /No reply within 300 ms/);
});

Deno.test("tcp_client -4 resolves localhost to IPv4; bad addresses exit 2", async () => {
  await using server = await startScript("tcp_time_server", ["-q", "127.0.0.1:0"]);
  const v4 = await runScript("tcp_client", ["-4", "--send", "x", `localhost:${server.port}`]);
  assert.equal(v4.code, 0, v4.stderr);
  const wrong = await runScript("tcp_client", ["-6", "--send", "x", `127.0.0.1:${server.port}`]);
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /"127.0.0.1" is not an IPv6 address/);
  for (
    const [args, pattern] of [
      [["localhost"], /Cannot parse address "localhost"/],
      [["host:99999"], /Cannot parse address "host:99999": port must be 0-65535/],
      [[":1234"], /Cannot parse address ":1234": the host is missing/],
      [["-4", "-6", "localhost:1"], /Give -4 or -6, not both/],
      [["--timeout", "never", "localhost:1"], /Invalid --timeout "never"/],
      [[], /Missing argument: HOST:PORT/],
    ] as const
  ) {
    const { code, stderr } = await runScript("tcp_client", [...args]);
    assert.equal(code, 2, `${args.join(" ")}: ${stderr}`);
    assert.match(stderr, pattern);
  }
});

Deno.test({
  name: "tcp_client --book shows the >> prompt on a terminal, a reply replacing the waiting prompt",
  ignore: missingPeer("script"),
  async fn() {
    await using server = await startScript("conc_tcp_server", ["-q", "127.0.0.1:0"]);
    const tty = runInTerminal("tcp_client", ["--book", `127.0.0.1:${server.port}`]);
    await delay(500); // let the client start and print its first prompt
    await tty.type("Hello!\n");
    await delay(300);
    await tty.type("STOP\n");
    const { text, code } = await tty.output;
    assert.equal(code, 0, text);
    assert.match(text, /^>> Hello!\n/);
    const clearLine = "\r\x1b[K";
    assert.ok(
      text.endsWith(`>> ${clearLine}->: Client number: 0\n>> STOP\nTCP client exiting...\n`),
      JSON.stringify(text),
    );
  },
});

Deno.test("tcp_client --help prints usage and exits 0", async () => {
  const { code, stdout } = await runScript("tcp_client", ["--help"]);
  assert.equal(code, 0);
  assert.match(stdout, /^Usage: tcp_client HOST:PORT/);
});

Deno.test("tcp_client drops otherTCPserver.go's NUL padding and prints nothing after its exit line", async () => {
  // otherTCPserver.go: each read answered with the whole 1024-byte buffer, zeros and all.
  const padded = await oneShotServer(async (conn) => {
    const buf = new Uint8Array(1024);
    for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
      const reply = new Uint8Array(1024);
      reply.set(buf.subarray(0, n));
      await writeAll(conn, reply);
      if (new TextDecoder().decode(buf.subarray(0, n)).includes("STOP")) return;
    }
  });
  const echo = await runScript("tcp_client", ["--book", `127.0.0.1:${padded.port}`], {
    stdin: "one\ntwo\nSTOP\n",
  });
  await padded.done;
  assert.equal(echo.code, 0, echo.stderr);
  assert.doesNotMatch(echo.stdout, /\0/);
  assert.deepEqual(echo.stdout.split("\n"), [
    "->: one",
    "->: two",
    "->: STOP",
    "TCP client exiting...",
  ]);
  // concTCP.go: after the first line, answers forever.
  const flood = await oneShotServer(async (conn) => {
    await conn.read(new Uint8Array(1024));
    const lines = encoder.encode("Client number: 0\n".repeat(1000));
    try {
      while (true) await writeAll(conn, lines);
    } catch {
      // The client left.
    }
  });
  const flooded = await runScript("tcp_client", ["--book", `127.0.0.1:${flood.port}`], {
    stdin: "STOP\n",
  });
  await flood.done;
  assert.equal(flooded.code, 0, flooded.stderr);
  assert.equal(flooded.stdout.split("\n").at(-1), "TCP client exiting...");
});

Deno.test({
  name: "tcp_client in a terminal keeps ->: and the prompt, and STOP is an ordinary line",
  ignore: missingPeer("script"),
  async fn() {
    await using server = await startScript("tcp_echo_server", ["-q", "127.0.0.1:0"]);
    const tty = runInTerminal("tcp_client", [`127.0.0.1:${server.port}`]);
    await delay(500);
    await tty.type("STOP\n");
    await delay(300);
    await tty.type("after\n");
    await delay(300);
    await tty.end();
    const { text } = await tty.output;
    assert.match(text, /->: STOP\n/, JSON.stringify(text));
    assert.match(text, /->: after\n/, JSON.stringify(text));
    assert.doesNotMatch(text, /TCP client exiting/);
  },
});
