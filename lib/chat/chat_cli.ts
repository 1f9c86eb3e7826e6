/**
 * The command-line options both chat servers share (`tcp_chat_server`
 * and `ws_chat_server`): the room's bounds and the TCP side's timeouts,
 * with their parsing, so that both spell and check them the same way.
 *
 * @module
 */
import { type OptionSpec, parseDurationOption, parseIntOption, UsageError } from "../cli/cli.ts";
import { DEFAULT_MAX_MESSAGE_BYTES } from "./chat_text.ts";
import { DEFAULT_BURST, DEFAULT_MAX_QUEUE, DEFAULT_RATE, type HubOptions } from "./hub.ts";
import type { TcpChatOptions } from "./tcp_chat.ts";
import { serverOptions } from "../net/lifecycle.ts";

/** Options of the room, for a command's option table. */
export const ROOM_OPTIONS = {
  "max-message": {
    type: "string",
    arg: "BYTES",
    default: String(DEFAULT_MAX_MESSAGE_BYTES),
    description: "longest message in bytes",
  },
  "max-queue": {
    type: "string",
    arg: "N",
    default: String(DEFAULT_MAX_QUEUE),
    description:
      "messages queued for a slow member before it is dropped (WebSocket: their byte equivalent)",
  },
  rate: {
    type: "string",
    arg: "N",
    default: String(DEFAULT_RATE),
    description: "messages per second one member may send (0 = no limit)",
  },
  burst: {
    type: "string",
    arg: "N",
    default: String(DEFAULT_BURST),
    description: "messages one member may send at once",
  },
} as const satisfies Record<string, OptionSpec>;

/** Options of the TCP side, for a command's option table. */
export const TCP_CHAT_OPTIONS = {
  // The shared option, described for the TCP side (the WebSocket side has its own head bound).
  "head-timeout": serverOptions(["head-timeout"], {
    "head-timeout": {
      description: "close a TCP member that leaves a started line unfinished this long",
    },
  })["head-timeout"],
  "heartbeat-timeout": {
    type: "string",
    arg: "DURATION",
    default: "5s",
    description: "remove a member that pings (/ping) and then stays silent this long",
  },
  "tcp-idle-timeout": {
    type: "string",
    arg: "DURATION",
    default: "10m",
    description: "remove a member that never pings after this much silence (0 = never)",
  },
  "max-line": {
    type: "string",
    arg: "BYTES",
    default: "4096",
    description: "longest TCP line; a longer one closes the connection",
  },
} as const satisfies Record<string, OptionSpec>;

type Values<O extends Record<string, OptionSpec>> = {
  [K in keyof O]: O[K] extends { type: "boolean" } ? boolean : string;
};

/** Checks the room options; throws a UsageError quoting a bad value. */
export function roomOptions(values: Values<typeof ROOM_OPTIONS>): HubOptions {
  const maxMessageBytes = parseIntOption(values["max-message"], "max-message", {
    min: 1,
    max: 1 << 20,
  });
  const maxQueue = parseIntOption(values["max-queue"], "max-queue", { min: 1 });
  return {
    maxMessageBytes,
    maxQueue,
    // The byte equivalent of the queue: a full-size message in its envelope.
    maxQueueBytes: maxQueue * (maxMessageBytes * 2),
    rate: parseIntOption(values.rate, "rate"),
    burst: parseIntOption(values.burst, "burst", { min: 1 }),
  };
}

/** Checks the TCP options; throws a UsageError quoting a bad value. */
export function tcpChatOptions(values: Values<typeof TCP_CHAT_OPTIONS>): TcpChatOptions {
  const heartbeatTimeoutMs = parseDurationOption(values["heartbeat-timeout"], "heartbeat-timeout");
  if (heartbeatTimeoutMs < 100) {
    throw new UsageError(
      `Invalid --heartbeat-timeout "${values["heartbeat-timeout"]}": must be at least 100ms`,
    );
  }
  return {
    heartbeatTimeoutMs,
    idleTimeoutMs: parseDurationOption(values["tcp-idle-timeout"], "tcp-idle-timeout"),
    maxLineBytes: parseIntOption(values["max-line"], "max-line", { min: 16 }),
    headTimeoutMs: parseDurationOption(values["head-timeout"], "head-timeout"),
  };
}
