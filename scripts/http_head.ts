#!/usr/bin/env -S deno run --allow-net
/**
 * http_head: seed 001's raw HTTP client. It sends `HEAD PATH HTTP/1.0`
 * (or, with `--http11`, `HEAD PATH HTTP/1.1` with a `Host` header) over a
 * plain TCP connection and prints the response head exactly as received,
 * up to the blank line that ends it. It gives up with a clear error after
 * `--timeout`, and refuses heads larger than 64 KiB.
 *
 *     deno task http_head example.com:80 /
 *
 * @module
 */
import { joinHostPort, type NetAddress, parseHostPort } from "../lib/net/addr.ts";
import { parseDurationOption, runCommand, usage, UsageError } from "../lib/cli/cli.ts";
import { dial } from "../lib/net/dial.ts";
import { writeAll } from "../lib/io/lines.ts";

/** The most bytes a response head may take. */
export const MAX_HEAD_BYTES = 64 * 1024;
const encoder = new TextEncoder();
const END_OF_HEAD = encoder.encode("\r\n\r\n");

/** Options for {@link headRequest} and {@link fetchHead}. */
export interface HeadOptions {
  /** Send HTTP/1.1 with `Host` and `Connection: close`. Default HTTP/1.0, as the seed. */
  http11?: boolean;
  /** Give up after this long, connecting included. Default 10000 ms. */
  timeoutMs?: number;
}

/** The request bytes: `HEAD PATH HTTP/1.0\r\n\r\n`, or HTTP/1.1 with a Host header. */
export function headRequest(address: NetAddress, path: string, options: HeadOptions = {}): string {
  if (!options.http11) return `HEAD ${path} HTTP/1.0\r\n\r\n`;
  const { hostname, port } = address;
  const bracketed = hostname.includes(":") ? `[${hostname}]` : hostname;
  const host = port === 80 ? bracketed : joinHostPort(hostname, port);
  return `HEAD ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`;
}

/** Index just past the first `\r\n\r\n` in `bytes`, or -1. */
function headEnd(bytes: Uint8Array): number {
  for (
    let i = bytes.indexOf(0x0d);
    i >= 0 && i + 4 <= bytes.byteLength;
    i = bytes.indexOf(0x0d, i + 1)
  ) {
    if (END_OF_HEAD.every((b, k) => bytes[i + k] === b)) return i + 4;
  }
  return -1;
}

/**
 * Sends a HEAD request and returns the response head as received (up to
 * and including the blank line, or everything if the server closes
 * first). Throws `TimedOut` after the timeout and `InvalidData` for a head
 * over {@link MAX_HEAD_BYTES}.
 */
export async function fetchHead(
  address: NetAddress,
  path: string,
  options: HeadOptions = {},
): Promise<Uint8Array> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const deadline = Date.now() + timeoutMs;
  const conn = await dial(address, { timeoutMs });
  let timer: ReturnType<typeof setTimeout> | undefined;
  let timedOut = false;
  try {
    timer = setTimeout(() => {
      timedOut = true;
      conn.close();
    }, Math.max(1, deadline - Date.now()));
    await writeAll(conn, encoder.encode(headRequest(address, path, options)));
    const buf = new Uint8Array(MAX_HEAD_BYTES + END_OF_HEAD.byteLength);
    let used = 0;
    while (used < buf.byteLength) {
      const n = await conn.read(buf.subarray(used));
      if (n === null) return buf.slice(0, used);
      used += n;
      const end = headEnd(buf.subarray(0, used));
      if (end >= 0) return buf.slice(0, end);
    }
    throw new Deno.errors.InvalidData(`Response head exceeds ${MAX_HEAD_BYTES} bytes`);
  } catch (error) {
    if (timedOut) {
      const where = joinHostPort(address.hostname, address.port);
      throw new Deno.errors.TimedOut(
        `No complete response head from ${where} within ${timeoutMs} ms`,
      );
    }
    throw error;
  } finally {
    clearTimeout(timer);
    if (!timedOut) conn.close();
  }
}

/**
 * Reads `HOST:PORT`, a bare `HOST` (port 80) or an `http://` URL into an
 * address and a path (the URL's path wins over the default `/`).
 */
export function parseTarget(text: string): { address: NetAddress; path: string | null } {
  if (/^https?:\/\//i.test(text)) {
    if (/^https:/i.test(text)) {
      throw new RangeError(`Cannot use "${text}": HTTPS is not spoken here`);
    }
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw new RangeError(`Cannot parse URL "${text}"`);
    }
    const hostname = url.hostname.replace(/^\[|\]$/g, "");
    return {
      address: { transport: "tcp", hostname, port: Number(url.port || 80) },
      path: url.pathname + url.search,
    };
  }
  const hasPort = /:\d*$/.test(text) && !/^[^[]*:.*:/.test(text);
  return {
    address: parseHostPort(hasPort ? text : `${text}:80`, { requireHost: true }),
    path: null,
  };
}

const spec = {
  name: "http_head",
  summary: "Sends a raw HTTP HEAD request over TCP and prints the response head as received.",
  args: "HOST:PORT [PATH]",
  minArgs: 1,
  maxArgs: 2,
  options: {
    http11: { type: "boolean", description: "send HTTP/1.1 with a Host header" },
    timeout: {
      type: "string",
      arg: "DURATION",
      default: "10s",
      description: "give up after this long, connecting included",
    },
  },
  notes: `HOST:PORT may also be HOST (port 80) or an http:// URL. PATH defaults to /.

Examples:
  http_head example.com:80
  http_head --http11 localhost:8000 /index.html`,
} as const;

/** Prints the response head; returns the exit code. */
export function main(args: string[]): Promise<number> {
  return runCommand(spec, args, async ({ values, positionals }) => {
    const target = usage(() => parseTarget(positionals[0]));
    const path = positionals[1] ?? target.path ?? "/";
    if (!path.startsWith("/") && path !== "*") {
      throw new UsageError(`Invalid path "${path}": must start with /`);
    }
    if ([...path].some((c) => c <= " " || c === "\x7f")) {
      throw new UsageError(`Invalid path "${path}": no spaces or control characters`);
    }
    const timeoutMs = parseDurationOption(values.timeout, "timeout");
    const head = await fetchHead(target.address, path, {
      http11: values.http11,
      timeoutMs: timeoutMs || 10_000,
    });
    if (head.byteLength === 0) throw new Deno.errors.UnexpectedEof("The server sent nothing");
    await writeAll(Deno.stdout, head);
    return 0;
  });
}

if (import.meta.main) Deno.exit(await main(Deno.args));
