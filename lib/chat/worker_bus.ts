/**
 * One chat room across the worker threads of one server (`--workers N`):
 * each worker's hub talks to the others over a `BroadcastChannel`, which
 * reaches every thread of the process that opens the same name, in order
 * and without loss. The room logic is the {@link RoomLink}'s, as for
 * RabbitMQ between machines.
 *
 * @module
 */
import type { ChatHub } from "./hub.ts";
import { type LinkMessage, RoomLink, type RoomLinkOptions } from "./room_link.ts";

/** The channel name of a server's room: one per listening port, so two servers never mix. */
export function workerChannelName(port: number): string {
  return `netkit.chat.workers:${port}`;
}

/** Links a hub to the hubs of the other worker threads of its server. */
export class WorkerBus implements Disposable {
  /** The room logic; the hub's bus. */
  readonly link: RoomLink;
  #channel: BroadcastChannel;

  /** Joins the room named `channel` and attaches itself as the hub's bus. */
  constructor(hub: ChatHub, channel: string, options: RoomLinkOptions = {}) {
    this.#channel = new BroadcastChannel(channel);
    this.link = new RoomLink(hub, (message) => this.#channel.postMessage(message), {
      transportName: "the other workers",
      ...options,
    });
    // Same process, same code: what arrives was sent by a RoomLink.
    this.#channel.onmessage = (event: MessageEvent<LinkMessage>) => this.link.receive(event.data);
    hub.attachBus(this.link);
    this.link.connected();
  }

  /** Says goodbye to the other workers and closes the channel. */
  close(): void {
    this.link.close();
    this.#channel.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
