/**
 * Progress of long transfers on stderr: a bar redrawn in place (bytes,
 * rate, ETA) when stderr is a terminal, plain log lines every few seconds
 * otherwise, so that logs and pipes never fill with carriage returns.
 *
 * @module
 */
import type { LogSink } from "./log.ts";
import { writeAllSync } from "../io/print.ts";

const encoder = new TextEncoder();
/** How often the bar is redrawn on a terminal. */
const REDRAW_MS = 100;
/** How often a transfer logs a line when stderr is not a terminal. */
const LOG_EVERY_MS = 5_000;
const BAR_CELLS = 20;
const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

/** Formats a byte count: `512 B`, `1.5 KiB`, `1.00 GiB`. */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  if (unit === 0) return `${bytes} B`;
  return `${value.toFixed(value < 10 ? 2 : value < 100 ? 1 : 0)} ${UNITS[unit]}`;
}

/** Formats a rate in bytes per second: `312 MiB/s`. */
export function formatRate(bytesPerSecond: number): string {
  return `${formatBytes(Math.round(bytesPerSecond))}/s`;
}

/** Formats a duration in seconds for an ETA: `4s`, `2m05s`, `1h02m`. */
export function formatEta(seconds: number): string {
  if (!Number.isFinite(seconds)) return "--";
  const s = Math.ceil(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, "0")}m`;
}

/** One transfer on a {@link ProgressBoard}. */
export class Transfer {
  readonly label: string;
  readonly total: number;
  /** Bytes done, the resumed offset included. */
  bytes: number;
  readonly #startBytes: number;
  readonly #startedAt = performance.now();
  #board: ProgressBoard;

  constructor(board: ProgressBoard, label: string, total: number, offset: number) {
    this.#board = board;
    this.label = label;
    this.total = total;
    this.bytes = offset;
    this.#startBytes = offset;
  }

  /** Counts `n` more bytes done. */
  advance(n: number): void {
    this.bytes += n;
  }

  /** Seconds since the transfer started. */
  get seconds(): number {
    return (performance.now() - this.#startedAt) / 1000;
  }

  /** Bytes per second moved in this run (a resumed offset not counted). */
  get rate(): number {
    const s = this.seconds;
    return s > 0 ? (this.bytes - this.#startBytes) / s : 0;
  }

  /** `45% 450 MiB of 1.00 GiB, 312 MiB/s, ETA 2s`. */
  describe(): string {
    const pct = this.total > 0 ? Math.floor((this.bytes / this.total) * 100) : 100;
    const eta = this.rate > 0 ? (this.total - this.bytes) / this.rate : Infinity;
    return `${pct}% ${formatBytes(this.bytes)} of ${formatBytes(this.total)}, ` +
      `${formatRate(this.rate)}, ETA ${formatEta(eta)}`;
  }

  /** `name [#########-----------] 45% 450 MiB/1.00 GiB 312 MiB/s ETA 2s`. */
  bar(): string {
    const fraction = this.total > 0 ? Math.min(1, this.bytes / this.total) : 1;
    const full = Math.round(fraction * BAR_CELLS);
    const eta = this.rate > 0 ? (this.total - this.bytes) / this.rate : Infinity;
    return `${this.label} [${"#".repeat(full)}${"-".repeat(BAR_CELLS - full)}] ` +
      `${Math.floor(fraction * 100)}% ${formatBytes(this.bytes)}/${formatBytes(this.total)} ` +
      `${formatRate(this.rate)} ETA ${formatEta(eta)}`;
  }

  /** Removes the transfer from its board. */
  finish(): void {
    this.#board.remove(this);
  }
}

/** Options for {@link ProgressBoard}. */
export interface ProgressBoardOptions {
  /** Draw a bar in place. Default: whether stderr is a terminal. */
  tty?: boolean;
  /** Where bars and lines go. Default `Deno.stderr`. */
  sink?: LogSink;
  /** Called with a plain progress line (no terminal). Default: written to the sink. */
  log?: (line: string) => void;
  /** Plain lines every this many ms. Default 5000. */
  logEveryMs?: number;
}

/**
 * The status line of the transfers in flight: one bar (or several side by
 * side) on a terminal, or a plain line per transfer every few seconds.
 * Give {@link ProgressBoard.sink} to the `Logger`, so that log lines clear
 * the bar and it is redrawn under them.
 */
export class ProgressBoard {
  readonly tty: boolean;
  readonly #out: LogSink;
  readonly #log: (line: string) => void;
  readonly #logEveryMs: number;
  #transfers = new Set<Transfer>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #drawn = false;

  constructor(options: ProgressBoardOptions = {}) {
    this.tty = options.tty ?? Deno.stderr.isTerminal();
    this.#out = options.sink ?? Deno.stderr;
    this.#log = options.log ?? ((line) => this.#write(line + "\n"));
    this.#logEveryMs = options.logEveryMs ?? LOG_EVERY_MS;
  }

  /** A sink for a `Logger`: clears the bar, writes the line, redraws the bar. */
  readonly sink: LogSink = {
    writeSync: (p: Uint8Array): number => {
      if (this.#drawn) this.#write("\r\x1b[K");
      this.#drawn = false;
      this.#writeBytes(p);
      this.#draw();
      return p.byteLength;
    },
  };

  /** Starts showing a transfer of `total` bytes, `offset` of them already done. */
  start(label: string, total: number, offset = 0): Transfer {
    const transfer = new Transfer(this, label, total, offset);
    this.#transfers.add(transfer);
    if (this.#timer === undefined) {
      const timer = setInterval(() => this.#tick(), this.tty ? REDRAW_MS : this.#logEveryMs);
      Deno.unrefTimer(timer); // progress alone never keeps the process alive
      this.#timer = timer;
    }
    return transfer;
  }

  /** Stops showing a transfer; clears the bar when none is left. */
  remove(transfer: Transfer): void {
    if (!this.#transfers.delete(transfer)) return;
    if (this.#transfers.size === 0) {
      clearInterval(this.#timer);
      this.#timer = undefined;
      if (this.#drawn) this.#write("\r\x1b[K");
      this.#drawn = false;
    } else {
      this.#draw();
    }
  }

  #tick(): void {
    if (this.tty) {
      this.#draw();
      return;
    }
    for (const t of this.#transfers) {
      if (t.seconds * 1000 >= this.#logEveryMs / 2) this.#log(`${t.label}: ${t.describe()}`);
    }
  }

  #draw(): void {
    if (!this.tty || this.#transfers.size === 0) return;
    const transfers = [...this.#transfers];
    let line = transfers.length === 1 ? transfers[0].bar() : `${transfers.length} transfers: ` +
      transfers.map((t) => `${t.label} ${Math.floor((t.bytes / (t.total || 1)) * 100)}%`)
        .join(", ");
    const width = terminalWidth();
    if (line.length >= width) line = line.slice(0, width - 1);
    this.#write(`\r\x1b[K${line}`);
    this.#drawn = true;
  }

  #write(text: string): void {
    this.#writeBytes(encoder.encode(text));
  }

  #writeBytes(bytes: Uint8Array): void {
    try {
      writeAllSync(this.#out, bytes);
    } catch {
      // stderr closed: progress is not worth failing for.
    }
  }
}

function terminalWidth(): number {
  try {
    return Deno.consoleSize().columns || 80;
  } catch {
    return 80;
  }
}
