/**
 * The codec candidate measured against netkit's own (docs/websocket.md): a
 * WebSocket echo over `Deno.listen` whose frames are parsed by npm:ws's
 * `Receiver` and encoded by its `Sender.frame`, with the engine's shape
 * around them (one read buffer, every reply to one read in one write). Not
 * a product: the handshake trusts the client, there are no bounds but the
 * Receiver's. `bench/ws_bench.ts` runs it beside ws_echo_server and
 * gorilla.
 *
 *     deno run -A bench/ws_npm_echo.ts PORT
 *
 * @module
 */
import { Buffer } from "node:buffer";
import * as ws from "ws";
import { writeAll } from "../lib/io/lines.ts";
import { switchingProtocolsHead } from "../lib/ws/ws_http.ts";

const MAX_PAYLOAD = 1 << 20;

/** The codec classes ws exports (its type package leaves them out). */
interface WsCodec {
  Receiver: new (options: { isServer: boolean; maxPayload: number }) => {
    on(event: string, listener: (...args: never[]) => void): void;
    write(chunk: Buffer): boolean;
  };
  Sender: {
    frame(
      data: Buffer,
      options: { fin: boolean; rsv1: boolean; opcode: number; mask: boolean; readOnly: boolean },
    ): Buffer[];
  };
}
const { Receiver, Sender } = ws as unknown as WsCodec;

async function serve(conn: Deno.Conn): Promise<void> {
  const buf = new Uint8Array(64 * 1024);
  let head = "";
  while (!head.includes("\r\n\r\n")) {
    const n = await conn.read(buf);
    if (n === null) return;
    head += new TextDecoder().decode(buf.subarray(0, n));
  }
  const key = /sec-websocket-key:\s*(\S+)/i.exec(head)?.[1] ?? "";
  await writeAll(conn, await switchingProtocolsHead(key));
  (conn as Deno.TcpConn).setNoDelay(true); // as the engine does
  const receiver = new Receiver({ isServer: true, maxPayload: MAX_PAYLOAD });
  let out: Buffer[] = [];
  let closed = false;
  receiver.on("message", (data: Buffer, isBinary: boolean) => {
    out.push(
      ...Sender.frame(data, {
        fin: true,
        rsv1: false,
        opcode: isBinary ? 2 : 1,
        mask: false,
        readOnly: false,
      }),
    );
  });
  receiver.on("conclude", () => closed = true);
  receiver.on("error", () => closed = true);
  while (!closed) {
    const n = await conn.read(buf);
    if (n === null) break;
    receiver.write(Buffer.from(buf.subarray(0, n)));
    if (out.length > 0) {
      const batch = Buffer.concat(out);
      out = [];
      await writeAll(conn, batch);
    }
  }
  conn.close();
}

if (import.meta.main) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: Number(Deno.args[0] ?? 0) });
  console.log(`Listening on tcp://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`);
  for await (const conn of listener) serve(conn).catch(() => conn.close());
}
