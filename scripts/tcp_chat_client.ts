#!/usr/bin/env -S deno run --allow-net --allow-read
/**
 * tcp_chat_client: seed 001's chat client. Asks for a nickname, sends each
 * line you type to the room, prints the room's lines as they arrive, and
 * sends `/ping` every second (the heartbeat). When nothing has come from
 * the server for 5 s it says the server is not responding and exits 1.
 * Ctrl-C (or the end of input) sends `/quit` and exits 0.
 *
 * `--dialect seed` speaks seed 001's own protocol, to the seed's server:
 * the heartbeat is a bare `1`, each line leaves as
 * `2006-01-02 15:04:05\n\tNAME: text` with no newline, and what arrives
 * is read in raw chunks.
 *
 *     deno task tcp_chat_client localhost:8086
 *
 * @module
 */
import { joinHostPort, parseHostPort } from "../lib/net/addr.ts";
import { chatTime, escapeControls } from "../lib/chat/chat_text.ts";
import { parseDurationOption, runCommand, usage, UsageError } from "../lib/cli/cli.ts";
import { dial, FAMILY_OPTIONS, familyOption } from "../lib/net/dial.ts";
import { LineReader, LineWriter, writeAll } from "../lib/io/lines.ts";
import type { Reader } from "../lib/io/read_buffer.ts";
import { PROMPT } from "../lib/chat/tcp_chat.ts";
import { TLS_CLIENT_OPTIONS, tlsClientSettings } from "../lib/net/tls.ts";
import { printSync } from "../lib/io/print.ts";

/** Most bytes of one line from the server (its lines stay far below this). */
const MAX_LINE_BYTES = 64 * 1024;
/** How long to wait for the server to close after `/quit`. */
const QUIT_WAIT_MS = 1_000;

const spec = {
  name: "tcp_chat_client",
  summary: "Joins a tcp_chat_server room: type lines to talk, Ctrl-C to leave.",
  args: "HOST:PORT",
  minArgs: 1,
  options: {
    name: {
      type: "string",
      arg: "NAME",
      description: "nickname (default: asked for on the terminal)",
    },
    dialect: {
      type: "string",
      arg: "line|seed",
      default: "line",
      description: "netkit's line protocol, or seed 001's own (to the seed's server)",
    },
    heartbeat: {
      type: "string",
      arg: "DURATION",
      default: "1s",
      description: "send /ping this often",
    },
    timeout: {
      type: "string",
      arg: "DURATION",
      default: "5s",
      description: "give up when the server has sent nothing for this long",
    },
    "connect-timeout": {
      type: "string",
      short: "w",
      arg: "DURATION",
      default: "10s",
      description: "give up connecting after this long (ncat -w)",
    },
    ...FAMILY_OPTIONS,
    ...TLS_CLIENT_OPTIONS,
  },
  notes: `Lines starting with / are commands for the server: /who, /nick NAME, /quit, /help.
With --dialect seed (seed 001's server) every line is a message; /quit only leaves.

Examples:
  tcp_chat_client localhost:8086
  tcp_chat_client --ca ca.pem localhost:8086      (TLS, see docs/tls.md)`,
} as const;

/** Writes text to stderr without a newline (the nickname prompt). */
function prompt(text: string): void {
  printSync(text, Deno.stderr);
}

const encoder = new TextEncoder();

/**
 * Prints what seed 001's server sends: raw chunks, its heartbeat `1`
 * skipped (also stuck to the front of a message), `TIME\n\tNAME: text`
 * shown as `TIME NAME: text`.
 */
async function readSeed(
  conn: Reader,
  heard: () => void,
  quitting: () => boolean,
  finish: (code: number) => void,
): Promise<void> {
  const buf = new Uint8Array(MAX_LINE_BYTES);
  const decoder = new TextDecoder();
  try {
    for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
      heard();
      const text = decoder.decode(buf.subarray(0, n)).replace(/^1+(?=\d{4}-|$)/, "");
      if (text === "") continue;
      for (const line of text.replaceAll("\n\t", " ").split("\n")) {
        console.log(escapeControls(line));
      }
    }
  } catch (error) {
    if (!quitting()) console.error(`Connection lost: ${(error as Error).message}`);
    finish(quitting() ? 0 : 1);
    return;
  }
  if (!quitting()) console.error("The server closed the connection");
  finish(quitting() ? 0 : 1);
}

/** Runs the client; returns the exit code. */
export function main(args: string[]): Promise<number> {
  return runCommand(spec, args, async ({ values, positionals }) => {
    const address = usage(() => parseHostPort(positionals[0], { requireHost: true }));
    const heartbeatMs = parseDurationOption(values.heartbeat, "heartbeat");
    const timeoutMs = parseDurationOption(values.timeout, "timeout");
    const tls = tlsClientSettings(values);
    const seed = values.dialect === "seed";
    if (!seed && values.dialect !== "line") {
      throw new UsageError(`Invalid --dialect "${values.dialect}": must be line or seed`);
    }
    const stdin = new LineReader(Deno.stdin.readable, { maxLineBytes: MAX_LINE_BYTES });

    const conn = await dial(address, {
      family: familyOption(values),
      timeoutMs: parseDurationOption(values["connect-timeout"], "connect-timeout"),
      tls,
    });
    console.error(`${joinHostPort(address.hostname, address.port)} connect success!`);
    let name = values.name;
    if (name === undefined) {
      prompt("Enter your nickname: ");
      name = (await stdin.readLine()) ?? "";
    }
    const writer = new LineWriter(conn);
    const raw = (text: string) => writeAll(conn, encoder.encode(text)).catch(() => {});
    // Seed 001's server relays raw chunks: a message carries its time and name, and there is no
    // nickname line nor any command.
    const send = seed
      ? (line: string) => raw(`${chatTime()}\n\t${name}: ${line}`)
      : (line: string) => writer.write(line).catch(() => {});
    if (!seed) await send(name);

    let quitting = false;
    let finish: (code: number) => void = () => {};
    const finished = new Promise<number>((resolve) => finish = resolve);
    const quit = () => {
      if (quitting) return;
      quitting = true;
      if (seed) return finish(0);
      send("/quit");
      setTimeout(() => finish(0), QUIT_WAIT_MS);
    };

    let lastHeard = Date.now();
    const heartbeat = setInterval(() => seed ? raw("1") : send("/ping"), heartbeatMs);
    const watchdog = setInterval(() => {
      if (Date.now() - lastHeard <= timeoutMs) return;
      console.error(`Server not responding: nothing received for ${timeoutMs / 1000} s`);
      finish(1);
    }, Math.min(250, timeoutMs));
    const onSignal = () => quit();
    Deno.addSignalListener("SIGINT", onSignal);

    const reading = seed
      ? readSeed(conn, () => lastHeard = Date.now(), () => quitting, finish)
      : (async () => {
        const reader = new LineReader(conn, { maxLineBytes: MAX_LINE_BYTES });
        try {
          for await (const line of reader) {
            lastHeard = Date.now();
            if (line === "/pong" || line + "\n" === PROMPT) continue;
            console.log(escapeControls(line));
          }
        } catch (error) {
          if (!quitting) console.error(`Connection lost: ${(error as Error).message}`);
          finish(quitting ? 0 : 1);
          return;
        }
        if (!quitting) console.error("The server closed the connection");
        finish(quitting ? 0 : 1);
      })();

    (async () => {
      for await (const line of stdin) {
        if (quitting || (seed && line.trim() === "/quit")) break;
        await send(line);
        if (line.trim() === "/quit") quitting = true;
      }
      quit();
    })().catch(() => quit());

    const code = await finished;
    clearInterval(heartbeat);
    clearInterval(watchdog);
    Deno.removeSignalListener("SIGINT", onSignal);
    try {
      conn.close();
    } catch {
      // Closed by the server.
    }
    await reading;
    return code;
  });
}

if (import.meta.main) Deno.exit(await main(Deno.args));
