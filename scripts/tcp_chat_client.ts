#!/usr/bin/env -S deno run --allow-net
/**
 * tcp_chat_client: seed 001's chat client. Asks for a nickname, sends each
 * line you type to the room, prints the room's lines as they arrive, and
 * sends `/ping` every second (the heartbeat). When nothing has come from
 * the server for 5 s it says the server is not responding and exits 1.
 * Ctrl-C (or the end of input) sends `/quit` and exits 0.
 *
 *     deno task tcp_chat_client localhost:8086
 *
 * @module
 */
import { joinHostPort, parseHostPort } from "../lib/net/addr.ts";
import { escapeControls } from "../lib/chat/chat_text.ts";
import { parseDurationOption, runCommand, usage } from "../lib/cli/cli.ts";
import { LineReader, LineWriter } from "../lib/io/lines.ts";
import { PROMPT } from "../lib/chat/tcp_chat.ts";

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
      short: "n",
      arg: "NAME",
      description: "nickname (default: asked for on the terminal)",
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
  },
  notes: `Lines starting with / are commands for the server: /who, /nick NAME, /quit, /help.

Example:
  tcp_chat_client localhost:8086`,
} as const;

/** Writes text to stderr without a newline (the nickname prompt). */
function prompt(text: string): void {
  Deno.stderr.writeSync(new TextEncoder().encode(text));
}

/** Runs the client; returns the exit code. */
export function main(args: string[]): Promise<number> {
  return runCommand(spec, args, async ({ values, positionals }) => {
    const address = usage(() => parseHostPort(positionals[0], { requireHost: true }));
    const heartbeatMs = parseDurationOption(values.heartbeat, "heartbeat");
    const timeoutMs = parseDurationOption(values.timeout, "timeout");
    const stdin = new LineReader(Deno.stdin.readable, { maxLineBytes: MAX_LINE_BYTES });

    const conn = await Deno.connect({ hostname: address.hostname, port: address.port });
    console.error(`${joinHostPort(address.hostname, address.port)} connect success!`);
    let name = values.name;
    if (name === undefined) {
      prompt("Enter your nickname: ");
      name = (await stdin.readLine()) ?? "";
    }
    const writer = new LineWriter(conn);
    const send = (line: string) => writer.write(line).catch(() => {});
    await send(name);

    let quitting = false;
    let finish: (code: number) => void = () => {};
    const finished = new Promise<number>((resolve) => finish = resolve);
    const quit = () => {
      if (quitting) return;
      quitting = true;
      send("/quit");
      setTimeout(() => finish(0), QUIT_WAIT_MS);
    };

    let lastHeard = Date.now();
    const heartbeat = setInterval(() => send("/ping"), heartbeatMs);
    const watchdog = setInterval(() => {
      if (Date.now() - lastHeard <= timeoutMs) return;
      console.error(`Server not responding: nothing received for ${timeoutMs / 1000} s`);
      finish(1);
    }, Math.min(250, timeoutMs));
    const onSignal = () => quit();
    Deno.addSignalListener("SIGINT", onSignal);

    const reading = (async () => {
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
        if (quitting) break;
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
