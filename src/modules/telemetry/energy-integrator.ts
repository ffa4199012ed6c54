/**
 * One power sample: time (epoch ms), active power P (W), optional apparent S (VA) and reactive Q
 * (var). Q carries its sign (+ inductive, − capacitive) when `signed`, else it is a magnitude.
 */
export interface PowerSample {
  t: number
  p: number
  s?: number
  q?: number
  signed?: boolean
}

/**
 * Registers beside import/export/apparent/reactive (IEC 62053-23 four quadrants by the sign of P
 * and of Q as the meter states it, + inductive, − capacitive; apparent energy split by the sign of
 * P; reactive energy whose sign the meter did not give). Null when no sample had S.
 */
export const SPLIT_REGISTERS = [
  'apparent_import_vah',
  'apparent_export_vah',
  'reactive_import_inductive_varh',
  'reactive_import_capacitive_varh',
  'reactive_export_inductive_varh',
  'reactive_export_capacitive_varh',
  'reactive_unsigned_varh',
] as const
export type SplitRegister = (typeof SPLIT_REGISTERS)[number]

/**
 * How samples become energy: epoch-aligned intervals, and time alone decides continuity (a seq
 * hole between samples continuous in time changes nothing: PROTOCOL.md).
 */
export interface IntegrationOptions {
  intervalMs: number
  /** Samples at most this far apart are continuous: the earlier holds until the later. */
  maxGapMs: number
  /** The sampling cadence: the last sample of a run (before a gap, or the last of all) holds this long. */
  cadenceMs?: number
  /** Only energy inside [from, to) counts (a window's edge cutting an interval). */
  clip?: { from: number; to: number }
  /** Seq gaps: never integrate across [from, to]. Kept for callers that ask; the service does not. */
  breaks?: ReadonlyArray<{ from: number; to: number }>
}

/** Energy registers of one interval (EN 50463: traction and regenerated energy apart), all ≥ 0. */
export interface EnergyInterval extends Record<SplitRegister, number | null> {
  start: number
  import_wh: number
  export_wh: number
  apparent_vah: number | null
  /** |Q| integrated, signed or not. */
  reactive_varh: number | null
  covered_ms: number
}

/** The registers of a set of intervals added up. */
export type EnergyTotals = Omit<EnergyInterval, 'start'>

/** Bucket widths the energy queries roll 5-minute rows up to; epoch multiples, so days are UTC days. */
export const BUCKET_MS = { '5m': 300_000, '15m': 900_000, '1h': 3_600_000, '1d': 86_400_000 } as const

const MS_PER_HOUR = 3_600_000

/** An interval with nothing integrated in it. */
export const emptyInterval = (start: number): EnergyInterval => ({
  start,
  import_wh: 0,
  export_wh: 0,
  apparent_vah: null,
  reactive_varh: null,
  covered_ms: 0,
  ...emptySplit(),
})

const emptySplit = () =>
  Object.fromEntries(SPLIT_REGISTERS.map((k) => [k, null])) as Record<SplitRegister, number | null>

/** Adds v (W·ms or Wh) to a nullable register. */
const bump = (row: EnergyInterval, key: 'apparent_vah' | 'reactive_varh' | SplitRegister, v: number) => {
  row[key] = (row[key] ?? 0) + v
}

const finite = (v: number | undefined): v is number => typeof v === 'number' && Number.isFinite(v)

const positive = (name: string, v: number): void => {
  if (!Number.isFinite(v) || v <= 0) throw new RangeError(`${name} must be a positive number (got ${v})`)
}

/** Sorted by t, one sample per t: the last one given wins; samples with a non-finite t or p are dropped. */
function normalize(samples: readonly PowerSample[]): PowerSample[] {
  // Array.prototype.sort is stable: among equal t the later given stays later and replaces the earlier
  const sorted = samples.filter((x) => finite(x.t) && finite(x.p)).sort((a, b) => a.t - b.t)
  const out: PowerSample[] = []
  for (const sample of sorted) {
    if (out.length > 0 && (out[out.length - 1] as PowerSample).t === sample.t) out[out.length - 1] = sample
    else out.push(sample)
  }
  return out
}

/** Breaks as disjoint closed ranges ascending by start, so one forward pointer can test each segment. */
function mergeBreaks(breaks: IntegrationOptions['breaks']): { from: number; to: number }[] {
  const sorted = (breaks ?? [])
    .filter((b) => !Number.isNaN(b.from) && !Number.isNaN(b.to))
    .map((b) => ({ from: Math.min(b.from, b.to), to: Math.max(b.from, b.to) }))
    .sort((a, b) => a.from - b.from)
  const merged: { from: number; to: number }[] = []
  for (const b of sorted) {
    const last = merged[merged.length - 1]
    if (last && b.from <= last.to) last.to = Math.max(last.to, b.to)
    else merged.push({ ...b })
  }
  return merged
}

/**
 * Integrates power into energy per epoch-aligned interval. Each sample stands for its span:
 * until the next sample when that one is at most maxGapMs later, else for one cadence (so a run of
 * N samples at cadence Δ is Σ Pᵢ·Δ, the last sample included); a span crossing an interval
 * boundary is split pro rata. P > 0 goes to import_wh, P < 0 to export_wh as a positive number;
 * S and Q only from samples that carry them (null when none did). Returns the intervals with
 * coverage, ascending.
 */
export function integrateEnergy(
  samples: readonly PowerSample[],
  options: IntegrationOptions,
): EnergyInterval[] {
  const { intervalMs, maxGapMs } = options
  const cadenceMs = options.cadenceMs ?? 0
  positive('intervalMs', intervalMs)
  if (Number.isNaN(maxGapMs) || maxGapMs < 0) throw new RangeError(`maxGapMs must be ≥ 0 (got ${maxGapMs})`)
  if (!(cadenceMs >= 0)) throw new RangeError(`cadenceMs must be ≥ 0 (got ${cadenceMs})`)
  const sorted = normalize(samples)
  const breaks = mergeBreaks(options.breaks)
  const clipFrom = options.clip?.from ?? Number.NEGATIVE_INFINITY
  const clipTo = options.clip?.to ?? Number.POSITIVE_INFINITY
  // Energies are summed in W·ms per interval and turned into Wh once, at the end
  const rows = new Map<number, EnergyInterval>()
  let next = 0
  for (let i = 0; i < sorted.length; i++) {
    const { t: t0, p, s, q, signed } = sorted[i] as PowerSample
    const after = sorted[i + 1]?.t
    let end = after !== undefined && after - t0 <= maxGapMs ? after : t0 + cadenceMs
    if (after !== undefined && end > after) end = after
    while (next < breaks.length && (breaks[next] as { to: number }).to <= t0) next++
    const pending = breaks[next]
    if (pending && pending.from < end) end = Math.min(end, t0 + cadenceMs, Math.max(t0, pending.from))
    const t1 = Math.min(end, clipTo)
    for (let from = Math.max(t0, clipFrom); from < t1; ) {
      const start = Math.floor(from / intervalMs) * intervalMs
      const to = Math.min(t1, start + intervalMs)
      const dt = to - from
      const row = rows.get(start) ?? emptyInterval(start)
      rows.set(start, row)
      if (p > 0) row.import_wh += p * dt
      else if (p < 0) row.export_wh -= p * dt
      if (finite(s)) {
        bump(row, 'apparent_vah', s * dt)
        bump(row, p >= 0 ? 'apparent_import_vah' : 'apparent_export_vah', s * dt)
      }
      if (finite(q)) {
        const magnitude = Math.abs(q) * dt
        bump(row, 'reactive_varh', magnitude)
        if (!signed) bump(row, 'reactive_unsigned_varh', magnitude)
        else if (p >= 0)
          bump(row, q >= 0 ? 'reactive_import_inductive_varh' : 'reactive_import_capacitive_varh', magnitude)
        else
          bump(row, q >= 0 ? 'reactive_export_inductive_varh' : 'reactive_export_capacitive_varh', magnitude)
      }
      row.covered_ms += dt
      from = to
    }
  }
  // Segments are visited in time order, so the map already holds the rows ascending
  const wh = (v: number | null) => (v === null ? null : v / MS_PER_HOUR)
  return [...rows.values()].map((row) => ({
    start: row.start,
    import_wh: row.import_wh / MS_PER_HOUR,
    export_wh: row.export_wh / MS_PER_HOUR,
    apparent_vah: wh(row.apparent_vah),
    reactive_varh: wh(row.reactive_varh),
    covered_ms: row.covered_ms,
    ...(Object.fromEntries(SPLIT_REGISTERS.map((k) => [k, wh(row[k])])) as Record<
      SplitRegister,
      number | null
    >),
  }))
}

const addNullable = (a: number | null, b: number | null): number | null => (b === null ? a : (a ?? 0) + b)

/** Adds every register and the coverage of `row` into `target` (nullable ones stay null until one has a value). */
export function addInto(target: EnergyInterval | EnergyTotals, row: EnergyInterval | EnergyTotals): void {
  target.import_wh += row.import_wh
  target.export_wh += row.export_wh
  target.apparent_vah = addNullable(target.apparent_vah, row.apparent_vah)
  target.reactive_varh = addNullable(target.reactive_varh, row.reactive_varh)
  for (const k of SPLIT_REGISTERS) target[k] = addNullable(target[k], row[k])
  target.covered_ms += row.covered_ms
}

/**
 * Rolls interval rows up into epoch-aligned buckets of bucketMs (e.g. BUCKET_MS['1h']; '1d' buckets are
 * UTC days), adding registers and coverage. bucketMs should be a multiple of the rows' own interval.
 */
export function sumIntervals(rows: readonly EnergyInterval[], bucketMs: number): EnergyInterval[] {
  positive('bucketMs', bucketMs)
  const buckets = new Map<number, EnergyInterval>()
  for (const row of rows) {
    const start = Math.floor(row.start / bucketMs) * bucketMs
    const bucket = buckets.get(start) ?? emptyInterval(start)
    buckets.set(start, bucket)
    addInto(bucket, row)
  }
  return [...buckets.values()].sort((a, b) => a.start - b.start)
}

/** All registers and the coverage of the rows added up (apparent/reactive null when no row had them). */
export function totals(rows: readonly EnergyInterval[]): EnergyTotals {
  const { start: _, ...sum } = emptyInterval(0)
  for (const row of rows) addInto(sum, row)
  return sum
}
