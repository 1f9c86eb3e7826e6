/**
 * The `-H "Name: value"` option that curl, websocat and amqp-tools share,
 * parsed once for http_client, ws_client and mq_send.
 *
 * @module
 */
import { UsageError } from "./cli.ts";

/** A header name as HTTP allows it (RFC 9110 token). */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Splits `-H "Name: value"` options into name and value pairs, quoting a bad one. */
export function parseHeaderPairs(values: string[]): Array<[string, string]> {
  return values.map((value) => {
    const colon = value.indexOf(":");
    const name = colon > 0 ? value.slice(0, colon).trim() : "";
    if (!TOKEN.test(name)) throw new UsageError(`Invalid -H "${value}": expected "Name: value"`);
    return [name, value.slice(colon + 1).trim()];
  });
}

/** Parses `-H "Name: value"` options into HTTP headers, quoting a bad one. */
export function parseHeaders(values: string[], origin?: string): Headers {
  const headers = new Headers();
  for (const [i, [name, value]] of parseHeaderPairs(values).entries()) {
    try {
      headers.append(name, value);
    } catch {
      throw new UsageError(`Invalid -H "${values[i]}": the value is not allowed in a header`);
    }
  }
  if (origin !== undefined) headers.set("origin", origin);
  return headers;
}
