const SEQ_MOD = 2 ** 32
const HALF = 2 ** 31
const MAX_HOLES = 256

/** Seqs that have not arrived (yet), between two that did; they become a gap after a grace period. */
export interface MissingRange {
  from: number
  to: number
  /** ts of the messages around the hole (ms), for the gap record. */
  fromTs: number
  toTs: number
  /** When the hole was first noticed (server clock, ms). */
  since: number
}

export type SeqVerdict = 'accept' | 'duplicate'

export interface SeqWindowState {
  high: number
  highTs: number
  bootTs: number
  bits: string
  missing: MissingRange[]
  prev: { high: number; bootTs: number; bits: string } | null
  uptime: number | null
  expectReboot: boolean
}

/**
 * The dedup window of one device over its `seq` (PROTOCOL.md): remembers which of the last `size`
 * seqs arrived, so copies from several brokers and out-of-order arrivals are told apart. It
 * understands the 2^32 wrap and reboots (seq back to 0): a seq that goes back while `ts` moves
 * forward is a new boot, since copies of one message carry the same `ts`. Copies of the previous
 * boot's messages that arrive after a reboot are checked against that boot's window.
 */
export class SeqWindow {
  high = -1
  highTs = 0
  bootTs = 0
  private bits: Uint8Array
  missing: MissingRange[] = []
  private prev: { high: number; bootTs: number; bits: Uint8Array } | null = null
  private uptime: number | null = null
  private expectReboot = false
  /** Set when the state changed since it was last saved. */
  dirty = false

  constructor(readonly size: number) {
    this.bits = new Uint8Array(size / 8)
  }

  private has(bits: Uint8Array, seq: number): boolean {
    const i = seq % this.size
    return ((bits[i >> 3] as number) & (1 << (i & 7))) !== 0
  }

  private set(bits: Uint8Array, seq: number, on: boolean): void {
    const i = seq % this.size
    if (on) bits[i >> 3] = (bits[i >> 3] as number) | (1 << (i & 7))
    else bits[i >> 3] = (bits[i >> 3] as number) & ~(1 << (i & 7))
  }

  /** The device said it (re)connected: a seq going back next is a reboot even with an odd clock. */
  noteOnline(): void {
    this.expectReboot = true
    this.dirty = true
  }

  /** A hello's uptime: smaller than the last one means the device rebooted. */
  noteUptime(uptimeS: number): void {
    if (this.uptime !== null && uptimeS < this.uptime) this.expectReboot = true
    this.uptime = uptimeS
    this.dirty = true
  }

  /** Decides whether the message (seq, ts) is new, and records it. `now` is the server clock. */
  check(seq: number, ts: number, now: number): SeqVerdict {
    this.dirty = true
    if (this.high < 0) {
      this.startBoot(seq, ts)
      return 'accept'
    }
    // A copy of a message from before the last reboot.
    if (ts < this.bootTs && this.prev) {
      const back = (this.prev.high - seq + SEQ_MOD) % SEQ_MOD
      if (back < this.size && this.has(this.prev.bits, seq)) return 'duplicate'
      if (back < this.size) this.set(this.prev.bits, seq, true)
      this.fill(seq, ts)
      return 'accept'
    }
    const ahead = (seq - this.high + SEQ_MOD) % SEQ_MOD
    if (ahead === 0) {
      if (ts > this.highTs) return this.reboot(seq, ts)
      return 'duplicate'
    }
    if (ahead < HALF) {
      this.advance(seq, ts, ahead, now)
      return 'accept'
    }
    const back = SEQ_MOD - ahead
    if (ts > this.highTs || this.expectReboot) return this.reboot(seq, ts)
    if (back < this.size) {
      if (this.has(this.bits, seq)) return 'duplicate'
      this.set(this.bits, seq, true)
      this.fill(seq, ts)
      return 'accept'
    }
    // Older than the window: it cannot be told from a copy; storage is idempotent, so keep it.
    return 'accept'
  }

  private startBoot(seq: number, ts: number): void {
    this.bits.fill(0)
    this.high = seq
    this.highTs = ts
    this.bootTs = ts
    this.expectReboot = false
    this.set(this.bits, seq, true)
  }

  private reboot(seq: number, ts: number): SeqVerdict {
    this.prev = { high: this.high, bootTs: this.bootTs, bits: this.bits.slice() }
    this.startBoot(seq, ts)
    return 'accept'
  }

  private advance(seq: number, ts: number, ahead: number, now: number): void {
    const clear = Math.min(ahead, this.size)
    for (let k = 1; k <= clear; k++) this.set(this.bits, (this.high + k) % SEQ_MOD, false)
    this.set(this.bits, seq, true)
    if (ahead > 1) {
      this.missing.push({
        from: (this.high + 1) % SEQ_MOD,
        to: (seq - 1 + SEQ_MOD) % SEQ_MOD,
        fromTs: this.highTs,
        toTs: ts,
        since: now,
      })
      // A device with very many holes must not grow memory: its oldest holes become gaps at once.
      if (this.missing.length > MAX_HOLES) (this.missing[0] as MissingRange).since = Number.NEGATIVE_INFINITY
    }
    this.high = seq
    this.highTs = ts
    this.expectReboot = false
  }

  /** A late seq fills (part of) a hole. */
  private fill(seq: number, ts: number): void {
    const within = (r: MissingRange) =>
      (seq - r.from + SEQ_MOD) % SEQ_MOD <= (r.to - r.from + SEQ_MOD) % SEQ_MOD
    const index = this.missing.findIndex(within)
    if (index < 0) return
    const r = this.missing[index] as MissingRange
    const pieces: MissingRange[] = []
    if (seq !== r.from) pieces.push({ ...r, to: (seq - 1 + SEQ_MOD) % SEQ_MOD, toTs: ts })
    if (seq !== r.to) pieces.push({ ...r, from: (seq + 1) % SEQ_MOD, fromTs: ts })
    this.missing.splice(index, 1, ...pieces)
  }

  /** Holes older than the grace period: they are gaps now, and are forgotten here. */
  takeExpired(now: number, graceMs: number): MissingRange[] {
    if (this.missing.length === 0) return []
    const expired = this.missing.filter((r) => now - r.since >= graceMs)
    if (expired.length > 0) {
      this.missing = this.missing.filter((r) => now - r.since < graceMs)
      this.dirty = true
    }
    return expired
  }

  toState(): SeqWindowState {
    return {
      high: this.high,
      highTs: this.highTs,
      bootTs: this.bootTs,
      bits: Buffer.from(this.bits).toString('base64'),
      missing: this.missing,
      prev: this.prev && { ...this.prev, bits: Buffer.from(this.prev.bits).toString('base64') },
      uptime: this.uptime,
      expectReboot: this.expectReboot,
    }
  }

  static fromState(size: number, state: SeqWindowState | null | undefined): SeqWindow {
    const w = new SeqWindow(size)
    if (!state || typeof state.high !== 'number') return w
    const bits = (b64: string) => {
      const raw = Buffer.from(b64, 'base64')
      // A window saved with another size cannot be reused bit for bit: start its bitmap afresh.
      return raw.length === size / 8 ? new Uint8Array(raw) : new Uint8Array(size / 8)
    }
    w.high = state.high
    w.highTs = state.highTs
    w.bootTs = state.bootTs
    w.bits = bits(state.bits)
    w.missing = Array.isArray(state.missing) ? state.missing : []
    w.prev = state.prev ? { ...state.prev, bits: bits(state.prev.bits) } : null
    w.uptime = state.uptime ?? null
    w.expectReboot = Boolean(state.expectReboot)
    return w
  }
}

/** Number of seqs in a range, wrap included. */
export const rangeLength = (r: { from: number; to: number }) => ((r.to - r.from + SEQ_MOD) % SEQ_MOD) + 1
