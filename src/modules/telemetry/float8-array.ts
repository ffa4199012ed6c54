/**
 * float8[] values to and from PostgreSQL without the drivers' generic array code, which showed up
 * at ~8 % of the server's CPU under ingest load (serialising params, parsing results).
 */

const FLOAT8_OID = 701
const HEADER_BYTES = 20

/**
 * A float8[] parameter in PostgreSQL's binary array format (array_recv). Buffers go out as binary
 * parameters on node-postgres and on PGlite alike, so the server reads the doubles as they are:
 * no strtod, and every value exact, -0 included. null (or undefined) elements become NULL.
 */
export function encodeFloat8Array(values: readonly (number | null | undefined)[]): Buffer {
  const n = values.length
  let nulls = 0
  for (let i = 0; i < n; i++) if (values[i] == null) nulls++
  const buf = Buffer.allocUnsafe(HEADER_BYTES + 4 * n + 8 * (n - nulls))
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  // An empty array has no dimensions.
  view.setInt32(0, n === 0 ? 0 : 1)
  view.setInt32(4, nulls > 0 ? 1 : 0)
  view.setInt32(8, FLOAT8_OID)
  if (n === 0) return buf.subarray(0, 12)
  view.setInt32(12, n)
  view.setInt32(16, 1) // lower bound
  let at = HEADER_BYTES
  for (let i = 0; i < n; i++) {
    const v = values[i]
    if (v == null) {
      view.setInt32(at, -1)
      at += 4
    } else {
      view.setInt32(at, 8)
      view.setFloat64(at + 4, v)
      at += 12
    }
  }
  return buf
}

/**
 * A one-dimensional float8[] (or int[]) as PostgreSQL prints it: `{1.5,NULL,-0,1e+21,NaN}`, `{}`,
 * or with bounds `[0:1]={1,2}`. Elements of numeric arrays are never quoted, and Number() reads
 * every float8 output exactly (shortest round-trip digits, Infinity, -Infinity, NaN).
 */
export function parseFloat8Array(text: string): (number | null)[] {
  let start = 1
  if (text.charCodeAt(0) === 0x5b /* [ */) start = text.indexOf('=') + 2
  if (text.charCodeAt(start) === 0x7b /* { */) throw new Error('multi-dimensional arrays are not supported')
  const end = text.length - 1 // the closing brace
  const out: (number | null)[] = []
  if (end <= start) return out
  for (let from = start; ; ) {
    let comma = text.indexOf(',', from)
    if (comma === -1) comma = end
    const element = text.slice(from, comma)
    out.push(element === 'NULL' ? null : Number(element))
    if (comma === end) return out
    from = comma + 1
  }
}
