import type { Section } from './archive-index.ts'
import { archiveKey, groupTimeKey } from './archive-key.ts'
import { type Category, checkArchiveKey, InvalidArchiveKey } from './archive-store.ts'
import type { RawArchive } from './raw-archive.ts'

const NL = Buffer.from('\n')
/** What a buffered line costs besides its bytes (the Buffer object, the array slot), roughly. */
const LINE_OVERHEAD = 96

/**
 * NDJSON: each line (its parts) followed by a newline, as parts and their total length. Not
 * joined into one buffer: the file store writes the parts as they are, and a large buffer per
 * object is fresh memory to fault in (on a VM, microseconds a page).
 */
function joinLines(lines: Buffer[][], into: Buffer[] = []): { parts: Buffer[]; length: number } {
  let length = 0
  for (const line of lines) {
    for (const part of line) {
      into.push(part)
      length += part.length
    }
    into.push(NL)
    length += 1
  }
  return { parts: into, length }
}

const lineBytes = (line: Buffer[]) => {
  let n = LINE_OVERHEAD
  for (const part of line) n += part.length
  return n
}

interface Group {
  deviceId: string
  category: Category
  lines: Buffer[][]
  firstAt: number
  lastAt: number
}

/** Lines taken from the buffer for one checkpoint: written by `write`, or given back on failure. */
export interface ArchiveBatch {
  write(): Promise<void>
  /** Puts the lines that were not written back into the buffer (a failed checkpoint). */
  restore(): void
}

/**
 * Collects archive lines across store flushes. A checkpoint writes one object per device and
 * category, or — with an object period — one grouped object of every device's lines once the
 * oldest line is a period old (`due`). The journal keeps every record whose line is not written
 * yet, so a crash loses no line. A checkpoint takes the lines it writes out of the buffer first,
 * so batches stored meanwhile add to a fresh buffer.
 */
export class ArchiveBuffer {
  private groups = new Map<string, Group>()
  private lines = 0
  private bytes = 0
  /** Lines (and their bytes) taken by a checkpoint that is still writing them (still held here). */
  private writing = 0
  private writingBytes = 0
  private counter = 0
  /** When the oldest line not taken yet was received. */
  private oldestAt = Number.POSITIVE_INFINITY

  constructor(
    private readonly archive: RawArchive,
    private readonly runId: string,
    /** Lines dropped because their key is invalid (the device-id grammar keeps them out first). */
    private readonly onInvalidKey?: (deviceId: string, lines: number, error: Error) => void,
  ) {}

  add(deviceId: string, category: Category, line: Buffer[], receivedAt: number): void {
    const key = `${deviceId}\u0000${category}`
    let group = this.groups.get(key)
    if (!group) {
      group = { deviceId, category, lines: [], firstAt: receivedAt, lastAt: receivedAt }
      this.groups.set(key, group)
    }
    group.lines.push(line)
    group.lastAt = Math.max(group.lastAt, receivedAt)
    this.oldestAt = Math.min(this.oldestAt, receivedAt)
    this.lines++
    this.bytes += lineBytes(line)
  }

  /** Lines not yet written, including those a checkpoint is writing. */
  get buffered(): number {
    return this.lines + this.writing
  }

  /** Memory those lines hold (approximately: their bytes plus a per-line overhead). */
  get bufferedBytes(): number {
    return this.bytes + this.writingBytes
  }

  /**
   * Whether a checkpoint should write the lines now: always without an object period, else once
   * the oldest is a period old (or there are none: nothing then keeps the journal from settling).
   */
  due(now: number): boolean {
    return (
      this.archive.objectPeriodMs === 0 ||
      this.lines === 0 ||
      now - this.oldestAt >= this.archive.objectPeriodMs
    )
  }

  /** Takes everything buffered so far for one checkpoint. */
  take(): ArchiveBatch {
    const groups = [...this.groups.values()]
    const count = this.lines
    const bytes = this.bytes
    this.groups = new Map()
    this.lines = 0
    this.bytes = 0
    this.oldestAt = Number.POSITIVE_INFINITY
    this.writing += count
    this.writingBytes += bytes
    let settled = false
    const settle = () => {
      if (!settled) {
        this.writing -= count
        this.writingBytes -= bytes
      }
      settled = true
    }
    return {
      write: async () => {
        if (this.archive.objectPeriodMs > 0) await this.writeGrouped(groups)
        else await this.writeEach(groups)
        settle()
      },
      restore: () => {
        settle()
        // Back in front of what arrived meanwhile, so each object stays in arrival order.
        for (const g of groups) {
          if (g.lines.length === 0) continue
          const key = `${g.deviceId}\u0000${g.category}`
          const newer = this.groups.get(key)
          this.groups.set(key, { ...g, lines: newer ? [...g.lines, ...newer.lines] : g.lines })
          this.lines += g.lines.length
          this.oldestAt = Math.min(this.oldestAt, g.firstAt)
          for (const line of g.lines) this.bytes += lineBytes(line)
        }
      },
    }
  }

  /** One object of every device's lines, with a section in the index per device and category. */
  private async writeGrouped(groups: Group[]): Promise<void> {
    const parts: Buffer[] = []
    const pending: Omit<Section, 'timeKey'>[] = []
    let offset = 0
    let at = Number.POSITIVE_INFINITY
    for (const g of groups) {
      if (g.lines.length === 0) continue
      try {
        // The key its section is listed and downloaded under must be one the stores take.
        checkArchiveKey(archiveKey(g.deviceId, g.category, g.firstAt, this.runId, 0))
      } catch (error) {
        if (!(error instanceof InvalidArchiveKey)) throw error
        this.onInvalidKey?.(g.deviceId, g.lines.length, error)
        g.lines = []
        continue
      }
      const { length } = joinLines(g.lines, parts)
      const { deviceId, category, firstAt, lastAt } = g
      pending.push({
        deviceId,
        category,
        offset,
        length,
        lines: g.lines.length,
        firstAt,
        lastAt,
      })
      offset += length
      at = Math.min(at, firstAt)
    }
    if (pending.length === 0) return
    const timeKey = groupTimeKey(at, this.runId, this.counter++)
    await this.archive.putGroup(
      timeKey,
      parts,
      pending.map((s) => ({ ...s, timeKey })),
    )
    for (const g of groups) g.lines = []
  }

  /** One object per device and category (ARCHIVE_OBJECT_PERIOD_S=0). */
  private async writeEach(groups: Group[]): Promise<void> {
    const concurrency = 16
    for (let i = 0; i < groups.length; i += concurrency) {
      // The file store writes synchronously: let intake and timers run between groups of objects.
      if (i > 0) await new Promise(setImmediate)
      await Promise.all(
        groups.slice(i, i + concurrency).map(async (g) => {
          if (g.lines.length === 0) return
          const key = archiveKey(g.deviceId, g.category, g.firstAt, this.runId, this.counter++)
          try {
            await this.archive.put(key, joinLines(g.lines).parts)
          } catch (error) {
            // A key no store will ever take must not fail every checkpoint (issue 16 row 2).
            if (!(error instanceof InvalidArchiveKey)) throw error
            this.onInvalidKey?.(g.deviceId, g.lines.length, error)
          }
          // Written: a retry after a failure elsewhere must not write it again.
          g.lines = []
        }),
      )
    }
  }
}
