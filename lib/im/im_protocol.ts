/**
 * The instant-messaging protocol that `im_server` and `im_client` share:
 * one JSON object per line, each with a `type`; a request may carry an
 * `id` that its response echoes. This module names the limits, checks
 * user ids, passwords and names, and turns a line into a checked
 * {@link Request} or a {@link ProtocolError} with a stable `code`.
 *
 * @module
 */
import { quoteText } from "../io/escape.ts";
import { nameCharsProblem, normalizeName } from "../text/names.ts";

/** User ids: 1-32 letters, digits, `_`, `.` or `-`; compared case-insensitively. */
export const USER_ID_PATTERN = /^[A-Za-z0-9_.-]{1,32}$/;
/** Fewest characters in a password. */
export const MIN_PASSWORD_CHARS = 8;
/** Most characters in a password (PBKDF2 would hash more, but nobody needs more). */
export const MAX_PASSWORD_CHARS = 256;
/** Most characters in a display name. */
export const MAX_NAME_CHARS = 64;
/** Default bound on a message's text, in UTF-8 bytes. */
export const DEFAULT_MAX_TEXT_BYTES = 8 * 1024;
/** Longest accepted request `id` string (ids are echoed, so they are bounded too). */
export const MAX_REQUEST_ID_CHARS = 64;
/** Longest bad value quoted back in an error message. */
const MAX_QUOTED_CHARS = 40;

/** Error codes a client may see in `{"type":"error","code":...}`. */
export type ErrorCode =
  | "bad_json"
  | "bad_request"
  | "unknown_type"
  | "line_too_long"
  | "not_logged_in"
  | "already_logged_in"
  | "invalid_user"
  | "invalid_password"
  | "invalid_name"
  | "user_exists"
  | "login_failed"
  | "throttled"
  | "unknown_user"
  | "too_large"
  | "mailbox_full"
  | "idle_timeout"
  | "head_timeout"
  | "server_busy"
  | "internal";

/** A request the server cannot serve; becomes an `error` line, the connection stays. */
export class ProtocolError extends Error {
  readonly code: ErrorCode;
  /** Extra fields for the error line, e.g. `retry_after_ms`. */
  readonly extra: Record<string, unknown>;
  constructor(code: ErrorCode, message: string, extra: Record<string, unknown> = {}) {
    super(message);
    this.name = "ProtocolError";
    this.code = code;
    this.extra = extra;
  }
}

/** A request id as the client sent it: echoed in the response. */
export type RequestId = string | number;

/** Every request a client may send. */
export type Request =
  | { type: "register"; id?: RequestId; user: string; password: string; name: string }
  | { type: "login"; id?: RequestId; user: string; password: string }
  | { type: "logout"; id?: RequestId }
  | { type: "users"; id?: RequestId }
  | { type: "broadcast"; id?: RequestId; text: string }
  | { type: "send"; id?: RequestId; to: string; text: string }
  | { type: "pending"; id?: RequestId }
  | { type: "ping"; id?: RequestId };

/** Request types, for the `unknown_type` error's hint. */
export const REQUEST_TYPES = [
  "register",
  "login",
  "logout",
  "users",
  "broadcast",
  "send",
  "pending",
  "ping",
] as const;

/** A message as clients receive it, live or from the offline store. */
export interface ChatMessage {
  type: "message";
  /** `private` for one user, `group` for everyone online. */
  scope: "private" | "group";
  /** Unique id: a client that sees one twice (after a server crash) may drop it. */
  msg_id: string;
  /** The sender's user id, always taken from the sender's session. */
  from: string;
  /** The sender's display name. */
  name: string;
  text: string;
  /** When the server accepted the message, ISO 8601 UTC. */
  time: string;
  /** Present and true when the message waited in the offline store. */
  offline?: boolean;
}

/** Quotes a value for an error message: JSON-escaped, control characters visible, shortened. */
export function quote(value: string): string {
  return quoteText(value, MAX_QUOTED_CHARS);
}

/** Checks a user id and returns its canonical (lower-case) form. */
export function checkUserId(value: string): string {
  if (!USER_ID_PATTERN.test(value)) {
    throw new ProtocolError(
      "invalid_user",
      `Invalid user ${quote(value)}: use 1-32 letters, digits, "_", "." or "-"`,
    );
  }
  return value.toLowerCase();
}

/** Checks a password's length (in characters, not bytes). */
export function checkPassword(value: string): string {
  let chars = 0;
  for (const _ of value) if (++chars > MAX_PASSWORD_CHARS) break;
  if (chars < MIN_PASSWORD_CHARS || chars > MAX_PASSWORD_CHARS) {
    throw new ProtocolError(
      "invalid_password",
      `Invalid password: must be ${MIN_PASSWORD_CHARS}-${MAX_PASSWORD_CHARS} characters`,
    );
  }
  return value;
}

/**
 * Checks a display name and returns it normalised (NFKC) and trimmed:
 * 1-64 characters, no invisible, format or control character.
 */
export function checkName(value: string): string {
  const name = normalizeName(value);
  if (name === "" || [...name].length > MAX_NAME_CHARS || nameCharsProblem(name) !== null) {
    throw new ProtocolError(
      "invalid_name",
      `Invalid name ${quote(value)}: use 1-${MAX_NAME_CHARS} characters, ` +
        "no invisible or control characters",
    );
  }
  return name;
}

/** Options for {@link parseRequest}. */
export interface ParseRequestOptions {
  /** Longest message text in UTF-8 bytes. Default 8192. */
  maxTextBytes?: number;
}

const encoder = new TextEncoder();

/**
 * Parses one request line. Throws a {@link ProtocolError} whose `code`
 * says what is wrong; `requestIdOf(line)` recovers the id to echo.
 */
export function parseRequest(line: string, options: ParseRequestOptions = {}): Request {
  const maxTextBytes = options.maxTextBytes ?? DEFAULT_MAX_TEXT_BYTES;
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw new ProtocolError("bad_json", `Cannot parse JSON: ${why}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ProtocolError("bad_request", 'A request must be a JSON object with a "type"');
  }
  const body = value as Record<string, unknown>;
  const id = checkRequestId(body.id);
  const type = body.type;
  if (type === undefined) throw new ProtocolError("bad_request", `Missing field "type"`);
  if (typeof type !== "string") {
    throw new ProtocolError("bad_request", `Field "type" must be a string`);
  }
  const str = (field: string) => stringField(body, field);
  const withId = id === undefined ? {} : { id };
  switch (type) {
    case "register": {
      const user = checkUserId(str("user"));
      const password = checkPassword(str("password"));
      const name = body.name === undefined ? user : checkName(str("name"));
      return { type, ...withId, user, password, name };
    }
    case "login":
      return { type, ...withId, user: checkUserId(str("user")), password: str("password") };
    case "broadcast":
      return { type, ...withId, text: checkText(str("text"), maxTextBytes) };
    case "send": {
      const to = str("to");
      if (!USER_ID_PATTERN.test(to)) {
        throw new ProtocolError("unknown_user", `No user ${quote(to)}`);
      }
      return { type, ...withId, to: to.toLowerCase(), text: checkText(str("text"), maxTextBytes) };
    }
    case "logout":
    case "users":
    case "pending":
    case "ping":
      return { type, ...withId };
    default:
      throw new ProtocolError(
        "unknown_type",
        `Unknown type ${quote(type)}; expected one of ${REQUEST_TYPES.join(", ")}`,
      );
  }
}

/** The `id` of a request line, when it has a valid one (for errors on bad requests). */
export function requestIdOf(line: string): RequestId | undefined {
  try {
    const value = JSON.parse(line);
    if (typeof value !== "object" || value === null) return undefined;
    return checkRequestId(value.id);
  } catch {
    return undefined;
  }
}

function checkRequestId(id: unknown): RequestId | undefined {
  if (id === undefined) return undefined;
  if (typeof id === "number" && Number.isFinite(id)) return id;
  if (typeof id === "string" && id.length <= MAX_REQUEST_ID_CHARS) return id;
  throw new ProtocolError(
    "bad_request",
    `Field "id" must be a number or a string of at most ${MAX_REQUEST_ID_CHARS} characters`,
  );
}

function stringField(body: Record<string, unknown>, field: string): string {
  const value = body[field];
  if (value === undefined || value === null) {
    throw new ProtocolError("bad_request", `Missing field "${field}"`);
  }
  if (typeof value !== "string") {
    throw new ProtocolError("bad_request", `Field "${field}" must be a string`);
  }
  return value;
}

function checkText(text: string, maxTextBytes: number): string {
  if (text.trim() === "") throw new ProtocolError("bad_request", `Field "text" is empty`);
  // Cheap bound first: a string of n UTF-16 units has at most 3n UTF-8 bytes.
  if (text.length * 3 > maxTextBytes && encoder.encode(text).byteLength > maxTextBytes) {
    throw new ProtocolError("too_large", `Message exceeds the limit of ${maxTextBytes} bytes`);
  }
  return text;
}
