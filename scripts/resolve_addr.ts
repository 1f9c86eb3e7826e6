#!/usr/bin/env -S deno run --allow-net
/**
 * resolve_addr: seed 004's `net.ResolveTCPAddr` / `net.ResolveUDPAddr`.
 * Resolves NETWORK ADDRESS with the system resolver (so /etc/hosts counts)
 * and prints each address with its IP, Port and Zone, the first line being
 * the one Go would return.
 *
 *     deno task resolve_addr tcp6 [::1]:80
 *     deno task resolve_addr udp4 localhost:53
 *
 * @module
 */
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { joinHostPort, parsePort } from "../lib/net/addr.ts";
import { runCommand, UsageError } from "../lib/cli/cli.ts";
import { writeAll } from "../lib/io/lines.ts";

/** The networks Go's ResolveTCPAddr and ResolveUDPAddr accept. */
export const NETWORKS = ["tcp", "tcp4", "tcp6", "udp", "udp4", "udp6"] as const;
/** One of {@link NETWORKS}. */
export type Network = typeof NETWORKS[number];

/**
 * Service names Go resolves without /etc/services (its fallback table in
 * net/lookup.go), so `example.com:http` works as it does in Go.
 */
const SERVICES: Record<"tcp" | "udp", Record<string, number>> = {
  tcp: {
    ftp: 21,
    ftps: 990,
    gopher: 70,
    http: 80,
    https: 443,
    imap2: 143,
    imap3: 220,
    imaps: 993,
    pop3: 110,
    pop3s: 995,
    smtp: 25,
    submissions: 465,
    ssh: 22,
    telnet: 23,
  },
  udp: { domain: 53 },
};

/** A resolved address, as Go's TCPAddr and UDPAddr hold it. */
export interface ResolvedAddr {
  /** The IP address, without its zone. */
  ip: string;
  port: number;
  /** The IPv6 zone (interface) of a link-local address, or "". */
  zone: string;
}

/** An address that does not resolve for the network; exit code 1. */
export class ResolveError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ResolveError";
  }
}

/** Checks a network name; throws a UsageError quoting it otherwise. */
export function parseNetwork(text: string): Network {
  if ((NETWORKS as readonly string[]).includes(text)) return text as Network;
  throw new UsageError(`Unknown network "${text}": expected one of ${NETWORKS.join(", ")}`);
}

/**
 * Splits `host:port`, `[ipv6]:port` or `[ipv6%zone]:port` as Go's
 * net.SplitHostPort does; the port may be a number or a service name.
 */
export function splitHostPort(address: string): { host: string; port: string } {
  const fail = (why: string) => new UsageError(`Cannot parse address "${address}": ${why}`);
  if (address.startsWith("[")) {
    const close = address.indexOf("]");
    if (close < 0) throw fail("missing ']' in address");
    if (address[close + 1] !== ":") throw fail("missing port in address");
    return { host: address.slice(1, close), port: address.slice(close + 2) };
  }
  const colon = address.lastIndexOf(":");
  if (colon < 0) throw fail("missing port in address");
  const host = address.slice(0, colon);
  if (host.includes(":")) throw fail("too many colons in address (write IPv6 as [::1]:80)");
  return { host, port: address.slice(colon + 1) };
}

/** Reads a port number or a known service name for the network. */
export function parseServicePort(text: string, network: Network): number {
  const named = SERVICES[network.startsWith("tcp") ? "tcp" : "udp"][text.toLowerCase()];
  if (named !== undefined) return named;
  if (/^\d+$/.test(text)) {
    try {
      return parsePort(text);
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
  }
  throw new UsageError(`Unknown port "${text}": expected a number 0-65535 or a service name`);
}

/**
 * Resolves an address for a network the way Go's ResolveTCPAddr and
 * ResolveUDPAddr do, but returns every address, Go's choice first: with
 * `tcp`/`udp` the first IPv4 address, else the first; `4` and `6` keep
 * only that family. Throws {@link UsageError} for a bad network or port and
 * {@link ResolveError} when nothing suitable resolves.
 */
export async function resolveAddr(networkText: string, address: string): Promise<ResolvedAddr[]> {
  const network = parseNetwork(networkText);
  const { host, port: portText } = splitHostPort(address);
  const port = parseServicePort(portText, network);
  const family = network.endsWith("4") ? 4 : network.endsWith("6") ? 6 : 0;
  let ips: Array<{ ip: string; zone: string; family: number }>;
  if (host === "") {
    // Go leaves IP nil: the unspecified address, as a listener uses it.
    ips = [{ ip: family === 6 ? "::" : "0.0.0.0", zone: "", family: family === 6 ? 6 : 4 }];
  } else {
    ips = (await lookupHost(host)).map((a) => {
      const [ip, zone = ""] = a.address.split("%");
      return { ip, zone, family: a.family };
    });
  }
  const suitable = ips.filter((a) => family === 0 || a.family === family);
  if (suitable.length === 0) {
    throw new ResolveError(`Cannot resolve "${address}" for ${network}: no suitable address found`);
  }
  if (family === 0) {
    const first4 = suitable.findIndex((a) => a.family === 4);
    if (first4 > 0) suitable.unshift(...suitable.splice(first4, 1));
  }
  return suitable.map(({ ip, zone }) => ({ ip, port, zone }));
}

/** Looks a host up: IP literals (with a zone) as they are, names with the system resolver. */
async function lookupHost(host: string): Promise<Array<{ address: string; family: number }>> {
  const literal = isIP(host.split("%")[0]);
  if (literal !== 0) {
    if (host.includes("%") && literal !== 6) {
      throw new ResolveError(`Cannot resolve "${host}": only IPv6 addresses have a zone`);
    }
    return [{ address: host, family: literal }];
  }
  try {
    return await lookup(host, { all: true, order: "verbatim" });
  } catch (error) {
    const code = (error as { code?: string }).code ?? String(error);
    const why = code === "ENOTFOUND" ? "no such host" : code;
    throw new ResolveError(`Cannot resolve "${host}": ${why}`);
  }
}

/** One address as a line: `[fe80::1%eth0]:80  IP: fe80::1  Port: 80  Zone: eth0`. */
export function formatResolved(a: ResolvedAddr): string {
  const host = a.zone ? `${a.ip}%${a.zone}` : a.ip;
  return `${joinHostPort(host, a.port)}  IP: ${a.ip}  Port: ${a.port}  Zone: ${a.zone}`.trimEnd();
}

const spec = {
  name: "resolve_addr",
  summary: "Resolves a TCP or UDP address and prints its IP, Port and Zone, as Go's " +
    "ResolveTCPAddr and ResolveUDPAddr do.",
  args: "NETWORK ADDRESS",
  minArgs: 2,
  maxArgs: 2,
  options: {
    json: { type: "boolean", description: "print a JSON array of {ip, port, zone}" },
  },
  notes: `NETWORK is tcp, tcp4, tcp6, udp, udp4 or udp6. ADDRESS is HOST:PORT,
[IPv6]:PORT or [IPv6%ZONE]:PORT; PORT is a number or a service name such as
http. Names are resolved by the system resolver, so /etc/hosts counts. One
line per address; the first is the one Go would return.

Exit codes: 0 resolved, 1 nothing suitable resolved, 2 bad network or port.

Examples:
  resolve_addr tcp6 [::1]:80
  resolve_addr udp4 localhost:53
  resolve_addr tcp [fe80::1%eth0]:http`,
} as const;

/** Resolves and prints; returns the exit code. */
export function main(args: string[]): Promise<number> {
  return runCommand(spec, args, async ({ values, positionals }) => {
    const addrs = await resolveAddr(positionals[0], positionals[1]);
    const text = values.json
      ? JSON.stringify(addrs) + "\n"
      : addrs.map((a) => formatResolved(a) + "\n").join("");
    await writeAll(Deno.stdout, new TextEncoder().encode(text));
    return 0;
  });
}

if (import.meta.main) Deno.exit(await main(Deno.args));
