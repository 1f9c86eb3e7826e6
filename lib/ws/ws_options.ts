/**
 * The command-line options every WebSocket server of netkit takes
 * (`--allow-origin`, `--max-message`, `--max-buffered`, `--idle-timeout`,
 * `--max-conns`), one table to spread into a command spec, and their
 * parsing into {@link WsServerOptions}.
 *
 * @module
 */
import { parseDurationOption, parseIntOption, usage } from "../cli/cli.ts";
import type { Logger } from "../cli/log.ts";
import { SERVER_OPTIONS } from "../net/lifecycle.ts";
import { parseAllowedOrigins } from "./ws_http.ts";
import type { WsServerOptions } from "./ws_server.ts";

/** Options to spread into a WebSocket server's `CommandSpec.options`. */
export const WS_SERVER_OPTIONS = {
  "allow-origin": {
    type: "string",
    multiple: true,
    arg: "URL",
    description: "also accept handshakes from this Origin, or '*' for any",
  },
  "max-message": {
    type: "string",
    arg: "BYTES",
    default: "1048576",
    description: "largest message; a larger one closes the connection with 1009",
  },
  "max-buffered": {
    type: "string",
    arg: "BYTES",
    default: "4194304",
    description: "most unread bytes queued for a client before it is dropped (1008)",
  },
  "idle-timeout": {
    ...SERVER_OPTIONS["idle-timeout"],
    default: "60s",
    description: "ping idle clients, close those that stay silent (0 = never)",
  },
  "max-conns": SERVER_OPTIONS["max-conns"],
} as const;

/** The parsed values of {@link WS_SERVER_OPTIONS}. */
export interface WsServerValues {
  "allow-origin": string[];
  "max-message": string;
  "max-buffered": string;
  "idle-timeout": string;
  "max-conns": string;
}

/** Turns the option values into server options; bad values throw a `UsageError`. */
export function wsServerOptions(values: WsServerValues, logger?: Logger): WsServerOptions {
  return {
    allowOrigins: usage(() => parseAllowedOrigins(values["allow-origin"])),
    maxMessageBytes: parseIntOption(values["max-message"], "max-message", {
      min: 1,
      max: 64 * 1024 * 1024,
    }),
    maxBufferedBytes: parseIntOption(values["max-buffered"], "max-buffered", { min: 1024 }),
    idleTimeoutMs: parseDurationOption(values["idle-timeout"], "idle-timeout"),
    maxSockets: parseIntOption(values["max-conns"], "max-conns", { min: 1 }),
    logger,
  };
}
