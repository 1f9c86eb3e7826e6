/**
 * The shared secret a `file_recv --token-file` demands of every sender:
 * read from a file on both sides, compared in constant time.
 *
 * @module
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { MAX_TOKEN_BYTES } from "./file_protocol.ts";
import { UsageError } from "../cli/cli.ts";

const encoder = new TextEncoder();

/**
 * Reads a token file: its text without surrounding whitespace, 1-512
 * bytes, one printable line. A missing or unfit file is a {@link UsageError}.
 */
export async function readTokenFile(path: string): Promise<string> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    throw new UsageError(`Cannot read token file "${path}": ${(error as Error).message}`);
  }
  const token = text.trim();
  const bytes = encoder.encode(token).byteLength;
  if (bytes === 0) throw new UsageError(`Token file "${path}" is empty`);
  if (bytes > MAX_TOKEN_BYTES) {
    throw new UsageError(`Token file "${path}" holds ${bytes} bytes, over ${MAX_TOKEN_BYTES}`);
  }
  // deno-lint-ignore no-control-regex
  if (/[\x00-\x1f\x7f]/.test(token)) {
    throw new UsageError(`Token file "${path}" holds more than one line or control characters`);
  }
  return token;
}

/**
 * Whether `given` equals `expected`, in time that depends on neither:
 * both are hashed first, so lengths never short-cut the comparison.
 */
export function tokenMatches(given: string | undefined, expected: string): boolean {
  const digest = (text: string) => createHash("sha256").update(text).digest();
  return timingSafeEqual(digest(given ?? ""), digest(expected)) && given !== undefined;
}
