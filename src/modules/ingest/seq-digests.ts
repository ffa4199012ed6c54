/** Slots per saved block of a window's digests (256 bytes): the unit a checkpoint writes. */
export const BLOCK_SLOTS = 64

/** A saved block of digests: which boot (0 the current, 1 the one before), which block, its bytes. */
export interface DigestBlock {
  boot: 0 | 1
  block: number
  /** base64 of the block's slots as stored (little-endian u32s; the database decodes it). */
  base64: string
}

/**
 * One boot's payload digests, a slot per seq (seq mod the window size; 0 = nothing seen), with
 * the blocks changed since they were last taken for saving: a checkpoint writes only those. A
 * device heard a few times between checkpoints changes one block of 256 bytes, where writing the
 * whole window (4 KB by default, as base64 in JSON) cost more than the datagrams themselves.
 */
export class Digests {
  readonly slots: Uint32Array
  private readonly changed: Uint8Array

  /** A fresh window: every block changed (the zeros must overwrite what a previous boot saved). */
  constructor(readonly size: number) {
    this.slots = new Uint32Array(size)
    this.changed = new Uint8Array(Math.ceil(size / BLOCK_SLOTS)).fill(1)
  }

  at(slot: number): number {
    return this.slots[slot] as number
  }

  set(slot: number, digest: number): void {
    if (this.slots[slot] === digest) return
    this.slots[slot] = digest
    this.changed[Math.floor(slot / BLOCK_SLOTS)] = 1
  }

  /** Every block is to be written again (these digests changed boot, or were read in another form). */
  markAllChanged(): void {
    this.changed.fill(1)
  }

  /** Blocks to write again: a save of them failed (marking a block that did not change is harmless). */
  markChanged(blocks: number[]): void {
    for (const block of blocks) if (block < this.changed.length) this.changed[block] = 1
  }

  /** The changed blocks, as they are now (copied), for `boot`; they count as unchanged from here. */
  takeChanged(boot: 0 | 1): DigestBlock[] {
    const out: DigestBlock[] = []
    const bytes = Buffer.from(this.slots.buffer, this.slots.byteOffset, this.slots.byteLength)
    for (let block = 0; block < this.changed.length; block++) {
      if (this.changed[block] === 0) continue
      this.changed[block] = 0
      const from = block * BLOCK_SLOTS * 4
      const to = Math.min(from + BLOCK_SLOTS * 4, bytes.length)
      out.push({ boot, block, base64: bytes.toString('base64', from, to) })
    }
    return out
  }

  /**
   * A saved block read back (it counts as unchanged: it is what the database holds); false when it
   * does not fit this window (saved with another size).
   */
  load(block: number, saved: Buffer): boolean {
    const from = block * BLOCK_SLOTS * 4
    const length = Math.min(BLOCK_SLOTS * 4, this.size * 4 - from)
    if (length <= 0 || saved.length !== length) return false
    saved.copy(new Uint8Array(this.slots.buffer, this.slots.byteOffset, this.slots.byteLength), from)
    this.changed[block] = 0
    return true
  }

  /** The whole window as one buffer's bytes (the state of version 2, and its tests). */
  static fromBytes(size: number, raw: Buffer): Digests {
    const d = new Digests(size)
    if (raw.length === size * 4) raw.copy(new Uint8Array(d.slots.buffer), 0)
    return d
  }
}
