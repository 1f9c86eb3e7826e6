#!/usr/bin/env -S deno run --allow-net
/**
 * http_client: the HTTP client of seed 002. Fetches a URL and prints the
 * body; exits 1 on an HTTP error status (the status line and body go to
 * stderr), on a network error and on a timeout.
 *
 *     deno task http_client http://localhost:8080/hello
 *
 * @module
 */
import { parseDurationOption, parseIntOption, runCommand, UsageError } from "../lib/cli/cli.ts";
import { readAtMost } from "../lib/io/bounded_read.ts";
import { writeAllSync } from "../lib/io/print.ts";

/** Exit codes beyond 0, 1 and 2 would surprise scripts; every failure is 1. */
const EXIT_FAILURE = 1;

/** Options for {@link fetchBody}. */
export interface FetchOptions {
  /** Give up after this long, body included. Default 10000 ms. */
  timeoutMs?: number;
  /** Largest body accepted, in bytes. Default 64 MiB. */
  maxBytes?: number;
  /** HTTP method. Default GET. */
  method?: string;
}

/** What {@link fetchBody} returns. */
export interface FetchResult {
  status: number;
  statusText: string;
  body: Uint8Array;
}

/** Fetches a URL within a time and size bound; throws a clear error otherwise. */
export async function fetchBody(url: URL, options: FetchOptions = {}): Promise<FetchResult> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const maxBytes = options.maxBytes ?? 64 * 1024 * 1024;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    const response = await fetch(url, { method: options.method, signal: controller.signal });
    const body = response.body ? await readAtMost(response.body, maxBytes) : new Uint8Array(0);
    if (body === null) {
      controller.abort();
      throw new RangeError(`The body of ${url} exceeds ${maxBytes} bytes (--max-bytes)`);
    }
    return { status: response.status, statusText: response.statusText, body };
  } catch (error) {
    if (controller.signal.aborted && !(error instanceof RangeError)) {
      throw new Error(`Timed out after ${timeoutMs} ms fetching ${url}`);
    }
    const cause = error instanceof Error && error.cause instanceof Error ? error.cause : null;
    if (cause) throw new Error(`Cannot fetch ${url}: ${cause.message}`);
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

const spec = {
  name: "http_client",
  summary: "Fetches a URL and prints the body; exits 1 on HTTP errors and timeouts.",
  args: "URL",
  minArgs: 1,
  options: {
    timeout: {
      type: "string",
      arg: "DURATION",
      default: "10s",
      description: "give up after this long, body included",
    },
    "max-bytes": {
      type: "string",
      arg: "BYTES",
      default: "67108864",
      description: "largest body accepted",
    },
    method: { type: "string", short: "X", arg: "METHOD", default: "GET", description: "method" },
  },
  notes: `Exit status: 0 for a 2xx or 3xx answer, 1 for a 4xx or 5xx answer, a network
error or a timeout, 2 for bad usage.

Example:
  http_client http://localhost:8080/hello`,
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
    if (!/^[A-Za-z]+$/.test(values.method)) {
      throw new UsageError(`Invalid --method "${values.method}"`);
    }
    const result = await fetchBody(url, {
      timeoutMs: parseDurationOption(values.timeout, "timeout"),
      maxBytes: parseIntOption(values["max-bytes"], "max-bytes", { min: 1 }),
      method: values.method.toUpperCase(),
    });
    if (result.status >= 400) {
      const line = `http_client: HTTP ${result.status} ${result.statusText} from ${url}\n`;
      writeAllSync(Deno.stderr, new TextEncoder().encode(line));
      writeAllSync(Deno.stderr, result.body);
      return EXIT_FAILURE;
    }
    writeAllSync(Deno.stdout, result.body);
    return 0;
  });
}

if (import.meta.main) Deno.exit(await main(Deno.args));
