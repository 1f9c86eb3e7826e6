/**
 * Where received files land in DIR: the names in use, the existing-file
 * policy, folders made one at a time and never through a symlink, and the
 * move of a complete partial copy into place.
 *
 * @module
 */
import { join } from "node:path";
import { nameProblem, numberedName, quoteName } from "./file_protocol.ts";
import { PARTIALS_DIR } from "./partials.ts";

/** How many `name (N).ext` candidates --rename tries. */
const MAX_RENAME_TRIES = 10_000;

/** What to do when a file of the same name is already in DIR. */
export type ExistingPolicy = "refuse" | "overwrite" | "rename";

/** A refusal or a failed transfer; its message goes to the sender as `error <message>`. */
export class TransferError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TransferError";
  }
}

/** Owns the final names in DIR; one instance per receiver. */
export class Inbox {
  readonly dir: string;
  #existing: ExistingPolicy;
  #fsync: boolean;
  /** Final names that a transfer in flight writes. */
  #claimed = new Set<string>();

  constructor(dir: string, options: { existing?: ExistingPolicy; fsync?: boolean } = {}) {
    this.dir = dir;
    this.#existing = options.existing ?? "refuse";
    this.#fsync = options.fsync ?? false;
  }

  /** Ends a claim. */
  release(final: string): void {
    this.#claimed.delete(final);
  }

  /** Picks the name to write, by the existing-file policy, and marks it in use. */
  async claim(name: string): Promise<string> {
    if (name.split("/")[0] === PARTIALS_DIR) {
      throw new TransferError(`${quoteName(name)} is reserved for the receiver's partial copies`);
    }
    await this.#folders(name, false);
    const policy = this.#existing;
    let final = name;
    for (let n = 1;; n++) {
      const busy = this.#claimed.has(final);
      if (!busy && (policy === "overwrite" || !(await this.#exists(final)))) break;
      if (policy !== "rename") {
        throw new TransferError(
          busy
            ? `${quoteName(final)} is being received from another sender`
            : `${quoteName(final)} exists (the receiver runs without --overwrite or --rename)`,
        );
      }
      final = numberedName(name, n);
      if (n > MAX_RENAME_TRIES || nameProblem(final)) {
        throw new TransferError(`No free name for ${quoteName(name)} in the receiver's directory`);
      }
    }
    this.#claimed.add(final);
    return final;
  }

  /**
   * Checks (and with `create`, makes) the folders of a relative name inside
   * DIR, one at a time, refusing anything there that is not a real folder:
   * a symlink among them would lead outside DIR.
   */
  async #folders(name: string, create: boolean): Promise<void> {
    const parts = name.split("/").slice(0, -1);
    let path = this.dir;
    for (const part of parts) {
      path = join(path, part);
      let info: Deno.FileInfo | null = null;
      try {
        info = await Deno.lstat(path);
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
      }
      if (info === null && !create) return; // nothing below it exists either
      if (info === null) {
        try {
          await Deno.mkdir(path);
        } catch (error) {
          if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
        }
        info = await Deno.lstat(path);
      }
      if (!info.isDirectory) {
        const shown = quoteName(path.slice(this.dir.length + 1));
        throw new TransferError(`${shown} exists and is not a folder (a file or a symlink)`);
      }
    }
  }

  async #exists(name: string): Promise<boolean> {
    try {
      await Deno.lstat(join(this.dir, name)); // a symlink, even dangling, exists
      return true;
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return false;
      throw error;
    }
  }

  /** Moves a complete partial into place: replacing only with --overwrite, never following links. */
  async place(partPath: string, final: string): Promise<void> {
    await this.#folders(final, true);
    const finalPath = join(this.dir, final);
    if (this.#existing === "overwrite") {
      await Deno.rename(partPath, finalPath); // replaces a symlink itself, not its target
    } else {
      try {
        await Deno.link(partPath, finalPath); // fails if the name appeared meanwhile
      } catch (error) {
        if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
        throw new TransferError(`${quoteName(final)} appeared meanwhile; not saved`);
      }
      await Deno.remove(partPath);
    }
    if (this.#fsync) await syncDirectory(this.dir);
  }
}

/** Flushes a directory's entries (the rename) to disk, where the system allows it. */
async function syncDirectory(path: string): Promise<void> {
  try {
    using dir = await Deno.open(path, { read: true });
    await dir.sync();
  } catch {
    // Not every system can open a directory; the file itself is flushed.
  }
}
