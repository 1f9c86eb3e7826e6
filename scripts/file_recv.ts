#!/usr/bin/env -S deno run --allow-net=0.0.0.0,127.0.0.1,localhost,[::],[::1] --allow-read --allow-write
/**
 * file_recv: receives files over TCP into one directory, any number of
 * senders at once, one file per connection (the receiver of seed 004's
 * file transfer, made safe): only names inside DIR, content written to a
 * partial copy in a hidden folder and moved into place once size and
 * SHA-256 match, a broken transfer resumed from its partial copy by the
 * sender that holds the same file, existing files never overwritten
 * silently, an optional token, and seed 004's bare sender with --plain.
 * The protocol is described in lib/file/file_protocol.ts.
 *
 *     deno task file_recv 9000 --dir ./inbox
 *
 * Permissions: the task grants `--allow-read --allow-write` without a
 * path because DIR is chosen on the command line at run time, and Deno
 * cannot narrow a grant once the program runs. Who knows DIR in advance
 * runs `deno run --allow-net --allow-read=DIR --allow-write=DIR
 * scripts/file_recv.ts --dir DIR`; the receiver checks at start that it
 * may read and write DIR. The code never touches a path outside DIR:
 * names are checked part by part and symlinks are never followed.
 *
 * @module
 */
import { resolve } from "node:path";
import { type Address, isLoopback } from "../lib/net/addr.ts";
import { parseDurationOption, parseIntOption, runCommand, UsageError } from "../lib/cli/cli.ts";
import { errorLine } from "../lib/file/file_protocol.ts";
import {
  type ExistingPolicy,
  Receiver,
  type SavedFile,
  type TransferOptions,
} from "../lib/file/receiver.ts";
import {
  DEFAULT_MAX_PARTIAL_BYTES,
  DEFAULT_MAX_PARTIALS,
  type PartialLimits,
  PartialStore,
} from "../lib/file/partials.ts";
import { readTokenFile } from "../lib/file/token.ts";
import { Logger } from "../lib/cli/log.ts";
import { formatBytes, ProgressBoard } from "../lib/cli/progress.ts";
import { serveTcp, type TcpServer } from "../lib/net/server.ts";
import {
  DEFAULT_HEAD_TIMEOUT_MS,
  runServer,
  serverOptions,
  serverSettings,
} from "../lib/net/lifecycle.ts";
import type { ConnectionLimit } from "../lib/net/workers.ts";
import type { TlsCertificate } from "../lib/net/tls.ts";

export type { ExistingPolicy, SavedFile };

/** A sender silent this long is dropped; its partial copy stays for a resume. */
const DEFAULT_IDLE_TIMEOUT_MS = 60_000;
/** Each transfer holds eight 256 KiB buffers (2 MiB), so 32 at once cost 64 MiB. */
const DEFAULT_MAX_CONNS = 32;

/** Options for {@link serveFiles}. */
export interface ReceiverOptions extends Partial<TransferOptions> {
  /** Where to listen. Default `0.0.0.0:1234`. */
  address?: Address;
  /** Most simultaneous senders. Default 32. */
  maxConns?: number;
  /** The process's bound on connections; replaces `maxConns`. Default none. */
  limit?: ConnectionLimit;
  /** Drop a sender silent this long; 0 never. Default 60000. */
  idleTimeoutMs?: number;
  /** Drop a sender whose started opening line takes longer; 0 never. Default 10000 ms. */
  headTimeoutMs?: number;
  /** Bounds on the partial copies of broken transfers. Default 100 files, 64 GiB, 24 h. */
  partials?: PartialLimits;
  /** Log only errors. Default false. */
  quiet?: boolean;
  /** Progress bars; default when stderr is a terminal. */
  progress?: boolean;
  /** Aborting it shuts the receiver down gracefully. */
  signal?: AbortSignal;
  /** Called once listening. Default prints the ready line. */
  onListen?: (addr: Deno.Addr) => void;
  /** Receive over TLS with this certificate. Default plain TCP. */
  tls?: TlsCertificate;
}

function printSaved(saved: SavedFile): void {
  const resumed = saved.resumedAt > 0 ? `, resumed at ${saved.resumedAt}` : "";
  const checked = saved.verified ? "" : ", unverified: bare sender, no size or digest";
  console.log(
    `Saved ${saved.path} (${formatBytes(saved.size)}, ${saved.size} bytes${resumed}, ` +
      `sha256 ${saved.hex}${checked}) from ${saved.peer}`,
  );
}

/** Checks that `dir` is a directory this process may read and write; returns its absolute path. */
export async function checkDirectory(dir: string): Promise<string> {
  const path = resolve(dir);
  for (const name of ["read", "write"] as const) {
    const { state } = await Deno.permissions.query({ name, path });
    if (state !== "granted") {
      throw new Error(
        `No permission to ${name} "${path}": run with --allow-read=${path} --allow-write=${path}`,
      );
    }
  }
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) throw new Error(`No directory "${path}"`);
    throw error;
  }
  if (!info.isDirectory) throw new Error(`"${path}" is not a directory`);
  return path;
}

/** Starts receiving files into `dir` and returns the server's handle. */
export async function serveFiles(dir: string, options: ReceiverOptions = {}): Promise<TcpServer> {
  const path = await checkDirectory(dir);
  const board = new ProgressBoard({
    tty: options.progress,
    log: (line) => log.info(line),
  });
  const log = new Logger({ quiet: options.quiet, sink: board.sink });
  const partials = await PartialStore.open(path, options.partials);
  const receiver = new Receiver(path, partials, {
    ...options,
    onSaved: options.onSaved ?? printSaved,
  }, {
    log,
    board,
  });
  const address = options.address ?? { transport: "tcp", hostname: "0.0.0.0", port: 1234 };
  if (options.token === undefined && !isLoopback(address)) {
    log.error(
      "Warning: listening beyond this machine without --token-file: anyone who can reach " +
        "the port can drop files into " + JSON.stringify(path),
    );
  }
  const idleMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  const headMs = options.headTimeoutMs ?? DEFAULT_HEAD_TIMEOUT_MS;
  return serveTcp((session) => receiver.handle(session), {
    address,
    maxConns: options.maxConns ?? DEFAULT_MAX_CONNS,
    limit: options.limit,
    idleTimeoutMs: idleMs,
    headTimeoutMs: headMs,
    headMessage: errorLine(`Line not completed within ${headMs} ms; closing`),
    idleMessage: errorLine(`Nothing received for ${idleMs} ms; closing`),
    busyMessage: errorLine("Too many senders at once, try again later"),
    signal: options.signal,
    tls: options.tls,
    logger: log,
    onListen: options.onListen,
  });
}

/** Parses a size such as `1048576`, `512K`, `10M`, `1.5G` or `2GiB` into bytes. */
export function parseSize(text: string, name: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(i?B)?$/i.exec(text.trim());
  const exponent = match ? " KMGT".indexOf(match[2].toUpperCase() || " ") : -1;
  const bytes = match ? Math.floor(Number(match[1]) * 1024 ** exponent) : NaN;
  if (!Number.isSafeInteger(bytes)) {
    throw new UsageError(
      `Invalid --${name} "${text}": expected bytes such as 1048576, 512K, 10M or 2G`,
    );
  }
  return bytes;
}

const spec = {
  name: "file_recv",
  summary: "Receives files over TCP into DIR, one file per connection, checked by SHA-256.",
  args: "[ADDR] --dir DIR",
  options: {
    dir: { type: "string", short: "d", arg: "DIR", description: "directory to save files in" },
    "max-size": {
      type: "string",
      arg: "SIZE",
      description: "refuse files larger than SIZE (bytes, or 512K, 10M, 2G) (default none)",
    },
    overwrite: { type: "boolean", description: "replace a file that exists" },
    fsync: {
      type: "boolean",
      description: "flush each file to disk before confirming it (slower, survives a crash)",
    },
    rename: { type: "boolean", description: 'save as "name (1).ext" when name.ext exists' },
    ...serverOptions(["max-conns", "idle-timeout", "head-timeout", "quiet", "cert", "key"], {
      "max-conns": { default: String(DEFAULT_MAX_CONNS), description: "most senders at once" },
      "head-timeout": {
        description: "drop a sender that leaves a started protocol line unfinished this long",
      },
      "idle-timeout": { default: "60s", description: "drop a sender silent this long (0 = never)" },
      quiet: { description: "log only errors" },
    }),
    "token-file": {
      type: "string",
      arg: "FILE",
      description: "accept only senders that present the token in FILE (file_send --token-file)",
    },
    plain: {
      type: "boolean",
      description: "also accept seed 004's bare sender (name, ok, content; unverified)",
    },
    "max-partials": {
      type: "string",
      arg: "N",
      default: String(DEFAULT_MAX_PARTIALS),
      description: "most partial copies of broken transfers kept for a resume",
    },
    "max-partial-bytes": {
      type: "string",
      arg: "SIZE",
      default: `${DEFAULT_MAX_PARTIAL_BYTES / 1024 ** 3}G`,
      description: "most bytes the partial copies hold together",
    },
    "partial-ttl": {
      type: "string",
      arg: "DURATION",
      default: "24h",
      description: "delete a partial copy untouched this long",
    },
  },
  notes: `ADDR is PORT, HOST:PORT or [IPv6]:PORT (default 1234).
Each file is written to a partial copy in DIR/.netkit-partials and moved to
NAME once its size and SHA-256 match; a broken transfer keeps its partial
copy, and the next send of the same file (same name, size and first MiB,
and the same bytes so far) resumes from it. Names are file names or paths
inside DIR (a/b.txt; no "..", no absolute paths, no control characters, at
most 255 bytes); folders are made as needed. Without --token-file,
anyone who can reach the port can drop files: listen on 127.0.0.1, or set
a token.

Examples:
  file_recv 9000 --dir ./inbox
  file_recv 127.0.0.1:9000 --dir /srv/inbox --rename --max-size 2G
  file_recv 9000 --dir ./inbox --token-file ~/.netkit-token
  file_recv 9000 --dir ./inbox --cert cert.pem --key key.pem   (file_send --ca ...)`,
} as const;

/** Receives files until SIGINT or SIGTERM; returns the exit code. */
export function main(args: string[]): Promise<number> {
  return runCommand(spec, args, async ({ values, positionals }) => {
    if (values.dir === undefined) throw new UsageError("Missing --dir DIR");
    if (values.overwrite && values.rename) {
      throw new UsageError("Use either --overwrite or --rename, not both");
    }
    const settings = serverSettings(values, positionals, { defaultPort: 1234 });
    const options: ReceiverOptions = {
      maxSize: values["max-size"] === undefined
        ? undefined
        : parseSize(values["max-size"], "max-size"),
      existing: values.overwrite ? "overwrite" : values.rename ? "rename" : "refuse",
      idleTimeoutMs: settings.idleTimeoutMs,
      headTimeoutMs: settings.headTimeoutMs,
      quiet: settings.quiet,
      fsync: values.fsync,
      tls: settings.tls,
      plain: values.plain,
      token: values["token-file"] === undefined
        ? undefined
        : await readTokenFile(values["token-file"]),
      partials: {
        maxCount: parseIntOption(values["max-partials"], "max-partials", { min: 0 }),
        maxBytes: parseSize(values["max-partial-bytes"], "max-partial-bytes"),
        ttlMs: parseDurationOption(values["partial-ttl"], "partial-ttl"),
      },
    };
    const dir = values.dir;
    return runServer(
      settings,
      (run) => serveFiles(dir, { ...options, ...run }),
      { moduleUrl: import.meta.url },
    );
  });
}

if (import.meta.main) Deno.exit(await main(Deno.args));
