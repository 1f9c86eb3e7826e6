/**
 * The browser client of seed 002, served by ws_echo_server at `/client`:
 * it connects to `/ws` on the page's own host, sends what is typed, and
 * shows what comes back, the open, the close (code and reason) and
 * errors. Everything received is written with `textContent`, never as
 * HTML. Embedded as a string so compiled binaries need no files.
 *
 * @module
 */

/** The page's HTML. */
export const ECHO_CLIENT_PAGE = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>netkit WebSocket echo</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 44em; padding: 0 1em; }
  #log { border: 1px solid #ccc; height: 20em; overflow-y: auto; padding: .5em;
         font-family: ui-monospace, monospace; white-space: pre-wrap; }
  .sent { color: #555; } .received { color: #064; } .event { color: #036; } .error { color: #a00; }
  form { display: flex; gap: .5em; margin-top: .5em; } #input { flex: 1; }
</style>
</head>
<body>
<h1>WebSocket echo</h1>
<p>Status: <strong id="status">connecting</strong></p>
<div id="log" aria-live="polite"></div>
<form id="form">
  <input id="input" autocomplete="off" placeholder="Type a message" aria-label="message">
  <button id="send" type="submit">Send</button>
</form>
<script>
"use strict";
const log = document.getElementById("log");
const status = document.getElementById("status");
const input = document.getElementById("input");
function show(kind, text) {
  const line = document.createElement("div");
  line.className = kind;
  line.textContent = text;
  log.appendChild(line);
  log.scrollTop = log.scrollHeight;
}
const scheme = location.protocol === "https:" ? "wss://" : "ws://";
const socket = new WebSocket(scheme + location.host + "/ws");
socket.onopen = () => {
  status.textContent = "open";
  show("event", "Connection established!");
};
socket.onmessage = (event) => {
  const data = typeof event.data === "string" ? event.data : "(binary message)";
  show("received", "Data received from server: " + data);
};
socket.onclose = (event) => {
  status.textContent = "closed";
  show(event.wasClean ? "event" : "error",
    "Connection closed, code=" + event.code + ", reason=" + (event.reason || "(none)") +
    (event.wasClean ? "" : " (connection died)"));
};
socket.onerror = () => show("error", "[Error] the connection failed");
document.getElementById("form").addEventListener("submit", (event) => {
  event.preventDefault();
  if (socket.readyState !== WebSocket.OPEN) {
    show("error", "Not connected");
    return;
  }
  socket.send(input.value);
  show("sent", "Sent: " + input.value);
  input.value = "";
});
</script>
</body>
</html>
`;
