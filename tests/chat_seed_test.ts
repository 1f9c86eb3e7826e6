import assert from "node:assert/strict";
import { missingPeer, startScript, TcpPeer } from "./helpers.ts";
import { Browser, CHROMIUM } from "./browser.ts";
import { buildSeed, missingSeeds, startSeed, startSeedServer } from "./seed_programs.ts";
import { isSeedClient, parseSeedChunk, toSeed } from "../lib/chat/tcp_chat.ts";

Deno.test("parseSeedChunk splits seed 001's raw chunks into heartbeats and named messages", () => {
  const message = (name: string, text: string) => `2026-11-30 23:05:00\n\t${name}: ${text}`;
  assert.equal(isSeedClient("1"), true);
  assert.equal(isSeedClient(message("bob", "hi")), true);
  assert.equal(isSeedClient("1\n"), false);
  assert.equal(isSeedClient("bob\n"), false);
  assert.deepEqual(parseSeedChunk("11"), { heartbeats: 2, messages: [] });
  assert.deepEqual(parseSeedChunk("1" + message("bob", "hi") + message("bob", "a: b")), {
    heartbeats: 1,
    messages: [{ name: "bob", text: "hi" }, { name: "bob", text: "a: b" }],
  });
  assert.deepEqual(parseSeedChunk("rest of a long one"), {
    heartbeats: 0,
    messages: [{ name: null, text: "rest of a long one" }],
  });
  assert.equal(
    toSeed("2026-11-30 23:05:00 alice: hi\n2026-11-30 23:05:01 * bob joined\n"),
    "2026-11-30 23:05:00\n\talice: hi\n2026-11-30 23:05:01\n\t* bob joined",
  );
});

for (const script of ["tcp_chat_server", "ws_chat_server"] as const) {
  Deno.test({
    name: `${script}: seed 001's heartbeat client joins the room and talks with a line member`,
    ignore: missingSeeds(),
    async fn() {
      const args = script === "tcp_chat_server"
        ? ["127.0.0.1:0"]
        : ["--host=127.0.0.1", "--port=0", "--tcp-port=0"];
      await using server = await startScript(script, args);
      let port = server.port;
      if (script === "ws_chat_server") {
        const line = await server.stdout.waitFor(/Listening on tcp:/);
        port = Number(/:(\d+) /.exec(line)![1]);
      }
      await using alice = await TcpPeer.connect(port);
      await alice.until(/Type your nickname/);
      await alice.send("alice\n");
      await alice.until(/^\* Welcome, alice/);
      await using binary = await buildSeed("001", "NewTicker");
      await using seed = startSeed(binary, `127.0.0.1:${port}`);
      await seed.stdout.waitFor(/请输入聊天昵称/);
      await seed.type("bob\nhello\n");
      assert.match(
        await alice.until(/bob: hello$/),
        /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d bob: hello$/,
      );
      await alice.send("hi bob\n");
      // The seed client prints each chunk it receives: its own message format.
      await seed.stdout.waitFor(/^\talice: hi bob$/, 8_000);
      // Its heartbeat is answered: after 6 s it is still in the room.
      await new Promise((resolve) => setTimeout(resolve, 6_000));
      assert.doesNotMatch(seed.stdout.text, /服务器出现故障/);
      await seed.type("still\n");
      await alice.until(/bob: still$/);
    },
  });
}

Deno.test({
  name: "tcp_chat_client --dialect seed talks with seed 001's client through seed 001's server",
  ignore: missingSeeds(),
  async fn() {
    await using serverBinary = await buildSeed("001", "ConnSlice = map");
    await using server = await startSeedServer(serverBinary);
    const addr = `127.0.0.1:${server.port}`;
    await using clientBinary = await buildSeed("001", "NewTicker");
    await using bob = startSeed(clientBinary, addr);
    await bob.stdout.waitFor(/请输入聊天昵称/);
    await bob.type("bob\n");
    await using carol = await startScript("tcp_chat_client", [
      "--dialect=seed",
      "--name=carol",
      addr,
    ], { stdin: true, waitReady: false });
    await carol.stderr.waitFor(/connect success/);
    await carol.write("hello\n");
    await bob.stdout.waitFor(/^\tcarol: hello$/, 8_000);
    await bob.type("hi\n");
    await carol.stdout.waitFor(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d bob: hi$/, 8_000);
    // Its heartbeat is the bare 1, answered by the seed's server: no "/ping" reaches bob.
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    assert.doesNotMatch(bob.stdout.text, /ping/);
    await carol.write("/quit\n");
    assert.equal((await carol.exit()).code, 0);
  },
});

Deno.test({
  name: "ws_chat_server: a browser member and seed 001's client talk",
  ignore: missingSeeds() || missingPeer(CHROMIUM),
  async fn() {
    await using server = await startScript("ws_chat_server", [
      "--host=127.0.0.1",
      "--port=0",
      "--tcp-port=0",
    ]);
    const line = await server.stdout.waitFor(/Listening on tcp:/);
    const tcpPort = Number(/:(\d+) /.exec(line)![1]);
    await using browser = await Browser.launch();
    await browser.goto(`http://127.0.0.1:${server.port}/?name=browser`);
    await browser.waitFor(
      `document.getElementById("status").textContent === "connected as browser"`,
    );
    await using binary = await buildSeed("001", "NewTicker");
    await using seed = startSeed(binary, `127.0.0.1:${tcpPort}`);
    await seed.stdout.waitFor(/请输入聊天昵称/);
    // The seed client reads words (fmt.Fscan): one word, one message.
    await seed.type("bob\nhello\n");
    await browser.waitFor(
      `[...document.querySelectorAll("#log .msg")].some((d) =>
        d.querySelector(".name").textContent === "bob:" &&
        d.querySelector(".text").textContent === "hello")`,
    );
    await browser.evaluate(`(() => { const t = document.getElementById("text");
      t.value = "hi from the browser"; document.getElementById("send").requestSubmit(); })()`);
    await seed.stdout.waitFor(/^\tbrowser: hi from the browser$/, 8_000);
  },
});
