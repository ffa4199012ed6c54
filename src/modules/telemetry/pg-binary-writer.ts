/**
 * A growing buffer for PostgreSQL's binary wire formats (the *_recv functions): big-endian
 * integers and doubles, length-prefixed values. Fields are written without bounds checks: callers
 * reserve room with ensure() once per item (an upper bound), not per field.
 */
export class PgBinaryWriter {
  private buf: Buffer
  private view: DataView
  at = 0

  constructor(capacity: number) {
    this.buf = Buffer.allocUnsafe(Math.max(capacity, 64))
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength)
  }

  /** Makes room for at least `bytes` more. */
  ensure(bytes: number): void {
    if (this.at + bytes <= this.buf.length) return
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.at + bytes))
    this.buf.copy(next, 0, 0, this.at)
    this.buf = next
    this.view = new DataView(next.buffer, next.byteOffset, next.byteLength)
  }

  int8(v: number): void {
    this.view.setInt8(this.at, v)
    this.at += 1
  }

  int16(v: number): void {
    this.view.setInt16(this.at, v)
    this.at += 2
  }

  int32(v: number): void {
    this.view.setInt32(this.at, v)
    this.at += 4
  }

  /** An oid (unsigned 32 bits). */
  uint32(v: number): void {
    this.view.setUint32(this.at, v)
    this.at += 4
  }

  int64(v: bigint): void {
    this.view.setBigInt64(this.at, v)
    this.at += 8
  }

  float64(v: number): void {
    this.view.setFloat64(this.at, v)
    this.at += 8
  }

  /** UTF-8 bytes of a string: ensure() 3 bytes per UTF-16 code unit, the worst case. */
  utf8(text: string): void {
    this.at += this.buf.write(text, this.at, 'utf8')
  }

  /** Reserves an int32 length prefix; endLength() fills it with the bytes written since. */
  beginLength(): number {
    this.at += 4
    return this.at - 4
  }

  endLength(prefixAt: number): void {
    this.view.setInt32(prefixAt, this.at - prefixAt - 4)
  }

  /** Patches an int32 written earlier (a flag known only after the data). */
  setInt32At(at: number, v: number): void {
    this.view.setInt32(at, v)
  }

  /** The bytes written (a view of the writer's buffer: write no more after taking it). */
  bytes(): Buffer {
    return this.buf.subarray(0, this.at)
  }
}
