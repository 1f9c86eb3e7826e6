#!/usr/bin/env -S deno run --allow-net
/**
 * udp_echo_server: seed 001's UDP server. Answers every datagram with
 * `--reply TEXT` (default `I am server`) or, with `--echo`, with the
 * datagram itself, byte for byte up to 65,507 bytes; prints
 * `from ADDR: text` per datagram.
 *
 *     deno task udp_echo_server 8023
 *     deno task udp_echo_server --echo 8023
 *
 * @module
 */
import { joinHostPort, type NetAddress } from "../lib/net/addr.ts";
import { runCommand, UsageError } from "../lib/cli/cli.ts";
import { Logger } from "../lib/cli/log.ts";
import { runServer } from "../lib/net/lifecycle.ts";
import {
  parseUdpServerArgs,
  previewDatagram,
  serveUdp,
  UDP_SERVER_OPTIONS,
  type UdpServer,
} from "../lib/net/udp.ts";

/** The reply of seed 001's server. */
export const DEFAULT_REPLY = "I am server";
/**
 * Longest `--reply`: a fixed reply larger than one unfragmented packet
 * (1500-byte MTU less 28 bytes of headers) would make the server an
 * amplifier for forged tiny datagrams.
 */
export const MAX_REPLY_BYTES = 1_472;

/** Options for {@link serveUdpEcho}. */
export interface UdpEchoServerOptions {
  /** Where to listen. Default `0.0.0.0:1234`. */
  address?: NetAddress;
  /** Answer with each datagram itself instead of `reply`. Default false. */
  echo?: boolean;
  /** The fixed answer, at most {@link MAX_REPLY_BYTES} bytes. Default "I am server". */
  reply?: string;
  /** Replies per second per source address; 0 no limit. Default 0. */
  rate?: number;
  /** Print nothing per datagram. Default false. */
  quiet?: boolean;
  /** Aborting it shuts the server down. */
  signal?: AbortSignal;
  /** Called once listening. Default prints the ready line. */
  onListen?: (addr: Deno.Addr) => void;
}

/** Starts the server and returns its handle; throws a RangeError for a too long reply. */
export function serveUdpEcho(options: UdpEchoServerOptions = {}): UdpServer {
  const quiet = options.quiet ?? false;
  const reply = new TextEncoder().encode(options.reply ?? DEFAULT_REPLY);
  if (reply.byteLength > MAX_REPLY_BYTES) {
    throw new RangeError(
      `Reply of ${reply.byteLength} bytes is too long: at most ${MAX_REPLY_BYTES} bytes`,
    );
  }
  const echo = options.echo ?? false;
  return serveUdp((data, peer) => {
    if (!quiet) {
      console.log(`from ${joinHostPort(peer.hostname, peer.port)}: ${previewDatagram(data)}`);
    }
    return echo ? data : reply;
  }, {
    address: options.address,
    rate: options.rate,
    signal: options.signal,
    logger: new Logger({ quiet }),
    onListen: options.onListen,
  });
}

const spec = {
  name: "udp_echo_server",
  summary: `Answers every UDP datagram with a fixed text ("${DEFAULT_REPLY}") or, with --echo, ` +
    "with the datagram itself.",
  args: "[ADDR]",
  options: {
    ...UDP_SERVER_OPTIONS,
    reply: {
      type: "string",
      arg: "TEXT",
      default: DEFAULT_REPLY,
      description: `the answer to every datagram (at most ${MAX_REPLY_BYTES} bytes)`,
    },
    echo: { type: "boolean", short: "e", description: "answer with the datagram itself" },
  },
  notes: `ADDR is PORT, HOST:PORT or [IPv6]:PORT (default 1234).

Each datagram is printed as "from ADDR: text". Datagrams up to 65,507
bytes come back intact with --echo.

Examples:
  udp_echo_server 8023
  udp_echo_server --echo --rate 100 127.0.0.1:8023
  ncat -u 127.0.0.1 8023`,
} as const;

/** Runs the server until SIGINT or SIGTERM; returns the exit code. */
export function main(args: string[]): Promise<number> {
  return runCommand(spec, args, ({ values, positionals }) => {
    const { settings, rate } = parseUdpServerArgs(values, positionals);
    const replyBytes = new TextEncoder().encode(values.reply).byteLength;
    if (replyBytes > MAX_REPLY_BYTES) {
      throw new UsageError(
        `Invalid --reply of ${replyBytes} bytes: at most ${MAX_REPLY_BYTES} bytes`,
      );
    }
    if (values.echo && values.reply !== DEFAULT_REPLY) {
      throw new UsageError("Give --echo or --reply, not both");
    }
    return runServer(settings, (run) =>
      serveUdpEcho({
        address: run.address as NetAddress,
        echo: values.echo,
        reply: values.reply,
        rate,
        quiet: values.quiet,
        signal: run.signal,
        onListen: run.onListen,
      }), { moduleUrl: import.meta.url, protocol: "udp" });
  });
}

if (import.meta.main) Deno.exit(await main(Deno.args));
