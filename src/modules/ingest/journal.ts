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
  /** Records appended since the last commit, not yet written. */
  private group: Buffer[] = []
  private groupBytes = 0
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
   * payload given may be a view of a socket's read buffer, which must not be retained).
   */
  append(topic: string, payload: Buffer, receivedAt: number): { id: number; payload: Buffer } {
    const topicLength = Buffer.byteLength(topic)
    const bodyLength = 2 + topicLength + 8 + payload.length
    const record = Buffer.allocUnsafe(HEADER + bodyLength)
    record.writeUInt32BE(bodyLength, 0)
    record.writeUInt16BE(topicLength, HEADER)
    record.write(topic, HEADER + 2)
    record.writeDoubleBE(receivedAt, HEADER + 2 + topicLength)
    const payloadAt = HEADER + 10 + topicLength
    payload.copy(record, payloadAt)
    record.writeUInt32BE(crc32(record.subarray(HEADER)), 4)
    this.group.push(record)
    this.groupBytes += record.length
    return { id: this.nextId++, payload: record.subarray(payloadAt) }
  }

  /** Records appended but not yet committed. */
  get uncommitted(): number {
    return this.group.length
  }

  /**
   * Writes the open group with one synchronous write. If that fails, the group is dropped (none of
   * it was acknowledged, so the broker delivers it again) and a new segment is started, so that a
   * torn record cannot hide the records written after it from the replay; then it throws.
   */
  commit(): void {
    if (this.group.length === 0) return
    const group = this.group
    const bytes = this.groupBytes
    this.group = []
    this.groupBytes = 0
    try {
      // After a failed rotation: the group's first record opens the new segment.
      if (this.fd < 0) this.startSegment(this.nextId - group.length)
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

  /** Every record up to and including `id` is stored: delete the segments that hold only such. */
  settle(id: number): void {
    this.commit()
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
