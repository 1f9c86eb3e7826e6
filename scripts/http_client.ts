#!/usr/bin/env -S deno run --allow-net --allow-read --allow-write
/**
 * http_client: the HTTP client of seed 002, with the flags of curl. Sends
 * one request and writes the body to stdout (or `-o FILE`); `-i` puts the
 * status line and headers before it, `-I` sends HEAD and prints only
 * those. `-H` adds headers, `-d`/`--data-binary` send a body (`@FILE`
 * reads a file, `@-` stdin) and make the request a POST unless `-X` says
 * otherwise; `-L` follows redirects. Exits 1 on an HTTP error status (the
 * status line and body go to stderr), on a network error (one line) and
 * on a timeout.
 *
 *     deno task http_client http://localhost:8080/hello
 *     deno task http_client -i -H 'Accept: text/plain' -d 'a=1' http://localhost:8080/form
 *
 * @module
 */
import {
  parseDurationOption,
  parseIntOption,
  runCommand,
  usage,
  UsageError,
} from "../lib/cli/cli.ts";
import { parseHeaders } from "../lib/cli/headers.ts";
import { readAtMost } from "../lib/io/bounded_read.ts";
import { printSync } from "../lib/io/print.ts";
import {
  networkErrorText,
  TLS_URL_CLIENT_OPTIONS,
  type TlsClientSettings,
  tlsClientSettings,
  tlsHttpClient,
} from "../lib/net/tls.ts";

/** Exit codes beyond 0, 1 and 2 would surprise scripts; every failure is 1. */
const EXIT_FAILURE = 1;
/** Largest request body read from a file or stdin. */
export const MAX_DATA_BYTES = 64 * 1024 * 1024;
const encoder = new TextEncoder();

/** Options for {@link fetchBody}. */
export interface FetchOptions {
  /** Give up after this long, body included. Default 10000 ms. */
  timeoutMs?: number;
  /** Largest body accepted, in bytes. Default 64 MiB. */
  maxBytes?: number;
  /** HTTP method. Default GET, or POST with a body. */
  method?: string;
  /** Request headers. Default none beyond fetch's own. */
  headers?: Headers;
  /** Request body. Default none. */
  body?: Uint8Array<ArrayBuffer>;
  /** Follow redirects (curl's -L). Default false: a 3xx answer is the result. */
  followRedirects?: boolean;
  /** How https:// URLs check the server: extra CAs. Default the system's roots. */
  tls?: TlsClientSettings;
}

/** What {@link fetchBody} returns. */
export interface FetchResult {
  status: number;
  statusText: string;
  headers: Headers;
  body: Uint8Array;
}

/**
 * The runtime's error for a failed request, cut to its last reason
 * (`Connection refused`, `dns error: ...`): the chain
 * `error sending request for url (...): client error (Connect): ...`
 * says nothing the URL does not.
 */
export function fetchFailureReason(error: unknown): string {
  const tls = networkErrorText(error);
  if (tls.startsWith("TLS handshake failed")) return tls;
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
  const text = cause instanceof Error ? cause.message : String(cause);
  return text
    .replace(/^error sending request for url \([^)]*\): /, "")
    .replace(/^client error \([^)]*\): /, "")
    .replace(/^tcp connect error: /, "")
    .replace(/ \(os error \d+\)$/, "")
    .replaceAll("\n", " ");
}

/** Fetches a URL within a time and size bound; throws a one-line error otherwise. */
export async function fetchBody(url: URL, options: FetchOptions = {}): Promise<FetchResult> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const maxBytes = options.maxBytes ?? 64 * 1024 * 1024;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  using client = tlsHttpClient(options.tls);
  try {
    const response = await fetch(url, {
      method: options.method ?? (options.body ? "POST" : "GET"),
      headers: options.headers,
      body: options.body,
      redirect: options.followRedirects ? "follow" : "manual",
      signal: controller.signal,
      client,
    }).catch((error) => {
      if (controller.signal.aborted) throw error;
      throw new Error(`Cannot fetch ${url}: ${fetchFailureReason(error)}`);
    });
    const body = response.body ? await readAtMost(response.body, maxBytes) : new Uint8Array(0);
    if (body === null) {
      controller.abort();
      throw new RangeError(`The body of ${url} exceeds ${maxBytes} bytes (--max-bytes)`);
    }
    return {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
      body,
    };
  } catch (error) {
    if (controller.signal.aborted && !(error instanceof RangeError)) {
      throw new Error(`Timed out after ${timeoutMs} ms fetching ${url}`);
    }
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

/** `a` followed by `b` in one buffer. */
function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const joined = new Uint8Array(a.byteLength + b.byteLength);
  joined.set(a);
  joined.set(b, a.byteLength);
  return joined;
}

/** The status line and headers as curl's `-i` shows them, ending in a blank line. */
export function formatHead(result: FetchResult): string {
  let text = `HTTP/1.1 ${result.status} ${result.statusText}\r\n`;
  for (const [name, value] of result.headers) text += `${name}: ${value}\r\n`;
  return text + "\r\n";
}

/**
 * Reads a `-d`/`--data-binary` value: the text itself, or with `@` the
 * bytes of a file (`@-` stdin), bounded by {@link MAX_DATA_BYTES}.
 */
export async function readData(value: string, option: string): Promise<Uint8Array> {
  if (!value.startsWith("@")) return encoder.encode(value);
  const path = value.slice(1);
  let stream: ReadableStream<Uint8Array>;
  try {
    stream = path === "-" ? Deno.stdin.readable : (await Deno.open(path)).readable;
  } catch (error) {
    const why = (error as Error).message.replace(/ \(os error \d+\).*$/, "");
    throw new Error(`Cannot read ${option} "${value}": ${why}`);
  }
  const bytes = await readAtMost(stream, MAX_DATA_BYTES);
  if (bytes === null) {
    throw new RangeError(`Cannot read ${option} "${value}": larger than ${MAX_DATA_BYTES} bytes`);
  }
  return bytes;
}

/** Joins the request body from `-d` (newlines of files dropped, as curl) and `--data-binary`. */
async function requestBody(
  data: string[],
  binary: string[],
): Promise<Uint8Array<ArrayBuffer> | undefined> {
  if (data.length === 0 && binary.length === 0) return undefined;
  const parts: Uint8Array[] = [];
  for (const value of data) {
    const bytes = await readData(value, "-d");
    parts.push(value.startsWith("@") ? bytes.filter((b) => b !== 0x0a && b !== 0x0d) : bytes);
  }
  for (const value of binary) parts.push(await readData(value, "--data-binary"));
  const joined: number[] = [];
  parts.forEach((part, i) => {
    if (i > 0) joined.push(0x26); // curl joins several -d with "&"
    for (const b of part) joined.push(b);
  });
  return Uint8Array.from(joined);
}

const spec = {
  name: "http_client",
  summary: "Sends one HTTP request and prints the body; exits 1 on HTTP errors and timeouts.",
  args: "URL",
  minArgs: 1,
  options: {
    header: {
      type: "string",
      short: "H",
      multiple: true,
      arg: "'NAME: VALUE'",
      description: "request header",
    },
    data: {
      type: "string",
      short: "d",
      multiple: true,
      arg: "TEXT|@FILE",
      description: "request body (POST unless -X); @FILE drops newlines, @- is stdin",
    },
    "data-binary": {
      type: "string",
      multiple: true,
      arg: "TEXT|@FILE",
      description: "request body sent exactly as given (@FILE, @- stdin)",
    },
    request: { type: "string", short: "X", arg: "METHOD", description: "method (default GET)" },
    method: { type: "string", arg: "METHOD", description: "the same as --request" },
    include: {
      type: "boolean",
      short: "i",
      description: "print the status line and headers before the body",
    },
    head: { type: "boolean", short: "I", description: "send HEAD; print the status and headers" },
    output: { type: "string", short: "o", arg: "FILE", description: "write the body to FILE" },
    location: { type: "boolean", short: "L", description: "follow redirects" },
    "max-time": {
      type: "string",
      arg: "DURATION",
      description: "give up after this long, body included (default 10s)",
    },
    timeout: { type: "string", arg: "DURATION", description: "the same as --max-time" },
    "max-bytes": {
      type: "string",
      arg: "BYTES",
      default: "67108864",
      description: "largest body accepted",
    },
    ...TLS_URL_CLIENT_OPTIONS,
  },
  notes: `The flags are curl's. A DURATION is seconds (curl's --max-time 5) or 500ms, 2m.
A 3xx answer is printed as it is unless -L. Header names print in lower case.
With -d the content type is application/x-www-form-urlencoded unless -H sets one.

Exit status: 0 for a 2xx or 3xx answer, 1 for a 4xx or 5xx answer (status line
and body on stderr, like curl -f), a network error or a timeout, 2 for bad usage.

Examples:
  http_client http://localhost:8080/hello
  http_client -i -H 'Accept: application/json' http://localhost:8080/
  http_client -X PUT --data-binary @photo.jpg -H 'Content-Type: image/jpeg' http://h/p
  http_client -L -o page.html --max-time 5 http://example.com/
  http_client --ca ca.pem https://localhost:8443/hello   (curl --cacert; see docs/tls.md)`,
} as const;

/** Runs the client; returns the exit code. */
export function main(args: string[]): Promise<number> {
  return runCommand(spec, args, async ({ values, positionals }) => {
    let url: URL;
    try {
      url = new URL(positionals[0].includes("://") ? positionals[0] : `http://${positionals[0]}`);
    } catch {
      throw new UsageError(`Invalid URL "${positionals[0]}": expected http://host:port/path`);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new UsageError(`Invalid URL "${positionals[0]}": the scheme must be http or https`);
    }
    const method = values.request ?? values.method;
    if (method !== undefined && !/^[A-Za-z]+$/.test(method)) {
      throw new UsageError(`Invalid -X "${method}": expected a method such as GET or POST`);
    }
    const timeout = values["max-time"] ?? values.timeout ?? "10s";
    const headers = usage(() => parseHeaders(values.header));
    const body = await requestBody(values.data, values["data-binary"]);
    if (body && values.head) throw new UsageError("Give -I or a body (-d), not both");
    if (body && /^(GET|HEAD)$/i.test(method ?? "")) {
      // fetch cannot send one; curl would, and most servers ignore it.
      throw new UsageError(`-X ${method} cannot carry a body (-d): use POST, PUT or PATCH`);
    }
    if (values.data.length > 0 && !headers.has("content-type")) {
      headers.set("content-type", "application/x-www-form-urlencoded");
    }
    const tls = tlsClientSettings(values);
    if (tls && url.protocol !== "https:") {
      throw new UsageError(`--ca and --insecure need an https:// URL, not "${positionals[0]}"`);
    }
    tlsHttpClient(tls)?.close(); // --insecure is refused here, as bad usage
    const result = await fetchBody(url, {
      timeoutMs: parseDurationOption(timeout, "max-time"),
      maxBytes: parseIntOption(values["max-bytes"], "max-bytes", { min: 1 }),
      method: values.head ? "HEAD" : method?.toUpperCase(),
      headers,
      body,
      followRedirects: values.location,
      tls,
    });
    if (result.status >= 400) {
      printSync(
        `http_client: HTTP ${result.status} ${result.statusText} from ${url}\n`,
        Deno.stderr,
      );
      printSync(result.body, Deno.stderr);
      return EXIT_FAILURE;
    }
    const head = values.include || values.head ? encoder.encode(formatHead(result)) : null;
    if (values.output === undefined) {
      if (head) printSync(head);
      printSync(result.body);
      return 0;
    }
    try {
      // As curl: with -i the head goes into the file too, stdout stays empty.
      await Deno.writeFile(values.output, head ? concat(head, result.body) : result.body);
    } catch (error) {
      throw new Error(`Cannot write "${values.output}": ${(error as Error).message}`);
    }
    return 0;
  });
}

if (import.meta.main) Deno.exit(await main(Deno.args));
