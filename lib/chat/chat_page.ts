/**
 * The chat room's browser page, embedded as strings so that a compiled
 * `ws_chat_server` needs no files: the HTML at `/`, its script at
 * `/chat.js` and its style at `/chat.css`, served under a
 * Content-Security-Policy that allows only the page's own origin and its
 * socket (no inline script, so an injected `<script>` could not run even
 * if text ever reached the DOM as HTML; the page only uses `textContent`).
 *
 * The page joins `/ws?name=NAME`, shows messages with the server's time and
 * the sender's name, lists who is in the room, scrolls to new messages only
 * when already at the bottom, and reconnects with backoff when the
 * connection drops.
 *
 * @module
 */

/** The HTML of `/`. */
export const CHAT_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>netkit chat</title>
<link rel="stylesheet" href="/chat.css">
<script src="/chat.js" defer></script>
</head>
<body>
<header>
  <h1>netkit chat</h1>
  <span id="status" class="status off">not connected</span>
</header>
<form id="join">
  <label for="name">Your name</label>
  <input id="name" name="name" maxlength="32" autocomplete="nickname" required autofocus
    placeholder="1-32 characters, no spaces">
  <button>Join</button>
  <p id="join-error" class="error" role="alert"></p>
</form>
<main id="room" hidden>
  <section id="log" aria-live="polite"></section>
  <aside>
    <h2>In the room (<span id="count">0</span>)</h2>
    <ul id="members"></ul>
  </aside>
  <form id="send">
    <input id="text" autocomplete="off" placeholder="Say something" aria-label="Message">
    <span id="left"></span>
    <button>Send</button>
  </form>
</main>
</body>
</html>
`;

/** The style of the page, `/chat.css`. */
export const CHAT_CSS = `* { box-sizing: border-box; }
[hidden] { display: none !important; }
body { margin: 0; font: 15px/1.4 system-ui, sans-serif; color: #1d1d1f; background: #f4f5f7;
  height: 100vh; display: flex; flex-direction: column; }
header { display: flex; align-items: center; gap: 1em; padding: .5em 1em; background: #24292f; color: #fff; }
h1 { font-size: 1.1em; margin: 0; }
h2 { font-size: .9em; margin: 0 0 .5em; color: #57606a; }
.status { font-size: .85em; padding: .1em .6em; border-radius: 1em; background: #57606a; }
.status.on { background: #1f883d; }
.status.off { background: #cf222e; }
#join { margin: 2em auto; padding: 1.5em; background: #fff; border-radius: 8px; display: flex;
  flex-wrap: wrap; gap: .5em; align-items: center; max-width: 32em; }
#join p { flex-basis: 100%; margin: 0; }
#room { flex: 1; display: grid; grid-template-columns: 1fr 14em; grid-template-rows: 1fr auto;
  min-height: 0; }
#log { overflow-y: auto; padding: .5em 1em; background: #fff; overflow-wrap: anywhere; }
aside { padding: .75em 1em; border-left: 1px solid #d0d7de; overflow-y: auto; }
#members { list-style: none; margin: 0; padding: 0; }
#members li { padding: .1em 0; overflow-wrap: anywhere; }
#members li.me { font-weight: 600; }
#send { grid-column: 1 / 3; display: flex; gap: .5em; padding: .5em 1em; border-top: 1px solid #d0d7de; }
#text { flex: 1; }
input, button { font: inherit; padding: .35em .6em; }
#left { color: #57606a; font-size: .85em; align-self: center; min-width: 3em; text-align: right; }
.msg, .sys { margin: .15em 0; }
.time { color: #8c959f; font-size: .8em; margin-right: .5em; font-variant-numeric: tabular-nums; }
.name { font-weight: 600; margin-right: .4em; }
.sys { color: #57606a; font-style: italic; }
.error { color: #cf222e; }
`;

/** The script of the page, `/chat.js`: every text goes into the DOM with textContent. */
export const CHAT_JS = `"use strict";
(() => {
  const MAX_BYTES = Number(document.documentElement.dataset.maxMessage || 512);
  const $ = (id) => document.getElementById(id);
  const log = $("log"), membersList = $("members"), statusEl = $("status");
  const text = $("text"), left = $("left");
  const encoder = new TextEncoder(), decoder = new TextDecoder();
  let socket = null, me = "", wanted = "", retries = 0, retryTimer = 0;
  // The room's size; the server lists only the first names and changes of a
  // large room unasked, and the page asks for the rest with /who.
  let roomCount = 0, whoTimer = 0, whoShown = false;
  const members = new Set();

  function askWho(delay) {
    if (whoTimer) return;
    whoTimer = setTimeout(() => {
      whoTimer = 0;
      if (socket && socket.readyState === WebSocket.OPEN) socket.send("/who");
    }, delay);
  }

  function setStatus(label, on) {
    statusEl.textContent = label;
    statusEl.className = "status " + (on ? "on" : "off");
  }

  function atBottom() {
    return log.scrollHeight - log.scrollTop - log.clientHeight < 8;
  }

  /** Adds a line; scrolls only if the reader was already at the bottom. */
  function addLine(className, time, name, body) {
    const stick = atBottom();
    const line = document.createElement("div");
    line.className = className;
    if (time) {
      const t = document.createElement("span");
      t.className = "time";
      t.textContent = time;
      line.append(t);
    }
    if (name) {
      const n = document.createElement("span");
      n.className = "name";
      n.textContent = name + ":";
      line.append(n);
    }
    const b = document.createElement("span");
    b.className = "text";
    b.textContent = body;
    line.append(b);
    log.append(line);
    while (log.childElementCount > 2000) log.firstElementChild.remove();
    if (stick) log.scrollTop = log.scrollHeight;
  }

  function renderMembers() {
    membersList.replaceChildren(...[...members].sort().map((name) => {
      const li = document.createElement("li");
      li.textContent = name;
      if (name === me) li.className = "me";
      return li;
    }));
    $("count").textContent = String(Math.max(roomCount, members.size));
  }

  function describe(change) {
    if (change.event === "join") return change.name + " joined";
    if (change.event === "rename") return change.from + " is now known as " + change.name;
    return change.name + " left" + (change.reason === "quit" ? "" : " (" + change.reason + ")");
  }

  function describeMore(more) {
    const parts = [];
    if (more.joined) parts.push(more.joined + " more joined");
    if (more.left) parts.push(more.left + " more left");
    if (more.renamed) parts.push(more.renamed + " more changed their name");
    return "and " + parts.join(", ");
  }

  function onEvent(event) {
    switch (event.type) {
      case "welcome":
        me = event.name;
        retries = 0;
        members.clear();
        for (const name of event.members) members.add(name);
        roomCount = event.count || members.size;
        if (roomCount > members.size) askWho(0);
        renderMembers();
        setStatus("connected as " + me, true);
        addLine("sys", event.time, "", "You are " + me +
          (event.name !== event.requested ? " (" + event.requested + " is taken)" : ""));
        break;
      case "members": // the answer to /who, in pieces
        if (event.offset === 0) members.clear();
        for (const name of event.members) members.add(name);
        roomCount = event.count;
        renderMembers();
        if (whoShown && event.end) {
          whoShown = false;
          const names = [...members].sort();
          addLine("sys", event.time, "", event.count + " online: " + names.slice(0, 100).join(", ") +
            (event.count > 100 ? ", and " + (event.count - Math.min(100, names.length)) + " more" : ""));
        }
        break;
      case "message":
        addLine("msg", event.time, event.name, event.text);
        break;
      case "presence":
        for (const change of event.changes) {
          if (change.event === "join") members.add(change.name);
          else if (change.event === "leave") members.delete(change.name);
          else { members.delete(change.from); members.add(change.name); }
          addLine("sys", event.time, "", describe(change));
        }
        roomCount = event.count;
        if (event.more) {
          addLine("sys", event.time, "", describeMore(event.more));
          askWho(2000);
        }
        renderMembers();
        break;
      case "notice":
        addLine(event.level === "error" ? "sys error" : "sys", event.time, "", event.text);
        break;
    }
  }

  function connect() {
    clearTimeout(retryTimer);
    const url = new URL("/ws", location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    url.searchParams.set("name", wanted);
    setStatus("connecting", false);
    const ws = new WebSocket(url);
    ws.binaryType = "arraybuffer";
    socket = ws;
    // A frame holds one event per line: the server packs what queued for a
    // busy socket into one frame.
    ws.onmessage = (e) => {
      const data = typeof e.data === "string" ? e.data : decoder.decode(e.data);
      for (const line of data.split("\\n")) {
        if (!line) continue;
        try {
          onEvent(JSON.parse(line));
        } catch (error) {
          addLine("sys error", "", "", "Unreadable message from the server: " + error);
        }
      }
    };
    ws.onclose = (e) => {
      if (socket !== ws) return;
      socket = null;
      members.clear();
      roomCount = 0;
      renderMembers();
      if (e.code === 1008 && /name/i.test(e.reason)) {
        setStatus("not connected", false);
        $("join-error").textContent = e.reason;
        $("room").hidden = true;
        $("join").hidden = false;
        return;
      }
      const delay = Math.min(30000, 1000 * 2 ** retries++) * (0.75 + Math.random() / 2);
      const seconds = Math.round(delay / 1000);
      setStatus("disconnected, reconnecting in " + seconds + " s", false);
      addLine("sys error", "", "", "Connection lost" + (e.reason ? " (" + e.reason + ")" : "") +
        "; reconnecting in " + seconds + " s");
      retryTimer = setTimeout(connect, delay);
    };
  }

  function updateLeft() {
    const remaining = MAX_BYTES - encoder.encode(text.value).length;
    left.textContent = String(remaining);
    left.className = remaining < 0 ? "error" : "";
  }

  $("join").addEventListener("submit", (e) => {
    e.preventDefault();
    wanted = $("name").value.trim();
    $("join-error").textContent = "";
    $("join").hidden = true;
    $("room").hidden = false;
    retries = 0;
    connect();
    text.focus();
  });

  $("send").addEventListener("submit", (e) => {
    e.preventDefault();
    const value = text.value.trim();
    if (!value) return;
    if (encoder.encode(value).length > MAX_BYTES) {
      addLine("sys error", "", "", "Message too long: the limit is " + MAX_BYTES + " bytes");
      return;
    }
    if (!socket || socket.readyState !== WebSocket.OPEN) {
      addLine("sys error", "", "", "Not connected: the message was not sent");
      return;
    }
    if (value === "/who") whoShown = true;
    socket.send(value);
    text.value = "";
    updateLeft();
  });

  text.addEventListener("input", updateLeft);
  updateLeft();
  const preset = new URL(location.href).searchParams.get("name");
  if (preset) {
    $("name").value = preset;
    $("join").requestSubmit();
  }
})();
`;
