#!/usr/bin/env -S deno run --unstable-kv --allow-net=0.0.0.0,127.0.0.1,localhost,[::],[::1] --allow-read --allow-write
/**
 * im_server: an instant-messaging server (seed 003's course project:
 * register, log in, see who is online, message everyone or one user,
 * offline messages), speaking JSON lines over TCP. Passwords are stored
 * only as PBKDF2-HMAC-SHA256 hashes; users and offline messages live in
 * Deno KV and survive a restart.
 *
 *     deno task im_server 8888 --db ./im.kv
 *     nc localhost 8888
 *     {"type":"register","user":"alice","password":"correct horse","name":"Alice"}
 *
 * @module
 */
import { skeleton } from "../lib/text/names.ts";
import type { Address } from "../lib/net/addr.ts";
import { parseIntOption, runCommand, UsageError, VERSION } from "../lib/cli/cli.ts";
import {
  type ChatMessage,
  DEFAULT_MAX_TEXT_BYTES,
  type ErrorCode,
  parseRequest,
  ProtocolError,
  type Request,
  type RequestId,
  requestIdOf,
} from "../lib/im/im_protocol.ts";
import {
  DEFAULT_MAX_LINE_BYTES,
  LineReader,
  LineTooLongError,
  LineWriter,
} from "../lib/io/lines.ts";
import { Logger } from "../lib/cli/log.ts";
import { deadline, settledWithin } from "../lib/io/deadline.ts";
import { DEFAULT_ITERATIONS, PasswordHasher, type PasswordRecord } from "../lib/im/password.ts";
import { serveTcp, type Session, type TcpServer } from "../lib/net/server.ts";
import { runServer, serverOptions, serverSettings } from "../lib/net/lifecycle.ts";

/** Default bound on messages waiting for one offline user. */
export const DEFAULT_MAX_OFFLINE = 1_000;
/** Default idle timeout: clients ping well within it (the hello line tells them). */
export const DEFAULT_IDLE_TIMEOUT_MS = 300_000;
/** Failed logins per account within {@link FAILURE_WINDOW_MS} before attempts must wait. */
export const MAX_LOGIN_FAILURES = 5;
/** The throttling window: one minute, as the issue asks. */
export const FAILURE_WINDOW_MS = 60_000;
/** Accounts whose failures are remembered; beyond it the oldest are forgotten. */
const MAX_THROTTLED_ACCOUNTS = 100_000;
/** Lines queued for a client that does not read before it is dropped as too slow. */
const MAX_QUEUED_LINES = 10_000;
/** How long a login's batch of offline messages may wait for the socket; then they stay stored. */
const DELIVERY_TIMEOUT_MS = 10_000;
/** Offline messages moved per KV transaction (KV allows 1000 mutations per commit). */
const OFFLINE_BATCH = 100;
/** Messages stored per group commit, users per commit (KV allows 100 checks), and bytes (800 KB). */
const MAX_BATCH_MESSAGES = 200;
const MAX_BATCH_USERS = 50;
const MAX_BATCH_BYTES = 512 * 1024;
/** User ids known to exist, so that messages to offline users skip a lookup; cleared when full. */
const MAX_KNOWN_USERS = 100_000;

/** A user as stored: the password only as a hash. */
interface UserRecord {
  user: string;
  name: string;
  password: PasswordRecord;
  created: string;
}

/** Per-user bookkeeping of the offline queue. */
interface OfflineMeta {
  /** The next sequence number: keys sort in arrival order. */
  next: number;
  /** Messages waiting. */
  count: number;
}

/** A stored offline message, as it will be delivered. */
type StoredMessage = Omit<ChatMessage, "type" | "offline">;

/** A store waiting for the next group commit. */
interface PendingStore {
  user: string;
  message: StoredMessage;
  max: number;
  resolve: (stored: boolean) => void;
  reject: (error: unknown) => void;
}

/**
 * Takes the next batch of stores that fits one KV commit: at most 1000
 * mutations, 100 checks (one per user) and 800 KB, with room to spare.
 */
function takeBatch(pending: PendingStore[]): PendingStore[] {
  const users = new Set<string>();
  let bytes = 0;
  let n = 0;
  for (; n < pending.length && n < MAX_BATCH_MESSAGES; n++) {
    const { user, message } = pending[n];
    const size = 3 * (message.text.length + message.name.length) + 256;
    if (
      n > 0 &&
      (bytes + size > MAX_BATCH_BYTES || (!users.has(user) && users.size >= MAX_BATCH_USERS))
    ) break;
    users.add(user);
    bytes += size;
  }
  return pending.splice(0, n);
}

/**
 * Deno KV storage of users and offline messages. The server calls the
 * offline methods for one user at a time only (see {@link KeyedQueue}),
 * and each change is one atomic commit, acknowledged only once durable.
 */
export class ImStore {
  #kv: Deno.Kv;
  #toStore: PendingStore[] = [];
  #storing: Promise<void> | null = null;

  private constructor(kv: Deno.Kv) {
    this.#kv = kv;
  }

  /** Opens (creating) the database at `path`; `:memory:` keeps nothing. */
  static async open(path: string): Promise<ImStore> {
    return new ImStore(await Deno.openKv(path));
  }

  getUser(user: string): Promise<UserRecord | null> {
    return this.#kv.get<UserRecord>(["users", user]).then((e) => e.value);
  }

  /**
   * Creates a user; false if the id is taken, or looks like a taken one
   * (the same TR39 skeleton: `a1ice` beside `alice`).
   */
  async createUser(record: UserRecord): Promise<boolean> {
    const key = ["users", record.user];
    const looks = ["user_skeletons", skeleton(record.user)];
    const result = await this.#kv.atomic()
      .check({ key, versionstamp: null }, { key: looks, versionstamp: null })
      .set(key, record)
      .set(looks, record.user)
      .commit();
    return result.ok;
  }

  /** Replaces a user's password record (a rehash at a higher work factor). */
  async setPassword(user: string, password: PasswordRecord): Promise<void> {
    const entry = await this.#kv.get<UserRecord>(["users", user]);
    if (!entry.value) return;
    await this.#kv.atomic().check(entry).set(entry.key, { ...entry.value, password }).commit();
  }

  /** How many messages wait for `user`. */
  async countOffline(user: string): Promise<number> {
    return (await this.#kv.get<OfflineMeta>(["offline_meta", user])).value?.count ?? 0;
  }

  /**
   * Stores a message for `user`; false when `max` already wait. Stores
   * made in the same turn are committed together (one durable commit for
   * many messages), in the order they were asked for.
   */
  storeOffline(user: string, message: StoredMessage, max: number): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.#toStore.push({ user, message, max, resolve, reject });
      this.#storing ??= this.#storeAll().finally(() => this.#storing = null);
    });
  }

  /** Resolves once every store asked for so far is committed. */
  async settled(): Promise<void> {
    while (this.#storing) await this.#storing;
  }

  async #storeAll(): Promise<void> {
    await Promise.resolve(); // Let the stores of this turn join the batch.
    while (this.#toStore.length > 0) {
      const batch = takeBatch(this.#toStore);
      try {
        const results = await this.#commitBatch(batch);
        batch.forEach((entry, i) => entry.resolve(results[i]));
      } catch (error) {
        for (const entry of batch) entry.reject(error);
      }
    }
  }

  /** One atomic commit of a batch; retried if another writer changed a queue meanwhile. */
  async #commitBatch(batch: PendingStore[]): Promise<boolean[]> {
    const users = [...new Set(batch.map((e) => e.user))];
    while (true) {
      const metas = await this.#metas(users);
      const state = new Map(
        metas.map((m, i) => [users[i], { ...(m.value ?? { next: 0, count: 0 }) }]),
      );
      const op = this.#kv.atomic();
      for (const meta of metas) op.check(meta);
      const results = batch.map(({ user, message, max }) => {
        const s = state.get(user)!;
        if (s.count >= max) return false;
        op.set(["offline", user, s.next], message);
        s.next++;
        s.count++;
        return true;
      });
      for (const [i, user] of users.entries()) {
        const s = state.get(user)!;
        if (s.count !== (metas[i].value?.count ?? 0)) op.set(metas[i].key, s);
      }
      if ((await op.commit()).ok) return results;
    }
  }

  /** The offline metadata of several users (getMany takes at most 10 keys). */
  async #metas(users: string[]): Promise<Deno.KvEntryMaybe<OfflineMeta>[]> {
    const chunks = [];
    for (let i = 0; i < users.length; i += 10) {
      chunks.push(
        this.#kv.getMany<OfflineMeta[]>(users.slice(i, i + 10).map((u) => ["offline_meta", u])),
      );
    }
    return (await Promise.all(chunks)).flat();
  }

  /** The oldest waiting messages for `user`, in arrival order, with their keys. */
  async peekOffline(
    user: string,
    limit: number,
  ): Promise<Array<{ key: Deno.KvKey; message: StoredMessage }>> {
    const out = [];
    for await (
      const entry of this.#kv.list<StoredMessage>({ prefix: ["offline", user] }, { limit })
    ) {
      out.push({ key: entry.key, message: entry.value });
    }
    return out;
  }

  /** Removes delivered messages of `user` and lowers the count. */
  async removeOffline(user: string, keys: Deno.KvKey[]): Promise<void> {
    while (true) {
      const meta = await this.#kv.get<OfflineMeta>(["offline_meta", user]);
      const { next, count } = meta.value ?? { next: 0, count: 0 };
      const op = this.#kv.atomic().check(meta);
      for (const key of keys) op.delete(key);
      const left = Math.max(0, count - keys.length);
      // An empty queue restarts its numbering: nothing else refers to it.
      if (left === 0) op.delete(meta.key);
      else op.set(meta.key, { next, count: left });
      if ((await op.commit()).ok) return;
    }
  }

  close(): void {
    this.#kv.close();
  }
}

/**
 * Runs tasks one after another per key (per user), so that storing,
 * delivering and flushing a user's messages never interleave and order
 * is kept.
 */
export class KeyedQueue {
  #tails = new Map<string, Promise<unknown>>();

  /**
   * Runs `task` after every earlier task of `key`; resolves with its
   * result. With nothing queued for `key` it runs at once, and a task
   * that returns no promise leaves nothing queued.
   */
  run<T>(key: string, task: () => T | Promise<T>): Promise<T> {
    const before = this.#tails.get(key);
    let result: Promise<T>;
    if (before) {
      result = before.then(task, task);
    } else {
      let value: T | Promise<T>;
      try {
        value = task();
      } catch (error) {
        return Promise.reject(error);
      }
      if (!(value instanceof Promise)) return Promise.resolve(value);
      result = value;
    }
    const tail = result.catch(() => {});
    this.#tails.set(key, tail);
    tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return result;
  }

  /** Resolves when every queued task has finished. */
  async idle(): Promise<void> {
    while (this.#tails.size > 0) await Promise.all([...this.#tails.values()]);
  }
}

/**
 * Counts failed logins per account in a sliding minute: after
 * {@link MAX_LOGIN_FAILURES}, attempts for that account are refused until
 * the oldest failure leaves the window. Unknown accounts are counted the
 * same way, so throttling tells nothing about which accounts exist.
 */
export class LoginThrottle {
  #failures = new Map<string, number[]>();
  #max: number;
  #windowMs: number;

  constructor(max = MAX_LOGIN_FAILURES, windowMs = FAILURE_WINDOW_MS) {
    this.#max = max;
    this.#windowMs = windowMs;
  }

  /** Milliseconds `user` must wait before trying again; 0 to go ahead. */
  waitMs(user: string, now = Date.now()): number {
    const times = this.#recent(user, now);
    return times.length >= this.#max ? times[0] + this.#windowMs - now : 0;
  }

  /** Records a failure. */
  fail(user: string, now = Date.now()): void {
    const times = this.#recent(user, now);
    times.push(now);
    this.#failures.delete(user); // re-insert: the Map keeps the most recent last
    this.#failures.set(user, times.slice(-this.#max));
    if (this.#failures.size > MAX_THROTTLED_ACCOUNTS) {
      this.#failures.delete(this.#failures.keys().next().value!);
    }
  }

  /** Forgets failures after a successful login. */
  clear(user: string): void {
    this.#failures.delete(user);
  }

  #recent(user: string, now: number): number[] {
    const times = this.#failures.get(user) ?? [];
    const fresh = times.filter((t) => t > now - this.#windowMs);
    if (fresh.length === 0) this.#failures.delete(user);
    return fresh;
  }
}

/** One connected client: its session, its ordered writer, and who it is logged in as. */
class Client {
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

/** Options for {@link serveIm}. */
export interface ImServerOptions {
  /** Where to listen. Default `0.0.0.0:8888` (the seed's port). */
  address?: Address;
  /** The Deno KV database; `:memory:` keeps nothing. Default `./im.kv`. */
  db?: string;
  /** PBKDF2 iterations for new passwords. Default 600000 (the least allowed). */
  iterations?: number;
  /** Allow fewer iterations than 600000: tests only. Default false. */
  insecureTestHashing?: boolean;
  /** Most messages waiting per offline user. Default 1000. */
  maxOffline?: number;
  /** Longest message text in UTF-8 bytes. Default 8192. */
  maxTextBytes?: number;
  /** Longest request line in bytes. Default 65536. */
  maxLineBytes?: number;
  /** Most simultaneous connections. Default 10000. */
  maxConns?: number;
  /** Close connections silent this long; 0 never. Default 300000 ms. */
  idleTimeoutMs?: number;
  /** Log nothing per connection. Default false. */
  quiet?: boolean;
  /** Aborting it shuts the server down gracefully. */
  signal?: AbortSignal;
  /** Called once listening. Default prints the ready line. */
  onListen?: (addr: Deno.Addr) => void;
}

/** A running IM server: its TCP server and, once `finished`, a closed database. */
export interface ImServer extends AsyncDisposable {
  readonly addr: Deno.Addr;
  /** Resolves when every connection has ended and the database is closed. */
  readonly finished: Promise<void>;
  shutdown(): Promise<void>;
}

/** Requests that change no session state, so that several may be served at once. */
const PIPELINED = new Set<Request["type"]>(["send", "broadcast", "ping"]);

/** Marks work to do once a reply is written: a login's offline messages follow its reply. */
const AFTER = Symbol("after");
type Reply = Record<string, unknown> & { type: string; [AFTER]?: () => Promise<void> };

/** The server's behaviour, one method per request type. */
class ImService {
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
function errorLine(code: ErrorCode, message: string, id?: RequestId, extra = {}): string {
  return JSON.stringify({
    type: "error",
    ...(id === undefined ? {} : { id }),
    code,
    message,
    ...extra,
  });
}

/** Starts the IM server; resolves once it listens. */
export async function serveIm(options: ImServerOptions = {}): Promise<ImServer> {
  const log = new Logger({ quiet: options.quiet });
  const hasher = new PasswordHasher({
    iterations: options.iterations ?? DEFAULT_ITERATIONS,
    allowWeakForTests: options.insecureTestHashing,
  });
  const maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  const maxTextBytes = options.maxTextBytes ?? DEFAULT_MAX_TEXT_BYTES;
  const idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  const store = await ImStore.open(options.db ?? "./im.kv");
  const service = new ImService(store, hasher, log, options.maxOffline ?? DEFAULT_MAX_OFFLINE);
  const hello = JSON.stringify({
    type: "hello",
    server: "im_server (netkit)",
    version: VERSION,
    max_line_bytes: maxLineBytes,
    max_text_bytes: maxTextBytes,
    idle_timeout_ms: idleTimeoutMs,
  });

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

  let server: TcpServer;
  try {
    server = await serveTcp(handle, {
      address: options.address ?? { transport: "tcp", hostname: "0.0.0.0", port: 8888 },
      maxConns: options.maxConns,
      idleTimeoutMs,
      idleMessage: errorLine("idle_timeout", `Nothing heard for ${idleTimeoutMs} ms; closing`) +
        "\n",
      busyMessage: errorLine("server_busy", "Too many connections; try again later") + "\n",
      signal: options.signal,
      logger: log,
      onListen: options.onListen,
    });
  } catch (error) {
    store.close();
    throw error;
  }
  log.info(
    `Passwords: PBKDF2-HMAC-SHA256, ${hasher.iterations} iterations; database ${
      options.db ?? "./im.kv"
    }`,
  );
  const finished = server.finished.then(async () => {
    await service.queue.idle();
    await store.settled();
    store.close();
  });
  return {
    addr: server.addr,
    finished,
    shutdown: () => server.shutdown().then(() => finished),
    [Symbol.asyncDispose]: () => server.shutdown().then(() => finished),
  };
}

const spec = {
  name: "im_server",
  summary: "Instant-messaging server: register, log in, online list, group and private " +
    "messages, offline messages (JSON lines over TCP).",
  args: "[ADDR]",
  options: {
    ...serverOptions(["max-conns", "idle-timeout", "quiet"], {
      "max-conns": { description: "most clients at once" },
      "idle-timeout": { default: "5m", description: "close clients silent this long (0 = never)" },
    }),
    db: {
      type: "string",
      arg: "PATH",
      default: "./im.kv",
      description: "Deno KV database file (:memory: keeps nothing)",
    },
    "max-offline": {
      type: "string",
      arg: "N",
      default: String(DEFAULT_MAX_OFFLINE),
      description: "most messages waiting per offline user",
    },
    "max-message": {
      type: "string",
      arg: "BYTES",
      default: String(DEFAULT_MAX_TEXT_BYTES),
      description: "longest message text",
    },
    "max-line": {
      type: "string",
      arg: "BYTES",
      default: String(DEFAULT_MAX_LINE_BYTES),
      description: "longest request line",
    },
    "pbkdf2-iterations": {
      type: "string",
      arg: "N",
      default: String(DEFAULT_ITERATIONS),
      description: "PBKDF2 work factor for new passwords (at least 600000)",
    },
    "insecure-test-hashing": {
      type: "boolean",
      description: "TESTS ONLY: allow --pbkdf2-iterations below 600000",
    },
  },
  notes: `ADDR is PORT, HOST:PORT or [IPv6]:PORT (default 8888).

Protocol: one JSON object per line; see the README for every type. Try:
  nc localhost 8888
  {"type":"register","user":"alice","password":"correct horse","name":"Alice"}
  {"type":"login","user":"alice","password":"correct horse"}
  {"type":"broadcast","text":"hello everyone"}`,
} as const;

/** Runs the IM server until SIGINT or SIGTERM; returns the exit code. */
export function main(args: string[]): Promise<number> {
  return runCommand(spec, args, ({ values, positionals }) => {
    const settings = serverSettings(values, positionals, { defaultPort: 8888 });
    const iterations = parseIntOption(values["pbkdf2-iterations"], "pbkdf2-iterations", {
      min: 1,
    });
    if (iterations < DEFAULT_ITERATIONS && !values["insecure-test-hashing"]) {
      throw new UsageError(
        `Invalid --pbkdf2-iterations "${iterations}": must be at least ${DEFAULT_ITERATIONS}`,
      );
    }
    const options: ImServerOptions = {
      db: values.db,
      iterations,
      insecureTestHashing: values["insecure-test-hashing"],
      maxOffline: parseIntOption(values["max-offline"], "max-offline", { min: 0 }),
      maxTextBytes: parseIntOption(values["max-message"], "max-message", { min: 1 }),
      maxLineBytes: parseIntOption(values["max-line"], "max-line", { min: 256 }),
      maxConns: settings.maxConns,
      idleTimeoutMs: settings.idleTimeoutMs,
      quiet: settings.quiet,
    };
    return runServer(
      settings,
      (run) =>
        serveIm({ ...options, address: run.address, signal: run.signal, onListen: run.onListen }),
      { moduleUrl: import.meta.url },
    );
  });
}

if (import.meta.main) Deno.exit(await main(Deno.args));
