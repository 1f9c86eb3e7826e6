/**
 * The receiver's partial copies: the bytes of unfinished transfers, kept in
 * a hidden folder inside DIR under names derived from what identifies the
 * transfer, so that no sent name can reach them; bounded in count and in
 * bytes, and expired.
 *
 * @module
 */
import { join } from "node:path";
import { createHash, randomUUID } from "node:crypto";

/** The folder inside DIR that holds partial copies; a sent file may not take this name. */
export const PARTIALS_DIR = ".netkit-partials";
/** Suffix of every partial copy. */
const SUFFIX = ".part";
/** Enough partials for many broken transfers at once, few enough to list on every transfer. */
export const DEFAULT_MAX_PARTIALS = 100;
/** Bytes all partials may hold together. */
export const DEFAULT_MAX_PARTIAL_BYTES = 64 * 1024 ** 3;
/** A partial untouched this long is deleted: a sender rarely comes back after a day. */
export const DEFAULT_PARTIAL_TTL_MS = 24 * 3600_000;

/** Bounds on the partial copies. */
export interface PartialLimits {
  /** Most partials kept. Default 100. */
  maxCount?: number;
  /** Most bytes all partials hold together. Default 64 GiB. */
  maxBytes?: number;
  /** Delete a partial untouched this long. Default 24 h. */
  ttlMs?: number;
}

/** A partial copy listed by {@link PartialStore.list}. */
interface Listed {
  id: string;
  size: number;
  mtime: number;
}

/** Owns DIR's partials folder: which partials exist, which are in use, and what is deleted. */
export class PartialStore {
  /** The folder's absolute path. */
  readonly dir: string;
  #limits: Required<PartialLimits>;
  #inUse = new Set<string>();

  private constructor(dir: string, limits: Required<PartialLimits>) {
    this.dir = dir;
    this.#limits = limits;
  }

  /** Opens (creating it if needed) the partials folder inside `root` and prunes it. */
  static async open(root: string, limits: PartialLimits = {}): Promise<PartialStore> {
    const dir = join(root, PARTIALS_DIR);
    try {
      await Deno.mkdir(dir, { mode: 0o700 });
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
    }
    const info = await Deno.lstat(dir);
    if (!info.isDirectory) throw new Error(`"${dir}" is not a directory (a symlink or a file)`);
    const store = new PartialStore(dir, {
      maxCount: limits.maxCount ?? DEFAULT_MAX_PARTIALS,
      maxBytes: limits.maxBytes ?? DEFAULT_MAX_PARTIAL_BYTES,
      ttlMs: limits.ttlMs ?? DEFAULT_PARTIAL_TTL_MS,
    });
    await store.prune();
    return store;
  }

  /**
   * The id of a resumable transfer: a digest of the name, the size and the
   * sender's key, so that only the same file sent again finds it.
   */
  static resumableId(name: string, size: number, key: string): string {
    return createHash("sha256").update(JSON.stringify([name, size, key])).digest("hex");
  }

  /** A fresh id for a transfer that nobody can resume (no key, or the bare protocol). */
  static oneOffId(): string {
    return `once-${randomUUID()}`;
  }

  /** The partial's path for an id. */
  path(id: string): string {
    return join(this.dir, id + SUFFIX);
  }

  /** Marks an id in use; false when another transfer holds it. */
  claim(id: string): boolean {
    if (this.#inUse.has(id)) return false;
    this.#inUse.add(id);
    return true;
  }

  /** Ends a claim. */
  release(id: string): void {
    this.#inUse.delete(id);
  }

  /** Deletes the partial of an id (if any). */
  async remove(id: string): Promise<void> {
    await Deno.remove(this.path(id)).catch(() => {});
  }

  /**
   * Deletes partials not in use: the expired ones, those nobody can resume
   * (left by a crash), then the oldest until count and bytes are within
   * bounds (counting `reserve` bytes about to be written).
   */
  async prune(reserve = 0): Promise<void> {
    const now = Date.now();
    const kept: Listed[] = [];
    for (const entry of await this.#list()) {
      if (this.#inUse.has(entry.id)) continue;
      const stale = now - entry.mtime > this.#limits.ttlMs || entry.id.startsWith("once-");
      if (stale) await this.remove(entry.id);
      else kept.push(entry);
    }
    kept.sort((a, b) => a.mtime - b.mtime);
    const inUse = this.#inUse.size;
    let bytes = kept.reduce((sum, e) => sum + e.size, 0) + reserve;
    let count = kept.length + inUse;
    for (const entry of kept) {
      if (count <= this.#limits.maxCount && bytes <= this.#limits.maxBytes) break;
      await this.remove(entry.id);
      count--;
      bytes -= entry.size;
    }
  }

  /** Every partial in the folder (plain files with our suffix). */
  async #list(): Promise<Listed[]> {
    const out: Listed[] = [];
    for await (const entry of Deno.readDir(this.dir)) {
      if (!entry.isFile || !entry.name.endsWith(SUFFIX)) continue;
      const id = entry.name.slice(0, -SUFFIX.length);
      try {
        const info = await Deno.lstat(this.path(id));
        out.push({ id, size: info.size, mtime: info.mtime?.getTime() ?? 0 });
      } catch {
        // Deleted meanwhile.
      }
    }
    return out;
  }
}
