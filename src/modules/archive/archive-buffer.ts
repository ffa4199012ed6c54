import { archiveKey } from './archive-key.ts'
import { type ArchiveStore, type Category, InvalidArchiveKey } from './archive-store.ts'

const NL = Buffer.from('\n')
/** What a buffered line costs besides its bytes (the Buffer object, the array slot), roughly. */
const LINE_OVERHEAD = 96

/** NDJSON: each line (its parts) followed by a newline, in one buffer. */
function joinLines(lines: Buffer[][]): Buffer {
  const parts: Buffer[] = []
  for (const line of lines) {
    for (const part of line) parts.push(part)
    parts.push(NL)
  }
  return Buffer.concat(parts)
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
}

/** Lines taken from the buffer for one checkpoint: written by `write`, or given back on failure. */
export interface ArchiveBatch {
  write(): Promise<void>
  /** Puts the lines that were not written back into the buffer (a failed checkpoint). */
  restore(): void
}

/**
 * Collects archive lines across store flushes; each checkpoint writes one object per device and
 * category (the old collector wrote one object per message). The journal keeps every record
 * whose line is not written yet, so a crash loses no line. A checkpoint takes the lines it writes
 * out of the buffer first, so batches stored meanwhile add to a fresh buffer.
 */
export class ArchiveBuffer {
  private groups = new Map<string, Group>()
  private lines = 0
  private bytes = 0
  /** Lines (and their bytes) taken by a checkpoint that is still writing them (still held here). */
  private writing = 0
  private writingBytes = 0
  private counter = 0

  constructor(
    private readonly store: ArchiveStore,
    private readonly runId: string,
    /** Lines dropped because their key is invalid (the device-id grammar keeps them out first). */
    private readonly onInvalidKey?: (deviceId: string, lines: number, error: Error) => void,
  ) {}

  add(deviceId: string, category: Category, line: Buffer[], receivedAt: number): void {
    const key = `${deviceId}\u0000${category}`
    let group = this.groups.get(key)
    if (!group) {
      group = { deviceId, category, lines: [], firstAt: receivedAt }
      this.groups.set(key, group)
    }
    group.lines.push(line)
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

  /** Takes everything buffered so far for one checkpoint. */
  take(): ArchiveBatch {
    const groups = [...this.groups.values()]
    const count = this.lines
    const bytes = this.bytes
    this.groups = new Map()
    this.lines = 0
    this.bytes = 0
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
        const concurrency = 16
        for (let i = 0; i < groups.length; i += concurrency) {
          await Promise.all(
            groups.slice(i, i + concurrency).map(async (g) => {
              if (g.lines.length === 0) return
              const key = archiveKey(g.deviceId, g.category, g.firstAt, this.runId, this.counter++)
              try {
                await this.store.put(key, joinLines(g.lines))
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
          for (const line of g.lines) this.bytes += lineBytes(line)
        }
      },
    }
  }
}
