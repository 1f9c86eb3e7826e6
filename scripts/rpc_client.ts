#!/usr/bin/env -S deno run --allow-net --allow-read
/**
 * rpc_client: calls one JSON-RPC method over TCP (Go's `net/rpc/jsonrpc`
 * dialect by default, so it talks to Go `jsonrpc.ServeConn` servers) or
 * HTTP (JSON-RPC 2.0), or with `--dialect gob` a Go `net/rpc` method in
 * gob (over TCP or HTTP CONNECT), and prints the result as one line of
 * JSON, the only thing on stdout, so `| jq` works. For the seeds' methods the seeds'
 * sentence (`Arith: 7*8=56`) follows on stdout in a terminal, on stderr
 * otherwise. An RPC error is printed on stderr and exits 1.
 *
 *     deno task rpc_client 127.0.0.1:1234 Arith.Multiply '{"A":7,"B":8}'
 *     deno task rpc_client --http http://127.0.0.1:8808/rpc Algorithm.Sum '[3,4]'
 *
 * @module
 */
import { dial, type DialOptions } from "../lib/net/dial.ts";
import {
  networkErrorText,
  TLS_CLIENT_OPTIONS,
  type TlsClientSettings,
  tlsClientSettings,
  tlsHttpClient,
} from "../lib/net/tls.ts";
import { type NetAddress, parseAddress } from "../lib/net/addr.ts";
import { parseDurationOption, runCommand, usage, UsageError } from "../lib/cli/cli.ts";
import { JsonValueReader } from "../lib/rpc/json_stream.ts";
import {
  type DecodedReply,
  decodeReply,
  type Dialect,
  encodeRequest,
  RpcError,
} from "../lib/rpc/jsonrpc.ts";
import { writeAll } from "../lib/io/lines.ts";
import { prependReader, type Reader, readUntil } from "../lib/io/read_buffer.ts";
import { httpHeadLength } from "../lib/net/http_front.ts";
import { callGob, GO_RPC_PATH, gobToJson } from "../lib/rpc/gob_rpc.ts";
import { plainOutput, printSync } from "../lib/io/print.ts";

/** Bound on one reply, in bytes. */
const MAX_REPLY_BYTES = 16 * 1024 * 1024;
const encoder = new TextEncoder();

/** Options for {@link call}. */
export interface CallOptions {
  /** Wire dialect: JSON-RPC (`go`, `2.0`) or Go's gob. Default `go` over TCP, `2.0` over HTTP. */
  dialect?: Dialect | "gob";
  /** Give up after this long. Default 10000 ms. */
  timeoutMs?: number;
  /** TLS for a TCP target (an https:// URL always speaks it), with `caCerts` for both. */
  tls?: TlsClientSettings;
}

/** Where to call: a TCP address or an HTTP URL. */
export type Target = NetAddress | URL;

/**
 * Calls `method` with `params` (in Go's dialect, the one argument) and
 * returns the decoded reply; rejects on network failures and timeouts.
 */
export async function call(
  target: Target,
  method: string,
  params: unknown,
  options: CallOptions = {},
): Promise<DecodedReply> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const signal = AbortSignal.timeout(timeoutMs);
  if (options.dialect === "gob") {
    return await callGobTarget(target, method, params, signal, { tls: options.tls, timeoutMs });
  }
  if (target instanceof URL) {
    return await callHttp(
      target,
      encodeRequest(options.dialect ?? "2.0", method, params, 1),
      signal,
      options.tls,
    );
  }
  const request = encodeRequest(options.dialect ?? "go", method, params, 1);
  return await callTcp(target, request, signal, { tls: options.tls, timeoutMs });
}

/** Longest HTTP answer to CONNECT read, in bytes. */
const MAX_CONNECT_REPLY_BYTES = 4096;

/**
 * Calls over Go's gob RPC: straight over TCP, or through `CONNECT` to the
 * URL's path (Go's `/_goRPC_` when it has none), as `rpc.DialHTTP` does.
 */
async function callGobTarget(
  target: Target,
  method: string,
  params: unknown,
  signal: AbortSignal,
  dialOptions: DialOptions,
): Promise<DecodedReply> {
  const hostname = target instanceof URL
    ? target.hostname.replace(/^\[|\]$/g, "")
    : target.hostname;
  const port = target instanceof URL ? Number(target.port || 80) : target.port;
  if (target instanceof URL && target.protocol !== "http:") {
    throw new RangeError(`Cannot CONNECT through ${target.protocol}: gob over HTTP needs http://`);
  }
  const conn = await dial({ transport: "tcp", hostname, port }, dialOptions);
  return await closingOnAbort(conn, signal, async () => {
    let source: Reader = conn;
    if (target instanceof URL) {
      const path = target.pathname === "/" ? GO_RPC_PATH : target.pathname;
      await writeAll(conn, encoder.encode(`CONNECT ${path} HTTP/1.0\n\n`));
      const head = await readUntil(conn, (b) => httpHeadLength(b) >= 0, MAX_CONNECT_REPLY_BYTES);
      const end = head ? httpHeadLength(head) : -1;
      const status = new TextDecoder().decode(
        head?.subarray(0, head.indexOf(10)) ?? new Uint8Array(),
      ).trim();
      if (!/^HTTP\/1\.[01] 200\b/.test(status) || end < 0) {
        throw new Error(`CONNECT ${path} refused: ${JSON.stringify(status || "no answer")}`);
      }
      source = prependReader(head!.subarray(end), conn);
    }
    const reply = await callGob(
      { read: (p) => source.read(p), write: (p) => conn.write(p) },
      method,
      params,
    );
    if (reply.error !== undefined) return { id: 0, error: new RpcError(0, reply.error) };
    return { id: 0, result: gobToJson(reply.result) };
  });
}

async function callTcp(
  address: NetAddress,
  request: string,
  signal: AbortSignal,
  dialOptions: DialOptions,
): Promise<DecodedReply> {
  const conn = await dial(address, dialOptions);
  return await closingOnAbort(conn, signal, async () => {
    await writeAll(conn, encoder.encode(request + "\n"));
    const reader = new JsonValueReader(conn, { maxValueBytes: MAX_REPLY_BYTES });
    for await (const item of reader) {
      if (typeof item !== "string") throw new SyntaxError(`Bad reply: ${item.message}`);
      const reply = decodeReply(JSON.parse(item));
      if (reply.id === 1 || reply.id === null) return reply;
    }
    throw new Deno.errors.UnexpectedEof("The server closed the connection without replying");
  });
}

/**
 * Runs `exchange` on `conn` and closes it afterwards; aborting `signal`
 * closes it at once, which ends a pending read, and the call then rejects
 * with `TimedOut`.
 */
async function closingOnAbort<T>(
  conn: { close(): void },
  signal: AbortSignal,
  exchange: () => Promise<T>,
): Promise<T> {
  const onAbort = () => conn.close();
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    return await exchange();
  } catch (error) {
    if (signal.aborted) throw new Deno.errors.TimedOut("No reply in time");
    throw error;
  } finally {
    signal.removeEventListener("abort", onAbort);
    try {
      conn.close();
    } catch {
      // Closed by the timeout.
    }
  }
}

async function callHttp(
  url: URL,
  request: string,
  signal: AbortSignal,
  tls: TlsClientSettings | undefined,
): Promise<DecodedReply> {
  using client = tlsHttpClient(tls);
  let text: string;
  let response: Response;
  try {
    response = await fetch(url, {
      method: "POST",
      body: request,
      headers: { "content-type": "application/json" },
      signal,
      client,
    });
    text = await response.text();
  } catch (error) {
    throw new Error(`Cannot call ${url.href}: ${networkErrorText(error)}`, { cause: error });
  }
  if (response.status === 204) return { id: 1, result: null };
  try {
    return decodeReply(JSON.parse(text));
  } catch {
    throw new Error(`HTTP ${response.status} ${response.statusText}: ${text.trim().slice(0, 200)}`);
  }
}

/** The seeds' sentence for their methods, or null for any other method. */
export function seedSentence(method: string, params: unknown, result: unknown): string | null {
  const arg = (names: string[]): unknown[] => {
    if (Array.isArray(params)) {
      const first = params[0];
      if (params.length === 1 && typeof first === "object" && first !== null) {
        return names.map((n) => (first as Record<string, unknown>)[n]);
      }
      return params;
    }
    const named = (params ?? {}) as Record<string, unknown>;
    return names.map((n) => named[n]);
  };
  switch (method) {
    case "Arith.Multiply": {
      const [a, b] = arg(["A", "B"]);
      return `Arith: ${a}*${b}=${result}`;
    }
    case "Algorithm.Sum": {
      const [x, y] = arg(["X", "Y"]);
      return `Algorithm 和为: ${x}+${y}=${result}`;
    }
    case "Programmer.GetSkill":
      return `receive ${result}`;
  }
  return null;
}

const spec = {
  name: "rpc_client",
  summary: "Calls a JSON-RPC or Go gob RPC method over TCP or HTTP and prints the result.",
  args: "ADDR METHOD PARAMS_JSON  (or --http URL METHOD PARAMS_JSON)",
  minArgs: 2,
  maxArgs: 3,
  options: {
    http: { type: "string", arg: "URL", description: "call over HTTP POST instead of TCP" },
    dialect: {
      type: "string",
      arg: "go|2.0|gob",
      description: "wire dialect (default go over TCP, 2.0 over HTTP)",
    },
    timeout: {
      type: "string",
      arg: "DURATION",
      default: "10s",
      description: "give up after this long",
    },
    ...TLS_CLIENT_OPTIONS,
  },
  notes: `PARAMS_JSON is the argument: in Go's dialect one value (sent as [value]),
in 2.0 an object (named params) or an array (positional). With gob (Go's
net/rpc, rpc.Dial) it is the one argument, objects sent as a struct and
integers as int; with --http, gob goes through CONNECT to the URL's path
(/_goRPC_ if none), as rpc.DialHTTP does.

The result is printed as one line of JSON, the only thing on stdout when it is
not a terminal (rpc_client ... | jq). The seeds' sentence for their methods
(Arith: 7*8=56) follows it in a terminal, and goes to stderr otherwise.

Examples:
  rpc_client 127.0.0.1:1234 Arith.Multiply '{"A":7,"B":8}'
  rpc_client --dialect 2.0 127.0.0.1:1234 Algorithm.Sum '[3,4]'
  rpc_client --http http://127.0.0.1:8808/rpc Programmer.GetSkill '{"Java":"Java","Go":"Go"}'
  rpc_client --dialect gob 127.0.0.1:1234 Arith.Multiply '{"A":7,"B":8}'
  rpc_client --dialect gob --http http://127.0.0.1:8808 Algorithm.Sum '{"X":3,"Y":4}'
  rpc_client --ca ca.pem localhost:1234 Arith.Multiply '{"A":7,"B":8}'   (TLS, docs/tls.md)
  rpc_client --ca ca.pem --http https://localhost:8808/rpc Algorithm.Sum '[3,4]'`,
} as const;

/** Makes one call and prints its result; returns the exit code. */
export function main(args: string[]): Promise<number> {
  return runCommand(spec, args, async ({ values, positionals }) => {
    const http = values.http;
    if (http === undefined && positionals.length < 3) {
      throw new UsageError("Missing argument: ADDR METHOD PARAMS_JSON");
    }
    if (http !== undefined && positionals.length > 2) {
      throw new UsageError(`Unexpected argument "${positionals[0]}" with --http`);
    }
    const [addrText, method, paramsText] = http === undefined ? positionals : ["", ...positionals];
    const target: Target = usage(() => {
      if (http !== undefined) {
        const url = new URL(http);
        if (url.protocol !== "http:" && url.protocol !== "https:") {
          throw new RangeError(`Invalid --http "${http}": expected an http:// or https:// URL`);
        }
        return url;
      }
      return parseAddress(addrText, { allowUnix: false, requireHost: true }) as NetAddress;
    });
    const dialect = values.dialect;
    if (dialect !== undefined && dialect !== "go" && dialect !== "2.0" && dialect !== "gob") {
      throw new UsageError(`Invalid --dialect "${dialect}": must be go, 2.0 or gob`);
    }
    const params = usage(() => {
      try {
        return JSON.parse(paramsText);
      } catch (error) {
        throw new SyntaxError(
          `Invalid PARAMS_JSON ${JSON.stringify(paramsText)}: ${(error as Error).message}`,
        );
      }
    });
    const wire = dialect ?? (http === undefined ? "go" : "2.0");
    if (wire === "2.0" && (typeof params !== "object" || params === null)) {
      throw new UsageError(`Invalid PARAMS_JSON "${paramsText}": 2.0 needs an object or an array`);
    }
    const timeoutMs = parseDurationOption(values.timeout, "timeout");
    const tls = tlsClientSettings(values);
    if (target instanceof URL) {
      if (tls && target.protocol === "http:") {
        throw new UsageError(`--tls, --ca and --insecure need an https:// URL, not "${http}"`);
      }
      tlsHttpClient(tls)?.close(); // --insecure is refused here, as bad usage
    }
    const reply = await call(target, method, params, { dialect: wire, timeoutMs, tls });
    if (reply.error) {
      const code = reply.error.code === 0 ? "" : ` (code ${reply.error.code})`;
      throw new RpcError(reply.error.code, `${method}: ${reply.error.message}${code}`);
    }
    printSync(JSON.stringify(reply.result) + "\n");
    const sentence = seedSentence(method, params, reply.result);
    // The book's sentence is for people: in a pipe stdout carries the JSON alone.
    if (sentence !== null) {
      printSync(sentence + "\n", plainOutput(false) ? Deno.stderr : Deno.stdout);
    }
    return 0;
  });
}

if (import.meta.main) Deno.exit(await main(Deno.args));
