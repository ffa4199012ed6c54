import { type DigestBlock, Digests } from './seq-digests.ts'
import type { MissingRange, SeqWindowState } from './seq-window-state.ts'

const SEQ_MOD = 2 ** 32
const HALF = 2 ** 31
const MAX_HOLES = 256

export type { DigestBlock } from './seq-digests.ts'
export type { MissingRange, SeqWindowState } from './seq-window-state.ts'

/**
 * accept: new, in order or filling a hole still in grace; late: new, behind the window or of the
 * previous boot (it may fill a gap already recorded); conflict: a seq already seen with other
 * content (kept and counted); duplicate: a copy (same seq, same payload digest) — dropped.
 */
export type SeqVerdict = 'accept' | 'late' | 'conflict' | 'duplicate'

interface Boot {
  high: number
  highTs: number
  bootSeq: number
  bootTs: number
  digests: Digests | null
}

/** seq a comes before b (wrap-aware). */
const before = (a: number, b: number) => {
  const d = (b - a + SEQ_MOD) % SEQ_MOD
  return d > 0 && d < HALF
}

/**
 * The dedup window of one device over its `seq` (PROTOCOL.md). A copy is recognised by its
 * identity only: the same seq AND the same payload digest (copies over several brokers are
 * byte-identical), remembered for the last `size` seqs of the current boot and of the previous
 * one. Anything else is kept: a new boot's message arriving late or shuffled is never taken for a
 * copy of the old boot's. Which boot a message belongs to is decided by time (a message not newer
 * than the old boot's newest is the old boot's) and seq order around the new boot's first message.
 * Holes in seq are tracked for the sequence_gap alert; they never stop energy integration.
 */
export class SeqWindow {
  high = -1
  highTs = 0
  bootSeq = 0
  bootTs = 0
  private digests: Digests
  missing: MissingRange[] = []
  private prev: Boot | null = null
  private uptime: number | null = null
  private expectReboot = false
  /** Set when the state changed since it was last saved. */
  dirty = false
  /**
   * Whether the last message checked had a seq already seen (in this boot's window or the
   * previous one's) with other content: a new boot's message or a device fault, kept and counted.
   */
  seenOther = false

  constructor(readonly size: number) {
    this.digests = new Digests(size)
  }

  private inWindow(high: number, seq: number): boolean {
    return (high - seq + SEQ_MOD) % SEQ_MOD < this.size
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

  /**
   * Decides what the message (seq, envelope ts, payload digest) is, and records it. `now` is the
   * server clock. A digest of 0 is taken as 1 (0 marks an empty slot).
   */
  check(seq: number, ts: number, digest: number, now: number): SeqVerdict {
    this.dirty = true
    const id = digest >>> 0 || 1
    const slot = seq % this.size
    this.seenOther = false
    if (this.high < 0) {
      this.startBoot(seq, ts, id)
      return 'accept'
    }
    if (this.inWindow(this.high, seq) && this.digests.at(slot) === id) return 'duplicate'
    const prev = this.prev
    if (prev?.digests && this.inWindow(prev.high, seq) && prev.digests.at(slot) === id) return 'duplicate'
    const other = (d: Digests | null | undefined, high: number) =>
      !!d && this.inWindow(high, seq) && d.at(slot) !== 0
    this.seenOther = other(this.digests, this.high) || (!!prev && other(prev.digests, prev.high))
    if (prev && prev.highTs < this.bootTs) {
      const older = ts <= prev.highTs
      const beforeBoot = ts < this.bootTs && !before(seq, this.bootSeq) && seq !== this.bootSeq
      if (older || beforeBoot) return this.takePrevious(prev, seq, ts, id)
    }
    const ahead = (seq - this.high + SEQ_MOD) % SEQ_MOD
    if (ahead === 0) return ts > this.highTs ? this.reboot(seq, ts, id) : 'conflict'
    if (ahead < HALF) {
      this.advance(seq, ts, id, ahead, now)
      return 'accept'
    }
    const back = SEQ_MOD - ahead
    if (back < this.size && this.holeOf(seq, ts) >= 0) {
      this.digests.set(slot, id)
      this.fill(seq, ts)
      return 'accept'
    }
    // With a reboot announced (status online, a smaller uptime), a seq going back is a new boot even
    // with an odd clock — unless it is an unseen seq inside the window: a buffer emptying after
    // the reconnect sends those, late.
    const unseenInWindow = back < this.size && this.digests.at(slot) === 0
    if (ts > this.highTs || (this.expectReboot && !unseenInWindow)) return this.reboot(seq, ts, id)
    if (back < this.size) {
      if (this.digests.at(slot) !== 0) return 'conflict'
      this.digests.set(slot, id)
    }
    return 'late'
  }

  /** A message of the boot before the current one: a late one, or one of its seqs with other content. */
  private takePrevious(prev: Boot, seq: number, ts: number, id: number): SeqVerdict {
    const ahead = (seq - prev.high + SEQ_MOD) % SEQ_MOD
    const slot = seq % this.size
    if (ahead !== 0 && ahead < HALF) {
      // Beyond what arrived of that boot: its tail, late. The window moves on, no hole tracked.
      const clear = Math.min(ahead, this.size)
      if (prev.digests) for (let k = 1; k <= clear; k++) prev.digests.set((prev.high + k) % this.size, 0)
      prev.high = seq
      prev.highTs = Math.max(prev.highTs, ts)
    } else if (
      ahead === 0 ||
      (prev.digests && this.inWindow(prev.high, seq) && prev.digests.at(slot) !== 0)
    ) {
      return 'conflict'
    }
    if (prev.digests && this.inWindow(prev.high, seq)) prev.digests.set(slot, id)
    return this.fill(seq, ts) ? 'accept' : 'late'
  }

  private startBoot(seq: number, ts: number, id: number): void {
    this.digests = new Digests(this.size)
    this.high = seq
    this.highTs = ts
    this.bootSeq = seq
    this.bootTs = ts
    this.expectReboot = false
    this.digests.set(seq % this.size, id)
  }

  private reboot(seq: number, ts: number, id: number): SeqVerdict {
    const lastTs = this.highTs
    this.prev = {
      high: this.high,
      highTs: this.highTs,
      bootSeq: this.bootSeq,
      bootTs: this.bootTs,
      digests: this.digests,
    }
    // Saved from now on as the previous boot's blocks: all of them, once.
    this.digests.markAllChanged()
    this.startBoot(seq, ts, id)
    // The new boot started at 0: what came before this first arrival is a hole (late or lost).
    if (seq > 0 && seq < this.size) {
      this.missing.push({ from: 0, to: seq - 1, fromTs: lastTs, toTs: ts, since: Date.now() })
    }
    return 'accept'
  }

  private advance(seq: number, ts: number, id: number, ahead: number, now: number): void {
    const clear = Math.min(ahead, this.size)
    for (let k = 1; k <= clear; k++) this.digests.set((this.high + k) % this.size, 0)
    this.digests.set(seq % this.size, id)
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
    // The previous boot's digests are kept while its copies may still come: one window's worth.
    if (this.prev?.digests && (seq - this.bootSeq + SEQ_MOD) % SEQ_MOD >= this.size) this.prev.digests = null
  }

  /** The index of the hole holding (seq, ts), or −1: the seq inside it, the ts between its ends. */
  private holeOf(seq: number, ts: number): number {
    return this.missing.findIndex(
      (r) =>
        (seq - r.from + SEQ_MOD) % SEQ_MOD <= (r.to - r.from + SEQ_MOD) % SEQ_MOD &&
        ts >= r.fromTs &&
        ts <= r.toTs,
    )
  }

  /** A late seq fills (part of) a hole; false when it is in none. */
  private fill(seq: number, ts: number): boolean {
    const index = this.holeOf(seq, ts)
    if (index < 0) return false
    const r = this.missing[index] as MissingRange
    const pieces: MissingRange[] = []
    if (seq !== r.from) pieces.push({ ...r, to: (seq - 1 + SEQ_MOD) % SEQ_MOD, toTs: ts })
    if (seq !== r.to) pieces.push({ ...r, from: (seq + 1) % SEQ_MOD, fromTs: ts })
    this.missing.splice(index, 1, ...pieces)
    return true
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

  /** The state to save, without the digests (see takeChangedBlocks). */
  toState(): SeqWindowState {
    const p = this.prev
    return {
      version: 3,
      size: this.size,
      high: this.high,
      highTs: this.highTs,
      bootSeq: this.bootSeq,
      bootTs: this.bootTs,
      missing: this.missing,
      prev: p && { ...p, digests: p.digests !== null },
      uptime: this.uptime,
      expectReboot: this.expectReboot,
    }
  }

  /** The digest blocks changed since they were last taken, as they are now: saved with toState. */
  takeChangedBlocks(): DigestBlock[] {
    const blocks = this.digests.takeChanged(0)
    if (this.prev?.digests) blocks.push(...this.prev.digests.takeChanged(1))
    return blocks
  }

  /** A save of these blocks failed: the next one writes them (as they are then). */
  giveBackBlocks(blocks: DigestBlock[]): void {
    const of = (boot: 0 | 1) => blocks.filter((b) => b.boot === boot).map((b) => b.block)
    this.digests.markChanged(of(0))
    this.prev?.digests?.markChanged(of(1))
  }

  /** A window as saved: its state and its digest blocks (version 3), or a state of version 2. */
  static fromState(
    size: number,
    state: Partial<SeqWindowState> | null | undefined,
    blocks: readonly DigestBlock[] = [],
  ): SeqWindow {
    const w = new SeqWindow(size)
    if (!state || typeof state.high !== 'number') return w
    w.high = state.high
    w.highTs = state.highTs ?? 0
    w.bootTs = state.bootTs ?? 0
    w.bootSeq = state.bootSeq ?? state.high
    w.missing = Array.isArray(state.missing) ? state.missing : []
    // A window saved with another size (or the bitmap of version 1) starts afresh: a copy then
    // passes as new, and the store's key (device, t0, seq) still keeps it from counting twice.
    const saved = (boot: 0 | 1, v2: string | boolean | null | undefined): Digests | null => {
      if (state.version === 2)
        return typeof v2 === 'string' ? Digests.fromBytes(size, Buffer.from(v2, 'base64')) : null
      if (state.version !== 3 || v2 === false || v2 === null) return null
      const digests = new Digests(size)
      if (state.size !== size) return digests
      for (const b of blocks) if (b.boot === boot) digests.load(b.block, Buffer.from(b.base64, 'base64'))
      return digests
    }
    w.digests = saved(0, state.version === 3 || state.digests) ?? new Digests(size)
    const p = state.prev
    w.prev = p
      ? {
          high: p.high,
          highTs: p.highTs ?? p.bootTs ?? 0,
          bootSeq: p.bootSeq ?? 0,
          bootTs: p.bootTs ?? 0,
          digests: saved(1, p.digests),
        }
      : null
    w.uptime = state.uptime ?? null
    w.expectReboot = Boolean(state.expectReboot)
    return w
  }
}

/** Number of seqs in a range, wrap included. */
export const rangeLength = (r: { from: number; to: number }) => ((r.to - r.from + SEQ_MOD) % SEQ_MOD) + 1
