import {
  closeSync,
  fstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  unlinkSync,
  writevSync,
} from 'node:fs'
import { join } from 'node:path'
import { crc32 } from 'node:zlib'

/** One message as it arrived, before anything else happened to it. */
export interface JournalRecord {
  id: number
  topic: string
  payload: Buffer
  receivedAt: number
}

// Record layout: u32 body length | u32 crc32(body) | body = u16 topic length, topic, f64 receivedAt, payload.
const HEADER = 8
/**
 * Records are written one after another into slabs of this size: one allocation per ~150
 * datagrams instead of one per record (Buffer's 8 KB pool is refilled every few records). A slab
 * whose records are all settled is used again: fresh memory costs a page fault per 4 KB on first
 * touch (on a VM, microseconds each: it was most of the cost of journaling a datagram).
 */
const SLAB_BYTES = 256 * 1024
/** Settled slabs kept for reuse (16 MB): past that, more are left to the garbage collector. */
const MAX_SPARE_SLABS = 64

/**
 * The ingest journal: every message is appended here, and the appended group is written with one
 * synchronous write (`commit`) before the broker (or, with the embedded broker, the device) gets
 * an acknowledgement for any of them, so a kill -9 loses nothing that was acknowledged: the page
 * cache outlives the process and the records are replayed at start. One write per event-loop turn
 * instead of one per message (group commit). Segments whose records are all stored ("settled")
 * are deleted.
 */
export class Journal {
  private fd = -1
  private segmentFirstId = 0
  private segmentBytes = 0
  private nextId = 1
  /** Records appended since the last commit, not yet written: parts of slabs, and their count. */
  private group: Buffer[] = []
  private groupBytes = 0
  private groupRecords = 0
  /** The slab records are appended to; the open group's part of it starts at groupFrom. */
  private slab: Buffer = Buffer.alloc(0)
  private slabAt = 0
  private groupFrom = 0
  /** Slabs filled, with the last record id each holds, until that record is settled. */
  private readonly filled: { slab: Buffer; lastId: number }[] = []
  /** Slabs whose records are all settled, to append to again. */
  private readonly spare: Buffer[] = []
  /** Closed segments by their first id, with the last id they hold. */
  private readonly closed = new Map<number, { path: string; lastId: number }>()

  constructor(
    private readonly dir: string,
    private readonly maxSegmentBytes = 64 * 1024 * 1024,
  ) {}

  /** Opens the journal and returns every record of earlier runs, oldest first, for replay. */
  open(): JournalRecord[] {
    mkdirSync(this.dir, { recursive: true })
    const files = readdirSync(this.dir)
      .filter((f) => /^segment-\d+\.log$/.test(f))
      .sort((a, b) => segmentId(a) - segmentId(b))
    const records: JournalRecord[] = []
    for (const file of files) {
      const path = join(this.dir, file)
      const found = readSegment(path, segmentId(file))
      if (found.length === 0) {
        unlinkSync(path)
        continue
      }
      records.push(...found)
      const lastId = (found[found.length - 1] as JournalRecord).id
      this.closed.set(segmentId(file), { path, lastId })
      this.nextId = Math.max(this.nextId, lastId + 1)
    }
    this.startSegment()
    return records
  }

  /** Starts a new segment whose first record will have id `firstId`. */
  private startSegment(firstId = this.nextId): void {
    if (this.fd >= 0) {
      const fd = this.fd
      this.fd = -1
      closeSync(fd)
      this.closed.set(this.segmentFirstId, {
        path: this.segmentPath(this.segmentFirstId),
        lastId: this.nextId - 1,
      })
    }
    this.segmentFirstId = firstId
    this.fd = openSync(this.segmentPath(this.segmentFirstId), 'a')
    this.segmentBytes = fstatSync(this.fd).size
  }

  private segmentPath(firstId: number): string {
    return join(this.dir, `segment-${String(firstId).padStart(15, '0')}.log`)
  }

  /**
   * Appends a message to the open group; it is durable (for a process crash) once `commit` returns.
   * Returns its id and the payload as a view of the record: the one copy a message needs (the
   * payload given may be a view of a socket's read buffer, which must not be retained). The view
   * is valid until the record is settled (its memory is then used for later records): whatever
   * must outlive that copies it.
   */
  append(topic: string, payload: Buffer, receivedAt: number): { id: number; payload: Buffer } {
    const topicLength = Buffer.byteLength(topic)
    const bodyLength = 2 + topicLength + 8 + payload.length
    const size = HEADER + bodyLength
    if (this.slabAt + size > this.slab.length) this.nextSlab(size)
    const slab = this.slab
    const at = this.slabAt
    slab.writeUInt32BE(bodyLength, at)
    slab.writeUInt16BE(topicLength, at + HEADER)
    slab.write(topic, at + HEADER + 2)
    slab.writeDoubleBE(receivedAt, at + HEADER + 2 + topicLength)
    const payloadAt = at + HEADER + 10 + topicLength
    payload.copy(slab, payloadAt)
    slab.writeUInt32BE(crc32(slab.subarray(at + HEADER, at + size)), at + 4)
    this.slabAt = at + size
    this.groupBytes += size
    this.groupRecords++
    return { id: this.nextId++, payload: slab.subarray(payloadAt, at + size) }
  }

  /** Moves on to a slab with room for a record of `size` bytes: a spare one, else a new one. */
  private nextSlab(size: number): void {
    this.cutGroup()
    if (this.slabAt > 0) this.filled.push({ slab: this.slab, lastId: this.nextId - 1 })
    const spare = size <= SLAB_BYTES ? this.spare.pop() : undefined
    this.slab = spare ?? Buffer.allocUnsafeSlow(Math.max(SLAB_BYTES, size))
    this.slabAt = 0
    this.groupFrom = 0
  }

  /** Adds the open group's part of the current slab to the group's parts. */
  private cutGroup(): void {
    if (this.slabAt > this.groupFrom) this.group.push(this.slab.subarray(this.groupFrom, this.slabAt))
    this.groupFrom = this.slabAt
  }

  /** Records appended but not yet committed. */
  get uncommitted(): number {
    return this.groupRecords
  }

  /**
   * Writes the open group with one synchronous write. If that fails, the group is dropped (none of
   * it was acknowledged, so the broker delivers it again) and a new segment is started, so that a
   * torn record cannot hide the records written after it from the replay; then it throws.
   */
  commit(): void {
    if (this.groupRecords === 0) return
    this.cutGroup()
    const group = this.group
    const bytes = this.groupBytes
    const records = this.groupRecords
    this.group = []
    this.groupBytes = 0
    this.groupRecords = 0
    try {
      // After a failed rotation: the group's first record opens the new segment.
      if (this.fd < 0) this.startSegment(this.nextId - records)
      writevSync(this.fd, group)
    } catch (error) {
      try {
        this.startSegment()
      } catch {
        // Tried again at the next commit (fd < 0).
      }
      throw error
    }
    this.segmentBytes += bytes
    if (this.segmentBytes >= this.maxSegmentBytes) this.startSegment()
  }

  /**
   * Every record up to and including `id` is stored (and archived): delete the segments that hold
   * only such, and reuse the slabs that do.
   */
  settle(id: number): void {
    this.commit()
    while (this.filled.length > 0 && (this.filled[0] as { lastId: number }).lastId <= id) {
      const { slab } = this.filled.shift() as { slab: Buffer }
      if (slab.length === SLAB_BYTES && this.spare.length < MAX_SPARE_SLABS) this.spare.push(slab)
    }
    for (const [firstId, segment] of this.closed) {
      if (segment.lastId <= id) {
        unlinkSync(segment.path)
        this.closed.delete(firstId)
      }
    }
    // The open segment, once fully settled and large enough, is rotated so it can go too.
    if (this.nextId - 1 <= id && this.segmentBytes > 1024 * 1024) this.startSegment()
  }

  close(): void {
    this.commit()
    if (this.fd >= 0) closeSync(this.fd)
    this.fd = -1
  }
}

const segmentId = (file: string) => Number(/(\d+)/.exec(file)?.[1])

/** Reads a segment's records; stops at a torn or corrupt tail (a write cut short by a crash). */
function readSegment(path: string, firstId: number): JournalRecord[] {
  const data = readFileSync(path)
  const records: JournalRecord[] = []
  let offset = 0
  let id = firstId
  while (offset + HEADER <= data.length) {
    const length = data.readUInt32BE(offset)
    const sum = data.readUInt32BE(offset + 4)
    if (offset + HEADER + length > data.length) break
    const body = data.subarray(offset + HEADER, offset + HEADER + length)
    if (crc32(body) !== sum) break
    const topicLength = body.readUInt16BE(0)
    records.push({
      id: id++,
      topic: body.subarray(2, 2 + topicLength).toString(),
      receivedAt: body.readDoubleBE(2 + topicLength),
      payload: Buffer.from(body.subarray(10 + topicLength)),
    })
    offset += HEADER + length
  }
  return records
}
