/**
 * Password hashing with PBKDF2-HMAC-SHA256 from Web Crypto: a 16-byte
 * random salt per password, at least 600,000 iterations (OWASP's 2023
 * figure for PBKDF2-SHA256), a 32-byte hash, and comparison in constant
 * time. Records carry their own iteration count, so raising the default
 * later still verifies old records (and {@link needsRehash} says when to
 * upgrade them).
 *
 * @module
 */

/** The fewest iterations accepted outside tests (OWASP, 2023). */
export const MIN_ITERATIONS = 600_000;
/** The default work factor. */
export const DEFAULT_ITERATIONS = 600_000;
/** Bytes of random salt per password. */
export const SALT_BYTES = 16;
/** Bytes of derived key stored. */
export const HASH_BYTES = 32;
const encoder = new TextEncoder();

/** What is stored for a password: never the password itself. */
export interface PasswordRecord {
  /** Always `"pbkdf2-sha256"`. */
  algorithm: "pbkdf2-sha256";
  iterations: number;
  salt: Uint8Array;
  hash: Uint8Array;
}

/** Options for {@link PasswordHasher}. */
export interface PasswordHasherOptions {
  /** PBKDF2 iterations for new hashes. Default 600000. */
  iterations?: number;
  /**
   * Allow fewer than {@link MIN_ITERATIONS}; for tests only, where
   * 600,000 iterations per login would make the suite crawl. Default false.
   */
  allowWeakForTests?: boolean;
  /** Most hashes computed at once; the rest queue. Default 2. */
  concurrency?: number;
}

/**
 * Hashes and verifies passwords. Hashes run off the main thread; at most
 * `concurrency` run at once, so a burst of logins cannot starve the
 * machine.
 */
export class PasswordHasher {
  readonly iterations: number;
  /** Hashes derived so far (tests check that every login costs exactly one). */
  derivations = 0;
  #concurrency: number;
  #running = 0;
  #waiting: Array<() => void> = [];
  #dummySalt = crypto.getRandomValues(new Uint8Array(SALT_BYTES));

  constructor(options: PasswordHasherOptions = {}) {
    const iterations = options.iterations ?? DEFAULT_ITERATIONS;
    if (!Number.isSafeInteger(iterations) || iterations < 1) {
      throw new RangeError(`Invalid PBKDF2 iterations "${iterations}": must be a positive integer`);
    }
    if (iterations < MIN_ITERATIONS && !options.allowWeakForTests) {
      throw new RangeError(
        `Invalid PBKDF2 iterations "${iterations}": must be at least ${MIN_ITERATIONS}`,
      );
    }
    this.iterations = iterations;
    this.#concurrency = Math.max(1, options.concurrency ?? 2);
  }

  /** Hashes a password with a new random salt. */
  async hash(password: string): Promise<PasswordRecord> {
    const salt = crypto.getRandomValues(new Uint8Array(SALT_BYTES));
    const hash = await this.#derive(password, salt, this.iterations);
    return { algorithm: "pbkdf2-sha256", iterations: this.iterations, salt, hash };
  }

  /**
   * Whether `password` matches `record`. With no record (an unknown user)
   * it still derives one hash of the same cost and answers false, so that
   * both failures take the same time.
   */
  async verify(password: string, record: PasswordRecord | null): Promise<boolean> {
    if (!record || record.algorithm !== "pbkdf2-sha256") {
      const dummy = await this.#derive(password, this.#dummySalt, this.iterations);
      timingSafeEqual(dummy, this.#dummySalt); // the same comparison work, result unused
      return false;
    }
    const hash = await this.#derive(password, record.salt, record.iterations);
    return timingSafeEqual(hash, record.hash);
  }

  /** Whether a record was hashed with fewer iterations than new hashes get. */
  needsRehash(record: PasswordRecord): boolean {
    return record.iterations < this.iterations;
  }

  async #derive(password: string, salt: Uint8Array, iterations: number): Promise<Uint8Array> {
    await this.#acquire();
    this.derivations++;
    try {
      const key = await crypto.subtle.importKey(
        "raw",
        encoder.encode(password.normalize("NFC")),
        "PBKDF2",
        false,
        ["deriveBits"],
      );
      const bits = await crypto.subtle.deriveBits(
        { name: "PBKDF2", hash: "SHA-256", salt: salt as Uint8Array<ArrayBuffer>, iterations },
        key,
        HASH_BYTES * 8,
      );
      return new Uint8Array(bits);
    } finally {
      this.#release();
    }
  }

  async #acquire(): Promise<void> {
    if (this.#running < this.#concurrency) {
      this.#running++;
      return;
    }
    await new Promise<void>((resolve) => this.#waiting.push(resolve));
  }

  #release(): void {
    const next = this.#waiting.shift();
    if (next) next(); // The slot passes straight to the next waiter.
    else this.#running--;
  }
}

/**
 * Compares two byte arrays in time that depends only on their lengths,
 * never on where they first differ.
 */
export function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  const length = Math.max(a.byteLength, b.byteLength);
  let diff = a.byteLength ^ b.byteLength;
  for (let i = 0; i < length; i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}
