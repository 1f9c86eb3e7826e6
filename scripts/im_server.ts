#!/usr/bin/env -S deno run --unstable-kv --allow-net=0.0.0.0,127.0.0.1,localhost,[::],[::1] --allow-read --allow-write
/**
 * im_server: an instant-messaging server (seed 003's course project:
 * register, log in, see who is online, message everyone or one user,
 * offline messages), speaking JSON lines over TCP. Passwords are stored
 * only as PBKDF2-HMAC-SHA256 hashes; users and offline messages live in
 * Deno KV and survive a restart.
 *
 *     deno task im_server 8888 --db ./im.kv
 *     nc localhost 8888
 *     {"type":"register","user":"alice","password":"correct horse","name":"Alice"}
 *
 * @module
 */
import { type Address, formatAddr, isLoopback } from "../lib/net/addr.ts";
import type { TlsCertificate } from "../lib/net/tls.ts";
import { parseIntOption, runCommand, UsageError, VERSION } from "../lib/cli/cli.ts";
import { DEFAULT_MAX_TEXT_BYTES } from "../lib/im/im_protocol.ts";
import { DEFAULT_MAX_LINE_BYTES } from "../lib/io/lines.ts";
import { Logger } from "../lib/cli/log.ts";
import { DEFAULT_ITERATIONS, PasswordHasher } from "../lib/im/password.ts";
import { serveTcp, type TcpServer } from "../lib/net/server.ts";
import {
  DEFAULT_HEAD_TIMEOUT_MS,
  runServer,
  serverOptions,
  serverSettings,
} from "../lib/net/lifecycle.ts";
import { ImStore } from "../lib/im/im_store.ts";
import {
  DEFAULT_MAX_OFFLINE,
  errorLine,
  ImService,
  imSessionHandler,
} from "../lib/im/im_service.ts";

/** Default idle timeout: clients ping well within it (the hello line tells them). */
export const DEFAULT_IDLE_TIMEOUT_MS = 300_000;

/** Options for {@link serveIm}. */
export interface ImServerOptions {
  /** Where to listen. Default `0.0.0.0:8888` (the seed's port). */
  address?: Address;
  /** The Deno KV database; `:memory:` keeps nothing. Default `./im.kv`. */
  db?: string;
  /** PBKDF2 iterations for new passwords. Default 600000 (the least allowed). */
  iterations?: number;
  /** Allow fewer iterations than 600000: tests only. Default false. */
  insecureTestHashing?: boolean;
  /** Most messages waiting per offline user. Default 1000. */
  maxOffline?: number;
  /** Longest message text in UTF-8 bytes. Default 8192. */
  maxTextBytes?: number;
  /** Longest request line in bytes. Default 65536. */
  maxLineBytes?: number;
  /** Most simultaneous connections. Default 10000. */
  maxConns?: number;
  /** Close connections silent this long; 0 never. Default 300000 ms. */
  idleTimeoutMs?: number;
  /** Close a connection that leaves a started request line unfinished this long; 0 never. Default 10000 ms. */
  headTimeoutMs?: number;
  /** Log nothing per connection. Default false. */
  quiet?: boolean;
  /** Aborting it shuts the server down gracefully. */
  signal?: AbortSignal;
  /** Called once listening. Default prints the ready line. */
  onListen?: (addr: Deno.Addr) => void;
  /** Serve TLS with this certificate, so passwords cross encrypted. Default plain TCP. */
  tls?: TlsCertificate;
}

/** A running IM server: its TCP server and, once `finished`, a closed database. */
export interface ImServer extends AsyncDisposable {
  readonly addr: Deno.Addr;
  /** Resolves when every connection has ended and the database is closed. */
  readonly finished: Promise<void>;
  shutdown(): Promise<void>;
}

/** Starts the IM server; resolves once it listens. */
export async function serveIm(options: ImServerOptions = {}): Promise<ImServer> {
  const log = new Logger({ quiet: options.quiet });
  const hasher = new PasswordHasher({
    iterations: options.iterations ?? DEFAULT_ITERATIONS,
    allowWeakForTests: options.insecureTestHashing,
  });
  const maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  const maxTextBytes = options.maxTextBytes ?? DEFAULT_MAX_TEXT_BYTES;
  const idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  const headTimeoutMs = options.headTimeoutMs ?? DEFAULT_HEAD_TIMEOUT_MS;
  const store = await ImStore.open(options.db ?? "./im.kv");
  const service = new ImService(store, hasher, log, options.maxOffline ?? DEFAULT_MAX_OFFLINE);
  const hello = JSON.stringify({
    type: "hello",
    server: "im_server (netkit)",
    version: VERSION,
    max_line_bytes: maxLineBytes,
    max_text_bytes: maxTextBytes,
    idle_timeout_ms: idleTimeoutMs,
  });

  const handle = imSessionHandler(service, { maxLineBytes, maxTextBytes, hello, log });

  let server: TcpServer;
  try {
    server = await serveTcp(handle, {
      address: options.address ?? { transport: "tcp", hostname: "0.0.0.0", port: 8888 },
      maxConns: options.maxConns,
      idleTimeoutMs,
      idleMessage: errorLine("idle_timeout", `Nothing heard for ${idleTimeoutMs} ms; closing`) +
        "\n",
      headTimeoutMs,
      headMessage: errorLine(
        "head_timeout",
        `Request line not completed within ${headTimeoutMs} ms; closing`,
      ) + "\n",
      busyMessage: errorLine("server_busy", "Too many connections; try again later") + "\n",
      signal: options.signal,
      tls: options.tls,
      logger: log,
      onListen: options.onListen,
    });
  } catch (error) {
    store.close();
    throw error;
  }
  if (!options.tls && !isLoopback(options.address ?? server.addr as Address)) {
    // Warned, not refused: the seed's default is 0.0.0.0, and a LAN or a TLS
    // proxy in front may be what the operator wants.
    log.error(
      `Warning: listening on ${formatAddr(server.addr)} without TLS: passwords and ` +
        "messages cross the network in clear (serve TLS with --cert FILE --key FILE)",
    );
  }
  log.info(
    `Passwords: PBKDF2-HMAC-SHA256, ${hasher.iterations} iterations; database ${
      options.db ?? "./im.kv"
    }`,
  );
  const finished = server.finished.then(async () => {
    await service.queue.idle();
    await store.settled();
    store.close();
  });
  return {
    addr: server.addr,
    finished,
    shutdown: () => server.shutdown().then(() => finished),
    [Symbol.asyncDispose]: () => server.shutdown().then(() => finished),
  };
}

const spec = {
  name: "im_server",
  summary: "Instant-messaging server: register, log in, online list, group and private " +
    "messages, offline messages (JSON lines over TCP).",
  args: "[ADDR]",
  options: {
    ...serverOptions(["max-conns", "idle-timeout", "head-timeout", "quiet", "cert", "key"], {
      "head-timeout": {
        description: "close a client that leaves a started line unfinished this long",
      },
      "max-conns": { description: "most clients at once" },
      "idle-timeout": { default: "5m", description: "close clients silent this long (0 = never)" },
    }),
    db: {
      type: "string",
      arg: "PATH",
      default: "./im.kv",
      description: "Deno KV database file (:memory: keeps nothing)",
    },
    "max-offline": {
      type: "string",
      arg: "N",
      default: String(DEFAULT_MAX_OFFLINE),
      description: "most messages waiting per offline user",
    },
    "max-message": {
      type: "string",
      arg: "BYTES",
      default: String(DEFAULT_MAX_TEXT_BYTES),
      description: "longest message text",
    },
    "max-line": {
      type: "string",
      arg: "BYTES",
      default: String(DEFAULT_MAX_LINE_BYTES),
      description: "longest request line",
    },
    "pbkdf2-iterations": {
      type: "string",
      arg: "N",
      default: String(DEFAULT_ITERATIONS),
      description: "PBKDF2 work factor for new passwords (at least 600000)",
    },
    "insecure-test-hashing": {
      type: "boolean",
      description: "TESTS ONLY: allow --pbkdf2-iterations below 600000",
    },
  },
  notes: `ADDR is PORT, HOST:PORT or [IPv6]:PORT (default 8888).

Protocol: one JSON object per line; see the README for every type. Try:
  nc localhost 8888
  {"type":"register","user":"alice","password":"correct horse","name":"Alice"}
  {"type":"login","user":"alice","password":"correct horse"}
  {"type":"broadcast","text":"hello everyone"}

Passwords cross in clear without --cert/--key: on any address other than
loopback the server warns at start. With TLS: im_client --ca ca.pem HOST:8888.`,
} as const;

/** Runs the IM server until SIGINT or SIGTERM; returns the exit code. */
export function main(args: string[]): Promise<number> {
  return runCommand(spec, args, ({ values, positionals }) => {
    const settings = serverSettings(values, positionals, { defaultPort: 8888 });
    const iterations = parseIntOption(values["pbkdf2-iterations"], "pbkdf2-iterations", {
      min: 1,
    });
    if (iterations < DEFAULT_ITERATIONS && !values["insecure-test-hashing"]) {
      throw new UsageError(
        `Invalid --pbkdf2-iterations "${iterations}": must be at least ${DEFAULT_ITERATIONS}`,
      );
    }
    const options: ImServerOptions = {
      db: values.db,
      iterations,
      insecureTestHashing: values["insecure-test-hashing"],
      maxOffline: parseIntOption(values["max-offline"], "max-offline", { min: 0 }),
      maxTextBytes: parseIntOption(values["max-message"], "max-message", { min: 1 }),
      maxLineBytes: parseIntOption(values["max-line"], "max-line", { min: 256 }),
      maxConns: settings.maxConns,
      idleTimeoutMs: settings.idleTimeoutMs,
      headTimeoutMs: settings.headTimeoutMs,
      quiet: settings.quiet,
      tls: settings.tls,
    };
    return runServer(
      settings,
      (run) =>
        serveIm({ ...options, address: run.address, signal: run.signal, onListen: run.onListen }),
      { moduleUrl: import.meta.url },
    );
  });
}

if (import.meta.main) Deno.exit(await main(Deno.args));
