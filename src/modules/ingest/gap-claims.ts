import { type Kysely, sql } from 'kysely'
import type { Database } from '../../platform/db/index.ts'
import { gapRecorded, type TelemetryService } from '../telemetry/index.ts'
import { type MissingRange, rangeLength } from './seq-window.ts'

const SEQ_MOD = 2 ** 32
/** Holes longer than this are declared as they are (not checked seq by seq against the store). */
const MAX_CHECKED = 65_536
/** Declared gaps remembered per device in its seq-tracking row. */
const MAX_CLAIMS = 256
/** Namespace of the advisory locks (first key) taken per device (second key). */
const LOCK_SPACE = 0x5e9a

/** A declared gap, kept in device_seq_tracking.state.declared so one replica declares it. */
interface Claim {
  from: number
  to: number
  fromTs: number
  toTs: number
  by: string
}

/** Where the seqs stored by any replica are looked up: the telemetry module's store, whichever it is. */
export type StoredSeqs = Pick<TelemetryService, 'storedSeqsMany'>

const overlaps = (c: Claim, r: MissingRange) => {
  const inside = (s: number, x: { from: number; to: number }) =>
    (s - x.from + SEQ_MOD) % SEQ_MOD <= (x.to - x.from + SEQ_MOD) % SEQ_MOD
  return (inside(c.from, r) || inside(r.from, c)) && c.toTs >= r.fromTs && c.fromTs <= r.toTs
}

/**
 * Replica-safe gap declaration. With shared subscriptions each replica sees only part of a device's
 * seqs, so its own dedup window shows holes that another replica filled. Before an expired hole
 * becomes a gap: (1) seqs stored by any replica are taken out of it (asked of the telemetry store,
 * PostgreSQL or InfluxDB), then, under a per-device advisory lock, (2) what another replica already
 * declared is skipped (claims in the device's seq-tracking row; a replica re-declares its own claim
 * only when no seq_gaps row covers it — a crash between claim and store must not lose the gap).
 * Returns what to declare. The lookup runs before the transaction: other replicas store telemetry
 * without the lock, so inside it would see nothing more, and on PGlite (one connection) a query
 * outside the open transaction would wait for it forever.
 */
export async function confirmGaps(
  db: Kysely<Database>,
  pk: number,
  ranges: MissingRange[],
  owner: string,
  seqs: StoredSeqs,
): Promise<MissingRange[]> {
  const result = (await confirmGapsMany(db, new Map([[pk, ranges]]), owner, seqs)).get(pk)
  if (result instanceof Error) throw result
  return result ?? []
}

/**
 * confirmGaps for many devices at once: the stored seqs of every hole are asked of the store in one
 * lookup (with a shared subscription nearly every hole is another replica's messages: one query a
 * batch, not one a hole); only devices with holes left take the claim transaction, one each.
 * A device whose claim fails gets its error in the result; a failed lookup rejects (all retry).
 */
export async function confirmGapsMany(
  db: Kysely<Database>,
  expired: Map<number, MissingRange[]>,
  owner: string,
  seqs: StoredSeqs,
): Promise<Map<number, MissingRange[] | Error>> {
  const asks: { devicePk: number; range: MissingRange }[] = []
  for (const [devicePk, ranges] of expired)
    for (const range of ranges) if (rangeLength(range) <= MAX_CHECKED) asks.push({ devicePk, range })
  const stored =
    asks.length === 0
      ? []
      : await seqs.storedSeqsMany(
          asks.map(({ devicePk, range: r }) => ({
            devicePk,
            run: { from: r.from, to: r.to, fromTs: r.fromTs, toTs: r.toTs },
          })),
        )
  const storedOf = new Map(asks.map((a, i) => [a.range, stored[i] as Set<number>]))
  const out = new Map<number, MissingRange[] | Error>()
  for (const [pk, ranges] of expired) {
    const pieces = ranges.flatMap((r) => missingParts(r, storedOf.get(r)))
    try {
      out.set(pk, pieces.length === 0 ? [] : await claim(db, pk, pieces, owner))
    } catch (error) {
      out.set(pk, error instanceof Error ? error : new Error(String(error)))
    }
  }
  return out
}

/** Declares the pieces no other replica declared, under the device's advisory lock. */
function claim(
  db: Kysely<Database>,
  pk: number,
  pieces: MissingRange[],
  owner: string,
): Promise<MissingRange[]> {
  return db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(${LOCK_SPACE}::int, ${pk}::int)`.execute(trx)
    // Deleted meanwhile (its hole expired after the delete): nothing to declare, and no row to write
    // that would fail on the foreign key (issue 16 row 10).
    const device = await sql`select 1 from devices where id = ${pk}::int`.execute(trx)
    if (device.rows.length === 0) return []
    const row = await sql<{ declared: Claim[] | null }>`
      select state->'declared' as declared from device_seq_tracking where device_pk = ${pk}::int`.execute(trx)
    const claims = Array.isArray(row.rows[0]?.declared) ? (row.rows[0]?.declared as Claim[]) : []
    const out: MissingRange[] = []
    for (const piece of pieces) {
      const claimed = claims.filter((c) => overlaps(c, piece))
      if (claimed.some((c) => c.by !== owner)) continue
      if (claimed.length > 0 && (await gapRecorded(trx, pk, piece))) continue
      out.push(piece)
    }
    if (out.length > 0) {
      const next = JSON.stringify(
        [
          ...claims,
          ...out.map((r) => ({ from: r.from, to: r.to, fromTs: r.fromTs, toTs: r.toTs, by: owner })),
        ].slice(-MAX_CLAIMS),
      )
      await sql`
        insert into device_seq_tracking (device_pk, state, updated_at)
        values (${pk}::int, jsonb_build_object('declared', ${next}::jsonb), now())
        on conflict (device_pk) do update
          set state = device_seq_tracking.state || jsonb_build_object('declared', ${next}::jsonb)`.execute(
        trx,
      )
    }
    return out
  })
}

/** The parts of a hole that no replica stored (`stored`: its seqs the store holds; undefined: not asked). */
function missingParts(r: MissingRange, stored: Set<number> | undefined): MissingRange[] {
  const n = rangeLength(r)
  if (!stored || stored.size === 0) return [r]
  const out: MissingRange[] = []
  let start = -1
  for (let k = 0; k < n; k++) {
    const s = (r.from + k) % SEQ_MOD
    if (!stored.has(s)) {
      if (start < 0) start = s
    } else if (start >= 0) {
      out.push({ ...r, from: start, to: (s - 1 + SEQ_MOD) % SEQ_MOD })
      start = -1
    }
  }
  if (start >= 0) out.push({ ...r, from: start, to: r.to })
  return out
}
