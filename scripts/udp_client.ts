#!/usr/bin/env -S deno run --allow-net
/**
 * udp_client: udpC.go of the seeds. Sends each line of stdin as one
 * datagram to HOST:PORT and prints `Reply: text`. UDP loses packets, so a
 * reply is awaited for `--timeout` and the datagram resent up to
 * `--retries` times before the client reports that no reply came and goes
 * on with the next line. In a pipe only the replies are written; the
 * book's banner, `Reply:` and `STOP` come with a terminal or `--book`.
 *
 *     deno task udp_client localhost:1234
 *
 * @module
 */
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { joinHostPort, parseHostPort } from "../lib/net/addr.ts";
import { parseDurationOption, parseIntOption, runCommand, usage } from "../lib/cli/cli.ts";
import { FAMILY_OPTIONS, familyOption, resolveFamily } from "../lib/net/dial.ts";
import { plainOutput } from "../lib/io/print.ts";
import { LineReader, LineTooLongError, writeAll } from "../lib/io/lines.ts";
import { MAX_UDP_PAYLOAD, previewDatagram, RECEIVE_BUFFER_BYTES } from "../lib/net/udp.ts";

const encoder = new TextEncoder();
/** Longest line read from stdin; a longer one cannot be a datagram anyway. */
const MAX_INPUT_LINE_BYTES = 1 << 20;

/** What {@link UdpClient.request} returns: the reply, or null after every attempt went unanswered. */
export type RequestResult = { reply: Uint8Array; attempts: number } | {
  reply: null;
  attempts: number;
};

/** Options for {@link UdpClient.open}. */
export interface UdpClientOptions {
  /** How long to wait for a reply before resending, in ms. Default 2000. */
  timeoutMs?: number;
  /** Resends after the first attempt. Default 2. */
  retries?: number;
  /** Only IPv4 (4) or only IPv6 (6) addresses. Default either, IPv4 preferred. */
  family?: 4 | 6;
  /** Called with a datagram that arrived while no request waited. Default ignores it. */
  onLateReply?: (data: Uint8Array) => void;
}

/**
 * A UDP client bound to one server: sends a datagram, waits for the
 * server's reply and resends on silence. Datagrams from other addresses
 * are ignored, as a connected UDP socket would.
 */
export class UdpClient implements Disposable {
  /** The server, resolved. */
  readonly server: Deno.NetAddr;
  readonly timeoutMs: number;
  readonly retries: number;
  #conn: Deno.DatagramConn;
  #waiter: ((data: Uint8Array) => void) | null = null;
  #onLateReply: (data: Uint8Array) => void;
  #closed = false;
  #receiving: Promise<void>;

  private constructor(conn: Deno.DatagramConn, server: Deno.NetAddr, options: UdpClientOptions) {
    this.#conn = conn;
    this.server = server;
    this.timeoutMs = options.timeoutMs ?? 2_000;
    this.retries = options.retries ?? 2;
    this.#onLateReply = options.onLateReply ?? (() => {});
    this.#receiving = this.#receiveLoop();
  }

  /** Resolves `hostname` (IPv4 first, as udpC.go's "udp4") and opens a socket for it. */
  static async open(hostname: string, port: number, options: UdpClientOptions = {}) {
    const ip = options.family
      ? await resolveFamily(hostname, options.family)
      : await resolveHost(hostname);
    const conn = Deno.listenDatagram({
      transport: "udp",
      hostname: ip.includes(":") ? "::" : "0.0.0.0",
      port: 0,
    });
    return new UdpClient(conn, { transport: "udp", hostname: ip, port }, options);
  }

  /** Sends `data` and waits for the reply, resending up to `retries` times. */
  async request(data: Uint8Array): Promise<RequestResult> {
    if (data.byteLength > MAX_UDP_PAYLOAD) {
      throw new RangeError(
        `Datagram of ${data.byteLength} bytes is too long: at most ${MAX_UDP_PAYLOAD} bytes`,
      );
    }
    for (let attempt = 1; attempt <= this.retries + 1; attempt++) {
      const waiting = this.#nextReply();
      await this.#conn.send(data, this.server);
      const reply = await waiting;
      if (reply !== null) return { reply, attempts: attempt };
    }
    return { reply: null, attempts: this.retries + 1 };
  }

  /** Sends `data` without waiting for a reply. */
  async send(data: Uint8Array): Promise<void> {
    await this.#conn.send(data, this.server);
  }

  /** The next datagram from the server, or null after the timeout. */
  #nextReply(): Promise<Uint8Array | null> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#waiter = null;
        resolve(null);
      }, this.timeoutMs);
      this.#waiter = (data) => {
        clearTimeout(timer);
        this.#waiter = null;
        resolve(data);
      };
    });
  }

  async #receiveLoop(): Promise<void> {
    const buf = new Uint8Array(RECEIVE_BUFFER_BYTES);
    while (!this.#closed) {
      let data: Uint8Array;
      let from: Deno.NetAddr;
      try {
        [data, from] = await this.#conn.receive(buf) as [Uint8Array, Deno.NetAddr];
      } catch (error) {
        if (this.#closed || error instanceof Deno.errors.BadResource) return;
        continue; // An ICMP error for an earlier datagram; the timeout reports it.
      }
      if (!sameHost(from.hostname, this.server.hostname) || from.port !== this.server.port) {
        continue;
      }
      const copy = data.slice();
      if (this.#waiter) this.#waiter(copy);
      else this.#onLateReply(copy);
    }
  }

  /** Closes the socket; a pending request gets no reply. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch {
      // Already closed.
    }
  }

  /** Resolves once the receive loop has ended after {@link close}. */
  get closed(): Promise<void> {
    return this.#receiving;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** Whether two textual IP addresses are the same (an IPv4-mapped IPv6 address counts). */
function sameHost(a: string, b: string): boolean {
  const strip = (ip: string) => ip.toLowerCase().replace(/^::ffff:(?=\d+\.)/, "");
  return strip(a) === strip(b);
}

/**
 * Resolves a host name with the system resolver (so /etc/hosts counts),
 * preferring IPv4 as udpC.go's "udp4" does; IP literals pass through.
 */
export async function resolveHost(hostname: string): Promise<string> {
  if (isIP(hostname)) return hostname;
  let addresses: Array<{ address: string; family: number }>;
  try {
    addresses = await lookup(hostname, { all: true });
  } catch (error) {
    const code = (error as { code?: string }).code;
    throw new Error(`Cannot resolve "${hostname}": ${code ?? String(error)}`);
  }
  const chosen = addresses.find((a) => a.family === 4) ?? addresses[0];
  if (!chosen) throw new Error(`Cannot resolve "${hostname}": no addresses`);
  return chosen.address;
}

const spec = {
  name: "udp_client",
  summary: "Sends each line of stdin as a UDP datagram to HOST:PORT and prints the reply.",
  args: "HOST:PORT",
  minArgs: 1,
  options: {
    timeout: {
      type: "string",
      short: "w",
      arg: "DURATION",
      default: "2s",
      description: "how long to wait for a reply before resending",
    },
    retries: {
      type: "string",
      short: "r",
      arg: "N",
      default: "2",
      description: "resends of an unanswered datagram before giving up on it",
    },
    raw: {
      type: "boolean",
      description: "replies as they are even in a terminal: no banner, no prompt",
    },
    book: {
      type: "boolean",
      description: "the book's client: banner and Reply: even in a pipe; a line STOP ends it",
    },
    ...FAMILY_OPTIONS,
  },
  notes: `When stdout is not a terminal (or with --raw) only the replies are written, one
per line, as they came. In a terminal it prints "The UDP server is H:P", then
"Reply: text" for each line, with the prompt ">> " when stdin is a terminal
too. After the retries the client says on stderr that no reply came and reads
the next line; at the end of input it exits 0. The book's STOP (sent, then
"Exiting UDP client!") ends the client only with --book.

Examples:
  udp_client localhost:1234
  printf 'hello\\nworld\\n' | udp_client -w 500ms 127.0.0.1:1234`,
} as const;

/** Runs the client until the end of stdin (or STOP with --book); returns the exit code. */
export function main(args: string[]): Promise<number> {
  return runCommand(spec, args, async ({ values, positionals }) => {
    const target = usage(() => parseHostPort(positionals[0], { requireHost: true }));
    const timeoutMs = parseDurationOption(values.timeout, "timeout");
    const retries = parseIntOption(values.retries, "retries", { max: 100 });
    const family = familyOption(values);
    // --book keeps the book's look even in a pipe; --raw always wins.
    const raw = values.raw || (!values.book && plainOutput(false));
    const out = (text: string | Uint8Array) =>
      writeAll(Deno.stdout, typeof text === "string" ? encoder.encode(text) : text);
    const printReply = (reply: Uint8Array) =>
      out(raw ? withNewline(reply) : `Reply: ${previewDatagram(reply, Infinity)}\n`);
    let exiting = false;
    using client = await UdpClient.open(target.hostname, target.port, {
      timeoutMs: Math.max(1, timeoutMs),
      retries,
      family,
      // After the exit line (the server may answer STOP), nothing more is printed.
      onLateReply: (reply) => {
        if (!exiting) console.error(`udp_client: late reply: ${previewDatagram(reply)}`);
      },
    });
    const server = joinHostPort(client.server.hostname, client.server.port);
    if (!raw) await out(`The UDP server is ${server}\n`);
    const prompt = !raw && Deno.stdin.isTerminal();
    const reader = new LineReader(Deno.stdin, { maxLineBytes: MAX_INPUT_LINE_BYTES });
    try {
      while (true) {
        if (prompt) await out(">> ");
        const line = await reader.readLine();
        if (line === null) {
          exiting = true;
          return 0;
        }
        const data = encoder.encode(line + "\n");
        if (values.book && line.trim() === "STOP") {
          exiting = true;
          await client.send(data);
          if (!raw) await out("Exiting UDP client!\n");
          return 0;
        }
        if (data.byteLength > MAX_UDP_PAYLOAD) {
          console.error(
            `udp_client: line of ${data.byteLength - 1} bytes not sent: a datagram holds at most ` +
              `${MAX_UDP_PAYLOAD - 1} bytes and a newline`,
          );
          continue;
        }
        let result: RequestResult;
        try {
          result = await client.request(data);
        } catch (error) {
          // A send refused by the network (unreachable, too big) concerns this line only.
          console.error(`udp_client: cannot send to ${server}: ${(error as Error).message}`);
          continue;
        }
        if (result.reply) await printReply(result.reply);
        else {
          console.error(
            `udp_client: no reply from ${server} after ${result.attempts} attempt` +
              `${result.attempts === 1 ? "" : "s"} (timeout ${timeoutMs} ms each)`,
          );
        }
      }
    } catch (error) {
      if (error instanceof LineTooLongError) {
        throw new Error(`Input line longer than ${MAX_INPUT_LINE_BYTES} bytes`);
      }
      throw error;
    } finally {
      client.close();
      await client.closed;
    }
  });
}

function withNewline(data: Uint8Array): Uint8Array {
  if (data.byteLength > 0 && data[data.byteLength - 1] === 0x0a) return data;
  const out = new Uint8Array(data.byteLength + 1);
  out.set(data);
  out[data.byteLength] = 0x0a;
  return out;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
