import assert from "node:assert/strict";
import { formatPush, sanitize } from "../scripts/im_client.ts";
import {
  delay,
  missingPeer,
  OutputLines,
  ROOT,
  runScript,
  type ScriptProcess,
  startScript,
  taskArgs,
} from "./helpers.ts";

function startServer(extra: string[] = []): Promise<ScriptProcess> {
  return startScript("im_server", [
    ...extra,
    "127.0.0.1:0",
    "--db",
    ":memory:",
    "--pbkdf2-iterations",
    "1000",
    "--insecure-test-hashing",
    "-q",
  ]);
}

/** Runs im_client with `stdin` and returns its exit code and output. */
function client(port: number, args: string[], stdin: string) {
  return runScript("im_client", [`127.0.0.1:${port}`, ...args], { stdin });
}

/** Starts a scripted client that stays connected until its stdin closes. */
async function startClient(port: number, user: string, register = false) {
  const proc = await startScript(
    "im_client",
    [`127.0.0.1:${port}`, "--user", user, "--password-stdin", ...(register ? ["--register"] : [])],
    { stdin: true, waitReady: false },
  );
  await proc.write(`${user}-password\n`);
  await proc.stdout.waitFor("Logged in as");
  return proc;
}

Deno.test("im_client --user runs commands from stdin and prints what arrives", async () => {
  await using server = await startServer();
  const bob = await client(server.port, [
    "--user",
    "bob",
    "--register",
    "--name",
    "Bob",
    "--password-stdin",
  ], "bob-password\n");
  assert.equal(bob.code, 0, bob.stderr);
  assert.match(
    bob.stdout,
    /Registered bob\nLogged in as bob \(Bob\); 0 offline message\(s\) waiting/,
  );

  await using alice = await startClient(server.port, "alice", true);
  await alice.write("users\nto bob hi bob, twice\nto bob and again\nall hello room\npending\n");
  await alice.stdout.waitFor("Sent to 0 online user(s)");
  await alice.stdout.waitFor("0 offline message(s) waiting");
  assert.match(alice.stdout.text, /Online \(1\): alice/);
  assert.equal(alice.stdout.count("bob is offline; stored for their next login"), 2);

  // bob logs in: the offline messages come first, in order; then live traffic.
  await using bob2 = await startClient(server.port, "bob");
  await bob2.stdout.waitFor("and again");
  const lines = bob2.stdout.lines;
  assert.match(lines.find((l) => l.includes("2 offline message(s) waiting"))!, /Logged in as bob/);
  const offline = lines.filter((l) => l.includes("(offline) alice to you:"));
  assert.deepEqual(offline.map((l) => l.replace(/^.*to you: /, "")), [
    "hi bob, twice",
    "and again",
  ]);
  await alice.stdout.waitFor("* bob (Bob) is online");
  await alice.write("to bob live now\n");
  await bob2.stdout.waitFor(/^\[\d\d:\d\d:\d\d\] alice to you: live now$/);
  await bob2.write("all hi all\n");
  await alice.stdout.waitFor(/bob \(Bob\) to everyone: hi all$/);
  await bob2.closeStdin();
  assert.equal((await bob2.exit()).code, 0, bob2.output);
  await alice.stdout.waitFor("* bob (Bob) is offline");
  await alice.write("quit\n");
  assert.equal((await alice.exit()).code, 0, alice.output);
});

Deno.test("im_client exits 1 on a failed login or a failed command, with the server's reason", async () => {
  await using server = await startServer();
  await client(
    server.port,
    ["--user", "carl", "--register", "--password-stdin"],
    "carl-password\n",
  );
  const wrong = await client(server.port, ["--user", "carl", "--password-stdin"], "not-his-pw\n");
  assert.equal(wrong.code, 1);
  assert.match(wrong.stdout, /! Wrong user or password/);
  const bad = await client(
    server.port,
    ["--user", "carl", "--password-stdin"],
    "carl-password\nto nobody hi\nfly away\nwait 10\nping\n",
  );
  assert.equal(bad.code, 1);
  assert.match(bad.stdout, /! No user "nobody"/);
  assert.match(bad.stdout, /! Unknown command "fly"/);
  assert.match(bad.stdout, /pong/, "commands after a failure still run");
});

Deno.test("im_client menus: register, log in, list, message, offline messages, log out", async () => {
  await using server = await startServer();
  await using dora = await startClient(server.port, "dora", true);
  const menu = await client(
    server.port,
    [],
    [
      "1",
      "bad id!",
      "eve",
      "short",
      "eve-password",
      "Eve",
      "2",
      "eve",
      "eve-password",
      "1",
      "3",
      "dora",
      "hello dora",
      "2",
      "hello all",
      "4",
      "5",
      "3",
      "",
    ].join("\n"),
  );
  assert.equal(menu.code, 0, menu.stderr);
  const out = menu.stdout;
  assert.match(out, /1\. Register\n2\. Log in\n3\. Exit\nChoose \(1-3\):/);
  assert.match(out, /! Invalid user "bad id!"/);
  assert.match(out, /! Invalid password: must be 8-256 characters/);
  assert.match(out, /Registered eve; log in with 2/);
  assert.match(out, /Logged in as eve \(Eve\)/);
  assert.match(
    out,
    /1\. Online users\n2\. Message everyone\n3\. Message one user\n4\. Offline messages\n5\. Log out/,
  );
  assert.match(out, /Online \(2\): (dora, eve \(Eve\)|eve \(Eve\), dora)/);
  assert.match(out, /Delivered to dora/);
  assert.match(out, /Sent to 1 online user\(s\)/);
  assert.match(out, /No offline messages at this login/);
  assert.match(out, /Logged out/);
  await dora.stdout.waitFor(/eve \(Eve\) to you: hello dora$/);
  await dora.stdout.waitFor(/eve \(Eve\) to everyone: hello all$/);
});

Deno.test("im_client prints a kick notice and exits 1 when the account logs in elsewhere", async () => {
  await using server = await startServer();
  await using first = await startClient(server.port, "fay", true);
  await using second = await startClient(server.port, "fay");
  await first.stdout.waitFor(/! Logged in again from 127\.0\.0\.1:\d+: this session has ended/);
  assert.equal((await first.exit()).code, 1);
  await second.write("quit\n");
  assert.equal((await second.exit()).code, 0);
});

Deno.test({
  name: "im_client on a terminal: no password echo, pushes print above the typed line",
  ignore: missingPeer("script"),
  async fn() {
    await using server = await startServer();
    await using gus = await startClient(server.port, "gus", true);
    const command = [Deno.execPath(), ...taskArgs("im_client"), `127.0.0.1:${server.port}`];
    const tty = new Deno.Command("script", {
      args: ["-qfec", command.join(" "), "/dev/null"],
      cwd: ROOT,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1", TERM: "dumb" },
    }).spawn();
    const out = new OutputLines(tty.stdout);
    const stdin = tty.stdin.getWriter();
    const type = (text: string) => stdin.write(new TextEncoder().encode(text));
    try {
      // Prompts end no line: wait for the lines before them, or for the echo of what was typed.
      await out.waitFor("3. Exit");
      await type("1\r");
      await type("hana\r");
      await out.waitFor("User id: hana");
      await type("s3cret-hana-pw\r");
      await type("\r");
      await out.waitFor("Registered hana");
      await type("2\r");
      await type("hana\r");
      await type("s3cret-hana-pw\r");
      await out.waitFor("Logged in as hana");
      await out.waitFor("5. Log out");
      await delay(100);
      await type("3"); // typed, not yet entered
      await delay(200);
      await gus.write("to hana knock knock\n");
      const line = await out.waitFor("gus to you: knock knock");
      // The notice clears the line first, and the prompt comes back with the "3" typed so far.
      assert.ok(
        line.includes("\x1b[2K[") && line.includes("Choose (1-5): 3"),
        JSON.stringify(line),
      );
      await type("\x03"); // Ctrl-C ends the prompt
      const redrawn = await out.waitFor("Choose (1-5): 3", 5_000, out.lines.indexOf(line) + 1);
      assert.ok(
        redrawn.replace(/\r+$/, "").endsWith("\x1b[2KChoose (1-5): 3"),
        JSON.stringify(redrawn),
      );
      assert.ok(!out.text.includes("s3cret"), "the password was echoed");
    } finally {
      await stdin.close().catch(() => {});
      await tty.status;
      await out.done;
      await new Response(tty.stderr).text();
    }
  },
});

Deno.test("im_client pings within the server's idle timeout, so a quiet session stays", async () => {
  await using server = await startServer(["--idle-timeout", "1500ms"]);
  const quiet = await client(
    server.port,
    ["--user", "ida", "--register", "--password-stdin"],
    "ida-password\nwait 2500\nping\n",
  );
  assert.equal(quiet.code, 0, quiet.stdout + quiet.stderr);
  assert.match(quiet.stdout, /pong/);
});

Deno.test("im_client rejects bad usage with exit 2 and an unreachable server with exit 1", async () => {
  for (
    const [args, pattern] of [
      [[], /Missing argument: HOST:PORT/],
      [["localhost"], /Cannot parse address "localhost"/],
      [["127.0.0.1:1", "--password-stdin"], /--password-stdin needs --user/],
      [["127.0.0.1:1", "--user", "no spaces"], /Invalid user "no spaces"/],
    ] as const
  ) {
    const { code, stderr } = await runScript("im_client", [...args]);
    assert.equal(code, 2, stderr);
    assert.match(stderr, pattern);
  }
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const refused = await runScript("im_client", [`127.0.0.1:${port}`, "--user", "x"], { stdin: "" });
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /Cannot connect to 127\.0\.0\.1:\d+/);
  const help = await runScript("im_client", ["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: im_client HOST:PORT/);
});

Deno.test("im_client shows other users' text without terminal control characters", () => {
  assert.equal(sanitize("a\x1b[2Jb\x07c\td"), "a?[2Jb?c\td");
  // A bidi override would show "evil\u202etxt.exe" reversed; a line separator would forge a line.
  assert.equal(sanitize("evil\u202etxt.exe\u2028! admin: ok"), "evil?txt.exe?! admin: ok");
  const line = formatPush({
    type: "message",
    scope: "private",
    from: "x",
    name: "X\x1b]0;pwned\x07",
    text: "one\ntwo",
    time: "2024-01-02T03:04:05Z",
    offline: true,
  });
  assert.ok(line && !line.includes("\x1b") && !line.includes("\x07"), line ?? "");
  assert.match(line!, /\(offline\) x \(X\?\]0;pwned\?\) to you: one\n {4}two$/);
});
