/**
 * Go's `net/rpc` over gob, both halves: {@link serveGob} answers a Go
 * `rpc.Dial`/`rpc.DialHTTP` client from an {@link RpcRegistry}, and
 * {@link callGob} calls a Go `rpc.ServeConn`/`rpc.HandleHTTP` server. Each
 * call is a `Request{ServiceMethod, Seq}` header then the argument; each
 * reply a `Response{ServiceMethod, Seq, Error}` header then the result.
 *
 * @module
 */
import { type Reader, writeAll, type Writer } from "../io/lines.ts";
import {
  GobDecoder,
  GobEncoder,
  GobError,
  GobReader,
  type GobReaderOptions,
  type GobSchema,
  type GobValue,
  messageTypeId,
  schemaOf,
} from "./gob.ts";
import type { RpcRegistry } from "./jsonrpc.ts";
import { concat } from "./gob_wire.ts";

/** The path Go's `rpc.HandleHTTP` serves and `rpc.DialHTTP` connects to. */
export const GO_RPC_PATH = "/_goRPC_";
/** Go's answer to `CONNECT /_goRPC_`, after which the connection speaks gob. */
export const GO_RPC_CONNECTED = "HTTP/1.0 200 Connected to Go RPC\n\n";

const REQUEST: GobSchema = {
  struct: "Request",
  fields: [["ServiceMethod", "string"], ["Seq", "uint"]],
};
const RESPONSE: GobSchema = {
  struct: "Response",
  fields: [["ServiceMethod", "string"], ["Seq", "uint"], ["Error", "string"]],
};
/** What Go's server sends as the body of an error reply (its `invalidRequest`). */
const EMPTY: GobSchema = { struct: "struct {}", fields: [] };

/**
 * Whether the first bytes of a stream look like gob from a Go RPC client:
 * a message length, then a type definition (a negative id, two bytes since
 * user ids start at 65). Needs at least 3 bytes.
 */
export function looksLikeGob(head: Uint8Array): boolean {
  if (head.length < 3) return false;
  const first = head[0];
  const skip = first < 128 ? 1 : first >= 248 ? 1 + 256 - first : -1;
  if (skip < 0 || head.length < skip + 2) return false;
  return head[skip] === 0xff && (head[skip + 1] & 1) === 1;
}

/** Reads value messages, applying type definitions on the way. */
class ValueReader {
  readonly decoder = new GobDecoder();
  #reader: GobReader;
  constructor(source: Reader, options: GobReaderOptions) {
    this.#reader = new GobReader(source, options);
  }

  /** Whether the next message is already here (more pipelined requests). */
  get buffered(): boolean {
    return this.#reader.buffered;
  }

  /** The next value; null at a clean end of stream; a {@link GobError} marks undecodable input. */
  async next(): Promise<{ value?: GobValue; error?: GobError; type: string } | null> {
    while (true) {
      const message = await this.#reader.next();
      if (message === null) return null;
      // A broken type definition leaves the type table unusable: fatal.
      if (messageTypeId(message) < 0) {
        this.decoder.decode(message);
        continue;
      }
      try {
        const decoded = this.decoder.decode(message);
        if (decoded.kind === "value") return { value: decoded.value, type: decoded.type };
      } catch (error) {
        // The message was framed, so the stream stays usable: report, go on.
        if (!(error instanceof GobError)) throw error;
        return { error, type: "" };
      }
    }
  }
}

/** Options for {@link serveGob}. */
export interface ServeGobOptions extends GobReaderOptions {
  /** Told of each undecodable request, before the reply or the close. */
  onError?: (error: GobError) => void;
}

/**
 * Answers gob RPC requests from `conn` until it ends. A header that cannot
 * be decoded ends the connection (Go does the same: no Seq to answer);
 * an argument that cannot be decoded, or of the wrong type, gets Go's
 * error reply and the connection goes on. Throws the {@link GobError} that
 * ended it, if any.
 */
export async function serveGob(
  conn: Reader & Writer,
  registry: RpcRegistry,
  options: ServeGobOptions = {},
): Promise<void> {
  const reader = new ValueReader(conn, options);
  const encoder = new GobEncoder();
  // Replies to requests that arrived together leave together, in one write.
  let pending: Uint8Array[] = [];
  const flush = async () => {
    if (pending.length === 0) return;
    const out = concat(pending);
    pending = [];
    await writeAll(conn, out);
  };
  try {
    while (true) {
      if (!reader.buffered) await flush();
      const header = await reader.next();
      if (header === null) return;
      if (header.error) throw header.error;
      const request = header.value as { ServiceMethod?: unknown; Seq?: unknown };
      if (typeof request?.ServiceMethod !== "string" || request.Seq === undefined) {
        throw new GobError(`Invalid gob RPC header: a ${header.type}, not a Request`);
      }
      const name = request.ServiceMethod;
      const body = await reader.next();
      if (body === null) throw new GobError(`Gob RPC request ${name} ended before its argument`);
      let result: unknown;
      let failure = "";
      try {
        if (body.error) {
          options.onError?.(body.error);
          throw body.error;
        }
        result = await registry.call(name, body.value);
      } catch (error) {
        failure = error instanceof Error ? error.message : String(error);
      }
      const replySchema = failure === ""
        ? schemaOf(result ?? 0, `${name.split(".").pop()}Reply`)
        : EMPTY;
      pending.push(
        encoder.encode(RESPONSE, { ServiceMethod: name, Seq: request.Seq, Error: failure }),
        encoder.encode(replySchema, failure === "" ? result ?? 0 : {}),
      );
    }
  } finally {
    // Answers already made still leave, also when the stream broke after them.
    await flush().catch(() => {});
  }
}

/** Options for {@link callGob}. */
export interface CallGobOptions {
  /** Sequence number of the call. Default 0. */
  seq?: number;
  /** Longest reply message accepted. Default 16 MiB. */
  maxMessageBytes?: number;
}

/** The outcome of a gob call: the result, or the server's error text. */
export type GobReply = { result: GobValue; error?: undefined } | {
  error: string;
  result?: undefined;
};

/**
 * Calls `method` with `arg` (its gob type inferred: objects as a struct
 * named `Args`, integers as int) over `conn`, which already speaks gob.
 */
export async function callGob(
  conn: Reader & Writer,
  method: string,
  arg: unknown,
  options: CallGobOptions = {},
): Promise<GobReply> {
  const seq = options.seq ?? 0;
  const encoder = new GobEncoder();
  await writeAll(
    conn,
    concat([
      encoder.encode(REQUEST, { ServiceMethod: method, Seq: seq }),
      encoder.encode(schemaOf(arg, "Args"), arg),
    ]),
  );
  const reader = new ValueReader(conn, { maxMessageBytes: options.maxMessageBytes ?? 16 << 20 });
  const header = await reader.next();
  if (header === null) {
    throw new Deno.errors.UnexpectedEof("The server closed the connection without replying");
  }
  if (header.error) throw header.error;
  const response = header.value as { Seq?: unknown; Error?: unknown };
  if (typeof response?.Error !== "string" || response.Seq === undefined) {
    throw new GobError(`Invalid gob RPC reply: a ${header.type}, not a Response`);
  }
  const body = await reader.next();
  if (response.Error !== "") return { error: response.Error };
  if (body === null) {
    throw new Deno.errors.UnexpectedEof("The server closed the connection before the result");
  }
  if (body.error) throw body.error;
  return { result: body.value as GobValue };
}

/**
 * A decoded gob value as JSON would show it (as Go's encoding/json does):
 * bytes as base64, maps as objects, big integers as exact numbers.
 */
export function gobToJson(value: GobValue): unknown {
  if (typeof value === "bigint") return rawJson(value.toString());
  if (value instanceof Uint8Array) return btoa(String.fromCharCode(...value));
  if (value instanceof Map) {
    return Object.fromEntries([...value].map(([k, v]) => [String(k), gobToJson(v)]));
  }
  if (Array.isArray(value)) return value.map(gobToJson);
  if (typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, gobToJson(v)]));
  }
  return value;
}

function rawJson(text: string): unknown {
  return (JSON as unknown as { rawJSON(text: string): unknown }).rawJSON(text);
}
