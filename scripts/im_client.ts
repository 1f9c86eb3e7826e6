#!/usr/bin/env -S deno run --allow-net --allow-read
/**
 * im_client: the instant-messaging client of seed 003's course project,
 * for `im_server`. Interactive, it shows the seed's numbered menus
 * (1 register, 2 log in, 3 exit; once in: 1 online users, 2 message
 * everyone, 3 message one user, 4 offline messages, 5 log out), prints
 * messages and presence notices as they arrive without breaking the line
 * being typed, and reads passwords without echo. Scripted (`--user`), it
 * logs in and runs one command per line of stdin.
 *
 *     deno task im_client localhost:8888
 *     printf 'secret-pw\nusers\nto bob hello\n' | deno task im_client localhost:8888 \
 *       --user alice --password-stdin
 *
 * @module
 */
import { TLS_CLIENT_OPTIONS, tlsClientSettings } from "../lib/net/tls.ts";
import { parseHostPort } from "../lib/net/addr.ts";
import { runCommand, usage, UsageError } from "../lib/cli/cli.ts";
import { checkName, checkPassword, checkUserId } from "../lib/im/im_protocol.ts";
import { LineReader } from "../lib/io/lines.ts";
import { settledWithin } from "../lib/io/deadline.ts";
import { maskControls } from "../lib/io/escape.ts";
import { ImConnection, type ServerLine } from "../lib/im/im_connection.ts";

const encoder = new TextEncoder();
import { writeAllSync } from "../lib/io/print.ts";

/** Where the user types: a terminal with line editing, or plain lines from a pipe. */
export interface Input {
  /** Shows `prompt` and reads one line; null at end of input. */
  readLine(prompt: string, options?: { secret?: boolean }): Promise<string | null>;
  /** Prints text on its own lines, above whatever is being typed. */
  print(text: string): void;
  close(): void;
}

/** Writes to stdout, synchronously, so lines never interleave. */
function writeOut(text: string): void {
  writeAllSync(Deno.stdout, encoder.encode(text));
}

/** Plain lines from a pipe or a file; prompts are printed as they are. */
class PipeInput implements Input {
  #reader = new LineReader(Deno.stdin.readable, { maxLineBytes: 1 << 20 });
  #echoPrompts: boolean;

  constructor(echoPrompts: boolean) {
    this.#echoPrompts = echoPrompts;
  }

  async readLine(prompt: string): Promise<string | null> {
    if (this.#echoPrompts && prompt) writeOut(prompt);
    const line = await this.#reader.readLine();
    if (this.#echoPrompts && prompt) writeOut("\n");
    return line;
  }

  print(text: string): void {
    writeOut(text + "\n");
  }

  close(): void {}
}

/**
 * A terminal in raw mode: the typed line is kept here, so a message that
 * arrives while the user types is printed above it and the prompt and the
 * line are drawn again. Backspace, Ctrl-U, Ctrl-C and Ctrl-D work;
 * secret lines are not echoed.
 */
class TtyInput implements Input {
  #prompt = "";
  #buffer = "";
  #secret = false;
  #reading = false;
  #decoder = new TextDecoder();
  #chunk = new Uint8Array(1024);
  #pending = "";

  constructor() {
    Deno.stdin.setRaw(true);
  }

  async readLine(prompt: string, options: { secret?: boolean } = {}): Promise<string | null> {
    this.#prompt = prompt;
    this.#buffer = "";
    this.#secret = options.secret ?? false;
    this.#reading = true;
    writeOut(prompt);
    try {
      while (true) {
        if (this.#pending === "") {
          const n = await Deno.stdin.read(this.#chunk);
          if (n === null) return null;
          this.#pending = this.#decoder.decode(this.#chunk.subarray(0, n), { stream: true });
        }
        const result = this.#consume();
        if (result !== undefined) return result;
      }
    } finally {
      this.#reading = false;
    }
  }

  /** Applies typed keys; returns the line on Enter, null on Ctrl-C or Ctrl-D, else undefined. */
  #consume(): string | null | undefined {
    while (this.#pending !== "") {
      const ch = this.#pending[0];
      this.#pending = this.#pending.slice(1);
      if (ch === "\r" || ch === "\n") {
        writeOut("\r\n");
        return this.#buffer;
      } else if (ch === "\u0003" || (ch === "\u0004" && this.#buffer === "")) {
        writeOut("\r\n");
        this.#pending = "";
        return null;
      } else if (ch === "\u007f" || ch === "\b") {
        if (this.#buffer !== "") {
          this.#buffer = [...this.#buffer].slice(0, -1).join("");
          this.#redraw();
        }
      } else if (ch === "\u0015") {
        this.#buffer = "";
        this.#redraw();
      } else if (ch === "\u001b") {
        // An escape sequence (arrow keys and the like): skip it.
        const match = /^\[[0-9;]*[A-Za-z~]|^O[A-Za-z]/.exec(this.#pending);
        if (match) this.#pending = this.#pending.slice(match[0].length);
      } else if (ch >= " ") {
        this.#buffer += ch;
        if (!this.#secret) writeOut(ch);
      }
    }
    return undefined;
  }

  #redraw(): void {
    writeOut(`\r\x1b[2K${this.#prompt}${this.#secret ? "" : this.#buffer}`);
  }

  print(text: string): void {
    const body = text.replaceAll("\n", "\r\n");
    if (!this.#reading) {
      writeOut(body + "\r\n");
      return;
    }
    writeOut(`\r\x1b[2K${body}\r\n`);
    this.#redraw();
  }

  close(): void {
    try {
      Deno.stdin.setRaw(false);
    } catch {
      // Not a terminal any more.
    }
  }
}

/**
 * Makes text from other users safe for a terminal: control characters,
 * bidi marks and line separators become "?" (newlines and tabs stay).
 */
export function sanitize(text: string): string {
  return maskControls(text);
}

function clock(iso: unknown, withDate: boolean): string {
  const date = new Date(String(iso));
  if (Number.isNaN(date.getTime())) return "?";
  const p = (n: number) => String(n).padStart(2, "0");
  const time = `${p(date.getHours())}:${p(date.getMinutes())}:${p(date.getSeconds())}`;
  return withDate
    ? `${date.getFullYear()}-${p(date.getMonth() + 1)}-${p(date.getDate())} ${time}`
    : time;
}

/** Formats a pushed line for people; null for lines not worth showing. */
export function formatPush(line: ServerLine): string | null {
  const who = (user: unknown, name: unknown) =>
    name && name !== user
      ? `${sanitize(String(user))} (${sanitize(String(name))})`
      : sanitize(String(user));
  switch (line.type) {
    case "message": {
      const offline = line.offline === true;
      const to = line.scope === "group" ? "everyone" : "you";
      const text = sanitize(String(line.text)).replaceAll("\n", "\n    ");
      return `[${clock(line.time, offline)}]${offline ? " (offline)" : ""} ${
        who(line.from, line.name)
      } to ${to}: ${text}`;
    }
    case "presence":
      return `* ${who(line.user, line.name)} is ${line.status === "online" ? "online" : "offline"}`;
    case "kicked":
      return `! ${sanitize(String(line.reason))}: this session has ended`;
    case "error":
      return `! ${sanitize(String(line.message))}`;
    default:
      return null;
  }
}

/** What a logged-in client remembers for the menu. */
interface State {
  user: string | null;
  name: string;
  /** Offline messages delivered at this login, for menu item 4. */
  offline: string[];
}

function formatUsers(reply: ServerLine): string {
  const users = (reply.users as Array<{ user: string; name: string }>) ?? [];
  const list = users.map((u) => u.name && u.name !== u.user ? `${u.user} (${u.name})` : u.user);
  return `Online (${users.length}): ${sanitize(list.join(", "))}`;
}

function formatSent(reply: ServerLine): string {
  if (reply.type === "broadcast_sent") return `Sent to ${reply.recipients} online user(s)`;
  return reply.status === "delivered"
    ? `Delivered to ${reply.to}`
    : `${reply.to} is offline; stored for their next login`;
}

/** Runs one scripted command line; returns false when the script should stop. */
async function runScriptLine(
  line: string,
  im: ImConnection,
  input: Input,
): Promise<"ok" | "failed" | "stop"> {
  const [word, ...rest] = line.trim().split(/\s+/);
  const after = (n: number) =>
    line.trim().split(/\s+/).length > n
      ? line.trim().replace(new RegExp(`^(\\S+\\s+){${n}}`), "")
      : "";
  let reply: ServerLine;
  switch (word.toLowerCase()) {
    case "users":
      reply = await im.request({ type: "users" });
      if (reply.type === "users") input.print(formatUsers(reply));
      break;
    case "all":
    case "broadcast":
      reply = await im.request({ type: "broadcast", text: after(1) });
      if (reply.type !== "error") input.print(formatSent(reply));
      break;
    case "to":
    case "send":
      reply = await im.request({ type: "send", to: rest[0] ?? "", text: after(2) });
      if (reply.type !== "error") input.print(formatSent(reply));
      break;
    case "pending":
      reply = await im.request({ type: "pending" });
      if (reply.type === "pending") input.print(`${reply.count} offline message(s) waiting`);
      break;
    case "ping":
      reply = await im.request({ type: "ping" });
      if (reply.type === "pong") input.print("pong");
      break;
    case "wait": {
      const ms = Number(rest[0] ?? "1000");
      if (!Number.isFinite(ms) || ms < 0 || ms > 3_600_000) {
        input.print(`! Invalid wait "${rest[0]}": milliseconds 0-3600000`);
        return "failed";
      }
      await settledWithin(im.closed, ms);
      return "ok";
    }
    case "logout":
    case "quit":
    case "exit":
      return "stop";
    default:
      input.print(
        `! Unknown command "${sanitize(word)}": use users, all TEXT, to USER TEXT, pending, ` +
          "ping, wait MS, quit",
      );
      return "failed";
  }
  if (reply.type === "error") {
    input.print(`! ${sanitize(String(reply.message))}`);
    return "failed";
  }
  return "ok";
}

/** Options of the scripted mode. */
interface ScriptedOptions {
  user: string;
  password: string | null;
  register: boolean;
  name?: string;
}

async function runScripted(
  im: ImConnection,
  input: Input,
  state: State,
  options: ScriptedOptions,
): Promise<number> {
  let password = options.password;
  if (password === null) {
    password = await input.readLine("Password: ", { secret: true });
    if (password === null) return 1;
  }
  if (options.register) {
    const reply = await im.request({
      type: "register",
      user: options.user,
      password,
      name: options.name ?? options.user,
    });
    if (reply.type === "error") {
      input.print(`! ${sanitize(String(reply.message))}`);
      return 1;
    }
    input.print(`Registered ${reply.user}`);
  }
  if (!(await login(im, input, state, options.user, password))) return 1;
  let failed = false;
  while (true) {
    const line = await Promise.race([input.readLine(""), im.closed.then(() => null)]);
    if (line === null) break;
    if (line.trim() === "" || line.trimStart().startsWith("#")) continue;
    const result = await runScriptLine(line, im, input);
    if (result === "stop") break;
    if (result === "failed") failed = true;
  }
  if (state.user === null) return 1; // Kicked or disconnected.
  await im.request({ type: "logout" }).catch(() => {});
  return failed ? 1 : 0;
}

async function login(
  im: ImConnection,
  input: Input,
  state: State,
  user: string,
  password: string,
): Promise<boolean> {
  state.offline = [];
  const reply = await im.request({ type: "login", user, password });
  if (reply.type === "error") {
    input.print(`! ${sanitize(String(reply.message))}`);
    return false;
  }
  state.user = String(reply.user);
  state.name = String(reply.name);
  input.print(
    `Logged in as ${sanitize(state.user)} (${sanitize(state.name)}); ` +
      `${reply.waiting} offline message(s) waiting`,
  );
  return true;
}

/** Asks until the answer passes `check`; null at end of input. */
async function ask(
  input: Input,
  prompt: string,
  check: (value: string) => string,
  secret = false,
): Promise<string | null> {
  while (true) {
    const value = await input.readLine(prompt, { secret });
    if (value === null) return null;
    try {
      return check(value.trim() === "" && !secret ? "" : secret ? value : value.trim());
    } catch (error) {
      input.print(`! ${error instanceof Error ? error.message : String(error)}`);
    }
  }
}

const MAIN_MENU = [
  "---------- netkit IM ----------",
  "1. Register",
  "2. Log in",
  "3. Exit",
].join("\n");

function userMenu(state: State): string {
  return [
    `---------- ${sanitize(state.user ?? "")} (${sanitize(state.name)}) ----------`,
    "1. Online users",
    "2. Message everyone",
    "3. Message one user",
    "4. Offline messages",
    "5. Log out",
  ].join("\n");
}

async function runMenu(im: ImConnection, input: Input, state: State): Promise<number> {
  while (true) {
    if (state.user === null) {
      input.print(MAIN_MENU);
      const choice = await input.readLine("Choose (1-3): ");
      if (choice === null || choice.trim() === "3") return 0;
      if (choice.trim() === "1") {
        const user = await ask(input, "User id: ", checkUserId);
        const password = user && await ask(input, "Password: ", checkPassword, true);
        const name = password && await ask(input, "Display name: ", (v) => v ? checkName(v) : "");
        if (user === null || password === null || name === null) return 0;
        const reply = await im.request({ type: "register", user, password, name: name || user });
        input.print(
          reply.type === "error"
            ? `! ${sanitize(String(reply.message))}`
            : `Registered ${reply.user}; log in with 2`,
        );
      } else if (choice.trim() === "2") {
        const user = await ask(input, "User id: ", (v) => v);
        if (user === null) return 0;
        const password = await ask(input, "Password: ", (v) => v, true);
        if (password === null) return 0;
        await login(im, input, state, user, password);
      } else {
        input.print(`! Choose 1, 2 or 3`);
      }
      continue;
    }
    input.print(userMenu(state));
    const choice = await input.readLine("Choose (1-5): ");
    if (choice === null) return 0;
    if (state.user === null) continue; // Kicked while the menu was up.
    let reply: ServerLine | null = null;
    switch (choice.trim()) {
      case "1":
        reply = await im.request({ type: "users" });
        if (reply.type === "users") input.print(formatUsers(reply));
        break;
      case "2": {
        const text = await input.readLine("Message to everyone: ");
        if (text === null) return 0;
        if (text.trim() === "") break;
        reply = await im.request({ type: "broadcast", text });
        if (reply.type !== "error") input.print(formatSent(reply));
        break;
      }
      case "3": {
        const to = await input.readLine("To (user id): ");
        const text = to === null ? null : await input.readLine(`Message to ${to.trim()}: `);
        if (to === null || text === null) return 0;
        if (text.trim() === "") break;
        reply = await im.request({ type: "send", to: to.trim(), text });
        if (reply.type !== "error") input.print(formatSent(reply));
        break;
      }
      case "4": {
        reply = await im.request({ type: "pending" });
        if (reply.type !== "pending") break;
        input.print(
          state.offline.length === 0
            ? "No offline messages at this login"
            : `Offline messages at this login (${state.offline.length}):\n${
              state.offline.join("\n")
            }`,
        );
        if (Number(reply.count) > 0) input.print(`${reply.count} more waiting`);
        break;
      }
      case "5":
        reply = await im.request({ type: "logout" });
        if (reply.type === "logged_out") {
          input.print(`Logged out`);
          state.user = null;
        }
        break;
      default:
        input.print(`! Choose 1-5`);
    }
    if (reply?.type === "error") input.print(`! ${sanitize(String(reply.message))}`);
  }
}

const spec = {
  name: "im_client",
  summary: "Instant-messaging client for im_server: numbered menus, or one command per line " +
    "with --user.",
  args: "HOST:PORT",
  minArgs: 1,
  options: {
    user: { type: "string", short: "u", arg: "ID", description: "log in as ID and read commands" },
    "password-stdin": {
      type: "boolean",
      description: "with --user: the first line of stdin is the password",
    },
    register: { type: "boolean", description: "with --user: register the account first" },
    name: { type: "string", arg: "NAME", description: "with --register: the display name" },
    ...TLS_CLIENT_OPTIONS,
  },
  notes: `Commands with --user, one per line:
  users             who is online
  all TEXT          message everyone online
  to USER TEXT      message one user (stored if they are offline)
  pending           how many offline messages wait for you
  ping              check the connection
  wait MS           keep listening for MS milliseconds
  quit              log out and exit (also at the end of input)

Incoming messages and presence notices are printed as they arrive. The exit
code is 1 if the login or any command failed. With --tls (or --ca FILE) the
password crosses encrypted; see docs/tls.md.`,
} as const;

/** Runs the client; returns the exit code. */
export function main(args: string[]): Promise<number> {
  return runCommand(spec, args, async ({ values, positionals }) => {
    const address = usage(() => parseHostPort(positionals[0], { requireHost: true }));
    if (values["password-stdin"] && !values.user) {
      throw new UsageError("--password-stdin needs --user");
    }
    if (values.user !== undefined) usage(() => checkUserId(values.user!));
    const tls = tlsClientSettings(values);
    const tty = Deno.stdin.isTerminal();
    const scripted = values.user !== undefined;
    const input: Input = tty && !values["password-stdin"]
      ? new TtyInput()
      : new PipeInput(!scripted);
    const state: State = { user: null, name: "", offline: [] };
    const onPush = (line: ServerLine) => {
      if (line.type === "message" && line.offline === true) {
        state.offline.push(formatPush(line)!);
      }
      if (line.type === "kicked") state.user = null;
      const text = formatPush(line);
      if (text !== null) input.print(text);
    };
    let im: ImConnection;
    try {
      im = await ImConnection.connect(address.hostname, address.port, onPush, tls);
    } catch (error) {
      input.close();
      throw new Error(
        `Cannot connect to ${positionals[0]}: ${error instanceof Error ? error.message : error}`,
      );
    }
    try {
      let password: string | null = null;
      if (values["password-stdin"]) {
        password = await input.readLine("");
        if (password === null) throw new Error("No password on stdin");
      }
      const run = scripted
        ? runScripted(im, input, state, {
          user: values.user!,
          password,
          register: values.register,
          name: values.name,
        })
        : runMenu(im, input, state);
      const code = await Promise.race([
        run,
        im.closed.then(() => {
          input.print("! Connection closed by the server");
          return 1;
        }),
      ]);
      return code;
    } finally {
      im.close();
      input.close();
    }
  });
}

if (import.meta.main) Deno.exit(await main(Deno.args));
