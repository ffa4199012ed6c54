import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { parseObject } from '../../../src/modules/ingest/parse-message.ts'
import { readTelemetryFast } from '../../../src/modules/ingest/telemetry-fast-path.ts'
import { SamplesBuilder, toSamples } from '../../../src/modules/telemetry/index.ts'

const NOW = Date.parse('2026-06-01T12:00:00Z')
const LIMITS = { maxBytes: 64 * 1024, maxFutureMs: 300_000, maxPastMs: 30 * 86_400_000 }
const ID = 'meter-1'
const iso = (t: number) => new Date(t).toISOString()

// Each field is mostly valid, sometimes one of the ways it can be wrong or odd.
const time = fc.oneof(
  { weight: 40, arbitrary: fc.integer({ min: -5, max: 5 }).map((k) => iso(NOW - 60_000 + k * 1000)) },
  fc.constantFrom(
    iso(NOW + 600_000), // future
    iso(NOW - 40 * 86_400_000), // past
    '2026-06-01T12:00:00+02:00',
    '2026-06-01T12:00:00.123456Z',
    '2026-02-31T12:00:00Z',
    '2026-06-01 12:00:00Z',
    '😀'.repeat(10),
    '',
  ),
  fc.constant(12),
)
const type = fc.oneof(
  { weight: 40, arbitrary: fc.constantFrom('voltage_dc', 'current_dc', 'temperature', 'pf', 'my_extra_1') },
  fc.constantFrom('Voltage', '1abc', 'a'.repeat(33), ''),
  fc.constant(null),
)
const unit = fc.oneof(
  { weight: 30, arbitrary: fc.constantFrom(undefined, 'V', 'A', 'kV', 'mA', 'Cel', '', '1') },
  fc.constantFrom('W', 'kCel', 'x'.repeat(17), '😀'.repeat(9), 'V\u0000', 'MV'),
  fc.constant(3),
)
const val = fc.oneof(
  { weight: 40, arbitrary: fc.double({ min: -2000, max: 2000, noNaN: true }) },
  fc.constantFrom('__inf__', 1e6), // '__inf__' becomes 1e400 in the JSON text: Infinity once parsed
  fc.constant('1'),
)
const measurement = fc.oneof(
  { weight: 100, arbitrary: fc.record({ ts: time, type, val, unit }) },
  fc.constantFrom(null, [], 'x', { ts: iso(NOW), type: 'voltage_dc' }),
)
const payload = fc.record({
  v: fc.oneof({ weight: 20, arbitrary: fc.constant(2) }, fc.constantFrom(1, '2', 3)),
  device_id: fc.oneof({ weight: 20, arbitrary: fc.constant(ID) }, fc.constantFrom('other', '')),
  ts: time,
  seq: fc.oneof(
    { weight: 40, arbitrary: fc.nat() },
    fc.constantFrom(-1, 1.5, 4294967295, 4294967296, '1', -0),
  ),
  msg_type: fc.oneof({ weight: 20, arbitrary: fc.constant('telemetry') }, fc.constant('hello')),
  measurements: fc.oneof(
    { weight: 20, arbitrary: fc.array(measurement, { minLength: 1, maxLength: 12 }) },
    fc.constantFrom([], null, {}),
    fc.array(fc.constant({ ts: iso(NOW), type: 'voltage_dc', val: 1 }), { minLength: 201, maxLength: 201 }),
  ),
  extra: fc.option(fc.string(), { nil: undefined }),
})

test('readTelemetryFast: whatever it answers, the general path answers the same', () => {
  let answered = 0
  let general = 0
  fc.assert(
    fc.property(payload, (p) => {
      // Through JSON, as the payload arrives (undefined fields drop out, 1e400 becomes Infinity).
      const obj = JSON.parse(JSON.stringify(p).replaceAll('"__inf__"', '1e400')) as Record<string, unknown>
      const fast = readTelemetryFast(obj, ID, NOW, LIMITS)
      if (fast === undefined) return
      answered++
      const slow = parseObject(ID, 'telemetry', obj, NOW, LIMITS)
      if (!('reason' in slow)) general++
      assert.deepEqual(fast, slow)
    }),
    { numRuns: 5000, seed: 17 },
  )
  assert.ok(answered > 100, `the fast path answered ${answered} times`)
  assert.equal(general, answered)
})

test('readTelemetryFast: the common datagram is read, non-finite values are left to the general path', () => {
  const obj = {
    v: 2,
    device_id: ID,
    ts: iso(NOW),
    seq: 5,
    msg_type: 'telemetry',
    measurements: [
      { ts: iso(NOW - 1000), type: 'voltage_dc', val: 0.75, unit: 'kV' },
      { ts: iso(NOW - 1000), type: 'current_dc', val: 300, unit: 'A' },
      { ts: iso(NOW), type: 'voltage_dc', val: 751 },
    ],
  }
  const fast = readTelemetryFast(obj, ID, NOW, LIMITS)
  assert.deepEqual(fast?.samples.times, [NOW - 1000, NOW])
  assert.deepEqual(fast?.samples.values, { voltage_dc: [750, 751], current_dc: [300, null] })
  const infinite = JSON.parse(JSON.stringify(obj).replace('751', '1e400'))
  assert.equal(readTelemetryFast(infinite, ID, NOW, LIMITS), undefined)
  assert.equal((parseObject(ID, 'telemetry', infinite, NOW, LIMITS) as { reason: string }).reason, 'schema')
})

test('SamplesBuilder: the same samples as toSamples for times that never go back', () => {
  const entry = fc.record({
    dt: fc.constantFrom(0, 0, 1000, 2500),
    type: fc.constantFrom('voltage_dc', 'current_dc', 'frequency', 'extra_a'),
    val: fc.double({ min: -5000, max: 5000, noNaN: true }),
  })
  fc.assert(
    fc.property(fc.array(entry, { minLength: 1, maxLength: 30 }), (entries) => {
      let t = NOW
      const measurements = entries.map((e) => {
        t += e.dt
        return { t, type: e.type, val: e.val }
      })
      const builder = new SamplesBuilder()
      for (const m of measurements) assert.ok(builder.add(m.t, m.type, m.val))
      assert.deepEqual(builder.finish(), toSamples(measurements))
    }),
    { numRuns: 2000, seed: 17 },
  )
  const builder = new SamplesBuilder()
  assert.ok(builder.add(NOW, 'voltage_dc', 1))
  assert.equal(builder.add(NOW - 1, 'voltage_dc', 1), false, 'a time that goes back')
})
