/**
 * IM's storage in Deno KV: users (passwords only as hashes) and each
 * user's bounded queue of offline messages, stored in group commits.
 *
 * @module
 */
import type { ChatMessage } from "./im_protocol.ts";
import type { PasswordRecord } from "./password.ts";
import { skeleton } from "../text/names.ts";

/** Messages stored per group commit, users per commit (KV allows 100 checks), and bytes (800 KB). */
const MAX_BATCH_MESSAGES = 200;
const MAX_BATCH_USERS = 50;
const MAX_BATCH_BYTES = 512 * 1024;
/** A user as stored: the password only as a hash. */
export interface UserRecord {
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
export type StoredMessage = Omit<ChatMessage, "type" | "offline">;

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
