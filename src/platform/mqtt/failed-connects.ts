import type { Client } from 'aedes'
import { addressKey, FailureWindows } from './failure-windows.ts'
import { RefusalDelay } from './refusal-delay.ts'

/** What failing costs a client of the embedded broker (config MQTT_AUTH_FAIL_*); 0 turns a part off. */
export interface FailedConnectPolicy {
  /** Delay before a refused CONNECT gets its CONNACK and is closed. */
  delayMs: number
  /** Refusals held in that delay at once; beyond, refused at once. */
  maxHeld: number
  /** Failures within `windowMs` after which an address (or a device) is refused unchecked. */
  max: number
  windowMs: number
}

export type BlockedBy = 'address' | 'device'

export const BLOCKED_REASONS: Record<BlockedBy, string> = {
  address: 'too many failed CONNECTs from this address',
  device: 'too many forbidden publishes by this device',
}

/** Where the server's own client connects from (the hub dials the embedded broker on loopback). */
export const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1'])

/** The peer's address (undefined for a stream that is not a socket). */
export const remoteAddress = (client: Client) => (client.conn as { remoteAddress?: string }).remoteAddress

/**
 * The price of failing, for the broker's authentication; successes pay nothing.
 * - Each refused CONNECT is answered after the delay: a client that waits for its CONNACK (any MQTT
 *   client does) makes one guess per delay and connection.
 * - An address with `max` refused CONNECTs in a window is refused before any credential check until
 *   the window ends. Devices behind one NAT share that budget; connected devices are never touched.
 * - So is a device whose connection was closed `max` times for a forbidden publish: a compromised
 *   device would otherwise reconnect at once and try again. Keyed by its (authenticated) id.
 * - Never the server's own client id: its check is local and cheap, and the server must reconnect.
 */
export class FailedConnects {
  /** Clients whose CONNECT came from an address over its limit (marked before authentication). */
  private readonly fromBlockedAddress = new WeakSet<Client>()
  private readonly addresses: FailureWindows
  private readonly devices: FailureWindows
  private readonly delay: RefusalDelay

  constructor(
    policy: FailedConnectPolicy,
    private readonly exemptClientId: string,
  ) {
    this.addresses = new FailureWindows(policy.max, policy.windowMs, { keyOf: addressKey })
    this.devices = new FailureWindows(policy.max, policy.windowMs)
    this.delay = new RefusalDelay(policy.delayMs, policy.maxHeld)
  }

  /** aedes preConnect: notes a CONNECT from an address over its limit. */
  screen(client: Client, clientId: string): void {
    const address = remoteAddress(client)
    if (address && clientId !== this.exemptClientId && this.addresses.blocked(address))
      this.fromBlockedAddress.add(client)
  }

  /**
   * For a new TCP connection: false when its address is over its limit, so the socket is closed
   * before any MQTT (a client that does not wait for answers would otherwise cost a client's setup
   * each). Never the loopback address the server's own client comes from: it is exempt by client
   * id, which a socket does not show yet.
   */
  admits(address: string | undefined): boolean {
    if (!address || LOOPBACK.has(address)) return true
    return !this.addresses.blocked(address)
  }

  /** Why the client is refused before its credentials are looked at, if it is. */
  blockedBy(client: Client): BlockedBy | undefined {
    if (this.fromBlockedAddress.has(client)) return 'address'
    if (client.id !== this.exemptClientId && this.devices.blocked(client.id)) return 'device'
    return undefined
  }

  /** Counts a refused CONNECT against its address (unless refused for it) and answers it after the delay. */
  refused(client: Client, answer: () => void): void {
    const address = remoteAddress(client)
    if (address && !this.fromBlockedAddress.has(client)) this.addresses.record(address)
    this.delay.hold(client.conn, answer)
  }

  /** The device's connection is closed for a publish (or will) outside its topics. */
  forbiddenPublish(deviceId: string): void {
    this.devices.record(deviceId)
  }

  /** Refusals held in their delay, addresses and devices tracked: all bounded. */
  get state(): { held: number; addresses: number; devices: number } {
    return { held: this.delay.held, addresses: this.addresses.size, devices: this.devices.size }
  }
}
