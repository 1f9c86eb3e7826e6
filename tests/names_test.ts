import assert from "node:assert/strict";
import { nameCharsProblem, NameMap, normalizeName, skeleton } from "../lib/text/names.ts";
import { checkName as checkImName, ProtocolError } from "../lib/im/im_protocol.ts";
import { startScript, TcpPeer } from "./helpers.ts";

/** Names that look exactly like `alice` on a screen, as issue 18 found them accepted. */
const LOOK_ALIKES = [
  "alice\u200b",
  "\u200balice",
  "ali\u00adce",
  "alic\u0435", // Cyrillic е
  "\uff41lice", // fullwidth ａ
  "alice\u2060",
  "alice\u061c",
  "a\u200dlice",
  "al\u0131ce", // dotless ı
  "a1ice",
];

Deno.test("normalizeName() folds compatibility forms (NFKC) and trims", () => {
  assert.equal(normalizeName(" \uff41lice "), "alice");
  assert.equal(normalizeName("\u2167"), "VIII");
});

Deno.test("nameCharsProblem() refuses invisible, format and bidi characters", () => {
  for (
    const c of ["\u200b", "\u00ad", "\u2060", "\u061c", "\u200e", "\u202e", "\ufeff", "\u034f"]
  ) {
    assert.match(nameCharsProblem(`a${c}b`) ?? "", /invisible or control/, `U+${c.codePointAt(0)}`);
  }
  assert.equal(nameCharsProblem("Zoë_42"), null);
  assert.equal(nameCharsProblem("名前"), null);
});

Deno.test("skeleton() gives look-alikes one skeleton and distinct names distinct ones", () => {
  assert.equal(skeleton("alic\u0435"), skeleton("alice"));
  assert.equal(skeleton("a1ice"), skeleton("alice"));
  assert.equal(skeleton("rnallory"), skeleton("mallory"));
  assert.notEqual(skeleton("alice"), skeleton("alina"));
});

Deno.test("NameMap finds a look-alike of a present name and forgets it when it goes", () => {
  const names = new NameMap<number>();
  names.set("alice", 1);
  names.set("alice", 2); // set again: still one name
  assert.ok(names.hasLookAlike("alic\u0435"));
  assert.ok(!names.hasLookAlike("bob"));
  names.delete("alice");
  assert.ok(!names.hasLookAlike("alic\u0435"));
});

Deno.test("tcp_chat_server refuses or visibly renames every look-alike of a present name", async () => {
  await using server = await startScript("tcp_chat_server", ["127.0.0.1:0"]);
  await using alice = await TcpPeer.connect(server.port);
  await alice.readLine();
  await alice.send("alice\n");
  assert.match((await alice.readLine())!, /^\* Welcome, alice\. /);
  for (const name of LOOK_ALIKES) {
    await using peer = await TcpPeer.connect(server.port);
    await peer.readLine();
    await peer.send(`${name}\n`);
    const answer = (await peer.readLine())!;
    const welcome = /^\* Welcome, (\S+?)[ .]/.exec(answer);
    if (welcome) {
      assert.notEqual(welcome[1], name, `${JSON.stringify(name)} was accepted as is`);
      assert.match(welcome[1], /-\d+$/, `${JSON.stringify(name)} got ${welcome[1]}`);
      assert.match(answer, /is taken\)/);
    } else {
      assert.match(answer, /^ERROR Invalid name /, JSON.stringify(name));
    }
  }
  // A bidi mark in a message reaches the other members escaped.
  await using bob = await TcpPeer.connect(server.port);
  await bob.readLine();
  await bob.send("bob\n");
  await bob.readLine();
  await bob.send("abc\u061cdef\u202eghi\n");
  for (;;) {
    const line = (await alice.readLine())!;
    if (!line.includes("bob: ")) continue;
    assert.ok(line.endsWith("bob: abc\\u061cdef\\u202eghi"), line);
    break;
  }
  server.kill("SIGTERM");
  assert.equal((await server.exit()).code, 0, server.output);
});

Deno.test("IM: display names are normalised and refuse invisible characters", () => {
  assert.equal(checkImName("\uff21lice"), "Alice");
  for (const name of ["\u200b", "Al\u200bice", "Ali\u00adce", "Alice\u061c"]) {
    assert.throws(() => checkImName(name), ProtocolError, JSON.stringify(name));
  }
});

Deno.test("im_server refuses a user id that looks like a registered one, and invisible names", async () => {
  await using server = await startScript("im_server", [
    "127.0.0.1:0",
    "--db=:memory:",
    "--pbkdf2-iterations=1000",
    "--insecure-test-hashing",
  ]);
  await using peer = await TcpPeer.connect(server.port);
  assert.equal(JSON.parse((await peer.readLine())!).type, "hello");
  const register = async (user: string, name = "Someone") => {
    await peer.send(
      JSON.stringify({ type: "register", user, password: "correct horse", name }) + "\n",
    );
    return JSON.parse((await peer.readLine())!);
  };
  assert.equal((await register("alice")).type, "registered");
  const again = await register("a1ice");
  assert.equal(again.code, "user_exists", JSON.stringify(again));
  assert.equal((await register("bob", "\u200b")).code, "invalid_name");
  assert.equal((await register("bob", "\uff22ob")).name, "Bob");
  server.kill("SIGTERM");
  assert.equal((await server.exit()).code, 0, server.output);
});
