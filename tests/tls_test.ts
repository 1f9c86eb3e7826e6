import assert from "node:assert/strict";
import { UsageError } from "../lib/cli/cli.ts";
import { isLoopback } from "../lib/net/addr.ts";
import { dial } from "../lib/net/dial.ts";
import { tlsClientSettings, tlsServerSettings } from "../lib/net/tls.ts";
import { LineReader, writeAll } from "../lib/io/lines.ts";
import { serveEcho } from "../scripts/tcp_echo_server.ts";
import { missingPeer, runNcat, runScript, startScript } from "./helpers.ts";
import { makeCerts } from "./tls_certs.ts";

const certs = await makeCerts();
globalThis.addEventListener("unload", () => Deno.removeSync(certs.dir, { recursive: true }));
const encoder = new TextEncoder();
const serverArgs = ["--cert", certs.cert, "--key", certs.key];

Deno.test("tlsServerSettings() reads a matching pair and refuses a bad one, naming the file", () => {
  const ok = tlsServerSettings({ cert: certs.cert, key: certs.key });
  assert.ok(ok?.cert.includes("BEGIN CERTIFICATE"));
  assert.equal(tlsServerSettings({}), undefined);
  const cases: Array<[{ cert?: string; key?: string }, RegExp]> = [
    [{ cert: certs.cert }, /--cert ".*server\.pem" needs --key FILE/],
    [{ key: certs.key }, /--key ".*server\.key" needs --cert FILE/],
    [{ cert: certs.cert, key: certs.otherKey }, /--key ".*other\.key" does not match --cert/],
    [{ cert: `${certs.dir}/none.pem`, key: certs.key }, /Cannot read --cert ".*none\.pem"/],
    [{ cert: certs.key, key: certs.key }, /Invalid --cert ".*server\.key": no PEM certificate/],
    [{ cert: certs.cert, key: certs.cert }, /Invalid --key ".*server\.pem": no PEM private key/],
  ];
  for (const [values, message] of cases) {
    assert.throws(
      () => tlsServerSettings(values),
      (e) => e instanceof UsageError && message.test(e.message),
    );
  }
  const warnings: string[] = [];
  tlsServerSettings({ cert: certs.expired, key: certs.key }, (w) => warnings.push(w));
  assert.match(warnings.join(), /expired\.pem" expired on 2020-01-02/);
});

Deno.test("tlsClientSettings(): --ca implies TLS, --insecure contradicts --ca", () => {
  assert.equal(tlsClientSettings({}), undefined);
  assert.deepEqual(tlsClientSettings({ tls: true }), {});
  assert.equal(tlsClientSettings({ ca: certs.ca })?.caCerts?.length, 1);
  assert.throws(() => tlsClientSettings({ ca: certs.ca, insecure: true }), UsageError);
  assert.throws(() => tlsClientSettings({ ca: certs.key }), /Invalid --ca ".*server\.key"/);
});

Deno.test("isLoopback() tells loopback listen addresses from the others", () => {
  for (const hostname of ["127.0.0.1", "127.1.2.3", "::1", "localhost"]) {
    assert.ok(isLoopback({ transport: "tcp", hostname, port: 1 }), hostname);
  }
  for (const hostname of ["0.0.0.0", "::", "192.0.2.7", "example.com"]) {
    assert.ok(!isLoopback({ transport: "tcp", hostname, port: 1 }), hostname);
  }
});

Deno.test("dial() checks the certificate: trusted CA, wrong CA, expired, wrong host, --insecure", async () => {
  const ca = tlsClientSettings({ ca: certs.ca })!;
  for (
    const [certFile, tls, expect] of [
      [certs.cert, ca, null],
      [certs.cert, {}, /unknown authority \(pass --ca FILE\)/],
      [certs.cert, tlsClientSettings({ ca: certs.otherCa })!, /unknown authority/],
      [certs.expired, ca, /certificate expired on 2020-01-02T00:00:00/],
      [certs.wrongHost, ca, /not valid for name "localhost"/],
      [certs.expired, { insecure: true }, null],
      [certs.wrongHost, { insecure: true }, null],
    ] as const
  ) {
    await using server = await serveEcho({
      address: { transport: "tcp", hostname: "127.0.0.1", port: 0 },
      tls: tlsServerSettings({ cert: certFile, key: certs.key }, () => {}),
      quiet: true,
      onListen: () => {},
    });
    const port = (server.addr as Deno.NetAddr).port;
    const where = { transport: "tcp", hostname: "localhost", port } as const;
    if (expect) {
      await assert.rejects(dial(where, { tls }), expect);
      continue;
    }
    const conn = await dial(where, { tls, timeoutMs: 5_000 });
    try {
      await writeAll(conn, encoder.encode("over TLS\n"));
      assert.equal(await new LineReader(conn).readLine(), "over TLS");
    } finally {
      conn.close();
    }
  }
});

Deno.test({
  name: "tcp_echo_server --cert/--key: ncat --ssl-verify trusts it through the CA, not another",
  ignore: missingPeer("ncat"),
  fn: async () => {
    await using server = await startScript("tcp_echo_server", [...serverArgs, "127.0.0.1:0", "-q"]);
    assert.match(server.stdout.lines[0], /^Listening on tls:\/\/127\.0\.0\.1:\d+$/);
    const verify = ["--ssl", "--ssl-verify", "--ssl-trustfile"];
    const good = await runNcat([...verify, certs.ca, "localhost", String(server.port)], "hi\n");
    assert.equal(good.code, 0, good.stderr);
    assert.equal(good.stdout, "hi\n");
    const bad = await runNcat([...verify, certs.otherCa, "localhost", String(server.port)], "hi\n");
    assert.notEqual(bad.code, 0);
    assert.equal(bad.stdout, "");
    // Plain TCP to a TLS port gets no echo: the server takes it for a bad handshake.
    const plain = await runNcat(["127.0.0.1", String(server.port)], "hi\n");
    assert.doesNotMatch(plain.stdout, /hi/);
  },
});

Deno.test("line servers refuse a bad --cert/--key pair with exit 2 naming the file", async () => {
  for (
    const [args, message] of [
      [["--cert", certs.cert, "--key", certs.otherKey], /--key ".*other\.key" does not match/],
      [["--cert", certs.cert], /--cert ".*server\.pem" needs --key FILE/],
      [["--cert", `${certs.dir}/missing.pem`, "--key", certs.key], /Cannot read --cert/],
      [[...serverArgs, "unix:/tmp/netkit_tls.sock"], /needs a TCP port/],
    ] as const
  ) {
    const { code, stderr } = await runScript("tcp_echo_server", [...args]);
    assert.equal(code, 2, stderr);
    assert.match(stderr, message);
  }
  const time = await runScript("tcp_time_server", ["--cert", certs.cert, "--key", certs.otherKey]);
  assert.equal(time.code, 2, time.stderr);
});

Deno.test("tcp_client --ca talks TLS; an untrusted, expired or misnamed certificate exits 1", async () => {
  for (
    const [certFile, args, code, message] of [
      [certs.cert, ["--ca", certs.ca], 0, null],
      [certs.cert, ["--tls"], 1, /unknown authority/],
      [certs.expired, ["--ca", certs.ca], 1, /certificate expired/],
      [certs.wrongHost, ["--ca", certs.ca], 1, /not valid for name "localhost"/],
      [certs.wrongHost, ["--insecure"], 0, null],
      [certs.cert, ["--ca", certs.ca, "--insecure"], 2, /contradict/],
    ] as const
  ) {
    await using server = await startScript("tcp_echo_server", [
      "--cert",
      certFile,
      "--key",
      certs.key,
      "127.0.0.1:0",
      "-q",
    ]);
    const r = await runScript("tcp_client", [
      ...args,
      "--send",
      "ping",
      `localhost:${server.port}`,
    ]);
    assert.equal(r.code, code, r.stderr);
    if (message) {
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trim().split("\n").filter((l) => !l.startsWith("Try ")).length, 1);
    } else {
      assert.equal(r.stdout, "ping");
    }
  }
});

Deno.test("tcp_chat_server over TLS: the prompt and the room reach TLS clients", async () => {
  await using server = await startScript("tcp_chat_server", [...serverArgs, "127.0.0.1:0", "-q"]);
  assert.match(server.stdout.lines[0], /^Listening on tls:\/\//);
  const where = { transport: "tcp", hostname: "localhost", port: server.port } as const;
  const tls = tlsClientSettings({ ca: certs.ca });
  const alice = await dial(where, { tls });
  const bob = await dial(where, { tls });
  try {
    const heard = new LineReader(bob);
    assert.match((await heard.readLine())!, /Welcome to the chat/);
    await writeAll(bob, encoder.encode("bob\n"));
    assert.match((await heard.readLine())!, /Welcome, bob/);
    await writeAll(alice, encoder.encode("alice\nhello over TLS\n"));
    let line: string | null;
    do line = await heard.readLine(); while (
      line !== null && !line.endsWith("alice: hello over TLS")
    );
    assert.notEqual(line, null, "bob heard alice");
  } finally {
    alice.close();
    bob.close();
  }
});

Deno.test("file_send --ca sends to file_recv --cert, and refuses an untrusted receiver", async () => {
  const inbox = await Deno.makeTempDir({ prefix: "netkit_tls_inbox_" });
  const file = `${certs.dir}/payload.bin`;
  const content = new Uint8Array(3_000_000).map((_, i) => (i * 7) % 256);
  await Deno.writeFile(file, content);
  try {
    await using recv = await startScript("file_recv", [
      ...serverArgs,
      "127.0.0.1:0",
      "--dir",
      inbox,
      "-q",
    ]);
    assert.match(recv.stdout.lines[0], /^Listening on tls:\/\//);
    const sent = await runScript("file_send", [
      "-q",
      "--ca",
      certs.ca,
      `localhost:${recv.port}`,
      file,
    ]);
    assert.equal(sent.code, 0, sent.stderr);
    assert.deepEqual(await Deno.readFile(`${inbox}/payload.bin`), content);
    const refused = await runScript("file_send", [
      "-q",
      "--tls",
      "--as",
      "other.bin",
      `localhost:${recv.port}`,
      file,
    ]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /unknown authority/);
    await assert.rejects(Deno.stat(`${inbox}/other.bin`), Deno.errors.NotFound);
    // --insecure goes through node:tls: the whole file, the half-close and the verdict.
    const insecure = await runScript("file_send", [
      "-q",
      "--insecure",
      "--as",
      "insecure.bin",
      `localhost:${recv.port}`,
      file,
    ]);
    assert.equal(insecure.code, 0, insecure.stderr);
    assert.deepEqual(await Deno.readFile(`${inbox}/insecure.bin`), content);
  } finally {
    await Deno.remove(inbox, { recursive: true });
  }
});

Deno.test("im_client --ca registers and logs in over TLS; im_server warns only when it should", async () => {
  const imArgs = ["--db", ":memory:", "--pbkdf2-iterations", "1000", "--insecure-test-hashing"];
  await using server = await startScript("im_server", [...serverArgs, "127.0.0.1:0", ...imArgs]);
  assert.match(server.stdout.lines[0], /^Listening on tls:\/\//);
  const r = await runScript("im_client", [
    `localhost:${server.port}`,
    "--ca",
    certs.ca,
    "--user",
    "carol",
    "--register",
    "--password-stdin",
  ], { stdin: "carol-password\nusers\nquit\n" });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Registered carol\nLogged in as carol/);
  const login = await runScript("im_client", [
    `localhost:${server.port}`,
    "--ca",
    certs.ca,
    "--user",
    "carol",
    "--password-stdin",
  ], { stdin: "carol-password\nquit\n" });
  assert.equal(login.code, 0, login.stderr);
  assert.match(login.stdout, /Logged in as carol/);
  assert.doesNotMatch(server.stderr.text, /without TLS/);

  await using open = await startScript("im_server", ["0.0.0.0:0", ...imArgs]);
  await open.stderr.waitFor(/Warning: listening on tcp:\/\/0\.0\.0\.0:\d+ without TLS: passwords/);
  await using local = await startScript("im_server", ["127.0.0.1:0", ...imArgs]);
  await local.stderr.waitFor(/Passwords: PBKDF2/);
  assert.doesNotMatch(local.stderr.text, /without TLS/);
});

Deno.test("rpc_server --cert serves both ports over TLS; rpc_client --ca calls each", async () => {
  await using server = await startScript("rpc_server", [
    ...serverArgs,
    "--host",
    "127.0.0.1",
    "--port",
    "0",
    "--http-port",
    "0",
    "-q",
  ]);
  const https = await server.stdout.waitFor(/Listening on https:\/\//);
  assert.match(server.stdout.lines[0], /^Listening on tls:\/\//);
  const httpsPort = /:(\d+)\/rpc$/.exec(https)![1];
  const tcp = await runScript("rpc_client", [
    "--ca",
    certs.ca,
    `localhost:${server.port}`,
    "Arith.Multiply",
    '{"A":7,"B":8}',
  ]);
  assert.equal(tcp.code, 0, tcp.stderr);
  assert.match(tcp.stdout, /^56$/m);
  const url = `https://localhost:${httpsPort}/rpc`;
  const http = await runScript("rpc_client", [
    "--ca",
    certs.ca,
    "--http",
    url,
    "Algorithm.Sum",
    "[3,4]",
  ]);
  assert.equal(http.code, 0, http.stderr);
  assert.match(http.stdout, /^7$/m);
  const untrusted = await runScript("rpc_client", ["--http", url, "Algorithm.Sum", "[3,4]"]);
  assert.equal(untrusted.code, 1);
  assert.match(untrusted.stderr, /unknown authority/);
  const insecure = await runScript("rpc_client", [
    "--insecure",
    "--http",
    url,
    "Algorithm.Sum",
    "[3,4]",
  ]);
  assert.equal(insecure.code, 2);
  assert.match(insecure.stderr, /--unsafely-ignore-certificate-errors/);
});

/** A TLS front for the local RabbitMQ broker (which has no TLS listener): socat on a free port. */
async function startAmqpsProxy(): Promise<{ port: number } & AsyncDisposable> {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  const socat = new Deno.Command("socat", {
    args: [
      `OPENSSL-LISTEN:${port},bind=127.0.0.1,reuseaddr,fork,cert=${certs.cert},key=${certs.key},verify=0`,
      "TCP:127.0.0.1:5672",
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
  for (let i = 0; i < 50; i++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      break;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  return {
    port,
    async [Symbol.asyncDispose]() {
      socat.kill("SIGTERM");
      await socat.status;
    },
  };
}

Deno.test({
  name:
    "mq_send, mq_read and mq_to_tcp --ca speak amqps:// through a TLS front; a wrong CA fails at once",
  ignore: missingPeer("socat"),
  fn: async () => {
    await using proxy = await startAmqpsProxy();
    const url = `amqps://guest:guest@localhost:${proxy.port}/`;
    const queue = `netkit.tls.${crypto.randomUUID()}`;
    const over = (ca: string) => ["--url", url, "--ca", ca, "--queue", queue];
    const sent = await runScript("mq_send", [...over(certs.ca), "--message", "over amqps"]);
    assert.equal(sent.code, 0, sent.stderr);
    const read = await runScript("mq_read", [...over(certs.ca), "--count", "1"]);
    assert.equal(read.code, 0, read.stderr);
    assert.match(read.stdout, /over amqps/);
    const wrong = await runScript("mq_send", [...over(certs.otherCa), "--message", "x"]);
    assert.equal(wrong.code, 1);
    assert.match(
      wrong.stderr,
      /TLS handshake with localhost:\d+ failed: certificate signed by an unknown authority/,
    );
    assert.doesNotMatch(wrong.stderr, /retrying/, "a certificate problem is not retried");
    await runScript("mq_send", [...over(certs.ca), "--message", "bridged"]);
    await using echo = await startScript("tcp_echo_server", ["127.0.0.1:0", "-q"]);
    await using bridge = await startScript("mq_to_tcp", [
      ...over(certs.ca),
      "--tcp",
      `127.0.0.1:${echo.port}`,
      "--await-reply",
    ], { waitReady: false });
    await bridge.stdout.waitFor(/bridged/, 20_000);
    bridge.kill("SIGINT");
    assert.equal((await bridge.exit()).code, 0, bridge.output);
    const plain = await runScript("mq_read", ["--url", "amqp://localhost/", "--ca", certs.ca]);
    assert.equal(plain.code, 2);
    assert.match(plain.stderr, /--ca ".*ca\.pem" needs an amqps:\/\/ URL/);
    await using chat = await startScript("tcp_chat_server", [
      "--bus",
      url,
      "--bus-ca",
      certs.ca,
      "--room",
      `tls-${crypto.randomUUID()}`,
      "127.0.0.1:0",
    ]);
    await chat.stderr.waitFor(/Bus: joined room/);
    const bus = await runScript("tcp_chat_server", ["--bus-ca", certs.ca, "127.0.0.1:0"]);
    assert.equal(bus.code, 2);
    assert.match(bus.stderr, /--bus-ca ".*" needs --bus amqps:/);
  },
});

Deno.test({
  name:
    "ws_chat_server --cert: curl --cacert gets the page, a wss client joins, the TCP side is TLS",
  ignore: missingPeer("curl") || missingPeer("ncat"),
  fn: async () => {
    await using server = await startScript("ws_chat_server", [
      ...serverArgs,
      "--host=127.0.0.1",
      "--port=0",
      "--tcp-port=0",
    ]);
    assert.match(server.stdout.lines[0], /^Listening on https:\/\/127\.0\.0\.1:\d+/);
    const tcpLine = await server.stdout.waitFor(/chat over TCP/);
    assert.match(tcpLine, /^Listening on tls:\/\//);
    const tcpPort = /:(\d+) /.exec(tcpLine)![1];
    const page = `https://localhost:${server.port}/`;
    const curl = await new Deno.Command("curl", {
      args: ["-sS", "--cacert", certs.ca, page],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(curl.success, new TextDecoder().decode(curl.stderr));
    assert.match(new TextDecoder().decode(curl.stdout), /<title>netkit chat<\/title>/);
    const untrusted = await new Deno.Command("curl", {
      args: ["-sS", "--cacert", certs.otherCa, page],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(!untrusted.success, "curl refuses a certificate from another CA");

    await using member = await startScript("ws_client", [
      "--ca",
      certs.ca,
      `wss://localhost:${server.port}/ws?name=secure`,
    ], { stdin: true, waitReady: false });
    await member.stdout.waitFor(/^\{"type":"welcome",.*"name":"secure"/);
    // A terminal user on the TLS side talks to the wss member.
    const nc = await runNcat(
      ["--ssl", "--ssl-verify", "--ssl-trustfile", certs.ca, "localhost", tcpPort],
      "tls-user\nhello from ncat\n/quit\n",
    );
    assert.match(nc.stdout, /Welcome/);
    await member.stdout.waitFor(/"name":"tls-user","text":"hello from ncat"/);
    await member.write("hello back\n");
    await member.stdout.waitFor(/"name":"secure","text":"hello back"/);
    await member.closeStdin();
    assert.equal((await member.exit()).code, 0, member.output);

    const wrong = await runScript("ws_client", [
      "--ca",
      certs.otherCa,
      `wss://localhost:${server.port}/ws?name=x`,
    ], { stdin: "" });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /unknown authority/);
    const insecure = await runScript("ws_client", [
      "--insecure",
      `wss://localhost:${server.port}/ws?name=y`,
    ], { stdin: "" });
    assert.equal(insecure.code, 0, insecure.stderr);
  },
});

Deno.test("http_server --cert answers https://; http_client --ca fetches, --insecure is refused", async () => {
  await using server = await startScript("http_server", [...serverArgs, "127.0.0.1:0", "-q"]);
  assert.match(server.stdout.lines[0], /^Listening on https:\/\//);
  const url = `https://localhost:${server.port}/secure`;
  const ok = await runScript("http_client", ["--ca", certs.ca, url]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.stdout, "Hello, you've requested: /secure");
  const untrusted = await runScript("http_client", [url]);
  assert.equal(untrusted.code, 1);
  assert.match(
    untrusted.stderr,
    /TLS handshake failed: certificate signed by an unknown authority/,
  );
  const insecure = await runScript("http_client", ["--insecure", url]);
  assert.equal(insecure.code, 2);
  assert.match(insecure.stderr, /--unsafely-ignore-certificate-errors/);
  const plain = await runScript("http_client", [
    "--ca",
    certs.ca,
    `http://localhost:${server.port}/`,
  ]);
  assert.equal(plain.code, 2);
});

Deno.test("ws_echo_server and ws_random_server --cert speak wss://", async () => {
  await using echo = await startScript("ws_echo_server", [...serverArgs, "127.0.0.1:0", "-q"]);
  assert.match(echo.stdout.lines[0], /^Listening on https:\/\//);
  const echoed = await runScript("ws_client", [
    "--ca",
    certs.ca,
    `wss://localhost:${echo.port}/ws`,
  ], { stdin: "secret\n" });
  assert.equal(echoed.code, 0, echoed.stderr);
  assert.match(echoed.stdout, /secret/);
  await using random = await startScript("ws_random_server", [...serverArgs, "127.0.0.1:0", "-q"]);
  const numbers = await runScript("ws_client", [
    "--ca",
    certs.ca,
    `wss://localhost:${random.port}/ws`,
  ], { stdin: "3\n" });
  assert.equal(numbers.code, 0, numbers.stderr);
  assert.equal(numbers.stdout.split("\n").filter((l) => /^-?\d+$/.test(l)).length, 3);
});

Deno.test("tlsServerSettings() without the right to a loopback probe still tells a wrong key", async () => {
  const probe = `${certs.dir}/probe.ts`;
  await Deno.writeTextFile(
    probe,
    `import { tlsServerSettings } from "${new URL("../lib/net/tls.ts", import.meta.url).href}";
for (const key of Deno.args.slice(1)) {
  try {
    tlsServerSettings({ cert: Deno.args[0], key });
    console.log("ok");
  } catch (error) {
    console.log(error.message);
  }
}`,
  );
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-net=127.0.0.2",
      probe,
      certs.cert,
      certs.key,
      certs.otherKey,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
  assert.equal(lines[0], "ok", new TextDecoder().decode(out.stderr));
  assert.match(lines[1], /--key ".*other\.key" does not match --cert/);
});

Deno.test("stalled TLS handshakes free their --max-conns slots at the idle timeout; others are served", async () => {
  await using server = await startScript("tcp_echo_server", [
    ...serverArgs,
    // Long enough that a good client's handshake on a loaded machine is not idle.
    "--idle-timeout",
    "1500ms",
    "--max-conns",
    "2",
    "127.0.0.1:0",
  ]);
  const silent = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  const half = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  try {
    // A ClientHello cut short: the server waits for the rest, then gives up on it.
    await half.write(new Uint8Array([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]));
    let from = 0;
    for (let i = 0; i < 2; i++) {
      const line = await server.stderr.waitFor(/Closed: /, 5_000, from);
      from = server.stderr.lines.indexOf(line, from) + 1;
    }
    const r = await runScript("tcp_client", [
      "--ca",
      certs.ca,
      "--send",
      "still here",
      `localhost:${server.port}`,
    ]);
    assert.equal(r.stdout, "still here", r.stderr + server.output);
    // One notice per stalled client, not one per sweep while its close waits.
    assert.equal(server.stderr.count(/idle for 1500 ms, closing/), 2, server.output);
  } finally {
    silent.close();
    half.close();
  }
});

Deno.test("a one-line self-signed certificate (CA:TRUE) is refused with a line that says how to make one", async () => {
  await using server = await startScript("tcp_echo_server", [
    "--cert",
    certs.selfSigned,
    "--key",
    certs.selfSignedKey,
    "127.0.0.1:0",
  ]);
  const r = await runScript("tcp_client", [
    "--ca",
    certs.selfSigned,
    "--send",
    "hi",
    `localhost:${server.port}`,
  ]);
  assert.equal(r.code, 1, r.stdout);
  assert.match(
    r.stderr,
    /presents a CA certificate as its own .*basicConstraints=critical,CA:FALSE/,
  );
  assert.doesNotMatch(r.stderr, /OtherError/);
});
