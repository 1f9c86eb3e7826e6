/**
 * Connecting as a client: `HOST:PORT` with an optional address family
 * (`-4`/`-6`, resolved through the system resolver so /etc/hosts counts)
 * and a connect timeout, with errors that name the address.
 *
 * @module
 */
import { lookup } from "node:dns/promises";
import { joinHostPort, type NetAddress } from "./addr.ts";
import { type ClientConn, connectInsecure, startClientTls, type TlsClientSettings } from "./tls.ts";
import { deadline } from "../io/deadline.ts";
import { UsageError } from "../cli/cli.ts";

/** Options for {@link dial}. */
export interface DialOptions {
  /** Only IPv4 (4) or only IPv6 (6) addresses. Default either. */
  family?: 4 | 6;
  /** Give up connecting (and the TLS handshake) after this long; 0 never. Default 0. */
  timeoutMs?: number;
  /** Speak TLS, checking the server's certificate as these say. Default plain TCP. */
  tls?: TlsClientSettings;
}

/** The `-4`/`-6` options of the clients (ncat's); read them with {@link familyOption}. */
export const FAMILY_OPTIONS = {
  ipv4: { type: "boolean", short: "4", description: "IPv4 addresses only" },
  ipv6: { type: "boolean", short: "6", description: "IPv6 addresses only" },
} as const;

/** The family {@link FAMILY_OPTIONS} asked for; both at once is a {@link UsageError}. */
export function familyOption(values: { ipv4?: boolean; ipv6?: boolean }): 4 | 6 | undefined {
  if (values.ipv4 && values.ipv6) throw new UsageError("Give -4 or -6, not both");
  return values.ipv4 ? 4 : values.ipv6 ? 6 : undefined;
}

/** The IP version of an address literal, or 0 for a host name. */
export function ipVersion(host: string): 0 | 4 | 6 {
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(host)) return 4;
  return host.includes(":") ? 6 : 0;
}

/** Resolves `hostname` to an address of `family`, or says why it cannot. */
export async function resolveFamily(hostname: string, family: 4 | 6): Promise<string> {
  const version = ipVersion(hostname);
  if (version !== 0) {
    if (version !== family) {
      throw new Deno.errors.InvalidData(`Address "${hostname}" is not an IPv${family} address`);
    }
    return hostname;
  }
  try {
    return (await lookup(hostname, { family })).address;
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw new Deno.errors.NotFound(
      `Cannot resolve "${hostname}" to an IPv${family} address: ${why}`,
    );
  }
}

/**
 * Connects to `address` over TCP, and TLS if `options.tls` says so (the
 * certificate must name `address.hostname`). Errors read
 * `Cannot connect to host:port: <reason>` with the runtime's error as
 * `cause`; a timeout is a `Deno.errors.TimedOut`.
 */
export function dial(
  address: NetAddress,
  options?: DialOptions & { tls?: undefined },
): Promise<Deno.TcpConn>;
export function dial(address: NetAddress, options: DialOptions): Promise<ClientConn>;
export async function dial(
  address: NetAddress,
  options: DialOptions = {},
): Promise<Deno.TcpConn | ClientConn> {
  const where = joinHostPort(address.hostname, address.port);
  const hostname = options.family
    ? await resolveFamily(address.hostname, options.family)
    : address.hostname;
  const tls = options.tls;
  const connecting: Promise<Deno.TcpConn | ClientConn> = tls?.insecure
    ? connectInsecure(hostname, address.port, address.hostname)
    : tls
    ? Deno.connect({ hostname, port: address.port })
      .then((tcp) => startClientTls(tcp, address.hostname, tls))
    : Deno.connect({ hostname, port: address.port });
  const timeoutMs = options.timeoutMs ?? 0;
  try {
    return await deadline(
      connecting,
      timeoutMs,
      `Cannot connect to ${where}: timed out after ${timeoutMs} ms`,
    );
  } catch (error) {
    // A connection that completes after the timeout is closed, not leaked.
    connecting.then((conn) => conn.close(), () => {});
    if (error instanceof Deno.errors.TimedOut) throw error;
    const why = error instanceof Error ? error.message : String(error);
    throw new Error(`Cannot connect to ${where}: ${why}`, { cause: error });
  }
}
