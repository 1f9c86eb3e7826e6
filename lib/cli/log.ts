/**
 * Go-style logging: `2006/01/02 15:04:05 message` lines on stderr, as Go's
 * `log.Println` prints them, silenced by `--quiet`, every control
 * character escaped.
 *
 * @module
 */

import { escapeControls } from "../io/escape.ts";
import { writeAllSync } from "../io/print.ts";

const encoder = new TextEncoder();

/** Formats a time the way Go's log package does: `2006/01/02 15:04:05`. */
export function goLogTime(date: Date = new Date()): string {
  const p = (n: number) => String(n).padStart(2, "0");
  return `${date.getFullYear()}/${p(date.getMonth() + 1)}/${p(date.getDate())} ` +
    `${p(date.getHours())}:${p(date.getMinutes())}:${p(date.getSeconds())}`;
}

/** Where log lines go; tests pass their own. */
export interface LogSink {
  writeSync(p: Uint8Array): number;
}

/** Options for {@link Logger}. */
export interface LoggerOptions {
  /** Drop informational lines; errors are still written. Default false. */
  quiet?: boolean;
  /** Where lines go. Default `Deno.stderr`. */
  sink?: LogSink;
  /** Prefix each line with the time. Default true. */
  timestamps?: boolean;
}

/** Writes timestamped diagnostic lines; one per call, never interleaved. */
export class Logger {
  readonly quiet: boolean;
  #sink: LogSink;
  #timestamps: boolean;

  constructor(options: LoggerOptions = {}) {
    this.quiet = options.quiet ?? false;
    this.#sink = options.sink ?? Deno.stderr;
    this.#timestamps = options.timestamps ?? true;
  }

  /** Logs an informational line, unless quiet. */
  info(...parts: unknown[]): void {
    if (!this.quiet) this.#write(parts);
  }

  /** Logs an error line, even when quiet. */
  error(...parts: unknown[]): void {
    this.#write(parts);
  }

  #write(parts: unknown[]): void {
    // Escaped always: a log line often quotes what a peer sent, and may reach a terminal.
    const text = escapeControls(
      parts.map((p) => p instanceof Error ? p.message : String(p)).join(" "),
    );
    const line = this.#timestamps ? `${goLogTime()} ${text}\n` : `${text}\n`;
    const bytes = encoder.encode(line);
    try {
      writeAllSync(this.#sink, bytes);
    } catch {
      // stderr closed: nowhere left to report to.
    }
  }
}
