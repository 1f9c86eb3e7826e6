/**
 * The life of a server process, the same for every server script: its
 * address (`[ADDR]`, `--host`, `--port`), the options all servers share
 * (`--max-conns` for the whole process, `--idle-timeout`, `--quiet`,
 * `--workers`), the worker threads, the one ready line
 * `Listening on <scheme>://H:P`, SIGINT and SIGTERM, and the bounded drain.
 * A script hands {@link runServer} its settings and its `serveX`.
 *
 * @module
 */
import { type Address, formatAddr, joinHostPort, LISTEN_OPTIONS, listenAddress } from "./addr.ts";
import {
  type OptionSpec,
  type OptionValues,
  parseDurationOption,
  parseIntOption,
  UsageError,
} from "../cli/cli.ts";
import { abortOnSignals } from "../cli/signals.ts";
import {
  ConnectionLimit,
  parseWorkers,
  serveWorkers,
  type SharedCounter,
  WORKERS_OPTION,
} from "./workers.ts";
import { TLS_SERVER_OPTIONS, type TlsCertificate, tlsServerSettings } from "./tls.ts";

/** Default bound on the connections of a process (`--max-conns`). */
export const DEFAULT_MAX_CONNS = 10_000;
/** How long a TCP server's shutdown lets busy handlers finish before closing their connections. */
export const DEFAULT_DRAIN_TIMEOUT_MS = 5_000;
/** How long an HTTP server's shutdown waits for requests in flight (WebSockets closed first). */
export const HTTP_DRAIN_TIMEOUT_MS = 3_000;
/**
 * How long an HTTP connection may take to send a complete request head,
 * counted from its accept or from the end of its previous response (so it
 * also bounds an idle keep-alive connection): Go's `ReadHeaderTimeout`.
 */
export const DEFAULT_HEAD_TIMEOUT_MS = 10_000;
/** How long an HTTP request may take from its head to the handler's answer, body included. */
export const DEFAULT_BODY_TIMEOUT_MS = 30_000;

/**
 * The options every server takes, each defined once; a script picks the
 * ones it has with {@link serverOptions}. TLS's `--cert`/`--key` join here.
 */
export const SERVER_OPTIONS = {
  ...LISTEN_OPTIONS,
  "max-conns": {
    type: "string",
    arg: "N",
    default: String(DEFAULT_MAX_CONNS),
    description: "most connections at once, all ports and workers together",
  },
  "idle-timeout": {
    type: "string",
    arg: "DURATION",
    default: "0",
    description: "close connections silent this long (0 = never)",
  },
  "head-timeout": {
    type: "string",
    arg: "DURATION",
    default: `${DEFAULT_HEAD_TIMEOUT_MS / 1000}s`,
    description: "HTTP: close a connection that takes longer to send a request head (or idles)",
  },
  "body-timeout": {
    type: "string",
    arg: "DURATION",
    default: `${DEFAULT_BODY_TIMEOUT_MS / 1000}s`,
    description: "HTTP: close a connection whose request, body included, takes longer",
  },
  quiet: { type: "boolean", short: "q", description: "log nothing per connection" },
  ...WORKERS_OPTION,
  ...TLS_SERVER_OPTIONS,
} as const satisfies Record<string, OptionSpec>;

/** The name of one shared server option. */
export type ServerOptionName = keyof typeof SERVER_OPTIONS;
/** The parsed values of the shared options a script took. */
export type ServerValues = Partial<OptionValues<typeof SERVER_OPTIONS>> & {
  port?: string;
  host: string;
};

/**
 * The shared options `names` (`--host` and `--port` always), to spread
 * into a command spec; `adjust` gives one its own default or wording
 * where the server's meaning is narrower (`--idle-timeout 60s` for
 * WebSockets, which are pinged first).
 */
export function serverOptions<K extends ServerOptionName>(
  names: readonly K[],
  adjust: { [N in K | "host" | "port"]?: { default?: string; description?: string } } = {},
): Pick<typeof SERVER_OPTIONS, K | "host" | "port"> {
  const picked: Record<string, OptionSpec> = {};
  for (const name of ["port", "host", ...names] as const) {
    picked[name] = { ...SERVER_OPTIONS[name], ...adjust[name] };
  }
  return picked as Pick<typeof SERVER_OPTIONS, K | "host" | "port">;
}

/** The shared options, parsed; those a script does not take have their defaults. */
export interface ServerSettings {
  /** Where to listen: `[ADDR]`, else `--port`, else the default port, on `--host`. */
  address: Address;
  /** Most connections of the whole process. */
  maxConns: number;
  /** Close connections silent this long; 0 never. */
  idleTimeoutMs: number;
  /** HTTP: deadline for a complete request head (and an idle keep-alive). */
  headTimeoutMs: number;
  /** HTTP: deadline from a request's head to its answer, body included. */
  bodyTimeoutMs: number;
  /** Log nothing per connection. */
  quiet: boolean;
  /** Threads serving the port. */
  workers: number;
  /** `--cert`/`--key`, read and checked (lib/net/tls.ts); undefined for plain TCP. */
  tls: TlsCertificate | undefined;
}

/** Options for {@link serverSettings}. */
export interface ServerSettingsOptions {
  /** Port when neither `[ADDR]` nor `--port` gives one. */
  defaultPort: number;
  /** Whether `unix:/path` is accepted. Default false. */
  allowUnix?: boolean;
}

/** Parses the shared options and the `[ADDR]` argument; a bad value is a `UsageError` quoting it. */
export function serverSettings(
  values: ServerValues,
  positionals: string[],
  { defaultPort, allowUnix = false }: ServerSettingsOptions,
): ServerSettings {
  const address = listenAddress(positionals, values, defaultPort, { allowUnix });
  const workers = values.workers === undefined ? 1 : parseWorkers(values.workers);
  if (workers > 1 && address.transport === "unix") {
    throw new UsageError(
      `--workers ${values.workers} needs a TCP port: unix sockets are not shared`,
    );
  }
  const tls = tlsServerSettings(values);
  if (tls && address.transport === "unix") {
    throw new UsageError(
      `--cert "${tls.certFile}" needs a TCP port: TLS on unix sockets is not served`,
    );
  }
  return {
    address,
    maxConns: values["max-conns"] === undefined
      ? DEFAULT_MAX_CONNS
      : parseIntOption(values["max-conns"], "max-conns", { min: 1 }),
    idleTimeoutMs: values["idle-timeout"] === undefined
      ? 0
      : parseDurationOption(values["idle-timeout"], "idle-timeout"),
    headTimeoutMs: values["head-timeout"] === undefined
      ? DEFAULT_HEAD_TIMEOUT_MS
      : positiveDuration(values["head-timeout"], "head-timeout"),
    bodyTimeoutMs: values["body-timeout"] === undefined
      ? DEFAULT_BODY_TIMEOUT_MS
      : positiveDuration(values["body-timeout"], "body-timeout"),
    quiet: values.quiet ?? false,
    workers,
    tls,
  };
}

/** A duration that must not be 0: an HTTP deadline of "never" is the unbounded server again. */
function positiveDuration(text: string, name: string): number {
  const ms = parseDurationOption(text, name);
  if (ms <= 0) throw new UsageError(`Invalid --${name} "${text}": must be more than 0`);
  return ms;
}

/** What a server speaks, which names the ready line's scheme. */
export type Protocol = "tcp" | "http" | "udp";

/** The scheme of a ready line: the transport's, or its TLS form (`tls`, `https`). */
export function schemeOf(protocol: Protocol, tls = false): string {
  if (!tls) return protocol;
  return protocol === "http" ? "https" : protocol === "tcp" ? "tls" : "dtls";
}

/** How a ready line describes its listener. */
export interface ReadyLineOptions {
  /** What the listener speaks. Default "tcp". */
  protocol?: Protocol;
  /** Whether it speaks it over TLS. Default false. */
  tls?: boolean;
  /** A path after the address, e.g. `/rpc`. Default none. */
  path?: string;
  /** Threads serving it; more than one is shown. Default 1. */
  workers?: number;
  /** Words in parentheses at the end, e.g. `chat over TCP`. Default none. */
  note?: string;
}

/** The line tests and users wait for: `Listening on tcp://H:P`, from the listener's address. */
export function readyLine(addr: Deno.Addr, options: ReadyLineOptions = {}): string {
  const where = "hostname" in addr
    ? `${schemeOf(options.protocol ?? "tcp", options.tls)}://${
      joinHostPort(addr.hostname, addr.port)
    }`
    : formatAddr(addr);
  const notes = [
    ...((options.workers ?? 1) > 1 ? [`${options.workers} workers`] : []),
    ...(options.note ? [options.note] : []),
  ];
  return `Listening on ${where}${options.path ?? ""}` +
    (notes.length > 0 ? ` (${notes.join(", ")})` : "");
}

/** Prints {@link readyLine} to stdout: the default `onListen` of every server. */
export function printReady(addr: Deno.Addr, options: ReadyLineOptions = {}): void {
  console.log(readyLine(addr, options));
}

/** What one server (one per worker thread) gets from {@link runServer}; spread it into its options. */
export interface ServerRun {
  /** Where to listen: the real port once the first thread has bound it. */
  address: Address;
  /** Aborted on SIGINT or SIGTERM: drain and stop. */
  signal: AbortSignal;
  /** Whether to share the port with the other workers (`SO_REUSEPORT`). */
  reusePort: boolean;
  /** Counts clients across every worker (the book's client number). */
  clients: SharedCounter;
  /** `--max-conns`, for every connection of the process on every port and worker. */
  limit: ConnectionLimit;
  /** 0 for the first thread, which serves any second port. */
  worker: number;
  /** Added to connection logs when several workers serve the port, e.g. `worker 1`. */
  workerTag: string | undefined;
  /** The runner prints the one ready line, so each server prints none. */
  onListen: () => void;
}

/** What a server's `serveX` returns: where it listens, and when it has stopped. */
export interface ServerHandle {
  readonly addr: Deno.Addr;
  readonly finished: Promise<void>;
}

/** Options for {@link runServer}. */
export interface RunServerOptions<H extends ServerHandle> {
  /** The script's `import.meta.url`, which each worker thread runs. */
  moduleUrl: string;
  /** What the main listener speaks. Default "tcp". */
  protocol?: Protocol;
  /** Whether it speaks it over TLS. Default: whether `settings.tls` is set. */
  tls?: boolean;
  /** More ready lines, for a server's other listeners (printed after the main one). */
  moreReadyLines?: (handle: H) => string[];
}

/**
 * Runs a server until SIGINT or SIGTERM: `serve` once per worker thread
 * (`settings.workers`, all on one port; see lib/net/workers.ts), one
 * ready line once all listen, and every thread drained before it returns
 * exit code 0. A server that stops by itself (`--exit-on-stop`) ends the
 * run too.
 */
export async function runServer<H extends ServerHandle>(
  settings: Pick<ServerSettings, "address" | "workers" | "maxConns"> & {
    tls?: TlsCertificate;
  },
  serve: (run: ServerRun) => Promise<H> | H,
  options: RunServerOptions<H>,
): Promise<number> {
  const controller = new AbortController();
  using _signals = abortOnSignals(controller);
  let first: H | null = null;
  await serveWorkers({
    count: settings.workers,
    moduleUrl: options.moduleUrl,
    address: settings.address,
    signal: controller.signal,
    serve: async (slot) => {
      const handle = await serve({
        address: slot.address,
        signal: slot.signal,
        reusePort: slot.reusePort,
        clients: slot.counter,
        limit: new ConnectionLimit(settings.maxConns, slot.connections),
        worker: slot.id,
        workerTag: slot.count > 1 ? `worker ${slot.id}` : undefined,
        onListen: () => {},
      });
      if (slot.id === 0) first = handle;
      return handle;
    },
    onListen: (addr, count) => {
      const tls = options.tls ?? settings.tls !== undefined;
      printReady(addr, { protocol: options.protocol, tls, workers: count });
      if (first && options.moreReadyLines) {
        for (const line of options.moreReadyLines(first)) console.log(line);
      }
    },
  });
  return 0;
}
