/**
 * IM's service: who is online (the one owner of the user-to-client map),
 * each request type's behaviour, and the per-connection loop that reads
 * request lines and writes replies in order.
 *
 * @module
 */
import {
  type ChatMessage,
  type ErrorCode,
  parseRequest,
  ProtocolError,
  type Request,
  type RequestId,
  requestIdOf,
} from "./im_protocol.ts";
import { LineReader, LineTooLongError, LineWriter } from "../io/lines.ts";
import type { Logger } from "../cli/log.ts";
import { deadline, settledWithin } from "../io/deadline.ts";
import type { PasswordHasher } from "./password.ts";
import type { Session, SessionHandler } from "../net/server.ts";
import type { ImStore, StoredMessage, UserRecord } from "./im_store.ts";
import { KeyedQueue } from "./keyed_queue.ts";
import { LoginThrottle } from "./login_throttle.ts";

/** Default bound on messages waiting for one offline user. */
export const DEFAULT_MAX_OFFLINE = 1_000;
/** Lines queued for a client that does not read before it is dropped as too slow. */
const MAX_QUEUED_LINES = 10_000;
/** How long a login's batch of offline messages may wait for the socket; then they stay stored. */
const DELIVERY_TIMEOUT_MS = 10_000;
/** Offline messages moved per KV transaction (KV allows 1000 mutations per commit). */
const OFFLINE_BATCH = 100;
/** User ids known to exist, so that messages to offline users skip a lookup; cleared when full. */
const MAX_KNOWN_USERS = 100_000;

/** One connected client: its session, its ordered writer, and who it is logged in as. */
export class Client {
  readonly session: Session;
  readonly writer: LineWriter;
  user: string | null = null;
  name = "";
  /** Whether its offline messages have been flushed, so new ones go straight to it. */
  live = false;

  constructor(session: Session) {
    this.session = session;
    this.writer = new LineWriter(session);
  }

  get closed(): boolean {
    return this.session.closed;
  }

  /**
   * Queues a line without waiting; a client that stopped reading is
   * dropped. Returns false if the line cannot be queued; `onFail` runs if
   * a queued line may not have been written.
   */
  push(line: string, onFail?: () => void): boolean {
    if (this.closed) return false;
    if (this.writer.pending >= MAX_QUEUED_LINES) {
      this.session.close();
      return false;
    }
    this.writer.write(line).catch(() => {
      this.session.close();
      onFail?.();
    });
    return true;
  }

  /** Writes a line and resolves to whether it reached the socket in time. */
  async deliver(line: string): Promise<boolean> {
    if (this.closed) return false;
    try {
      await deadline(this.writer.write(line), DELIVERY_TIMEOUT_MS, "Delivery timed out");
      return true;
    } catch {
      // Stuck or gone: drop it; the messages stay stored.
      this.session.close();
      return false;
    }
  }
}

/**
 * Who is online: the one owner of the user-to-client map. Transports
 * attach, detach and look up; nothing else mutates it.
 */
class Hub {
  #online = new Map<string, Client>();

  /** Makes `client` the session of its user; returns the session it replaces. */
  attach(client: Client): Client | undefined {
    const user = client.user!;
    const old = this.#online.get(user);
    this.#online.set(user, client);
    return old;
  }

  /** Removes `client` if it is still its user's session; true if it was. */
  detach(client: Client): boolean {
    if (client.user === null || this.#online.get(client.user) !== client) return false;
    this.#online.delete(client.user);
    return true;
  }

  get(user: string): Client | undefined {
    return this.#online.get(user);
  }

  get size(): number {
    return this.#online.size;
  }

  clients(): IterableIterator<Client> {
    return this.#online.values();
  }
}

/** Requests that change no session state, so that several may be served at once. */
const PIPELINED = new Set<Request["type"]>(["send", "broadcast", "ping"]);

/** Marks work to do once a reply is written: a login's offline messages follow its reply. */
const AFTER = Symbol("after");
type Reply = Record<string, unknown> & { type: string; [AFTER]?: () => Promise<void> };

/** The server's behaviour, one method per request type. */
export class ImService {
  readonly hub = new Hub();
  readonly queue = new KeyedQueue();
  readonly throttle = new LoginThrottle();
  #store: ImStore;
  #hasher: PasswordHasher;
  #log: Logger;
  #maxOffline: number;
  #known = new Set<string>();

  constructor(store: ImStore, hasher: PasswordHasher, log: Logger, maxOffline: number) {
    this.#store = store;
    this.#hasher = hasher;
    this.#log = log;
    this.#maxOffline = maxOffline;
  }

  /** Serves one request; returns the reply (the caller adds the id and writes it). */
  async handle(client: Client, request: Request): Promise<Reply> {
    switch (request.type) {
      case "ping":
        return { type: "pong" };
      case "register":
        return await this.#register(client, request.user, request.password, request.name);
      case "login":
        return await this.#login(client, request.user, request.password);
    }
    const user = client.user;
    if (user === null) {
      throw new ProtocolError("not_logged_in", `Log in first to use "${request.type}"`);
    }
    switch (request.type) {
      case "logout":
        this.leave(client);
        client.user = null;
        return { type: "logged_out" };
      case "users":
        return {
          type: "users",
          users: [...this.hub.clients()].map((c) => ({ user: c.user, name: c.name })),
        };
      case "pending":
        return { type: "pending", count: await this.#store.countOffline(user) };
      case "broadcast":
        return this.#broadcast(client, request.text);
      case "send":
        return await this.#send(client, request.to, request.text);
    }
  }

  async #register(client: Client, user: string, password: string, name: string): Promise<Reply> {
    if (await this.#store.getUser(user)) {
      throw new ProtocolError("user_exists", `User "${user}" already exists`);
    }
    const record: UserRecord = {
      user,
      name,
      password: await this.#hasher.hash(password),
      created: new Date().toISOString(),
    };
    if (!(await this.#store.createUser(record))) {
      throw new ProtocolError(
        "user_exists",
        `User "${user}" already exists, or one that looks like it`,
      );
    }
    this.#remember(user);
    this.#log.info(`${client.session.peer}: registered ${user}`);
    return { type: "registered", user, name };
  }

  async #login(client: Client, user: string, password: string): Promise<Reply> {
    if (client.user !== null) {
      throw new ProtocolError("already_logged_in", `Logged in as "${client.user}"; log out first`);
    }
    const waitMs = this.throttle.waitMs(user);
    if (waitMs > 0) {
      this.#log.info(`${client.session.peer}: login for ${user} throttled`);
      throw new ProtocolError(
        "throttled",
        `Too many failed logins; try again in ${Math.ceil(waitMs / 1000)} s`,
        { retry_after_ms: waitMs },
      );
    }
    const record = await this.#store.getUser(user);
    // An unknown user costs one hash too: both failures look and take the same.
    const ok = await this.#hasher.verify(password, record?.password ?? null);
    if (!ok || !record) {
      this.throttle.fail(user);
      this.#log.info(`${client.session.peer}: failed login for ${user}`);
      throw new ProtocolError("login_failed", "Wrong user or password");
    }
    this.throttle.clear(user);
    if (this.#hasher.needsRehash(record.password)) {
      this.#store.setPassword(user, await this.#hasher.hash(password)).catch((e) =>
        this.#log.error(`rehash of ${user}:`, e)
      );
    }
    if (client.user !== null || client.closed) {
      throw new ProtocolError("already_logged_in", `Logged in as "${client.user}"; log out first`);
    }
    client.user = user;
    client.name = record.name;
    client.live = false;
    const old = this.hub.attach(client);
    if (old) {
      old.user = null; // Its handler must not announce this user offline.
      old.push(JSON.stringify({
        type: "kicked",
        reason: `Logged in again from ${client.session.peer}`,
      }));
      closeSoon(old);
      this.#log.info(`${user}: logged in again from ${client.session.peer}; old session ended`);
    } else {
      this.#log.info(`${client.session.peer}: ${user} logged in`);
      this.#presence(client, "online");
    }
    const waiting = await this.#store.countOffline(user);
    return {
      type: "logged_in",
      user,
      name: record.name,
      waiting,
      [AFTER]: () => this.queue.run(user, () => this.#flushOffline(client, user)),
    };
  }

  /** Delivers the stored messages of `user` in order, each removed once written. */
  async #flushOffline(client: Client, user: string): Promise<void> {
    await this.#store.settled(); // Stores asked for before this login are committed first.
    while (client.user === user && !client.closed) {
      const batch = await this.#store.peekOffline(user, OFFLINE_BATCH);
      if (batch.length === 0) {
        client.live = true;
        return;
      }
      const lines = batch.map(({ message }) =>
        JSON.stringify({ type: "message", ...message, offline: true })
      );
      // All or nothing per batch: kept if the write fails, removed once written.
      if (!(await client.deliver(lines.join("\n")))) return;
      await this.#store.removeOffline(user, batch.map((b) => b.key));
    }
  }

  #broadcast(client: Client, text: string): Reply {
    const message: ChatMessage = {
      type: "message",
      scope: "group",
      msg_id: crypto.randomUUID(),
      from: client.user!,
      name: client.name,
      text,
      time: new Date().toISOString(),
    };
    const line = JSON.stringify(message);
    let recipients = 0;
    for (const other of this.hub.clients()) {
      if (other === client) continue;
      other.push(line);
      recipients++;
    }
    return { type: "broadcast_sent", msg_id: message.msg_id, recipients };
  }

  async #send(client: Client, to: string, text: string): Promise<Reply> {
    if (!this.hub.get(to) && !(await this.#exists(to))) {
      throw new ProtocolError("unknown_user", `No user "${to}"`);
    }
    const message: StoredMessage = {
      scope: "private",
      msg_id: crypto.randomUUID(),
      from: client.user!,
      name: client.name,
      text,
      time: new Date().toISOString(),
    };
    // In the recipient's queue, so that a login's flush of stored messages comes first.
    const outcome = await this.queue.run(to, () => {
      const target = this.hub.get(to);
      const line = JSON.stringify({ type: "message", ...message });
      // Handed to a live session: if its connection fails before the line is written,
      // the message is stored for the next login, so an acknowledged message is never lost.
      if (target?.live && target.push(line, () => this.#keep(to, message))) return "delivered";
      return { stored: this.#store.storeOffline(to, message, this.#maxOffline) };
    });
    if (outcome !== "delivered" && !(await outcome.stored)) {
      throw new ProtocolError(
        "mailbox_full",
        `${to} has ${this.#maxOffline} messages waiting already; try again later`,
      );
    }
    const status = outcome === "delivered" ? "delivered" : "stored";
    return { type: "sent", to, msg_id: message.msg_id, status };
  }

  /** Stores a message that was acknowledged but could not be written, beyond the cap. */
  #keep(user: string, message: StoredMessage): void {
    this.#store.storeOffline(user, message, Infinity).catch((error) =>
      this.#log.error(`Lost a message for ${user}:`, error)
    );
  }

  /** Whether a user exists; known ids are remembered (accounts are never removed). */
  async #exists(user: string): Promise<boolean> {
    if (this.#known.has(user)) return true;
    if (!(await this.#store.getUser(user))) return false;
    this.#remember(user);
    return true;
  }

  #remember(user: string): void {
    if (this.#known.size >= MAX_KNOWN_USERS) this.#known.clear();
    this.#known.add(user);
  }

  /** Takes a client offline: tells the others, unless another session took over. */
  leave(client: Client): void {
    if (!this.hub.detach(client)) return;
    this.#log.info(`${client.session.peer}: ${client.user} logged out`);
    this.#presence(client, "offline");
  }

  #presence(client: Client, status: "online" | "offline"): void {
    const line = JSON.stringify({ type: "presence", user: client.user, name: client.name, status });
    for (const other of this.hub.clients()) if (other !== client) other.push(line);
  }
}

/** Ends a replaced session: its last lines get a moment to leave, then it closes. */
function closeSoon(client: Client, ms = 1_000): void {
  settledWithin(client.writer.flush(), ms).then(() => client.session.close());
}

/** Formats an error line, echoing the request id when there is one. */
export function errorLine(code: ErrorCode, message: string, id?: RequestId, extra = {}): string {
  return JSON.stringify({
    type: "error",
    ...(id === undefined ? {} : { id }),
    code,
    message,
    ...extra,
  });
}

/** What {@link imSessionHandler} needs besides the service. */
export interface ImConnectionOptions {
  /** Longest request line in bytes. */
  maxLineBytes: number;
  /** Longest message text in UTF-8 bytes. */
  maxTextBytes: number;
  /** The first line every client gets. */
  hello: string;
  log: Logger;
}

/**
 * Serves one connection: sends the hello, reads request lines, answers
 * each in request order (messages of one read served together), and
 * reads more only once the replies are out.
 */
export function imSessionHandler(
  service: ImService,
  { maxLineBytes, maxTextBytes, hello, log }: ImConnectionOptions,
): SessionHandler {
  const handle = async (session: Session) => {
    const client = new Client(session);
    const reader = new LineReader(session, { maxLineBytes });
    client.push(hello);
    /** The next batch; an over-long line is answered with an error and skipped. */
    const nextLines = async (): Promise<string[] | null> => {
      while (true) {
        try {
          return await reader.readLines();
        } catch (error) {
          if (!(error instanceof LineTooLongError)) throw error;
          log.info(`${session.peer}: ${error.message}, line skipped`);
          client.push(errorLine("line_too_long", error.message));
        }
      }
    };
    try {
      for (let lines = await nextLines(); lines; lines = await nextLines()) {
        // Messages of one batch are served together (their stores share a commit);
        // replies still leave in request order.
        let inFlight: Array<string | null | Promise<string | null>> = [];
        const settle = async () => {
          for (const reply of inFlight) {
            const text = await reply;
            if (text !== null) client.push(text);
          }
          inFlight = [];
        };
        for (const line of lines) {
          if (line.trim() === "") continue;
          const request = parse(line);
          if (typeof request === "string") {
            inFlight.push(request);
          } else if (client.user !== null && PIPELINED.has(request.type)) {
            inFlight.push(serve(client, request));
          } else {
            await settle();
            const reply = await serve(client, request);
            if (reply !== null) client.push(reply);
          }
          if (client.closed) return;
        }
        await settle();
        if (client.closed) return;
        await client.writer.flush(); // Backpressure: read more once the replies are out.
      }
    } finally {
      service.leave(client);
      await client.writer.flush().catch(() => {});
    }
  };

  /** Parses one line into a request, or into the error line that answers it. */
  const parse = (line: string): Request | string => {
    try {
      return parseRequest(line, { maxTextBytes });
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      return errorLine(error.code, error.message, requestIdOf(line), error.extra);
    }
  };

  /** Serves one request; returns the reply line, or null when it was written already. */
  const serve = async (client: Client, request: Request): Promise<string | null> => {
    const id = request.id === undefined ? {} : { id: request.id };
    try {
      const reply = await service.handle(client, request);
      const { type, ...fields } = reply;
      const text = JSON.stringify({ type, ...id, ...fields }); // the AFTER symbol is skipped
      const after = reply[AFTER];
      if (!after) return text;
      client.push(text);
      await after();
      return null;
    } catch (error) {
      if (error instanceof ProtocolError) {
        return errorLine(error.code, error.message, request.id, error.extra);
      }
      log.error(`${client.session.peer}: ${request.type}:`, error);
      return errorLine("internal", "Internal error; nothing was changed", request.id);
    }
  };

  return handle;
}
