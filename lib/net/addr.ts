/**
 * Addresses on the command line: `1234`, `:1234`, `host:1234`,
 * `[::1]:1234` and `unix:/path`, into options for `Deno.listen` and
 * `Deno.connect`, and back into text for ready lines and logs.
 *
 * @module
 */
import { usage } from "../cli/cli.ts";

/** A TCP (or UDP) endpoint. */
export interface NetAddress {
  transport: "tcp";
  hostname: string;
  port: number;
}

/** A unix domain socket. */
export interface UnixAddress {
  transport: "unix";
  path: string;
}

/** What {@link parseAddress} returns. */
export type Address = NetAddress | UnixAddress;

/** Options for {@link parseAddress}. */
export interface ParseAddressOptions {
  /** Hostname used when the text names only a port. Default "0.0.0.0". */
  defaultHost?: string;
  /** Whether `unix:/path` is accepted. Default true. */
  allowUnix?: boolean;
  /** Whether a port is required (a client); otherwise a bare host is refused too. Default false. */
  requireHost?: boolean;
}

/** Parses a port number 0-65535 given as text; `what` names it in errors. */
export function parsePort(text: string, what = "port"): number {
  if (!/^\d{1,5}$/.test(text)) {
    throw new RangeError(`Cannot parse ${what} "${text}": must be a number 0-65535`);
  }
  const port = Number(text);
  if (port > 65535) throw new RangeError(`Cannot parse ${what} "${text}": must be 0-65535`);
  return port;
}

/**
 * Parses an address given on the command line. Errors are `RangeError`s
 * that quote the bad value, e.g. `Cannot parse address "x:99999": port
 * must be 0-65535`.
 */
export function parseAddress(text: string, options: ParseAddressOptions = {}): Address {
  const { defaultHost = "0.0.0.0", allowUnix = true, requireHost = false } = options;
  const fail = (why: string) => new RangeError(`Cannot parse address "${text}": ${why}`);
  if (text.startsWith("unix:")) {
    if (!allowUnix) throw fail("unix sockets are not supported here");
    const path = text.slice("unix:".length);
    if (path === "") throw fail("the socket path is empty");
    return { transport: "unix", path };
  }
  let host: string;
  let portText: string;
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close < 0) throw fail("missing ']' after the IPv6 address");
    host = text.slice(1, close);
    if (text[close + 1] !== ":") throw fail("expected ':PORT' after ']'");
    portText = text.slice(close + 2);
    if (host === "") throw fail("the IPv6 address is empty");
  } else {
    const colon = text.lastIndexOf(":");
    if (colon < 0) {
      if (/^\d+$/.test(text)) {
        host = "";
        portText = text;
      } else {
        throw fail("expected HOST:PORT or PORT");
      }
    } else {
      host = text.slice(0, colon);
      portText = text.slice(colon + 1);
      if (host.includes(":")) throw fail("write IPv6 addresses in brackets, as [::1]:PORT");
    }
  }
  if (portText === "") throw fail("the port is missing");
  if (!/^\d+$/.test(portText)) throw fail(`port "${portText}" is not a number`);
  const port = Number(portText);
  if (port > 65535) throw fail("port must be 0-65535");
  if (host === "") {
    if (requireHost) throw fail("the host is missing");
    host = defaultHost;
  }
  if (/[\s/]/.test(host)) throw fail(`host "${host}" is not a valid host name`);
  return { transport: "tcp", hostname: host, port };
}

/** Parses an address that must be TCP (a client's peer, a UDP endpoint). */
export function parseHostPort(text: string, options: ParseAddressOptions = {}): NetAddress {
  return parseAddress(text, { ...options, allowUnix: false }) as NetAddress;
}

/** Formats a host and port as `host:port`, bracketing IPv6 addresses. */
export function joinHostPort(hostname: string, port: number): string {
  return hostname.includes(":") ? `[${hostname}]:${port}` : `${hostname}:${port}`;
}

/** Formats a listener or connection address as `tcp://h:p`, `udp://h:p` or `unix:/path`. */
export function formatAddr(addr: Deno.Addr): string {
  if ("hostname" in addr) return `${addr.transport}://${joinHostPort(addr.hostname, addr.port)}`;
  return "path" in addr ? `unix:${addr.path}` : addr.transport;
}

/** Formats a peer address as `h:p` (or the socket path), as logs show it. */
export function formatPeer(addr: Deno.Addr): string {
  if ("hostname" in addr) return joinHostPort(addr.hostname, addr.port);
  return "path" in addr && addr.path ? addr.path : addr.transport;
}

/**
 * Whether a listen address only takes connections from this machine:
 * 127.0.0.0/8, ::1, `localhost`, or a unix socket.
 */
export function isLoopback(address: Address): boolean {
  if (address.transport === "unix") return true;
  const host = address.hostname.replace(/^\[|\]$/g, "").toLowerCase();
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** The `--port` and `--host` options of every server, to spread into a command spec. */
export const LISTEN_OPTIONS = {
  port: { type: "string", short: "p", arg: "PORT", description: "port to listen on" },
  host: { type: "string", arg: "HOST", default: "0.0.0.0", description: "address to listen on" },
} as const;

/**
 * The address a server listens on: the `[ADDR]` argument, else `--port`,
 * else `defaultPort`, on `--host`; a bad value is a `UsageError` quoting it.
 */
export function listenAddress(
  positionals: string[],
  values: { port?: string; host: string },
  defaultPort: number,
  { allowUnix = false } = {},
): Address {
  return usage(() =>
    parseAddress(positionals[0] ?? values.port ?? String(defaultPort), {
      defaultHost: values.host,
      allowUnix,
    })
  );
}
