import { type Kysely, sql, type Transaction } from 'kysely'
import type { Database } from '../../platform/db/index.ts'
import { type MissingRange, rangeLength } from './seq-window.ts'

const SEQ_MOD = 2 ** 32
/** Holes longer than this are declared as they are (not checked seq by seq against the store). */
const MAX_CHECKED = 65_536
/** Declared gaps remembered per device in its seq-tracking row. */
const MAX_CLAIMS = 256
/** A datagram's first sample (t0) precedes its envelope ts by at most this. */
const SPAN_MS = 3_600_000
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

const iso = (ms: number) => new Date(ms).toISOString()

const overlaps = (c: Claim, r: MissingRange) => {
  const inside = (s: number, x: { from: number; to: number }) =>
    (s - x.from + SEQ_MOD) % SEQ_MOD <= (x.to - x.from + SEQ_MOD) % SEQ_MOD
  return (inside(c.from, r) || inside(r.from, c)) && c.toTs >= r.fromTs && c.fromTs <= r.toTs
}

/**
 * Replica-safe gap declaration. With shared subscriptions each replica sees only part of a device's
 * seqs, so its own dedup window shows holes that another replica filled. Before an expired hole
 * becomes a gap, under a per-device advisory lock: (1) seqs stored in the telemetry table by any
 * replica are taken out of it, and (2) what another replica already declared is skipped (claims in
 * the device's seq-tracking row; a replica re-declares its own claim only when no seq_gaps row
 * covers it — a crash between claim and store must not lose the gap). Returns what to declare.
 */
export async function confirmGaps(
  db: Kysely<Database>,
  pk: number,
  ranges: MissingRange[],
  owner: string,
): Promise<MissingRange[]> {
  if (ranges.length === 0) return ranges
  return db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(${LOCK_SPACE}::int, ${pk}::int)`.execute(trx)
    const row = await sql<{ declared: Claim[] | null }>`
      select state->'declared' as declared from device_seq_tracking where device_pk = ${pk}::int`.execute(trx)
    const claims = Array.isArray(row.rows[0]?.declared) ? (row.rows[0]?.declared as Claim[]) : []
    const out: MissingRange[] = []
    for (const range of ranges) {
      for (const piece of await stillMissing(trx, pk, range)) {
        const claimed = claims.filter((c) => overlaps(c, piece))
        if (claimed.some((c) => c.by !== owner)) continue
        if (claimed.length > 0 && (await recorded(trx, pk, piece))) continue
        out.push(piece)
      }
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

/** The parts of a hole that no replica stored in the telemetry table. */
async function stillMissing(
  trx: Transaction<Database>,
  pk: number,
  r: MissingRange,
): Promise<MissingRange[]> {
  const n = rangeLength(r)
  if (n > MAX_CHECKED) return [r]
  const seqs =
    r.from <= r.to ? sql`seq between ${r.from} and ${r.to}` : sql`(seq >= ${r.from} or seq <= ${r.to})`
  const rows = await sql<{ seq: string | number }>`
    select seq from telemetry
    where device_pk = ${pk}::int and t0 >= ${iso(r.fromTs - SPAN_MS)}::timestamptz
      and t0 <= ${iso(r.toTs)}::timestamptz and ${seqs}`.execute(trx)
  if (rows.rows.length === 0) return [r]
  const stored = new Set(rows.rows.map((x) => Number(x.seq)))
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

/** A seq_gaps row of the device already covers (part of) this hole. */
async function recorded(trx: Transaction<Database>, pk: number, r: MissingRange): Promise<boolean> {
  const rows = await sql`
    select 1 from seq_gaps
    where device_pk = ${pk}::int and from_seq <= ${r.to} and to_seq >= ${r.from}
      and to_ts >= ${iso(r.fromTs)}::timestamptz and from_ts <= ${iso(r.toTs)}::timestamptz
    limit 1`.execute(trx)
  return rows.rows.length > 0
}
