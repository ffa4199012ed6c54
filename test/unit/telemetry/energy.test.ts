import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import {
  BUCKET_MS,
  type EnergyInterval,
  emptyInterval,
  integrateEnergy,
  sumIntervals,
  totals,
} from '../../../src/modules/telemetry/energy-integrator.ts'
import { derivePower } from '../../../src/modules/telemetry/power.ts'
import type { PowerSample } from '../../../src/modules/telemetry/store.ts'
import { seeded, shuffled } from '../../helpers/random.ts'

const T0 = Date.UTC(2024, 0, 15, 8, 0, 0)
const SEC = 1000
const MIN = 60 * SEC
const OPTS = { intervalMs: BUCKET_MS['5m'], maxGapMs: 5 * SEC }
const TOL = 1e-9

const rel = (actual: number, expected: number) => Math.abs(actual - expected) / Math.abs(expected)

function assertClose(actual: number | null, expected: number, tol = TOL): void {
  assert.ok(actual !== null, `expected ${expected}, got null`)
  assert.ok(rel(actual, expected) <= tol, `${actual} differs from ${expected} by ${rel(actual, expected)}`)
}

/** count samples every stepMs from `from`, all with the same values. */
function steady(from: number, count: number, stepMs: number, values: Omit<PowerSample, 't'>): PowerSample[] {
  return Array.from({ length: count }, (_, i) => ({ ...values, t: from + i * stepMs }))
}

/** The power sample derivePower gives for one instant. */
function sampleOf(t: number, values: Parameters<typeof derivePower>[0]): PowerSample {
  const d = derivePower(values)
  assert.ok(d.power_active !== undefined)
  return { t, p: d.power_active, s: d.power_apparent, q: d.power_reactive }
}

/** An irregular profile: steps of 0.2–3 s, now and then a 20 s hole, traction and braking, S/Q on half. */
function randomProfile(rand: () => number, count: number): PowerSample[] {
  let t = T0 + Math.floor(rand() * 600_000)
  return Array.from({ length: count }, () => {
    t += rand() < 0.03 ? 20 * SEC : 200 + Math.floor(rand() * 2800)
    const p = (rand() * 5 - 2) * 1e6
    if (rand() < 0.5) return { t, p }
    const s = Math.abs(p) * (1 + rand())
    return { t, p, s, q: Math.sqrt(s * s - p * p) }
  })
}

describe('derivePower', () => {
  test('DC: P = V × I, negative while braking with regeneration', () => {
    assert.deepEqual(derivePower({ voltage_dc: 750, current_dc: 300 }), { power_active: 225_000 })
    assert.deepEqual(derivePower({ voltage_dc: 750, current_dc: -200 }), { power_active: -150_000 })
    assert.deepEqual(derivePower({ voltage_dc: 1500, current_dc: 0 }), { power_active: 0 })
  })

  test('DC: nothing without both values or with a non-finite one', () => {
    assert.deepEqual(derivePower({ voltage_dc: 750 }), {})
    assert.deepEqual(derivePower({ current_dc: 300 }), {})
    assert.deepEqual(derivePower({ voltage_dc: Number.NaN, current_dc: 300 }), {})
    assert.deepEqual(derivePower({ voltage_dc: 750, current_dc: Number.POSITIVE_INFINITY }), {})
    assert.deepEqual(derivePower({}), {})
  })

  test('AC: S = V × I, P = S × PF, Q = √(S² − P²)', () => {
    const d = derivePower({ voltage_ac: 25_000, current_ac: 100, pf: 0.95 })
    assert.equal(d.power_apparent, 2_500_000)
    assertClose(d.power_active ?? null, 2_375_000)
    assertClose(d.power_reactive ?? null, Math.sqrt(2_500_000 ** 2 - 2_375_000 ** 2))
  })

  test('AC regeneration: negative PF gives negative P and the same Q', () => {
    const d = derivePower({ voltage_ac: 15_000, current_ac: 200, pf: -0.9 })
    const forward = derivePower({ voltage_ac: 15_000, current_ac: 200, pf: 0.9 })
    assert.equal(d.power_active, -2_700_000)
    assert.equal(d.power_apparent, 3_000_000)
    assert.equal(d.power_reactive, forward.power_reactive)
  })

  test('AC: PF missing, non-finite or outside −1…1 gives S only', () => {
    const sOnly = { power_apparent: 2_500_000 }
    assert.deepEqual(derivePower({ voltage_ac: 25_000, current_ac: 100 }), sOnly)
    assert.deepEqual(derivePower({ voltage_ac: 25_000, current_ac: 100, pf: Number.NaN }), sOnly)
    assert.deepEqual(derivePower({ voltage_ac: 25_000, current_ac: 100, pf: 1.2 }), sOnly)
    assert.deepEqual(derivePower({ voltage_ac: 25_000, current_ac: 100, pf: -1.01 }), sOnly)
  })

  test('AC: |PF| = 1 gives Q = 0 exactly (never NaN); missing V or I gives nothing', () => {
    for (const pf of [1, -1]) {
      const d = derivePower({ voltage_ac: 16_700.3, current_ac: 123.457, pf })
      assert.equal(d.power_reactive, 0)
      assert.equal(Math.abs(d.power_active ?? 0), d.power_apparent)
    }
    assert.deepEqual(derivePower({ voltage_ac: 25_000, pf: 0.95 }), {})
    assert.deepEqual(derivePower({ voltage_ac: Number.NaN, current_ac: 100, pf: 0.95 }), {})
  })

  test('a sample with a complete DC pair is DC: AC values beside it are ignored', () => {
    const d = derivePower({ voltage_dc: 750, current_dc: 300, voltage_ac: 25_000, current_ac: 100, pf: 1 })
    assert.deepEqual(d, { power_active: 225_000 })
  })
})

describe('integrateEnergy', () => {
  const dcHour = steady(T0, 3601, SEC, sampleOf(T0, { voltage_dc: 750, current_dc: 300 }))

  test('750 V × 300 A for 1 h (3601 samples at 1 Hz) = 225 kWh import, 0 export, in 12 rows', () => {
    const rows = integrateEnergy(dcHour, OPTS)
    const sum = totals(rows)
    assertClose(sum.import_wh, 225_000)
    assert.equal(sum.export_wh, 0)
    assert.equal(sum.covered_ms, 3_600_000)
    assert.equal(sum.apparent_vah, null)
    assert.equal(sum.reactive_varh, null)
    assert.equal(rows.length, 12)
    assert.deepEqual(
      rows.map((r) => r.start),
      Array.from({ length: 12 }, (_, i) => T0 + i * 5 * MIN),
    )
    for (const r of rows) {
      assertClose(r.import_wh, 18_750)
      assert.equal(r.covered_ms, 5 * MIN)
    }
  })

  test('braking at −200 A fills the export register and leaves import untouched', () => {
    const traction = steady(T0, 1800, SEC, sampleOf(T0, { voltage_dc: 750, current_dc: 300 }))
    const braking = steady(T0 + 30 * MIN, 1801, SEC, sampleOf(T0, { voltage_dc: 750, current_dc: -200 }))
    const coasting = steady(T0 + 30 * MIN, 1801, SEC, { p: 0 })
    const withBraking = totals(integrateEnergy([...traction, ...braking], OPTS))
    const withCoasting = totals(integrateEnergy([...traction, ...coasting], OPTS))
    assertClose(withBraking.import_wh, 112_500)
    assertClose(withBraking.export_wh, 75_000)
    assert.equal(withBraking.import_wh, withCoasting.import_wh)
    assert.equal(withCoasting.export_wh, 0)
    assert.equal(withBraking.covered_ms, 3_600_000)
  })

  test('AC 25 kV × 100 A × PF 0.95 for 30 min: 1187.5 kWh, 1250 kVAh, 390.3 kvarh', () => {
    const ac = { voltage_ac: 25_000, current_ac: 100, pf: 0.95 }
    const samples = Array.from({ length: 1801 }, (_, i) => sampleOf(T0 + i * SEC, ac))
    const sum = totals(integrateEnergy(samples, OPTS))
    assertClose(sum.import_wh, 1_187_500)
    assertClose(sum.apparent_vah, 1_250_000)
    assertClose(sum.reactive_varh, Math.sqrt(1_250_000 ** 2 - 1_187_500 ** 2))
    assert.equal(Math.round((sum.reactive_varh ?? 0) / 100) / 10, 390.3)
    assert.equal(sum.export_wh, 0)
    assert.equal(sum.covered_ms, 30 * MIN)
  })

  test('a 10-minute data gap contributes nothing and lowers coverage where it falls', () => {
    const gapFrom = T0 + 22.5 * MIN
    const gapTo = T0 + 32.5 * MIN
    const rows = integrateEnergy(
      dcHour.filter((x) => x.t <= gapFrom || x.t >= gapTo),
      OPTS,
    )
    const sum = totals(rows)
    assert.equal(sum.covered_ms, 50 * MIN)
    assertClose(sum.import_wh, 225_000 * (50 / 60))
    const coverage = new Map(rows.map((r) => [(r.start - T0) / MIN, r.covered_ms]))
    assert.equal(coverage.get(20), 2.5 * MIN)
    assert.equal(coverage.has(25), false)
    assert.equal(coverage.get(30), 2.5 * MIN)
    assert.equal(rows.length, 11)
  })

  test('a seq-gap break stops integration across it even when the time gap is small', () => {
    // a lost datagram of 10 samples: 11 s between the samples around it, under a 15 s maxGap
    const lost = dcHour.filter((x) => x.t < T0 + 1000 * SEC || x.t >= T0 + 1010 * SEC)
    const options = { ...OPTS, maxGapMs: 15 * SEC }
    assert.equal(totals(integrateEnergy(lost, options)).covered_ms, 3_600_000)
    const breaks = [{ from: T0 + 999 * SEC, to: T0 + 1010 * SEC }]
    const broken = totals(integrateEnergy(lost, { ...options, breaks }))
    assert.equal(broken.covered_ms, 3_600_000 - 11 * SEC)
    assertClose(broken.import_wh, (225_000 * 3589) / 3600)
  })

  test('breaks: a point inside a segment blocks it, reversed or overlapping ones merge, far ones do nothing', () => {
    const covered = (breaks: { from: number; to: number }[]) =>
      totals(integrateEnergy(dcHour, { ...OPTS, breaks })).covered_ms
    assert.equal(covered([{ from: T0 + 100.5 * SEC, to: T0 + 100.5 * SEC }]), 3_599_000)
    assert.equal(covered([{ from: T0 + 100 * SEC, to: T0 + 100 * SEC }]), 3_600_000)
    assert.equal(covered([{ from: T0 + 205 * SEC, to: T0 + 200 * SEC }]), 3_595_000)
    const overlapping = [
      { from: T0 + 300 * SEC, to: T0 + 310 * SEC },
      { from: T0 + 100 * SEC, to: T0 + 1000 * SEC },
      { from: T0 + 2000 * SEC, to: T0 + 2001 * SEC },
    ]
    assert.equal(covered(overlapping), 3_600_000 - 901 * SEC)
    assert.equal(
      covered([
        { from: T0 - 10 * MIN, to: T0 },
        { from: T0 + 2 * 3_600_000, to: T0 + 3 * 3_600_000 },
      ]),
      3_600_000,
    )
  })

  test('without a cadence the last sample adds nothing: no sample or one sample gives no rows', () => {
    assert.deepEqual(integrateEnergy([], OPTS), [])
    assert.deepEqual(integrateEnergy([{ t: T0, p: 1e6 }], OPTS), [])
    const two = integrateEnergy(
      [
        { t: T0, p: 3600 },
        { t: T0 + SEC, p: 9e9 },
      ],
      OPTS,
    )
    assert.deepEqual(two, [{ ...emptyInterval(T0), import_wh: 1, covered_ms: SEC }])
  })

  test('each sample stands for one cadence: N samples at Δ integrate to Σ Pᵢ·Δ, the last included, split pro rata', () => {
    const cadence = { ...OPTS, cadenceMs: SEC }
    // One sample: one cadence of energy. 3600 W for 1 s = 1 Wh.
    assert.deepEqual(integrateEnergy([{ t: T0, p: 3600 }], cadence), [
      { ...emptyInterval(T0), import_wh: 1, covered_ms: SEC },
    ])
    // 3600 samples at 1 Hz of 750 V × 300 A: exactly 225 kWh, in 12 full rows.
    const hour = steady(T0, 3600, SEC, { p: 225_000 })
    const rows = integrateEnergy(hour, cadence)
    assertClose(totals(rows).import_wh, 225_000)
    assert.equal(totals(rows).covered_ms, 3_600_000)
    // A sample 0.5 s before a boundary, then a gap: its cadence splits 0.5 s / 0.5 s.
    const edge = integrateEnergy([{ t: T0 + 5 * MIN - 500, p: 7200 }], cadence)
    assert.deepEqual(
      edge.map((r) => [r.start, r.import_wh, r.covered_ms]),
      [
        [T0, 1, 500],
        [T0 + 5 * MIN, 1, 500],
      ],
    )
    // A time gap (> maxGap) stops a run: the last sample before it holds one cadence, not the gap.
    const gap = integrateEnergy(
      [
        { t: T0, p: 3600 },
        { t: T0 + 20 * SEC, p: 3600 },
      ],
      cadence,
    )
    assert.equal(totals(gap).covered_ms, 2 * SEC)
    // A clip keeps only [from, to).
    const clipped = integrateEnergy(hour, { ...cadence, clip: { from: T0 + 90 * SEC, to: T0 + 150 * SEC } })
    assertClose(totals(clipped).import_wh, (225_000 * 60) / 3600)
  })

  test('four quadrants by the sign of P and of a measured Q; apparent split; unsigned Q apart', () => {
    const cadence = { ...OPTS, cadenceMs: SEC }
    const rows = integrateEnergy(
      [
        { t: T0, p: 3600, s: 7200, q: 3600, signed: true }, // I: import, inductive
        { t: T0 + SEC, p: 3600, s: 7200, q: -3600, signed: true }, // IV: import, capacitive
        { t: T0 + 2 * SEC, p: -3600, s: 7200, q: 3600, signed: true }, // II: export, inductive
        { t: T0 + 3 * SEC, p: -3600, s: 7200, q: -3600, signed: true }, // III: export, capacitive
        { t: T0 + 4 * SEC, p: 3600, s: 7200, q: 3600 }, // sign not stated
      ],
      cadence,
    )
    const sum = totals(rows)
    assert.equal(sum.reactive_import_inductive_varh, 1)
    assert.equal(sum.reactive_import_capacitive_varh, 1)
    assert.equal(sum.reactive_export_inductive_varh, 1)
    assert.equal(sum.reactive_export_capacitive_varh, 1)
    assert.equal(sum.reactive_unsigned_varh, 1)
    assert.equal(sum.reactive_varh, 5)
    assert.equal(sum.apparent_import_vah, 6)
    assert.equal(sum.apparent_export_vah, 4)
  })

  test('a duplicated t keeps the last sample given; non-finite t or p are dropped', () => {
    const rows = integrateEnergy(
      [
        { t: T0, p: 3600 },
        { t: T0 + SEC, p: 0 },
        { t: T0, p: 7200 },
        { t: Number.NaN, p: 1 },
        { t: T0 + 500, p: Number.POSITIVE_INFINITY },
      ],
      OPTS,
    )
    assert.equal(totals(rows).import_wh, 2)
  })

  test('the same samples duplicated and shuffled give identical rows (25 seeded profiles)', () => {
    for (let seed = 1; seed <= 25; seed++) {
      const rand = seeded(seed)
      const samples = randomProfile(rand, 200 + Math.floor(rand() * 400))
      const breaks = [{ from: (samples[50] as PowerSample).t, to: (samples[53] as PowerSample).t }]
      const expected = integrateEnergy(samples, { ...OPTS, breaks })
      const copies = samples.flatMap((x) =>
        Array.from({ length: 1 + Math.floor(rand() * 3) }, () => ({ ...x })),
      )
      const actual = integrateEnergy(shuffled(copies, rand), { ...OPTS, breaks: shuffled(breaks, rand) })
      assert.deepEqual(actual, expected, `seed ${seed}`)
      assert.ok(expected.some((r) => r.export_wh > 0) && expected.some((r) => r.apparent_vah !== null))
    }
  })

  test('a segment crossing 5-minute boundaries is split in proportion', () => {
    const rows = integrateEnergy(
      [
        { t: T0 + 4 * MIN, p: 6000, s: 12_000, q: 600 },
        { t: T0 + 11 * MIN, p: 0 },
      ],
      { intervalMs: BUCKET_MS['5m'], maxGapMs: 10 * MIN },
    )
    assert.deepEqual(
      rows.map((r) => [
        (r.start - T0) / MIN,
        r.import_wh,
        r.apparent_vah,
        r.reactive_varh,
        r.covered_ms / MIN,
      ]),
      [
        [0, 100, 200, 10, 1],
        [5, 500, 1000, 50, 5],
        [10, 100, 200, 10, 1],
      ],
    )
  })

  test('the split rows sum to the whole, for irregular profiles (10 seeds)', () => {
    for (let seed = 100; seed < 110; seed++) {
      const samples = randomProfile(seeded(seed), 800)
      const options = { intervalMs: BUCKET_MS['5m'], maxGapMs: 30 * SEC }
      const split = totals(integrateEnergy(samples, options))
      const [whole] = integrateEnergy(samples, { ...options, intervalMs: 1e13 })
      assert.ok(whole)
      assertClose(split.import_wh, whole.import_wh, 1e-12)
      assertClose(split.export_wh, whole.export_wh, 1e-12)
      assertClose(split.apparent_vah, whole.apparent_vah ?? Number.NaN, 1e-12)
      assertClose(split.reactive_varh, whole.reactive_varh ?? Number.NaN, 1e-12)
      assert.equal(split.covered_ms, whole.covered_ms)
    }
  })

  test('bad options are refused', () => {
    assert.throws(() => integrateEnergy([], { intervalMs: 0, maxGapMs: 1000 }), RangeError)
    assert.throws(() => integrateEnergy([], { intervalMs: Number.NaN, maxGapMs: 1000 }), RangeError)
    assert.throws(() => integrateEnergy([], { intervalMs: 1000, maxGapMs: -1 }), RangeError)
  })
})

describe('sumIntervals and totals', () => {
  // 2024-03-30 21:00 → 2024-04-01 03:00 UTC at 10 s: three UTC days, one of them a European DST day
  const from = Date.UTC(2024, 2, 30, 21)
  const to = Date.UTC(2024, 3, 1, 3)
  const samples = steady(from, (to - from) / (10 * SEC) + 1, 10 * SEC, { p: 0 }).map((x, i) => ({
    ...x,
    p: 2e6 * Math.sin(i / 50),
    ...(i % 720 < 360 ? { s: 2.5e6 } : {}),
  }))
  const fiveMin = integrateEnergy(samples, { intervalMs: BUCKET_MS['5m'], maxGapMs: 15 * SEC })
  const whole = totals(fiveMin)

  const assertSameTotals = (rows: EnergyInterval[]) => {
    const sum = totals(rows)
    assertClose(sum.import_wh, whole.import_wh, 1e-12)
    assertClose(sum.export_wh, whole.export_wh, 1e-12)
    assertClose(sum.apparent_vah, whole.apparent_vah ?? Number.NaN, 1e-12)
    assert.equal(sum.reactive_varh, null)
    assert.equal(sum.covered_ms, whole.covered_ms)
  }

  test('15 min and 1 h buckets are epoch-aligned and keep every register', () => {
    assert.equal(fiveMin.length, 30 * 12)
    for (const [bucket, count] of [
      [BUCKET_MS['15m'], 30 * 4],
      [BUCKET_MS['1h'], 30],
    ] as const) {
      const rows = sumIntervals(fiveMin, bucket)
      assert.equal(rows.length, count)
      assert.ok(rows.every((r, i) => r.start === from + i * bucket && r.covered_ms === bucket))
      assertSameTotals(rows)
    }
  })

  test('1 d buckets are UTC days and match integrating per day directly', () => {
    const days = sumIntervals(fiveMin, BUCKET_MS['1d'])
    assert.deepEqual(
      days.map((r) => [new Date(r.start).toISOString(), r.covered_ms / 3_600_000]),
      [
        ['2024-03-30T00:00:00.000Z', 3],
        ['2024-03-31T00:00:00.000Z', 24],
        ['2024-04-01T00:00:00.000Z', 3],
      ],
    )
    assertSameTotals(days)
    const direct = integrateEnergy(samples, { intervalMs: BUCKET_MS['1d'], maxGapMs: 15 * SEC })
    days.forEach((day, i) => {
      assertClose(day.import_wh, direct[i]?.import_wh ?? Number.NaN, 1e-12)
      assertClose(day.export_wh, direct[i]?.export_wh ?? Number.NaN, 1e-12)
    })
  })

  test('rollups sort their input, and keep null only where no row had the register', () => {
    const row = (start: number, apparent: number | null): EnergyInterval => ({
      ...emptyInterval(start),
      start,
      import_wh: 1,
      export_wh: 2,
      apparent_vah: apparent,
      reactive_varh: null,
      covered_ms: 1000,
    })
    const rows = sumIntervals(
      [row(T0 + 20 * MIN, null), row(T0 + 5 * MIN, 4), row(T0, null)],
      BUCKET_MS['15m'],
    )
    assert.deepEqual(rows, [
      { ...emptyInterval(T0), import_wh: 2, export_wh: 4, apparent_vah: 4, covered_ms: 2000 },
      { ...emptyInterval(T0 + 15 * MIN), import_wh: 1, export_wh: 2, covered_ms: 1000 },
    ])
    assert.throws(() => sumIntervals(rows, 0), RangeError)
  })

  test('totals of no rows are zero registers with null apparent and reactive', () => {
    const { start: _, ...zero } = emptyInterval(0)
    assert.deepEqual(totals([]), zero)
    assert.equal(zero.import_wh, 0)
    assert.equal(zero.apparent_vah, null)
  })
})
