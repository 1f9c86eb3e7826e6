/**
 * JSON-RPC in two dialects, detected per request: Go's `net/rpc/jsonrpc`
 * (`{"method","params":[arg],"id"}` answered with `{"id","result","error"}`,
 * the error a string or null) and JSON-RPC 2.0 (`"jsonrpc":"2.0"`, named or
 * positional params, notifications, batches, the standard error codes).
 *
 * {@link RpcRegistry} holds the methods (one line each, with the type of
 * every param checked before the method runs) and answers requests;
 * {@link encodeRequest} and {@link decodeReply} are the client's half.
 *
 * @module
 */

/** Invalid JSON was received. */
export const PARSE_ERROR = -32700;
/** The JSON sent is not a valid request object. */
export const INVALID_REQUEST = -32600;
/** The method does not exist. */
export const METHOD_NOT_FOUND = -32601;
/** Invalid method parameters. */
export const INVALID_PARAMS = -32602;
/** A method failed unexpectedly. */
export const INTERNAL_ERROR = -32603;
/** A method refused its input (e.g. an integer overflow); the first implementation-defined code. */
export const SERVER_ERROR = -32000;
/** Default bound on the requests of one batch. */
export const DEFAULT_MAX_BATCH = 1000;

/** An error with a JSON-RPC code, thrown by methods or returned to clients. */
export class RpcError extends Error {
  readonly code: number;
  readonly data?: unknown;
  constructor(code: number, message: string, data?: unknown) {
    super(message);
    this.name = "RpcError";
    this.code = code;
    if (data !== undefined) this.data = data;
  }
}

/** The type of one param: checked before the method runs. */
export type ParamType = "int" | "number" | "string" | "boolean" | "object" | "array" | "any";
/** A method's params in order (the order positional params map to). */
export type ParamSpec = Readonly<Record<string, ParamType>>;
type TypeOf<T extends ParamType> = T extends "int" | "number" ? number
  : T extends "string" ? string
  : T extends "boolean" ? boolean
  : T extends "object" ? Record<string, unknown>
  : T extends "array" ? unknown[]
  : unknown;
/** The argument object a method receives, typed from its {@link ParamSpec}. */
export type ArgsOf<P extends ParamSpec> = { [K in keyof P]: TypeOf<P[K]> };
/** A reply to send (`null`: nothing, for notifications), maybe still being computed. */
export type Reply = string | null | Promise<string | null>;

/**
 * Returns `n` if it is an integer within ±Number.MAX_SAFE_INTEGER, and
 * throws an {@link RpcError} naming `what` otherwise, so that a result too
 * big for a double is an error, not a wrong number.
 */
export function checkedInt(n: number, what: string): number {
  if (Number.isSafeInteger(n)) return n;
  throw new RpcError(
    SERVER_ERROR,
    `Integer overflow: ${what} exceeds Number.MAX_SAFE_INTEGER (${Number.MAX_SAFE_INTEGER})`,
  );
}

interface Entry {
  params: ParamSpec;
  keys: string[];
  method: (args: Record<string, unknown>) => unknown;
}

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Quotes a value for an error message, cut to a readable length. */
function show(value: unknown): string {
  const text = value === undefined ? "nothing" : JSON.stringify(value) ?? String(value);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

function kindOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}

const TYPE_CHECKS: Record<ParamType, [(v: unknown) => boolean, string]> = {
  int: [Number.isSafeInteger, `an integer within ±${Number.MAX_SAFE_INTEGER}`],
  number: [(v) => typeof v === "number", "a number"],
  string: [(v) => typeof v === "string", "a string"],
  boolean: [(v) => typeof v === "boolean", "a boolean"],
  object: [isObject, "an object"],
  array: [Array.isArray, "an array"],
  any: [() => true, "anything"],
};

/**
 * Parses a request's JSON, keeping ids too big for a double exact (as raw
 * JSON, echoed back digit for digit). Throws a `SyntaxError` for bad JSON.
 */
export function parseMessage(text: string): unknown {
  const message = JSON.parse(text);
  const unsafe = (m: unknown) =>
    isObject(m) && typeof m.id === "number" && !Number.isSafeInteger(m.id);
  if (!(Array.isArray(message) ? message.some(unsafe) : unsafe(message))) return message;
  return JSON.parse(
    text,
    (key, value, context?: { source?: string }) =>
      key === "id" && typeof value === "number" && !Number.isSafeInteger(value) && context?.source
        ? rawJson(context.source)
        : value,
  );
}

function rawJson(text: string): unknown {
  return (JSON as unknown as { rawJSON(text: string): unknown }).rawJSON(text);
}

function isRawJson(value: unknown): boolean {
  return (JSON as unknown as { isRawJSON(value: unknown): boolean }).isRawJSON(value);
}

/** A JSON-RPC 2.0 error reply. */
export function errorReply(id: unknown, code: number, message: string, data?: unknown): string {
  const error = data === undefined ? { code, message } : { code, message, data };
  return JSON.stringify({ jsonrpc: "2.0", id, error });
}

/** Options for {@link RpcRegistry}. */
export interface RpcRegistryOptions {
  /** Most requests in one batch. Default 1000. */
  maxBatch?: number;
}

/**
 * The methods a server offers and the answering of requests in either
 * dialect. Register a method in one line:
 *
 *     rpc.register("Arith.Multiply", { A: "int", B: "int" }, ({ A, B }) => A * B);
 */
export class RpcRegistry {
  readonly maxBatch: number;
  #methods = new Map<string, Entry>();
  #services = new Set<string>();

  constructor(options: RpcRegistryOptions = {}) {
    this.maxBatch = options.maxBatch ?? DEFAULT_MAX_BATCH;
  }

  /**
   * Adds a method `Service.Method`. `params` names each param with its
   * type, in positional order; the method runs only with params of those
   * types and may return a value or a promise, or throw an
   * {@link RpcError}.
   */
  register<const P extends ParamSpec>(
    name: string,
    params: P,
    method: (args: ArgsOf<P>) => unknown,
  ): this {
    if (this.#methods.has(name)) throw new Error(`Method "${name}" is already registered`);
    const dot = name.lastIndexOf(".");
    if (dot > 0) this.#services.add(name.slice(0, dot));
    this.#methods.set(name, {
      params,
      keys: Object.keys(params),
      method: method as (args: Record<string, unknown>) => unknown,
    });
    return this;
  }

  /** The registered method names, sorted. */
  get names(): string[] {
    return [...this.#methods.keys()].sort();
  }

  /**
   * Answers the text of one JSON value (a request or a batch): the reply
   * to send, or null when there is none (notifications). Invalid JSON is
   * answered with a -32700 error.
   */
  answerText(text: string): Reply {
    let message: unknown;
    try {
      message = parseMessage(text);
    } catch (error) {
      return errorReply(null, PARSE_ERROR, `Parse error: ${(error as Error).message}`);
    }
    return this.answer(message);
  }

  /** Answers a parsed JSON value: a request in either dialect, or a batch. */
  answer(message: unknown): Reply {
    if (Array.isArray(message)) return this.#batch(message);
    if (isObject(message) && !("jsonrpc" in message)) return this.#go(message);
    return this.#v2(message);
  }

  #batch(requests: unknown[]): Reply {
    if (requests.length === 0) {
      return errorReply(null, INVALID_REQUEST, "Invalid Request: empty batch");
    }
    if (requests.length > this.maxBatch) {
      return errorReply(
        null,
        INVALID_REQUEST,
        `Invalid Request: batch of ${requests.length} requests exceeds the limit of ${this.maxBatch}`,
      );
    }
    const replies = requests.map((r) => this.#v2(r));
    const join = (texts: (string | null)[]) => {
      const present = texts.filter((t) => t !== null);
      return present.length === 0 ? null : `[${present.join(",")}]`;
    };
    if (replies.some((r) => r instanceof Promise)) return Promise.all(replies).then(join);
    return join(replies as (string | null)[]);
  }

  /** Go's dialect: every request is answered, the error is a string. */
  #go(request: Json): Reply {
    const id = request.id ?? null;
    const fail = (message: string) => JSON.stringify({ id, result: null, error: message });
    const name = request.method;
    if (typeof name !== "string") {
      return fail(`rpc: "method" must be a string, got ${show(name)}`);
    }
    const entry = this.#methods.get(name);
    if (!entry) return fail(this.#notFound(name));
    const params = request.params;
    if (params === undefined) return fail("jsonrpc: request body missing params");
    if (!Array.isArray(params)) {
      return fail(`Invalid params: expected an array of one argument, got ${kindOf(params)}`);
    }
    let args: Record<string, unknown>;
    try {
      args = this.#bind(entry, params[0] ?? null);
    } catch (error) {
      return fail((error as Error).message);
    }
    return settle(
      () => entry.method(args),
      (result) => JSON.stringify({ id, result: result ?? null, error: null }),
      (error) => fail(error.message),
    );
  }

  /** JSON-RPC 2.0: notifications get no reply, errors carry codes. */
  #v2(request: unknown): Reply {
    if (!isObject(request)) {
      return errorReply(
        null,
        INVALID_REQUEST,
        `Invalid Request: expected an object, got ${kindOf(request)}`,
      );
    }
    const hasId = "id" in request;
    const id = request.id;
    const validId = id === null || typeof id === "string" || typeof id === "number" ||
      isRawJson(id);
    const invalid = (why: string) =>
      errorReply(validId && hasId ? id : null, INVALID_REQUEST, `Invalid Request: ${why}`);
    if (request.jsonrpc !== "2.0") return invalid(`"jsonrpc" must be "2.0"`);
    if (!validId && hasId) return invalid(`"id" must be a string, a number or null`);
    const name = request.method;
    if (typeof name !== "string") return invalid(`"method" must be a string`);
    const params = request.params;
    if (params !== undefined && (typeof params !== "object" || params === null)) {
      return invalid(`"params" must be an object or an array`);
    }
    const entry = this.#methods.get(name);
    if (!entry) {
      return hasId ? errorReply(id, METHOD_NOT_FOUND, `Method not found: ${show(name)}`) : null;
    }
    let args: Record<string, unknown>;
    try {
      args = Array.isArray(params)
        ? this.#bindPositional(entry, params)
        : this.#bind(entry, params ?? {});
    } catch (error) {
      const message = (error as Error).message;
      return hasId ? errorReply(id, INVALID_PARAMS, `Invalid params: ${message}`) : null;
    }
    return settle(
      () => entry.method(args),
      (result) => hasId ? JSON.stringify({ jsonrpc: "2.0", id, result: result ?? null }) : null,
      (error) => {
        if (!hasId) return null;
        if (error instanceof RpcError) return errorReply(id, error.code, error.message, error.data);
        return errorReply(id, INTERNAL_ERROR, `Internal error: ${error.message}`);
      },
    );
  }

  /**
   * Calls a method with Go's one argument (as net/rpc's gob codec delivers
   * it): resolves to the result, or rejects with the error text a Go
   * server would send.
   */
  async call(name: string, arg: unknown): Promise<unknown> {
    const entry = this.#methods.get(name);
    if (!entry) throw new Error(this.#notFound(name));
    return await entry.method(this.#bind(entry, arg));
  }

  /** Go's wording for a name that matches nothing. */
  #notFound(name: string): string {
    const dot = name.lastIndexOf(".");
    if (dot < 0) return `rpc: service/method request ill-formed: ${name}`;
    return this.#services.has(name.slice(0, dot))
      ? `rpc: can't find method ${name}`
      : `rpc: can't find service ${name}`;
  }

  /** Maps positional params in the spec's order; `[{...}]` is taken as Go's one struct. */
  #bindPositional(entry: Entry, params: unknown[]): Record<string, unknown> {
    const { keys } = entry;
    if (params.length === 1 && isObject(params[0]) && keys.length > 0) {
      if (keys.length !== 1 || entry.params[keys[0]] !== "object") {
        return this.#bind(entry, params[0]);
      }
    }
    if (params.length !== keys.length) {
      throw new RangeError(
        `expected ${keys.length} params (${keys.join(", ")}), got ${params.length}`,
      );
    }
    const args: Record<string, unknown> = {};
    keys.forEach((key, i) => args[key] = params[i]);
    return this.#bind(entry, args);
  }

  /**
   * Checks the named params of `arg` against the spec. Like Go's
   * encoding/json, a key matches case-insensitively when no exact key does,
   * and unknown keys are ignored; a missing one is an error.
   */
  #bind(entry: Entry, arg: unknown): Record<string, unknown> {
    const { keys, params } = entry;
    if (!isObject(arg)) {
      if (keys.length === 0 && arg === null) return {};
      throw new TypeError(`expected an object with ${keys.join(", ")}, got ${kindOf(arg)}`);
    }
    let args = arg;
    for (const key of keys) {
      let value = arg[key];
      if (value === undefined) {
        const lower = key.toLowerCase();
        const found = Object.keys(arg).find((k) => k.toLowerCase() === lower);
        if (found === undefined) throw new TypeError(`missing param "${key}"`);
        value = arg[found];
        if (args === arg) args = { ...arg };
        args[key] = value;
      }
      const [check, expected] = TYPE_CHECKS[params[key]];
      if (!check(value)) {
        throw new TypeError(`param "${key}" must be ${expected}, got ${show(value)}`);
      }
    }
    return args;
  }
}

/** Runs `call` and formats its result or error, awaiting only when it returns a promise. */
function settle(
  call: () => unknown,
  ok: (result: unknown) => string | null,
  fail: (error: Error) => string | null,
): Reply {
  const asError = (e: unknown) => e instanceof Error ? e : new Error(String(e));
  let result: unknown;
  try {
    result = call();
  } catch (error) {
    return fail(asError(error));
  }
  if (result instanceof Promise) return result.then(ok, (error) => fail(asError(error)));
  return ok(result);
}

/** The wire form a client speaks. */
export type Dialect = "go" | "2.0";

/**
 * Encodes a call: in Go's dialect `params` is the one argument (sent as
 * `[params]`); in 2.0 it is sent as it is (an object or an array, or left
 * out when undefined). An `id` of undefined makes a 2.0 notification.
 */
export function encodeRequest(
  dialect: Dialect,
  method: string,
  params: unknown,
  id: number | string | undefined,
): string {
  if (dialect === "go") return JSON.stringify({ method, params: [params ?? null], id: id ?? 0 });
  return JSON.stringify({ jsonrpc: "2.0", method, params, id });
}

/** A decoded reply: its id and either a result or an error. */
export type DecodedReply =
  | { id: unknown; result: unknown; error?: undefined }
  | { id: unknown; error: RpcError; result?: undefined };

/**
 * Decodes one reply of either dialect. A Go error string becomes an
 * {@link RpcError} with code 0. Throws a `SyntaxError` for anything that
 * is no reply.
 */
export function decodeReply(message: unknown): DecodedReply {
  if (!isObject(message) || !("id" in message)) {
    throw new SyntaxError(`Not a JSON-RPC reply: ${show(message)}`);
  }
  const { id, error } = message;
  if (error === undefined || error === null) {
    if (!("result" in message)) throw new SyntaxError(`Reply without result: ${show(message)}`);
    return { id, result: message.result };
  }
  if (typeof error === "string") return { id, error: new RpcError(0, error) };
  if (isObject(error) && typeof error.message === "string") {
    const code = typeof error.code === "number" ? error.code : 0;
    return { id, error: new RpcError(code, error.message, error.data) };
  }
  return { id, error: new RpcError(0, show(error)) };
}
