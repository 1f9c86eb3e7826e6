/**
 * The HTTP/1.1 side of the WebSocket engine: a strict, bounded request head
 * parser, the handshake's checks and `Sec-WebSocket-Accept`, the Origin
 * policy against Cross-Site WebSocket Hijacking, and the bytes of a plain
 * response.
 *
 * @module
 */

/** Longest request head (request line and headers); a longer one gets 431. */
export const MAX_HEAD_BYTES = 8 * 1024;
/** Time a client has to send its whole request head before the connection is closed. */
export const HEAD_TIMEOUT_MS = 10_000;
/** The GUID RFC 6455 appends to the key. */
const WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/** A key is 16 bytes in base64. */
const KEY_PATTERN = /^[A-Za-z0-9+/]{21}[AQgw]==$/;
/** An HTTP token (method, header name). */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** A request target: visible ASCII only (no spaces, controls or raw non-ASCII). */
const TARGET = /^[!-~]+$/;
/** A header value: visible ASCII, obs-text, spaces and tabs; no control characters. */
const FIELD_VALUE = /^[\t -~\u0080-\u00ff]*$/;
const latin1 = new TextDecoder("latin1");
const encoder = new TextEncoder();

/** A request the head parser refused, with the status to answer. */
export class HttpError extends Error {
  /** The HTTP status: 400, 413, 431, 501 or 505. */
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.name = "HttpError";
    this.status = status;
  }
}

/** Which foreign Origins may open a WebSocket: a list of origins, or `"*"` for any. */
export type OriginPolicy = "*" | readonly string[];

/**
 * Parses `--allow-origin` values into an {@link OriginPolicy}: each value is
 * a URL such as `https://example.com` (only its origin counts) or `*`.
 * Throws a `SyntaxError` quoting a value that is no URL.
 */
export function parseAllowedOrigins(values: readonly string[]): OriginPolicy {
  if (values.includes("*")) return "*";
  return values.map((value) => {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw new SyntaxError(
        `Invalid --allow-origin "${value}": expected a URL such as https://host`,
      );
    }
    if (url.origin === "null") {
      throw new SyntaxError(`Invalid --allow-origin "${value}": it has no origin (use http(s)://)`);
    }
    return url.origin;
  });
}

/**
 * Whether a handshake may proceed: no `Origin` header (command-line
 * clients) is allowed, an Origin whose host equals the request's `Host` is
 * allowed, and otherwise the Origin must be in `allowed` (or `allowed` is
 * `"*"`).
 */
export function originAllowed(request: Request, allowed: OriginPolicy = []): boolean {
  const origin = request.headers.get("origin");
  if (origin === null || allowed === "*") return true;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  const host = request.headers.get("host")?.toLowerCase();
  if (host !== undefined && url.origin !== "null" && url.host === host) return true;
  return allowed.includes(url.origin);
}

/** The index just past the blank line that ends a head in `buf[start..end)`, or -1. */
export function findHeadEnd(buf: Uint8Array, start: number, end: number): number {
  for (let i = Math.max(start, start + 3); i < end; i++) {
    if (buf[i] === 0x0a && buf[i - 1] === 0x0d && buf[i - 2] === 0x0a && buf[i - 3] === 0x0d) {
      return i + 1;
    }
  }
  return -1;
}

/**
 * Parses a request head (the bytes before the blank line, without it) into
 * a `Request` for `http://HOST/target`. Strict: HTTP/1.1 only (1.0 too for
 * plain pages), origin-form targets, token methods and header names, no
 * folded lines, exactly one Host, and no body (Content-Length above 0 or any
 * Transfer-Encoding is 413).
 */
export function parseRequestHead(head: Uint8Array): Request {
  const lines = latin1.decode(head).split("\r\n");
  const requestLine = lines[0].split(" ");
  if (requestLine.length !== 3) throw new HttpError(400, "Malformed request line");
  const [method, target, version] = requestLine;
  if (!TOKEN.test(method)) throw new HttpError(400, `Malformed method "${method}"`);
  if (version !== "HTTP/1.1" && version !== "HTTP/1.0") {
    throw new HttpError(505, `Unsupported version "${version.slice(0, 20)}"`);
  }
  if (!target.startsWith("/") || !TARGET.test(target)) {
    throw new HttpError(400, "Malformed request target");
  }
  const headers = new Headers();
  let hosts = 0;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    const colon = line.indexOf(":");
    if (colon <= 0) throw new HttpError(400, "Malformed header line");
    const name = line.slice(0, colon);
    const value = line.slice(colon + 1).trim();
    if (!TOKEN.test(name)) throw new HttpError(400, `Malformed header name "${name.slice(0, 40)}"`);
    if (!FIELD_VALUE.test(value)) throw new HttpError(400, `Malformed value of "${name}"`);
    if (name.toLowerCase() === "host") hosts++;
    headers.append(name, value);
  }
  if (hosts > 1 || (hosts === 0 && version === "HTTP/1.1")) {
    throw new HttpError(400, "Exactly one Host header is required");
  }
  const length = headers.get("content-length");
  if (headers.has("transfer-encoding") || (length !== null && length.trim() !== "0")) {
    throw new HttpError(413, "Request bodies are not accepted");
  }
  const host = headers.get("host") ?? "localhost";
  let url: URL;
  try {
    url = new URL(target, `http://${host}`);
  } catch {
    throw new HttpError(400, "Malformed Host header");
  }
  // A method the fetch standard forbids (CONNECT, TRACE) throws here: 405 for it.
  try {
    return new Request(url, { method, headers });
  } catch {
    return new Request(url, { method: "OPTIONS", headers });
  }
}

/** Why a request for a WebSocket path cannot be upgraded: the response to send, or null if it can. */
export function handshakeRefusal(request: Request): Response | null {
  const headers = request.headers;
  const upgrade = headers.get("upgrade")?.toLowerCase() ?? "";
  const connection = headers.get("connection")?.toLowerCase() ?? "";
  const asksUpgrade = upgrade.split(",").some((v) => v.trim() === "websocket") &&
    connection.split(",").some((v) => v.trim() === "upgrade");
  if (request.method !== "GET" || !asksUpgrade || headers.get("sec-websocket-version") !== "13") {
    return new Response("Upgrade Required: this path speaks WebSocket version 13\n", {
      status: 426,
      headers: {
        upgrade: "websocket",
        connection: "Upgrade",
        "sec-websocket-version": "13",
        "content-type": "text/plain; charset=utf-8",
      },
    });
  }
  const key = headers.get("sec-websocket-key");
  if (key === null || !KEY_PATTERN.test(key)) {
    return new Response("Bad Request: missing or malformed Sec-WebSocket-Key\n", { status: 400 });
  }
  return null;
}

/** The `Sec-WebSocket-Accept` value for a client's key. */
export async function acceptKey(key: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-1", encoder.encode(key + WS_GUID));
  let binary = "";
  for (const byte of new Uint8Array(digest)) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/** The 101 response head that completes a handshake. */
export async function switchingProtocolsHead(key: string): Promise<Uint8Array> {
  return encoder.encode(
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
      `Sec-WebSocket-Accept: ${await acceptKey(key)}\r\n\r\n`,
  );
}

const STATUS_TEXT: Record<number, string> = {
  200: "OK",
  400: "Bad Request",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  413: "Content Too Large",
  426: "Upgrade Required",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  503: "Service Unavailable",
  505: "HTTP Version Not Supported",
};

/** A short plain-text error response. */
export function errorResponse(status: number, message: string): Response {
  return new Response(`${STATUS_TEXT[status] ?? "Error"}: ${message}\n`, {
    status,
    headers: { "content-type": "text/plain; charset=utf-8" },
  });
}

/**
 * The bytes of a response: status line, headers, `Content-Length`,
 * `Connection: close` (one request per connection), and the body unless
 * the request was `HEAD`.
 */
export async function encodeResponse(response: Response, head = false): Promise<Uint8Array> {
  const body = new Uint8Array(await response.arrayBuffer());
  const reason = response.statusText || STATUS_TEXT[response.status] || "Unknown";
  let text = `HTTP/1.1 ${response.status} ${reason}\r\n`;
  for (const [name, value] of response.headers) {
    if (name === "content-length" || name === "connection") continue;
    text += `${name}: ${value}\r\n`;
  }
  text += `content-length: ${body.byteLength}\r\nconnection: close\r\n\r\n`;
  const headBytes = encoder.encode(text);
  if (head || body.byteLength === 0) return headBytes;
  const out = new Uint8Array(headBytes.byteLength + body.byteLength);
  out.set(headBytes);
  out.set(body, headBytes.byteLength);
  return out;
}
