#!/usr/bin/env -S deno run --allow-net
/**
 * udp_random_server: answers each datagram with a random integer 1..1000
 * (udpS.go of the seeds), printing `-> text` and `data: N` as the book's
 * server does. An empty datagram is answered like any other; `STOP` stops
 * the server only with `--allow-stop` (a remote kill switch is off by
 * default) and is otherwise answered like any datagram.
 *
 *     deno task udp_random_server 1234
 *
 * @module
 */
import type { NetAddress } from "../lib/net/addr.ts";
import { runCommand } from "../lib/cli/cli.ts";
import { Logger } from "../lib/cli/log.ts";
import { runServer } from "../lib/net/lifecycle.ts";
import {
  parseUdpServerArgs,
  previewDatagram,
  serveUdp,
  UDP_SERVER_OPTIONS,
  type UdpServer,
} from "../lib/net/udp.ts";

/** The replies, encoded once: index N holds the text of N. */
const NUMBERS: readonly Uint8Array[] = Array.from(
  { length: 1001 },
  (_, n) => new TextEncoder().encode(String(n)),
);
const STOP = new TextEncoder().encode("STOP");

/** Options for {@link serveRandom}. */
export interface RandomServerOptions {
  /** Where to listen. Default `0.0.0.0:1234`. */
  address?: NetAddress;
  /** Let a client stop the server by sending `STOP`. Default false. */
  allowStop?: boolean;
  /** Replies per second per source address; 0 no limit. Default 0. */
  rate?: number;
  /** Print nothing per datagram. Default false. */
  quiet?: boolean;
  /** Aborting it shuts the server down. */
  signal?: AbortSignal;
  /** Called once listening. Default prints the ready line. */
  onListen?: (addr: Deno.Addr) => void;
}

/** A random integer from 1 to 1000, as udpS.go's `random(1, 1001)`. */
export function randomReply(): number {
  return 1 + Math.floor(Math.random() * 1000);
}

/** Whether a datagram says STOP, surrounding white space ignored (as strings.TrimSpace). */
export function isStop(data: Uint8Array): boolean {
  let start = 0;
  let end = data.byteLength;
  while (start < end && isSpace(data[start])) start++;
  while (end > start && isSpace(data[end - 1])) end--;
  if (end - start !== STOP.byteLength) return false;
  for (let i = 0; i < STOP.byteLength; i++) if (data[start + i] !== STOP[i]) return false;
  return true;
}

function isSpace(byte: number): boolean {
  return byte === 0x20 || (byte >= 0x09 && byte <= 0x0d);
}

/** Starts the random number server and returns its handle. */
export function serveRandom(options: RandomServerOptions = {}): UdpServer {
  const quiet = options.quiet ?? false;
  const log = new Logger({ quiet });
  const out = (line: string) => console.log(line);
  return serveUdp((data, peer, server) => {
    const stop = isStop(data);
    if (!quiet) out(`-> ${previewDatagram(data)}`);
    if (stop && options.allowStop) {
      out("Exiting UDP server!");
      log.info(`STOP from ${peer.hostname}:${peer.port}`);
      server.shutdown();
      return null;
    }
    const n = randomReply();
    if (!quiet) out(`data: ${n}`);
    return NUMBERS[n];
  }, {
    address: options.address,
    rate: options.rate,
    signal: options.signal,
    logger: log,
    onListen: options.onListen,
  });
}

const spec = {
  name: "udp_random_server",
  summary: "Answers each UDP datagram with a random integer 1..1000.",
  args: "[ADDR]",
  options: {
    ...UDP_SERVER_OPTIONS,
    "allow-stop": {
      type: "boolean",
      description: "let any client stop the server by sending STOP",
    },
  },
  notes: `ADDR is PORT, HOST:PORT or [IPv6]:PORT (default 1234).

Each datagram is printed as "-> text" and its answer as "data: N". Without
--allow-stop a STOP datagram is answered like any other.

Examples:
  udp_random_server 1234
  udp_random_server --host 127.0.0.1 --rate 100 1234
  ncat -u 127.0.0.1 1234`,
} as const;

/** Runs the server until SIGINT, SIGTERM or (with --allow-stop) STOP; returns the exit code. */
export function main(args: string[]): Promise<number> {
  return runCommand(spec, args, ({ values, positionals }) => {
    const { settings, rate } = parseUdpServerArgs(values, positionals);
    return runServer(settings, (run) =>
      serveRandom({
        address: run.address as NetAddress,
        allowStop: values["allow-stop"],
        rate,
        quiet: values.quiet,
        signal: run.signal,
        onListen: run.onListen,
      }), { moduleUrl: import.meta.url, protocol: "udp" });
  });
}

if (import.meta.main) Deno.exit(await main(Deno.args));
