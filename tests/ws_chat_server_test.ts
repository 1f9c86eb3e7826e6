import assert from "node:assert/strict";
import type { ChatEvent } from "../lib/chat/hub.ts";
import { CHAT_CSS, CHAT_HTML, CHAT_JS } from "../lib/chat/chat_page.ts";
import { Browser, CHROMIUM } from "./browser.ts";
import { missingPeer, ROOT, startScript, startWsChat, TcpPeer, withTimeout } from "./helpers.ts";
import { OP, RawWsClient, text } from "./ws_raw.ts";

const decoder = new TextDecoder();

/** A WebSocket member for tests: keeps every event and waits for matches. */
class WsMember implements AsyncDisposable {
  readonly socket: WebSocket;
  readonly events: ChatEvent[] = [];
  /** WebSocket messages received (a frame may hold several events). */
  frames = 0;
  closeCode = 0;
  closeReason = "";
  readonly closed: Promise<void>;
  #wake: Array<() => void> = [];

  private constructor(socket: WebSocket) {
    this.socket = socket;
    socket.binaryType = "arraybuffer";
    socket.onmessage = (e) => {
      const text = typeof e.data === "string" ? e.data : decoder.decode(e.data);
      this.frames++;
      for (const line of text.split("\n")) this.events.push(JSON.parse(line));
      this.#notify();
    };
    this.closed = new Promise((resolve) => {
      socket.onclose = (e) => {
        this.closeCode = e.code;
        this.closeReason = e.reason;
        this.#notify();
        resolve();
      };
    });
  }

  static async join(port: number, name: string): Promise<WsMember> {
    const socket = new WebSocket(`ws://127.0.0.1:${port}/ws?name=${encodeURIComponent(name)}`);
    const member = new WsMember(socket);
    await new Promise((resolve, reject) => {
      socket.onopen = resolve;
      socket.onerror = () => reject(new Error("WebSocket failed to open"));
    });
    return member;
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = [];
    for (const w of wake) w();
  }

  /** Waits for an event that matches, returning it. */
  async waitFor(
    match: (e: ChatEvent) => boolean,
    what: string,
    timeoutMs = 5_000,
  ): Promise<ChatEvent> {
    return await withTimeout(
      (async () => {
        while (true) {
          const found = this.events.find(match);
          if (found) return found;
          if (this.socket.readyState === WebSocket.CLOSED) {
            throw new Error(`Closed (${this.closeCode} ${this.closeReason}) before ${what}`);
          }
          await new Promise<void>((r) => this.#wake.push(r));
        }
      })(),
      timeoutMs,
      `${what} in ${JSON.stringify(this.events).slice(-2000)}`,
    );
  }

  /** The messages received, as `name: text`. */
  messages(): string[] {
    return this.events.flatMap((e) => e.type === "message" ? [`${e.name}: ${e.text}`] : []);
  }

  waitMessage(line: string): Promise<ChatEvent> {
    return this.waitFor((e) => e.type === "message" && `${e.name}: ${e.text}` === line, line);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.socket.readyState !== WebSocket.CLOSED) this.socket.close();
    await this.closed;
  }
}

/** Joins over TCP: reads the prompt, sends the name, reads the welcome. */
async function tcpMember(port: number, name: string): Promise<TcpPeer> {
  const peer = await TcpPeer.connect(port);
  await peer.readLine();
  await peer.send(`${name}\n`);
  assert.match((await peer.readLine())!, /^\* Welcome/);
  return peer;
}

/** Opens a raw WebSocket handshake (with any headers) and returns the peer and the status line. */
async function rawHandshake(port: number, path: string, headers: Record<string, string> = {}) {
  const peer = await TcpPeer.connect(port);
  const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("");
  await peer.send(
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
      "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
      `Sec-WebSocket-Version: 13\r\n${extra}\r\n`,
  );
  const status = (await peer.readLine())!;
  while (((await peer.readLine()) ?? "") !== "") { /* headers */ }
  return { peer, status };
}

Deno.test({
  name: "ws_chat_server: a browser, a WebSocket member, a TCP member and ncat talk in one room",
  ignore: missingPeer(CHROMIUM) || missingPeer("ncat"),
  async fn() {
    await using server = await startWsChat(["--burst=100"]);
    await using browser = await Browser.launch();
    await browser.goto(`http://127.0.0.1:${server.port}/?name=browser`);
    await browser.waitFor(
      `document.getElementById("status").textContent === "connected as browser"`,
    );
    await using ws = await WsMember.join(server.port, "<b>ws</b>");
    await using tcp = await tcpMember(server.tcpPort, "tcp");
    const nc = new Deno.Command("ncat", {
      args: ["127.0.0.1", String(server.tcpPort)],
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const ncIn = nc.stdin.getWriter();
    const say = (text: string) => ncIn.write(new TextEncoder().encode(text));
    await say("nc\n");
    await ws.waitFor(
      (e) => e.type === "presence" && e.changes.some((c) => c.name === "nc"),
      "nc joined",
    );
    const members = await browser.waitFor<string[]>(
      `(() => { const m = [...document.querySelectorAll("#members li")].map((li) => li.textContent);
        return m.length === 4 && m; })()`,
    );
    assert.deepEqual(members, ["<b>ws</b>", "browser", "nc", "tcp"]);
    const shown = await browser.evaluate(
      `[getComputedStyle(document.getElementById("join")).display,
      getComputedStyle(document.getElementById("room")).display]`,
    );
    assert.deepEqual(shown, ["none", "grid"], "after joining, the room replaces the name form");

    // Each speaks in turn; everyone must see every message in this order, with the right name.
    const script = [
      ["browser", "hello from the browser"],
      ["<b>ws</b>", "<script>alert(1)</script>"],
      ["tcp", "hi from tcp \x1b[31mred"],
      ["nc", "<img src=x onerror=alert(2)> from nc"],
      ["<b>ws</b>", "line one\nline two  "],
    ];
    for (const [who, text] of script) {
      if (who === "browser") {
        await browser.evaluate(`(() => { const t = document.getElementById("text");
          t.value = ${
          JSON.stringify(text)
        }; document.getElementById("send").requestSubmit(); })()`);
      } else if (who === "<b>ws</b>") ws.socket.send(text);
      else if (who === "tcp") await tcp.send(`${text}\n`);
      else await say(`${text}\n`);
      const cleaned = text.replace(/\n/g, " ").trim();
      await ws.waitMessage(`${who}: ${cleaned}`);
    }
    const expected = script.map(([who, text]) => `${who}: ${text.replace(/\n/g, " ").trim()}`);
    assert.deepEqual(ws.messages(), expected);
    const inBrowser = await browser.waitFor<string[]>(
      `(() => { const m = [...document.querySelectorAll("#log .msg")].map((d) =>
        d.querySelector(".name").textContent + " " + d.querySelector(".text").textContent);
        return m.length === ${expected.length} && m; })()`,
    );
    assert.deepEqual(inBrowser, expected);
    // The XSS case, in the DOM: text, never elements; nothing ran.
    const dom = await browser.evaluate<{ scripts: number; imgs: number; bold: number }>(
      `({ scripts: document.querySelectorAll("#log script").length,
          imgs: document.querySelectorAll("#log img, #members img").length,
          bold: document.querySelectorAll("#log b, #members b").length })`,
    );
    assert.deepEqual(dom, { scripts: 0, imgs: 0, bold: 0 });

    // A screenshot for people to look at: tmp/ is ignored by git.
    const screenshot = await browser.screenshot();
    await Deno.mkdir(`${ROOT}tmp`, { recursive: true });
    await Deno.writeFile(`${ROOT}tmp/ws_chat_page.png`, screenshot);

    // TCP members see the others (not themselves), escaped, in seed 001's format.
    const tcpLines: string[] = [];
    while (tcpLines.length < 4) {
      const line = (await tcp.readLine())!;
      if (/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [^*]/.test(line)) tcpLines.push(line.slice(20));
    }
    assert.deepEqual(tcpLines, [
      "browser: hello from the browser",
      "<b>ws</b>: <script>alert(1)</script>",
      "nc: <img src=x onerror=alert(2)> from nc",
      "<b>ws</b>: line one line two",
    ]);
    await say("/quit\n");
    await ncIn.close();
    const ncLines = decoder.decode((await nc.output()).stdout).split("\n")
      .filter((l) => /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [^*]/.test(l)).map((l) => l.slice(20));
    assert.deepEqual(ncLines, [
      "browser: hello from the browser",
      "<b>ws</b>: <script>alert(1)</script>",
      "tcp: hi from tcp \\x1b[31mred",
      "<b>ws</b>: line one line two",
    ]);

    // Auto-scroll: it follows new messages at the bottom, and stays put when scrolled up.
    for (let i = 0; i < 40; i++) ws.socket.send(`filler ${i}`);
    await ws.waitMessage("<b>ws</b>: filler 39");
    await browser.waitFor(`document.querySelectorAll("#log .msg").length === 45`);
    const follows = await browser.evaluate<boolean>(
      `(() => { const l = document.getElementById("log");
      return l.scrollHeight > l.clientHeight && l.scrollHeight - l.scrollTop - l.clientHeight < 8; })()`,
    );
    assert.ok(follows, "at the bottom, the log follows new messages");
    await browser.evaluate(`document.getElementById("log").scrollTop = 0`);
    ws.socket.send("while scrolled up");
    await browser.waitFor(`document.querySelectorAll("#log .msg").length === 46`);
    assert.equal(await browser.evaluate(`document.getElementById("log").scrollTop`), 0);

    // The page shows the drop and reconnects when the server is back on the same port.
    const port = server.port;
    server.kill("SIGTERM");
    assert.equal((await server.exit()).code, 0, server.output);
    await browser.waitFor(
      `document.getElementById("status").textContent.startsWith("disconnected")`,
    );
    await using _again = await startScript("ws_chat_server", [
      "--host=127.0.0.1",
      `--port=${port}`,
      "--tcp-port=0",
    ]);
    await browser.waitFor(
      `document.getElementById("status").textContent === "connected as browser"`,
      15_000,
    );
  },
});

Deno.test("ws_chat_server serves the page under a strict CSP, and 404 elsewhere", async () => {
  await using server = await startWsChat();
  const page = await fetch(`http://127.0.0.1:${server.port}/`);
  const html = await page.text();
  const csp = page.headers.get("content-security-policy")!;
  assert.match(csp, /default-src 'none'; script-src 'self'; style-src 'self'/);
  assert.match(csp, new RegExp(`connect-src 'self' ws://127.0.0.1:${server.port} `));
  assert.doesNotMatch(csp, /unsafe/);
  assert.match(html, /<script src="\/chat.js" defer><\/script>/);
  assert.match(html, /data-max-message="512"/);
  const js = await fetch(`http://127.0.0.1:${server.port}/chat.js`);
  assert.match(await js.text(), /textContent/);
  const missing = await fetch(`http://127.0.0.1:${server.port}/nope`);
  await missing.body?.cancel();
  assert.equal(missing.status, 404);
});

Deno.test("the chat page's script never writes HTML", async () => {
  const { CHAT_JS } = await import("../lib/chat/chat_page.ts");
  assert.doesNotMatch(CHAT_JS, /innerHTML|outerHTML|insertAdjacentHTML|document\.write/);
});

Deno.test("ws_chat_server bounds WebSocket input: size (1009), empty, binary, names, Origin", async () => {
  await using server = await startWsChat(["-q"]);
  await using alice = await WsMember.join(server.port, "alice");
  const welcome = await alice.waitFor((e) => e.type === "welcome", "welcome");
  assert.ok(welcome.type === "welcome" && welcome.name === "alice");
  await using alice2 = await WsMember.join(server.port, "alice");
  const w2 = await alice2.waitFor((e) => e.type === "welcome", "welcome");
  assert.ok(w2.type === "welcome" && w2.name === "alice-2" && w2.requested === "alice");

  alice.socket.send("   ");
  await alice.waitFor((e) => e.type === "notice" && /Empty message/.test(e.text), "empty notice");
  alice.socket.send(new Uint8Array([1, 2, 3]));
  await alice.waitFor(
    (e) => e.type === "notice" && /Binary messages/.test(e.text),
    "binary notice",
  );
  alice.socket.send("x".repeat(512));
  await alice2.waitMessage(`alice: ${"x".repeat(512)}`);
  alice.socket.send("y".repeat(513));
  await alice.closed;
  assert.equal(alice.closeCode, 1009);
  await alice2.waitFor(
    (e) =>
      e.type === "presence" && e.changes.some((c) => c.event === "leave" && c.name === "alice"),
    "alice left",
  );

  for (
    const [name, pattern] of [["", /empty/], ["x".repeat(40), /longer than 32/], [
      "a\x1bb",
      /control/,
    ]]
  ) {
    await using bad = await WsMember.join(server.port, name as string);
    await bad.closed;
    assert.equal(bad.closeCode, 1008);
    assert.match(bad.closeReason, pattern as RegExp);
    assert.ok(bad.events.some((e) => e.type === "notice" && e.level === "error"));
  }

  const foreign = await rawHandshake(server.port, "/ws?name=evil", {
    Origin: "http://evil.example",
  });
  assert.match(foreign.status, /^HTTP\/1.1 403/);
  foreign.peer.close();
  const same = await rawHandshake(server.port, "/ws?name=fine", {
    Origin: `http://127.0.0.1:${server.port}`,
  });
  assert.match(same.status, /^HTTP\/1.1 101/);
  same.peer.close();
});

Deno.test("ws_chat_server rate limit: 1000 messages at once, excess refused, others unaffected", async () => {
  await using server = await startWsChat(["-q"]);
  await using flood = await WsMember.join(server.port, "flood");
  await using calm = await WsMember.join(server.port, "calm");
  await flood.waitFor(
    (e) => e.type === "presence" && e.changes.some((c) => c.name === "calm"),
    "calm",
  );
  for (let i = 0; i < 1000; i++) flood.socket.send(`spam ${i}`);
  await flood.waitFor((e) => e.type === "notice", "the rate-limit notice");
  await calm.waitMessage("flood: spam 19");
  calm.socket.send("calm speaks");
  await calm.waitMessage("calm: calm speaks");
  await flood.waitMessage("calm: calm speaks");
  const notices = flood.events.filter((e) => e.type === "notice");
  assert.equal(notices.length, 1);
  assert.ok(notices[0].type === "notice" && /^Slow down/.test(notices[0].text));
  const spam = calm.messages().filter((m) => m.startsWith("flood: spam")).length;
  assert.ok(spam >= 20 && spam <= 22, `calm saw ${spam} spam messages`);
});

Deno.test("ws_chat_server drops a WebSocket member that never reads; the others keep up", async () => {
  await using server = await startWsChat([
    "-q",
    "--rate=0",
    "--max-message=8000",
    "--max-queue=16",
  ]);
  await using sender = await WsMember.join(server.port, "sender");
  await using reader = await WsMember.join(server.port, "reader");
  const stuck = await rawHandshake(server.port, "/ws?name=stuck"); // never reads again
  try {
    await reader.waitFor(
      (e) => e.type === "presence" && e.changes.some((c) => c.name === "stuck"),
      "stuck",
    );
    const payload = "p".repeat(7000);
    for (let i = 0; i < 2000; i++) {
      sender.socket.send(`${i} ${payload}`);
      if (i % 8 === 7) {
        await reader.waitFor((e) => e.type === "message" && e.text.startsWith(`${i} `), `${i}`);
      }
    }
    assert.equal(reader.messages().length, 2000);
    const left = await reader.waitFor(
      (e) =>
        e.type === "presence" && e.changes.some((c) => c.name === "stuck" && c.event === "leave"),
      "stuck dropped",
    );
    assert.match(JSON.stringify(left), /"reason":"too slow"/);
  } finally {
    stuck.peer.close();
  }
});

Deno.test("ws_chat_server closes a WebSocket peer that ignores pings past the idle timeout", async () => {
  await using server = await startWsChat(["-q", "--idle-timeout=1s"]);
  await using watcher = await WsMember.join(server.port, "watcher");
  const mute = await rawHandshake(server.port, "/ws?name=mute"); // never answers pings
  try {
    const left = await watcher.waitFor(
      (e) =>
        e.type === "presence" && e.changes.some((c) => c.name === "mute" && c.event === "leave"),
      "mute left",
      8_000,
    );
    assert.ok(left);
    assert.ok(watcher.socket.readyState === WebSocket.OPEN, "a peer that answers pings stays");
  } finally {
    mute.peer.close();
  }
});

Deno.test("ws_chat_server tells everyone on SIGTERM, closes with 1001 and exits 0", async () => {
  const server = await startWsChat(["-q"]);
  try {
    const ws = await WsMember.join(server.port, "ws");
    const tcp = await tcpMember(server.tcpPort, "tcp");
    server.kill("SIGTERM");
    await ws.closed;
    assert.equal(ws.closeCode, 1001);
    assert.ok(ws.events.some((e) => e.type === "notice" && /shutting down/.test(e.text)));
    assert.equal(await tcp.until(/shutting down/), "* The server is shutting down");
    tcp.close();
    assert.equal((await server.exit()).code, 0, server.output);
  } finally {
    await server[Symbol.asyncDispose]();
  }
});

Deno.test("ws_chat_server: a member that sends but never reads reaches everyone, and is kept", async () => {
  // Deno does not read a WebSocket while writes to it pile up, so echoing to
  // a peer that never reads used to lose its messages under load; the hub
  // now writes to a busy socket only once it drains, in one frame.
  await using server = await startWsChat(["-q", "--rate=0"]);
  await using a = await WsMember.join(server.port, "a");
  await using b = await WsMember.join(server.port, "b");
  const { client: mute } = await RawWsClient.open(server.port, "/ws?name=mute");
  await using _mute = mute;
  await b.waitFor((e) => e.type === "presence" && e.changes.some((c) => c.name === "mute"), "mute");
  const sent = Array.from({ length: 400 }, (_, i) => `mute: #${i}#`);
  for (let i = 0; i < sent.length; i++) await mute.sendFrame(OP.text, `#${i}#`);
  await a.waitMessage(sent.at(-1)!);
  await b.waitMessage(sent.at(-1)!);
  assert.deepEqual(a.messages(), sent);
  assert.deepEqual(b.messages(), sent);
  assert.ok(
    !a.events.some((e) => e.type === "presence" && e.changes.some((c) => c.event === "leave")),
    "nobody was dropped: the mute member's queue stayed within its bound",
  );
  // Now it reads: every echo is there, several per frame when its socket was busy.
  const echoes: string[] = [];
  let frames = 0;
  while (echoes.length < sent.length) {
    const frame = await mute.readFrame();
    assert.ok(frame && frame.opcode !== OP.close, "the mute member is still connected");
    frames++;
    for (const line of text(frame)!.split("\n")) {
      const event = JSON.parse(line) as ChatEvent;
      if (event.type === "message") echoes.push(`${event.name}: ${event.text}`);
    }
  }
  assert.deepEqual(echoes, sent);
  assert.ok(frames > 0);
});

Deno.test({
  name: "the chat page shows each event of a frame that holds several, one per line",
  ignore: missingPeer(CHROMIUM),
  async fn() {
    const time = "2024-01-02 03:04:05";
    const events = [
      { type: "welcome", time, ts: 1, name: "me", requested: "me", members: ["me", "x"] },
      { type: "message", time, ts: 2, name: "x", text: "first" },
      { type: "message", time, ts: 3, name: "x", text: "<b>second</b>" },
      { type: "presence", time, ts: 4, changes: [{ event: "join", name: "y" }], count: 3 },
      { type: "message", time, ts: 5, name: "y", text: "third" },
      {
        type: "presence",
        time,
        ts: 6,
        changes: [{ event: "join", name: "z" }],
        more: { joined: 40, left: 2, renamed: 0 },
        count: 45,
      },
    ];
    const received: string[] = [];
    const frame = new TextEncoder().encode(events.map((e) => JSON.stringify(e)).join("\n"));
    await using server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
      const path = new URL(req.url).pathname;
      if (path === "/ws") {
        const { socket, response } = Deno.upgradeWebSocket(req);
        socket.onopen = () => socket.send(frame);
        socket.onmessage = (e) => received.push(e.data);
        return response;
      }
      const [body, type] = path === "/chat.js"
        ? [CHAT_JS, "text/javascript"]
        : path === "/chat.css"
        ? [CHAT_CSS, "text/css"]
        : [CHAT_HTML, "text/html"];
      return new Response(body, { headers: { "content-type": type } });
    });
    await using browser = await Browser.launch();
    await browser.goto(`http://127.0.0.1:${server.addr.port}/?name=me`);
    const shown = await browser.waitFor<string[]>(
      `(() => { const m = [...document.querySelectorAll("#log .msg")].map((d) =>
        d.querySelector(".name").textContent + " " + d.querySelector(".text").textContent);
        return m.length === 3 && m; })()`,
    );
    assert.deepEqual(shown, ["x: first", "x: <b>second</b>", "y: third"]);
    const page = await browser.evaluate<{ members: string[]; bold: number; errors: number }>(
      `({ members: [...document.querySelectorAll("#members li")].map((li) => li.textContent),
          bold: document.querySelectorAll("#log b").length,
          errors: document.querySelectorAll("#log .error").length })`,
    );
    assert.deepEqual(page, { members: ["me", "x", "y", "z"], bold: 0, errors: 0 });
    const counted = await browser.evaluate<string[]>(
      `[document.querySelector("#log .sys:last-child .text").textContent,
        document.getElementById("count").textContent]`,
    );
    assert.deepEqual(counted, ["and 40 more joined, 2 more left", "45"]);
    // The list is incomplete: the page asks for the whole room, once.
    await withTimeout(
      (async () => {
        while (received.length === 0) await new Promise((r) => setTimeout(r, 50));
      })(),
      5_000,
      "the page's /who",
    );
    assert.deepEqual(received, ["/who"]);
  },
});

Deno.test({
  name:
    "ws_chat_server: a large room's welcome lists the first names; /who, which the page sends itself, lists everyone",
  ignore: missingPeer(CHROMIUM),
  async fn() {
    await using server = await startWsChat();
    const crowd: WsMember[] = [];
    try {
      for (let i = 0; i < 60; i++) {
        crowd.push(await WsMember.join(server.port, `a-rather-long-member-name-${i}`));
      }
      await using late = await WsMember.join(server.port, "late");
      const welcome = await late.waitFor((e) => e.type === "welcome", "the welcome");
      assert.ok(welcome.type === "welcome");
      assert.equal(welcome.count, 61);
      assert.ok(welcome.members.length < 61, `${welcome.members.length} names in the welcome`);

      late.socket.send("/who");
      const all = await late.waitFor(
        (e) => e.type === "members" && e.end === true,
        "the last piece of the list",
      );
      assert.ok(all.type === "members" && all.count === 61);
      const names = late.events.flatMap((e) => e.type === "members" ? e.members : []);
      assert.equal(names.length, 61);
      assert.ok(names.includes("late") && names.includes("a-rather-long-member-name-59"));
      assert.deepEqual(late.messages(), [], "/who is a command, not a message to the room");

      await using browser = await Browser.launch();
      await browser.goto(`http://127.0.0.1:${server.port}/?name=browser`);
      const shown = await browser.waitFor<{ listed: number; count: string }>(
        `(() => { const listed = document.querySelectorAll("#members li").length;
          return listed === 62 && { listed, count: document.getElementById("count").textContent }; })()`,
      );
      assert.deepEqual(shown, { listed: 62, count: "62" });
    } finally {
      for (const member of crowd) await member[Symbol.asyncDispose]();
    }
  },
});

Deno.test("ws_chat_server: a busy room of 120 gets a burst in order, several messages a frame, TCP members too", async () => {
  await using server = await startWsChat(["--rate", "0", "-q"]);
  const crowd: WsMember[] = [];
  try {
    for (let i = 0; i < 120; i++) crowd.push(await WsMember.join(server.port, `m${i}`));
    await using tcp = await tcpMember(server.tcpPort, "liner");
    const sender = crowd[0];
    await sender.waitFor((e) => e.type === "presence" && e.count === 121, "everyone announced");
    const framesBefore = crowd.map((m) => m.frames);
    const burst = Array.from({ length: 60 }, (_, i) => `burst ${i}`);
    for (const line of burst) sender.socket.send(line);
    for (const member of [crowd[1], crowd[60], crowd[119]]) {
      await member.waitMessage("m0: burst 59");
      assert.deepEqual(
        member.messages().filter((m) => m.startsWith("m0: burst")),
        burst.map((b) => `m0: ${b}`),
      );
    }
    const last = crowd[119];
    const frames = last.frames - framesBefore[119];
    assert.ok(frames < 60, `60 messages came in ${frames} frames`);
    const got: string[] = [];
    for (let line = await tcp.readLine(); line !== null; line = await tcp.readLine()) {
      const message = / m0: (burst \d+)$/.exec(line);
      if (message) got.push(message[1]);
      if (message?.[1] === "burst 59") break;
    }
    assert.deepEqual(got, burst);
  } finally {
    for (const member of crowd) await member[Symbol.asyncDispose]();
  }
});
