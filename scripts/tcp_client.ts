#!/usr/bin/env -S deno run --allow-net --allow-read
/**
 * tcp_client: the interactive line client of seed 000 (tcpC.go and
 * otherTCPclient.go), usable in pipes like ncat. When stdout is not a
 * terminal (or with `--raw`) bytes pass both ways unchanged: stdout gets
 * exactly what the server sent. In a terminal each line typed is sent and
 * every line the server sends is printed as `->: text` as it arrives, with
 * the prompt `>> ` when stdin is a terminal too. The book's exit word
 * (`STOP`: send it, wait briefly for the answer, print `TCP client
 * exiting...`) is on only with `--book` or `--exit-word`. End of input
 * half-closes the connection and waits for the server to finish, like
 * `nc -N`.
 *
 *     deno task tcp_client localhost:1234
 *     deno task tcp_client --send "Hello, Server!" localhost:8080
 *     printf 'a\nb\n' | deno task tcp_client localhost:1234
 *
 * @module
 */
import { parseHostPort } from "../lib/net/addr.ts";
import { parseDurationOption, runCommand, usage } from "../lib/cli/cli.ts";
import { dial, FAMILY_OPTIONS, familyOption } from "../lib/net/dial.ts";
import { type ClientConn, TLS_CLIENT_OPTIONS, tlsClientSettings } from "../lib/net/tls.ts";
import { LineReader, LineTooLongError, type Reader, writeAll } from "../lib/io/lines.ts";
import { plainOutput, printSync } from "../lib/io/print.ts";
import { deadline, settledWithin } from "../lib/io/deadline.ts";

/** The seed's word that ends the session. */
export const DEFAULT_EXIT_WORD = "STOP";
/** How long to wait for the server's answer to the exit word. */
export const EXIT_WAIT_MS = 2_000;
/** Longest line accepted from the server or from stdin. */
export const MAX_LINE_BYTES = 1024 * 1024;
/** Read buffer of `--raw` mode. */
const RAW_BUFFER_BYTES = 64 * 1024;
const PROMPT = ">> ";
/** Carriage return and erase to the end of the line (ANSI). */
const CLEAR_LINE = "\r\x1b[K";
const encoder = new TextEncoder();

/** Options for {@link chat}. */
export interface ChatOptions {
  /** A line equal to this (trimmed) is sent, then the client exits; "" none. Default none. */
  exitWord?: string;
  /** Show the `>> ` prompt. Default false. */
  prompt?: boolean;
  /** Print the server's lines as they are, no `->: `; the exit notice goes to stderr. Default false. */
  plain?: boolean;
  /** How long to wait for an answer to the exit word. Default 2000 ms. */
  exitWaitMs?: number;
  /** Where replies and the prompt go. Default stdout. */
  print?: (text: string) => void;
  /** Where notices go. Default stderr. */
  notice?: (text: string) => void;
}

/**
 * The line session: sends each input line, prints each server line as
 * `->: text` as it arrives. Resolves with the exit code.
 */
export async function chat(
  conn: ClientConn,
  input: Reader,
  options: ChatOptions = {},
): Promise<number> {
  const exitWord = options.exitWord ?? "";
  const print = options.print ?? ((text: string) => printSync(text));
  const notice = options.notice ?? ((text: string) => printSync(text, Deno.stderr));
  let waitingForInput = false;
  let sent = 0;
  let received = 0;
  let onLine = null as (() => void) | null;
  let failure = "";
  let exiting = false;

  const receiving = (async () => {
    const replies = new LineReader(conn, { maxLineBytes: MAX_LINE_BYTES });
    try {
      for await (const raw of replies) {
        // Nothing after the exit line, even lines already read (a server that floods).
        if (exiting) break;
        received++;
        // otherTCPserver.go writes back its whole 1024-byte buffer: the NUL padding is no text.
        const line = raw.replaceAll("\0", "");
        if (line === "" && raw !== "") {
          onLine?.();
          continue;
        }
        // On a terminal, a reply replaces the waiting prompt and the prompt follows it.
        const showing = options.prompt && waitingForInput;
        const prefix = options.plain ? "" : "->: ";
        print(`${showing ? CLEAR_LINE : ""}${prefix}${line}\n${showing ? PROMPT : ""}`);
        onLine?.();
      }
    } catch (error) {
      failure = error instanceof LineTooLongError
        ? `Server sent a line over ${MAX_LINE_BYTES} bytes`
        : `Connection lost: ${error instanceof Error ? error.message : String(error)}`;
    }
  })();
  const serverDone = receiving.then(() => "closed" as const);

  const lines = new LineReader(input, { maxLineBytes: MAX_LINE_BYTES });
  try {
    while (true) {
      if (options.prompt) print(PROMPT);
      waitingForInput = true;
      const next = await Promise.race([lines.readLine(), serverDone]);
      waitingForInput = false;
      if (next === "closed") {
        if (options.prompt) print("\n");
        if (failure) {
          notice(`tcp_client: ${failure}\n`);
          return 1;
        }
        notice("Connection closed by the server\n");
        return 0;
      }
      if (next === null) {
        // End of input: half-close, then print what the server still sends.
        await conn.closeWrite().catch(() => {});
        await receiving;
        if (failure) notice(`tcp_client: ${failure}\n`);
        return failure ? 1 : 0;
      }
      const isExit = exitWord !== "" && next.trim() === exitWord;
      // The answer to the exit word: a line after it, once every line sent
      // has had one (replies to lines sent just before may still be coming).
      const before = received;
      const answered = isExit
        ? new Promise<void>((resolve) =>
          onLine = () => received > before && received >= sent && resolve()
        )
        : null;
      await writeAll(conn, encoder.encode(next + "\n"));
      sent++;
      if (answered) {
        await settledWithin(
          Promise.race([answered, receiving]),
          options.exitWaitMs ?? EXIT_WAIT_MS,
        );
        exiting = true;
        (options.plain ? notice : print)("TCP client exiting...\n");
        return 0;
      }
    }
  } catch (error) {
    if (error instanceof LineTooLongError) {
      notice(`tcp_client: Input line over ${MAX_LINE_BYTES} bytes\n`);
      return 1;
    }
    throw error;
  } finally {
    try {
      conn.close();
    } catch {
      // Already closed.
    }
    await receiving;
  }
}

/** Copies bytes from `source` to `sink` until end of stream. */
async function copy(source: Reader, sink: (bytes: Uint8Array) => Promise<void>): Promise<void> {
  const buf = new Uint8Array(RAW_BUFFER_BYTES);
  for (let n = await source.read(buf); n !== null; n = await source.read(buf)) {
    await sink(buf.subarray(0, n));
  }
}

/**
 * `--raw`: bytes both ways, no prompt, no prefix, no exit word. End of
 * input half-closes; the client exits when the server closes.
 */
export async function pipeRaw(conn: ClientConn, input: Reader): Promise<number> {
  const receiving = copy(conn, (bytes) => writeAll(Deno.stdout, bytes));
  const sending = copy(input, (bytes) => writeAll(conn, bytes))
    .then(() => conn.closeWrite());
  try {
    await Promise.race([receiving, sending.then(() => receiving)]);
    return 0;
  } finally {
    try {
      conn.close();
    } catch {
      // Already closed.
    }
    sending.catch(() => {});
  }
}

/** Sends one line, prints the first line of the answer, and closes (seed 002's client). */
export async function sendOnce(
  conn: ClientConn,
  text: string,
  options: { timeoutMs: number; raw: boolean },
): Promise<number> {
  try {
    await writeAll(conn, encoder.encode(text + "\n"));
    const replies = new LineReader(conn, { maxLineBytes: MAX_LINE_BYTES });
    const reply = await deadline(
      replies.readLine(),
      options.timeoutMs,
      `No reply within ${options.timeoutMs} ms`,
    );
    if (reply === null) throw new Deno.errors.UnexpectedEof("The server closed without a reply");
    printSync(options.raw ? `${reply}\n` : `->: ${reply}\n`);
    return 0;
  } finally {
    conn.close();
  }
}

const spec = {
  name: "tcp_client",
  summary: "Sends the lines you type to a TCP server and prints what it sends back.",
  args: "HOST:PORT",
  minArgs: 1,
  options: {
    raw: {
      type: "boolean",
      description: "bytes as they are even in a terminal: no prompt, no ->: prefix",
    },
    book: {
      type: "boolean",
      description:
        `the book's client: ->: prefix even in a pipe, and a line ${DEFAULT_EXIT_WORD} ends it`,
    },
    "exit-word": {
      type: "string",
      arg: "WORD",
      description: `send WORD, wait briefly for the answer and exit (--book: ${DEFAULT_EXIT_WORD})`,
    },
    send: { type: "string", arg: "TEXT", description: "send one line, print the reply, exit" },
    ...FAMILY_OPTIONS,
    timeout: {
      type: "string",
      short: "w",
      arg: "DURATION",
      default: "10s",
      description: "give up connecting (and waiting for the --send reply) after this",
    },
    ...TLS_CLIENT_OPTIONS,
  },
  notes: `When stdout is not a terminal (or with --raw) the client passes bytes both
ways unchanged: stdout gets exactly what the server sent, nothing else. In a
terminal lines from the server print as "->: text" as they arrive, and the
prompt ">> " shows when stdin is a terminal too. End of input (Ctrl-D)
half-closes the connection and waits for the server to finish (like nc -N).
The book's STOP word, which ends the session, is on only with --book.

Examples:
  tcp_client localhost:1234
  tcp_client --book localhost:1234
  tcp_client --exit-word exit 127.0.0.1:8088
  tcp_client --send "Hello, Server!" localhost:8080
  tcp_client --ca ca.pem localhost:1234        (TLS, see docs/tls.md)
  printf 'GET / HTTP/1.0\\r\\n\\r\\n' | tcp_client -w 5 example.com:80`,
} as const;

/** Connects and runs the chosen mode; returns the exit code. */
export function main(args: string[]): Promise<number> {
  return runCommand(spec, args, async ({ values, positionals }) => {
    const address = usage(() => parseHostPort(positionals[0], { requireHost: true }));
    const family = familyOption(values);
    const timeoutMs = parseDurationOption(values.timeout, "timeout");
    // --book keeps the book's look even in a pipe; --raw always wins.
    const plain = values.raw || (!values.book && plainOutput(false));
    const exitWord = values["exit-word"] ?? (values.book ? DEFAULT_EXIT_WORD : "");
    const tls = tlsClientSettings(values);
    const conn = await dial(address, { family, timeoutMs, tls });
    if (values.send !== undefined) {
      return await sendOnce(conn, values.send, { timeoutMs: timeoutMs || 10_000, raw: plain });
    }
    if (plain && exitWord === "") return await pipeRaw(conn, Deno.stdin);
    return await chat(conn, Deno.stdin, {
      exitWord,
      plain,
      prompt: !plain && Deno.stdin.isTerminal(),
    });
  });
}

if (import.meta.main) Deno.exit(await main(Deno.args));
