import assert from "node:assert/strict";
import { compileArgs } from "../tools/compile.ts";
import {
  delay,
  missingPeer,
  runNcat,
  runScript,
  type ScriptProcess,
  startScript,
  TcpPeer,
  withTimeout,
} from "./helpers.ts";

type Line = Record<string, unknown> & { type: string };

/** Fast hashing for tests; the server refuses it without the test-only flag. */
const TEST_HASHING = ["--pbkdf2-iterations", "1000", "--insecure-test-hashing"];

/** Starts im_server on a free port with a database in `dir` (or in memory). */
function startServer(dir: string | null, extra: string[] = []): Promise<ScriptProcess> {
  const db = dir === null ? ":memory:" : `${dir}/im.kv`;
  return startScript("im_server", ["127.0.0.1:0", "--db", db, ...TEST_HASHING, ...extra]);
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "im_server_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** An IM client for tests: requests with ids, pushes kept until asked for. */
class ImPeer implements AsyncDisposable {
  readonly tcp: TcpPeer;
  /** Lines received and not yet taken, in arrival order. */
  readonly inbox: Line[] = [];
  #nextId = 1;

  private constructor(tcp: TcpPeer) {
    this.tcp = tcp;
  }

  static async connect(port: number): Promise<ImPeer> {
    const peer = new ImPeer(await TcpPeer.connect(port));
    const hello = await peer.next((l) => l.type === "hello");
    assert.equal(hello.server, "im_server (netkit)");
    return peer;
  }

  /** Sends a request with a fresh id and returns its response (pushes stay in the inbox). */
  async request(body: Record<string, unknown>): Promise<Line> {
    const id = this.#nextId++;
    await this.tcp.send(JSON.stringify({ ...body, id }) + "\n");
    return await this.next((l) => l.id === id);
  }

  /** Sends a raw line and returns the next line that is not a push. */
  async raw(line: string): Promise<Line> {
    await this.tcp.send(line + "\n");
    return await this.next((l) => l.type !== "message" && l.type !== "presence");
  }

  /** Takes the first line (waiting for more) that matches. */
  async next(match: (l: Line) => boolean, timeoutMs = 5_000): Promise<Line> {
    const deadline = Date.now() + timeoutMs;
    while (true) {
      const i = this.inbox.findIndex(match);
      if (i >= 0) return this.inbox.splice(i, 1)[0];
      const line = await this.tcp.readLine(Math.max(1, deadline - Date.now()));
      if (line === null) throw new Error(`Connection closed; inbox ${JSON.stringify(this.inbox)}`);
      this.inbox.push(JSON.parse(line));
    }
  }

  /** Takes `n` chat messages in arrival order. */
  async messages(n: number): Promise<Line[]> {
    const out: Line[] = [];
    while (out.length < n) out.push(await this.next((l) => l.type === "message"));
    return out;
  }

  /** Registers and logs in. */
  async join(user: string, name = user, password = `${user}-password`): Promise<Line> {
    const registered = await this.request({ type: "register", user, password, name });
    assert.equal(registered.type, "registered", JSON.stringify(registered));
    return await this.login(user, password);
  }

  async login(user: string, password = `${user}-password`): Promise<Line> {
    const reply = await this.request({ type: "login", user, password });
    assert.equal(reply.type, "logged_in", JSON.stringify(reply));
    return reply;
  }

  /** Reads to the end of the stream, returning what came. */
  async rest(): Promise<Line[]> {
    return [...this.inbox.splice(0), ...(await this.tcp.readAll()).map((l) => JSON.parse(l))];
  }

  [Symbol.asyncDispose](): Promise<void> {
    this.tcp.close();
    return Promise.resolve();
  }
}

Deno.test("im_server: register, login, online list, presence, broadcast, private messages", async () => {
  await using server = await startServer(null);
  await using alice = await ImPeer.connect(server.port);
  await using bob = await ImPeer.connect(server.port);
  await using carol = await ImPeer.connect(server.port);
  const welcome = await alice.join("alice", "Alice Liddell");
  assert.deepEqual(welcome, {
    type: "logged_in",
    id: 2,
    user: "alice",
    name: "Alice Liddell",
    waiting: 0,
  });
  await bob.join("bob", "Bob");
  assert.deepEqual(await alice.next((l) => l.type === "presence"), {
    type: "presence",
    user: "bob",
    name: "Bob",
    status: "online",
  });
  await carol.join("carol");
  await alice.next((l) => l.type === "presence" && l.user === "carol");
  await bob.next((l) => l.type === "presence" && l.user === "carol");

  const users = await bob.request({ type: "users" });
  assert.deepEqual(
    (users.users as Line[]).map((u) => u.user).sort(),
    ["alice", "bob", "carol"],
  );

  const sent = await alice.request({ type: "broadcast", text: "hello, everyone" });
  assert.equal(sent.type, "broadcast_sent");
  assert.equal(sent.recipients, 2);
  for (const peer of [bob, carol]) {
    const [m] = await peer.messages(1);
    assert.equal(m.scope, "group");
    assert.equal(m.from, "alice");
    assert.equal(m.name, "Alice Liddell");
    assert.equal(m.text, "hello, everyone");
    assert.equal(m.msg_id, sent.msg_id);
  }

  // The sender comes from the session: a forged "from" is ignored.
  const ack = await bob.request({ type: "send", to: "Alice", text: "psst", from: "carol" });
  assert.deepEqual([ack.type, ack.to, ack.status], ["sent", "alice", "delivered"]);
  const [m] = await alice.messages(1);
  assert.deepEqual([m.scope, m.from, m.name, m.text], ["private", "bob", "Bob", "psst"]);
  assert.ok(!Number.isNaN(Date.parse(m.time as string)));
  assert.equal(m.offline, undefined);

  // Logging out tells the others (the seed's project never did).
  assert.equal((await carol.request({ type: "logout" })).type, "logged_out");
  assert.deepEqual(await alice.next((l) => l.type === "presence" && l.user === "carol"), {
    type: "presence",
    user: "carol",
    name: "carol",
    status: "offline",
  });
  // A dropped connection too.
  bob.tcp.close();
  const gone = await alice.next((l) => l.type === "presence" && l.user === "bob");
  assert.equal(gone.status, "offline");
  assert.equal(carol.inbox.filter((l) => l.type === "message").length, 0);
  assert.equal((await carol.request({ type: "users" })).type, "error", "logged out");
});

Deno.test("im_server: offline messages arrive at the next login, in order, exactly once", async () => {
  await using server = await startServer(null);
  await using alice = await ImPeer.connect(server.port);
  await using bob = await ImPeer.connect(server.port);
  await alice.join("alice");
  assert.equal(
    (await bob.request({ type: "register", user: "bob", password: "bob-password" }))
      .type,
    "registered",
  );
  const acks = [];
  for (let i = 1; i <= 10; i++) {
    acks.push(await alice.request({ type: "send", to: "bob", text: `note ${i}` }));
  }
  // Pipelined in one write: served together, stored in one commit, still in order.
  await alice.tcp.send(
    Array.from(
      { length: 20 },
      (_, i) => JSON.stringify({ type: "send", id: `p${i}`, to: "bob", text: `note ${i + 11}` }),
    ).join("\n") + "\n",
  );
  for (let i = 0; i < 20; i++) acks.push(await alice.next((l) => l.type === "sent"));
  assert.deepEqual(acks.slice(10).map((a) => a.id), Array.from({ length: 20 }, (_, i) => `p${i}`));
  assert.ok(acks.every((a) => a.status === "stored"), JSON.stringify(acks[0]));
  const login = await bob.login("bob");
  assert.equal(login.waiting, 30);
  const got = await bob.messages(30);
  assert.deepEqual(got.map((m) => m.text), acks.map((_, i) => `note ${i + 1}`));
  assert.ok(got.every((m) => m.offline === true && m.from === "alice" && m.scope === "private"));
  assert.deepEqual(got.map((m) => m.msg_id), acks.map((a) => a.msg_id));
  const times = got.map((m) => Date.parse(m.time as string));
  assert.deepEqual(times, [...times].sort((a, b) => a - b), "original times, in order");
  assert.equal((await bob.request({ type: "pending" })).count, 0);
  // Now online: straight through.
  assert.equal(
    (await alice.request({ type: "send", to: "bob", text: "live" })).status,
    "delivered",
  );
  assert.equal((await bob.messages(1))[0].text, "live");

  // Log in again elsewhere: nothing is delivered twice.
  await bob.request({ type: "logout" });
  await using bob2 = await ImPeer.connect(server.port);
  assert.equal((await bob2.login("bob")).waiting, 0);
  await bob2.request({ type: "ping" });
  assert.equal(bob2.inbox.filter((l) => l.type === "message").length, 0);
});

Deno.test("im_server: logging in again ends the older session with a notice", async () => {
  await using server = await startServer(null);
  await using watcher = await ImPeer.connect(server.port);
  await using first = await ImPeer.connect(server.port);
  await using second = await ImPeer.connect(server.port);
  await watcher.join("watcher");
  await first.join("dave");
  await watcher.next((l) => l.type === "presence" && l.user === "dave");
  await second.login("dave");
  const rest = await first.rest();
  assert.equal(rest.at(-1)?.type, "kicked", JSON.stringify(rest));
  assert.match(rest.at(-1)?.reason as string, /Logged in again from 127\.0\.0\.1:\d+/);
  // dave never went offline for the others, and the new session works.
  await watcher.request({ type: "send", to: "dave", text: "still there?" });
  assert.equal((await second.messages(1))[0].text, "still there?");
  assert.equal(watcher.inbox.filter((l) => l.type === "presence").length, 0);
  assert.deepEqual(
    ((await watcher.request({ type: "users" })).users as Line[]).map((u) => u.user).sort(),
    ["dave", "watcher"],
  );
});

Deno.test("im_server: users and offline messages survive SIGKILL and a restart", async () => {
  await withTempDir(async (dir) => {
    const acked: string[] = [];
    {
      await using server = await startServer(dir);
      await using erin = await ImPeer.connect(server.port);
      await erin.join("erin", "Erin");
      await erin.request({ type: "register", user: "frank", password: "frank-password" });
      for (let i = 0; i < 5; i++) {
        const ack = await erin.request({ type: "send", to: "frank", text: `before crash ${i}` });
        assert.equal(ack.status, "stored");
        acked.push(ack.msg_id as string);
      }
      server.kill("SIGKILL");
      assert.equal((await server.exit()).signal, "SIGKILL");
    }
    await using server = await startServer(dir);
    await using frank = await ImPeer.connect(server.port);
    assert.equal((await frank.login("frank")).waiting, 5);
    const got = await frank.messages(5);
    assert.deepEqual(got.map((m) => m.msg_id), acked);
    assert.equal(got[0].name, "Erin");
    await using erin = await ImPeer.connect(server.port);
    await erin.login("erin"); // the account is there too
    const dup = await erin.request({ type: "register", user: "ERIN", password: "another-pass" });
    assert.equal(dup.code, "user_exists");
  });
});

Deno.test("im_server: SIGTERM loses no acknowledged message", async () => {
  await withTempDir(async (dir) => {
    const acked = new Set<string>();
    {
      await using server = await startServer(dir);
      await using gina = await ImPeer.connect(server.port);
      await gina.join("gina");
      await gina.request({ type: "register", user: "hank", password: "hank-password" });
      // Pipeline many sends, stop the server in the middle, keep every ack that came.
      const lines = Array.from(
        { length: 300 },
        (_, i) => JSON.stringify({ type: "send", id: `m${i}`, to: "hank", text: `m${i}` }),
      );
      const sending = gina.tcp.send(lines.join("\n") + "\n").catch(() => {});
      await gina.next((l) => l.id === "m20");
      server.kill("SIGTERM");
      for (const line of await gina.rest().catch(() => gina.inbox)) {
        if (line.type === "sent" && line.status === "stored") acked.add(line.msg_id as string);
      }
      await sending;
      assert.equal((await server.exit()).code, 0, server.output);
    }
    assert.ok(acked.size >= 1);
    await using server = await startServer(dir);
    await using hank = await ImPeer.connect(server.port);
    const { waiting } = await hank.login("hank");
    const got = new Set((await hank.messages(waiting as number)).map((m) => m.msg_id as string));
    for (const id of acked) assert.ok(got.has(id), `acknowledged ${id} was lost`);
  });
});

Deno.test({
  name: "im_server: a session driven by ncat with raw JSON lines",
  ignore: missingPeer("ncat"),
  async fn() {
    await using server = await startServer(null);
    await using ivy = await ImPeer.connect(server.port);
    await ivy.join("ivy");
    const nc = runNcat(
      ["127.0.0.1", String(server.port)],
      [
        `{"type":"register","user":"jack","password":"jack-password","name":"Jack"}`,
        `{"type":"login","user":"jack","password":"jack-password"}`,
        `{"type":"users"}`,
        `{"type":"send","to":"ivy","text":"hi from ncat"}`,
        `{"type":"broadcast","text":"hello all"}`,
        `not json`,
        `{"type":"logout","id":"bye"}`,
        "",
      ].join("\n"),
    );
    const [m1, m2] = await ivy.messages(2);
    assert.deepEqual([m1.scope, m1.from, m1.text], ["private", "jack", "hi from ncat"]);
    assert.deepEqual([m2.scope, m2.text], ["group", "hello all"]);
    await ivy.next((l) => l.type === "presence" && l.user === "jack" && l.status === "offline");
    const lines = (await nc).stdout.trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(lines.map((l) => l.type), [
      "hello",
      "registered",
      "logged_in",
      "users",
      "sent",
      "broadcast_sent",
      "error",
      "logged_out",
    ]);
    assert.equal(lines[4].status, "delivered");
    assert.equal(lines[6].code, "bad_json");
    assert.equal(lines[7].id, "bye");
  },
});

Deno.test("im_server: bad requests get an error line and the connection keeps serving", async () => {
  await using server = await startServer(null, ["--max-message", "100"]);
  await using kate = await ImPeer.connect(server.port);
  const code = async (line: string) => (await kate.raw(line)).code;
  assert.equal(await code("{not json"), "bad_json");
  assert.equal(await code("[1,2]"), "bad_request");
  assert.equal(await code("42"), "bad_request");
  assert.equal(await code(`{"type":"dance"}`), "unknown_type");
  assert.equal(await code(`{"user":"x"}`), "bad_request");
  assert.equal(await code(`{"type":7}`), "bad_request");
  assert.equal(await code(`{"type":"register","user":"kate"}`), "bad_request");
  assert.equal(
    await code(`{"type":"register","user":5,"password":"kate-password"}`),
    "bad_request",
  );
  assert.equal(await code(`{"type":"login","user":"kate","password":null}`), "bad_request");
  assert.equal(await code(`{"type":"ping","id":{"x":1}}`), "bad_request");
  const missing = await kate.raw(`{"type":"register","id":9,"user":"kate"}`);
  assert.deepEqual(missing, {
    type: "error",
    id: 9,
    code: "bad_request",
    message: `Missing field "password"`,
  });
  // Requests before login.
  for (const type of ["users", "broadcast", "send", "pending", "logout"]) {
    assert.equal(await code(JSON.stringify({ type, to: "x", text: "y" })), "not_logged_in");
  }
  // Ids with spaces or control characters, and too long.
  for (const user of ["two words", "tab\there", "nul\u0000", "esc\u001b[31m", "", "x".repeat(33)]) {
    const reply = await kate.request({ type: "register", user, password: "kate-password" });
    assert.equal(reply.code, "invalid_user", user);
    assert.ok(!(reply.message as string).includes("\u001b"), "control characters are escaped");
  }
  assert.equal(
    (await kate.request({ type: "register", user: "kate", password: "short" })).code,
    "invalid_password",
  );
  assert.equal(
    (await kate.request({ type: "register", user: "kate", password: "p".repeat(257) })).code,
    "invalid_password",
  );
  assert.equal(
    (await kate.request({ type: "register", user: "kate", password: "kate-pw!", name: "\u0007" }))
      .code,
    "invalid_name",
  );
  await kate.join("kate");
  // A message to an unknown user, oversized and empty messages.
  assert.equal(
    (await kate.request({ type: "send", to: "nobody", text: "hi" })).code,
    "unknown_user",
  );
  assert.equal(
    (await kate.request({ type: "send", to: "bad id", text: "hi" })).code,
    "unknown_user",
  );
  assert.equal((await kate.request({ type: "send", to: "kate", text: 5 })).code, "bad_request");
  assert.equal((await kate.request({ type: "broadcast", text: "é".repeat(51) })).code, "too_large");
  assert.equal((await kate.request({ type: "broadcast", text: "   " })).code, "bad_request");
  assert.equal(
    (await kate.request({ type: "broadcast", text: "ok".repeat(50) })).type,
    "broadcast_sent",
  );
  assert.equal(
    (await kate.request({ type: "login", user: "kate", password: "kate-password" })).code,
    "already_logged_in",
  );
  assert.equal((await kate.request({ type: "ping" })).type, "pong");
});

Deno.test("im_server: a line over the limit (a 1 MB password) is refused, the connection stays", async () => {
  await using server = await startServer(null);
  await using other = await ImPeer.connect(server.port);
  await other.join("lena");
  await using flood = await ImPeer.connect(server.port);
  const huge = JSON.stringify({ type: "login", user: "lena", password: "x".repeat(1 << 20) });
  await flood.tcp.send(huge + "\n");
  assert.deepEqual(await flood.next((l) => l.type === "error"), {
    type: "error",
    code: "line_too_long",
    message: "Line exceeds the limit of 65536 bytes",
  });
  const after = await flood.request({ type: "login", user: "lena", password: "wrong-password" });
  assert.equal(after.code, "login_failed", "the same connection goes on after the long line");
  assert.equal((await other.request({ type: "ping" })).type, "pong");
  // The same password under the line limit is refused on its own terms.
  const big = await other.request({ type: "register", user: "mia", password: "y".repeat(60_000) });
  assert.equal(big.code, "invalid_password");
});

Deno.test("im_server: 20 wrong passwords in a row: generic failures, then throttled", async () => {
  await using server = await startServer(null);
  await using nina = await ImPeer.connect(server.port);
  await using attacker = await ImPeer.connect(server.port);
  await nina.request({ type: "register", user: "nina", password: "nina-password" });
  const unknown = await attacker.request({ type: "login", user: "ghost", password: "whatever1" });
  const replies = [];
  for (let i = 0; i < 20; i++) {
    replies.push(await attacker.request({ type: "login", user: "nina", password: `guess-${i}` }));
  }
  // Unknown user and wrong password look the same.
  assert.deepEqual(
    { ...replies[0], id: 0 },
    { ...unknown, id: 0 },
  );
  assert.deepEqual(replies[0], {
    type: "error",
    id: 2,
    code: "login_failed",
    message: "Wrong user or password",
  });
  assert.deepEqual(replies.map((r) => r.code), [
    ...Array(5).fill("login_failed"),
    ...Array(15).fill("throttled"),
  ]);
  const wait = replies[19].retry_after_ms as number;
  assert.ok(wait > 0 && wait <= 60_000, String(wait));
  // While throttled even the right password waits, from any connection.
  const right = await nina.request({ type: "login", user: "nina", password: "nina-password" });
  assert.equal(right.code, "throttled");
  // Other accounts are untouched, and the server serves on.
  await using olga = await ImPeer.connect(server.port);
  await olga.join("olga");
  assert.equal((await attacker.request({ type: "ping" })).type, "pong");
});

Deno.test("im_server: the offline store is capped per user and the sender is told", async () => {
  await using server = await startServer(null, ["--max-offline", "3"]);
  await using paul = await ImPeer.connect(server.port);
  await paul.join("paul");
  await paul.request({ type: "register", user: "quinn", password: "quinn-password" });
  for (let i = 0; i < 3; i++) {
    assert.equal(
      (await paul.request({ type: "send", to: "quinn", text: `${i}` })).status,
      "stored",
    );
  }
  const full = await paul.request({ type: "send", to: "quinn", text: "one too many" });
  assert.equal(full.code, "mailbox_full");
  assert.match(full.message as string, /quinn has 3 messages waiting/);
  await using quinn = await ImPeer.connect(server.port);
  assert.equal((await quinn.login("quinn")).waiting, 3);
  assert.deepEqual((await quinn.messages(3)).map((m) => m.text), ["0", "1", "2"]);
});

Deno.test("im_server: a silent connection is closed after --idle-timeout; pings keep it", async () => {
  await using server = await startServer(null, ["--idle-timeout", "400ms"]);
  await using silent = await ImPeer.connect(server.port);
  await using chatty = await ImPeer.connect(server.port);
  const idle = withTimeout(silent.rest(), 5_000, "the idle close");
  for (let i = 0; i < 8; i++) {
    await delay(150);
    assert.equal((await chatty.request({ type: "ping" })).type, "pong");
  }
  const lines = await idle;
  assert.equal(lines.at(-1)?.code, "idle_timeout");
});

Deno.test("im_server hashes with 600,000 iterations by default and refuses fewer", async () => {
  await using server = await startScript("im_server", ["127.0.0.1:0", "--db", ":memory:"]);
  await using rita = await ImPeer.connect(server.port);
  await rita.join("rita");
  await server.stderr.waitFor("PBKDF2-HMAC-SHA256, 600000 iterations");
  const { code, stderr } = await runScript("im_server", ["--pbkdf2-iterations", "1000"]);
  assert.equal(code, 2);
  assert.match(stderr, /Invalid --pbkdf2-iterations "1000": must be at least 600000/);
});

Deno.test("im_server rejects bad options with exit 2 and has --help", async () => {
  for (
    const [args, pattern] of [
      [["x:99999"], /Cannot parse address "x:99999"/],
      [["--max-offline=-1"], /Invalid --max-offline "-1"/],
      [["--idle-timeout", "soon"], /Invalid --idle-timeout "soon"/],
    ] as const
  ) {
    const { code, stderr } = await runScript("im_server", [...args]);
    assert.equal(code, 2, stderr);
    assert.match(stderr, pattern);
  }
  const help = await runScript("im_server", ["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: im_server \[ADDR\]/);
  assert.ok(compileArgs("im_server", "dist/im_server").includes("--unstable-kv"));
});
