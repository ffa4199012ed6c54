import type { Socket } from 'node:net'
import { LOOPBACK } from './failed-connects.ts'
import { addressKey } from './failure-windows.ts'

export interface PreAuthLimits {
  /** Bytes a connection may send before its CONNECT is accepted (the CONNECT included). */
  preAuthBytes: number
  /** Largest packet (fixed header's remaining length) of an authenticated connection. */
  maxPacketBytes: number
  /** Unauthenticated connections at once per address (IPv6: per /64); 0 = no limit. */
  perAddress: number
}

/** Who was refused: the peer's address and, after its login, its client id. */
export interface GuardRefused {
  address: string | undefined
  clientId?: string | undefined
  /** The length the refused packet announced (packet_too_large). */
  announcedBytes?: number | undefined
}

export type GuardRefusal =
  | 'pre_auth_bytes'
  | 'not_connect'
  | 'packet_too_large'
  | 'malformed'
  | 'address_budget'

/**
 * Bounds what the embedded broker holds for a connection before it is authenticated (issue 16
 * row 1). aedes reads a socket with `read()` and its parser buffers a packet until it is whole —
 * a CONNECT announcing 256 MB was buffered in full before any credential check. Here the socket's
 * `read` is wrapped: the bytes are looked at as they arrive, before aedes sees them, and the MQTT
 * fixed headers are decoded on the fly, so a connection is closed as soon as it (1) sends more
 * than `preAuthBytes` before its CONNECT is accepted, or a first packet that is no CONNECT, or
 * (2) announces a packet longer than `maxPacketBytes`. An address may hold `perAddress`
 * unauthenticated connections at once. The loopback address (the server's own client) is not
 * budgeted, but its packets are checked.
 */
export class PreAuthGuard {
  private readonly pending = new Map<string, number>()
  /** Authenticated connections and their client ids (a refusal after login names the client). */
  private readonly authenticated = new WeakMap<object, string>()
  private readonly releases = new WeakMap<object, () => void>()

  constructor(
    private readonly limits: PreAuthLimits,
    private readonly onRefused: (reason: GuardRefusal, refused: GuardRefused) => void,
  ) {}

  /** Unauthenticated connections now, all addresses together. */
  get unauthenticated(): number {
    let n = 0
    for (const v of this.pending.values()) n += v
    return n
  }

  /** Marks the connection authenticated (its CONNECT was accepted) as the client `clientId`. */
  accept(conn: object, clientId: string): void {
    this.authenticated.set(conn, clientId)
    this.releases.get(conn)?.()
  }

  /** Takes a new connection under watch before aedes handles it; false: close it (over budget). */
  watch(socket: Socket): boolean {
    const address = socket.remoteAddress
    const key = address && !LOOPBACK.has(address) ? addressKey(address) : undefined
    if (key !== undefined && this.limits.perAddress > 0) {
      const n = this.pending.get(key) ?? 0
      if (n >= this.limits.perAddress) {
        this.onRefused('address_budget', { address })
        return false
      }
      this.pending.set(key, n + 1)
      let released = false
      const release = () => {
        if (released) return
        released = true
        const left = (this.pending.get(key) ?? 1) - 1
        if (left > 0) this.pending.set(key, left)
        else this.pending.delete(key)
      }
      this.releases.set(socket, release)
      socket.once('close', release)
    }
    this.wrapReads(socket, address)
    return true
  }

  private wrapReads(socket: Socket, address: string | undefined): void {
    const read = socket.read.bind(socket)
    const frame = new FrameReader()
    let preAuth = 0
    const refuse = (reason: GuardRefusal) => {
      this.onRefused(reason, {
        address,
        clientId: this.authenticated.get(socket),
        announcedBytes: reason === 'packet_too_large' ? frame.announced : undefined,
      })
      socket.destroy()
      return null
    }
    socket.read = (size?: number) => {
      const chunk = read(size)
      if (!(chunk instanceof Buffer)) return chunk
      const open = this.authenticated.has(socket)
      const verdict = frame.feed(chunk, open ? this.limits.maxPacketBytes : this.limits.preAuthBytes)
      if (verdict) return refuse(verdict)
      if (!open) {
        preAuth += chunk.length
        if (preAuth > this.limits.preAuthBytes) return refuse('pre_auth_bytes')
      }
      return chunk
    }
  }
}

/** Decodes MQTT fixed headers across chunks and checks each announced length against a limit. */
class FrameReader {
  private skip = 0
  private type = -1
  private length = 0
  private multiplier = 1
  private lengthBytes = 0
  private packets = 0
  /** The remaining length of the packet refused as too large. */
  announced = 0

  feed(chunk: Buffer, limit: number): GuardRefusal | undefined {
    let i = 0
    while (i < chunk.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - i)
        this.skip -= n
        i += n
        continue
      }
      const byte = chunk[i++] as number
      if (this.type < 0) {
        this.type = byte >> 4
        // The first packet of a connection must be CONNECT (type 1).
        if (this.packets === 0 && this.type !== 1) return 'not_connect'
        continue
      }
      this.length += (byte & 0x7f) * this.multiplier
      this.multiplier *= 128
      this.lengthBytes++
      if (byte & 0x80) {
        if (this.lengthBytes >= 4) return 'malformed'
        continue
      }
      if (this.length > limit) {
        this.announced = this.length
        return 'packet_too_large'
      }
      this.skip = this.length
      this.packets++
      this.type = -1
      this.length = 0
      this.multiplier = 1
      this.lengthBytes = 0
    }
    return undefined
  }
}
