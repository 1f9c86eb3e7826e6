/**
 * TLS for every server and client: the server options `--cert`/`--key`
 * (read and checked before listening), the client options `--tls`, `--ca`
 * and `--insecure`, and the TLS handshake of a client connection with
 * errors a user can act on.
 *
 * @module
 */
import tls from "node:tls";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { UsageError } from "../cli/cli.ts";
import type { Reader, Writer } from "../io/lines.ts";

/** The options of every server that can speak TLS; spread them into a command's spec. */
export const TLS_SERVER_OPTIONS = {
  cert: {
    type: "string",
    arg: "FILE",
    description: "serve over TLS with this certificate chain (PEM); needs --key",
  },
  key: { type: "string", arg: "FILE", description: "the private key (PEM) of --cert" },
} as const;

/** The options of every client that can speak TLS; spread them into a command's spec. */
export const TLS_CLIENT_OPTIONS = {
  tls: { type: "boolean", description: "connect over TLS, checking the certificate" },
  ca: {
    type: "string",
    arg: "FILE",
    description: "also trust the CA certificates in FILE (PEM); implies TLS",
  },
  insecure: {
    type: "boolean",
    description: "TLS WITHOUT checking the certificate (tests against self-signed ones only)",
  },
} as const;

/**
 * The options of the clients built on Deno's fetch and WebSocket, where the
 * URL's scheme (`https://`, `wss://`) says TLS and `--insecure` cannot work
 * (see {@link tlsHttpClient}); it is kept to say so instead of "unknown option".
 */
export const TLS_URL_CLIENT_OPTIONS = {
  ca: TLS_CLIENT_OPTIONS.ca,
  insecure: {
    type: "boolean",
    description: "not possible with Deno's fetch/WebSocket: exits 2 naming the alternative",
  },
} as const;

/** A certificate and its key, checked to load and to match. */
export interface TlsCertificate {
  /** The certificate chain, PEM. */
  cert: string;
  /** The private key, PEM. */
  key: string;
  /** The file `cert` came from, for messages. */
  certFile: string;
}

/** How a client checks the server: Deno's roots plus `caCerts`, or nothing at all. */
export interface TlsClientSettings {
  /** Extra trusted CA certificates (PEM). Default none (the system's roots only). */
  caCerts?: string[];
  /** Skip every certificate check. Default false. */
  insecure?: boolean;
}

/** A client connection, plain or TLS, as the clients use it. */
export interface ClientConn extends Reader, Writer {
  close(): void;
  closeWrite(): Promise<void>;
}

function readPem(file: string, option: string, marker: RegExp, what: string): string {
  let text: string;
  try {
    // Read once at start, synchronously: options are checked before anything listens.
    text = Deno.readTextFileSync(file);
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw new UsageError(`Cannot read --${option} "${file}": ${why}`);
  }
  if (!marker.test(text)) {
    throw new UsageError(`Invalid --${option} "${file}": no PEM ${what} in it`);
  }
  return text;
}

/**
 * Reads `--cert` and `--key` and checks them before any socket opens: both
 * or neither, each a readable PEM file, the certificate parsable, the key
 * its own (tried by listening with them on a loopback port 0). Returns
 * undefined when neither is given; throws a `UsageError` naming the file.
 * An expired certificate is only warned about through `warn`: clients will
 * refuse it, but the operator may be about to replace it.
 */
export function tlsServerSettings(
  values: { cert?: string; key?: string },
  warn: (message: string) => void = (message) => console.error(message),
): TlsCertificate | undefined {
  if (values.cert === undefined && values.key === undefined) return undefined;
  if (values.cert === undefined) throw new UsageError(`--key "${values.key}" needs --cert FILE`);
  if (values.key === undefined) throw new UsageError(`--cert "${values.cert}" needs --key FILE`);
  const certFile = values.cert;
  const cert = readPem(certFile, "cert", /-----BEGIN CERTIFICATE-----/, "certificate");
  const key = readPem(values.key, "key", /-----BEGIN [A-Z ]*PRIVATE KEY-----/, "private key");
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw new UsageError(`Invalid --cert "${certFile}": ${why}`);
  }
  try {
    Deno.listenTls({ hostname: "127.0.0.1", port: 0, cert, key }).close();
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied) {
      // No right to the loopback probe: let node:crypto compare the key instead.
      if (!x509.checkPrivateKey(createPrivateKey(key))) {
        throw new UsageError(`--key "${values.key}" does not match --cert "${certFile}"`);
      }
      return checked();
    }
    const why = error instanceof Error ? error.message : String(error);
    if (/KeyMismatch|not be consistent/i.test(why)) {
      throw new UsageError(`--key "${values.key}" does not match --cert "${certFile}"`);
    }
    if (/key/i.test(why)) throw new UsageError(`Invalid --key "${values.key}": ${why}`);
    throw new UsageError(`Invalid --cert "${certFile}": ${why}`);
  }
  return checked();

  function checked(): TlsCertificate {
    const notAfter = new Date(x509.validTo);
    if (notAfter.getTime() < Date.now()) {
      warn(`Warning: --cert "${certFile}" expired on ${notAfter.toISOString()}`);
    }
    return { cert, key, certFile };
  }
}

/**
 * Reads `--tls`, `--ca` and `--insecure`: undefined for plain TCP, else how
 * to check the server. `--ca` implies `--tls`; `--ca` with `--insecure` is
 * a `UsageError`, as is an unreadable or certificate-less `--ca` file.
 */
export function tlsClientSettings(
  values: { tls?: boolean; ca?: string; insecure?: boolean },
): TlsClientSettings | undefined {
  if (values.ca !== undefined && values.insecure) {
    throw new UsageError("--ca and --insecure contradict each other: choose one");
  }
  if (values.insecure) return { insecure: true };
  if (values.ca !== undefined) {
    const ca = readPem(values.ca, "ca", /-----BEGIN CERTIFICATE-----/, "certificate");
    return { caCerts: [ca] };
  }
  return values.tls ? {} : undefined;
}

/**
 * Runs the TLS handshake over a connected TCP socket to `hostname` (the
 * name the certificate must carry), so certificate errors surface here as
 * one line, e.g. `TLS handshake failed: certificate signed by an unknown
 * authority (pass --ca FILE)`.
 */
export async function startClientTls(
  tcp: Deno.TcpConn,
  hostname: string,
  settings: TlsClientSettings,
): Promise<Deno.TlsConn> {
  const conn = await Deno.startTls(tcp, { hostname, caCerts: settings.caCerts ?? [] });
  try {
    await conn.handshake();
  } catch (error) {
    conn.close();
    throw new Error(`TLS handshake failed: ${tlsErrorText(error)}`, { cause: error });
  }
  return conn;
}

/**
 * A `Deno.HttpClient` for fetch and WebSocket that trusts `settings.caCerts`
 * too, or undefined for the default. `--insecure` is a `UsageError` here:
 * Deno's fetch and WebSocket verify inside the runtime, so only the
 * process-wide `deno run --unsafely-ignore-certificate-errors=HOST` skips it.
 */
export function tlsHttpClient(
  settings: TlsClientSettings | undefined,
): Deno.HttpClient | undefined {
  if (settings?.insecure) {
    throw new UsageError(
      "--insecure cannot reach Deno's fetch and WebSocket: pass --ca FILE, or run " +
        "deno run --unsafely-ignore-certificate-errors=HOST (process-wide, at your risk)",
    );
  }
  return settings?.caCerts ? Deno.createHttpClient({ caCerts: settings.caCerts }) : undefined;
}

/**
 * The node:tls options (`ca`, `rejectUnauthorized`) for clients built on
 * node packages (the `ws` WebSocket client), which, unlike Deno's fetch,
 * can skip verification per connection: `--insecure` works there.
 */
export function nodeTlsOptions(
  settings: TlsClientSettings | undefined,
): { ca?: string[]; rejectUnauthorized?: boolean } {
  if (settings?.insecure) return { rejectUnauthorized: false };
  return settings?.caCerts ? { ca: settings.caCerts } : {};
}

/**
 * The certificate problem inside a fetch or WebSocket error as one line
 * (see {@link tlsErrorText}), or the error's own message when it is none.
 */
export function networkErrorText(error: unknown): string {
  // fetch says "fetch failed" and keeps the reason in its chain of causes.
  for (let e: unknown = error; e !== undefined; e = e instanceof Error ? e.cause : undefined) {
    const why = e instanceof Error ? e.message : String(e);
    const at = why.indexOf("invalid peer certificate: ");
    if (at >= 0) return `TLS handshake failed: ${tlsErrorText(why.slice(at))}`;
    if (
      /unable to verify|unable to get local issuer|self.signed|certificate has expired/i.test(why)
    ) {
      return `TLS handshake failed: ${tlsErrorText(why)}`;
    }
    if (!(e instanceof Error)) break;
  }
  return error instanceof Error ? error.message : String(error);
}

/** A certificate error as one line a user can act on. */
export function tlsErrorText(error: unknown): string {
  const why = error instanceof Error ? error.message : String(error);
  if (/UnknownIssuer|unable to verify|unable to get local issuer|self.signed/i.test(why)) {
    return "certificate signed by an unknown authority (pass --ca FILE)";
  }
  if (/CaUsedAsEndEntity/.test(why)) {
    // `openssl req -x509` marks its certificate CA:TRUE unless told otherwise; rustls refuses
    // a CA certificate as a server's own, where OpenSSL-based tools (ncat, curl) accept it.
    return "the server presents a CA certificate as its own (CA:TRUE); make its certificate " +
      "with -addext basicConstraints=critical,CA:FALSE, or sign it with a separate CA";
  }
  const expired = /certificate expired:.* not valid after (\d+)/.exec(why);
  if (expired) {
    return `certificate expired on ${new Date(Number(expired[1]) * 1000).toISOString()}`;
  }
  return why.replace(/^invalid peer certificate: /, "");
}

/**
 * Connects to `ip:port` and runs TLS WITHOUT checking the certificate
 * (`--insecure`). Deno's own TLS cannot skip verification per connection
 * (only the process-wide `--unsafely-ignore-certificate-errors` flag can),
 * so this one path goes through node:tls with `rejectUnauthorized: false`.
 */
export function connectInsecure(ip: string, port: number, hostname: string): Promise<ClientConn> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: ip,
      port,
      // SNI carries names only, never addresses.
      servername: /^[\d.]+$|:/.test(hostname) ? undefined : hostname,
      rejectUnauthorized: false,
    });
    const failed = (error: Error) => {
      socket.destroy();
      reject(error);
    };
    socket.once("error", failed);
    socket.once("secureConnect", () => {
      socket.off("error", failed);
      resolve(new NodeTlsConn(socket));
    });
  });
}

/** A node:tls socket read and written like a Deno connection, one chunk buffered at most. */
class NodeTlsConn implements ClientConn {
  #socket: tls.TLSSocket;
  #chunk: Uint8Array | null = null;
  #ended = false;
  #error: Error | null = null;
  #wake: (() => void) | null = null;

  constructor(socket: tls.TLSSocket) {
    this.#socket = socket;
    socket.pause();
    socket.on("data", (data: Uint8Array) => {
      // Backpressure: no more data events until read() has taken this one.
      socket.pause();
      this.#chunk = this.#chunk ? concat(this.#chunk, data) : data;
      this.#notify();
    });
    socket.on("end", () => {
      this.#ended = true;
      this.#notify();
    });
    socket.on("error", (error: Error) => {
      this.#error = error;
      this.#notify();
    });
    socket.on("close", () => {
      this.#ended = true;
      this.#notify();
    });
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  async read(p: Uint8Array): Promise<number | null> {
    while (this.#chunk === null) {
      if (this.#error) throw this.#error;
      if (this.#ended) return null;
      const waiting = new Promise<void>((resolve) => this.#wake = resolve);
      this.#socket.resume();
      await waiting;
    }
    const n = Math.min(p.byteLength, this.#chunk.byteLength);
    p.set(this.#chunk.subarray(0, n));
    this.#chunk = n < this.#chunk.byteLength ? this.#chunk.subarray(n) : null;
    return n;
  }

  write(p: Uint8Array): Promise<number> {
    if (this.#error) return Promise.reject(this.#error);
    // node copies nothing: hand it a copy, since callers reuse their buffers.
    const copy = p.slice();
    return new Promise((resolve, reject) => {
      this.#socket.write(copy, (error) => error ? reject(error) : resolve(copy.byteLength));
    });
  }

  closeWrite(): Promise<void> {
    return new Promise((resolve) => this.#socket.end(() => resolve()));
  }

  close(): void {
    // With nothing queued, say close_notify first (servers log a bare EOF as
    // an error); with writes stuck behind a stalled peer, drop them now.
    if (this.#socket.writableLength === 0 && !this.#socket.destroyed) {
      this.#socket.end(() => this.#socket.destroy());
    } else {
      this.#socket.destroy();
    }
    this.#ended = true;
    this.#notify();
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a);
  out.set(b, a.byteLength);
  return out;
}
