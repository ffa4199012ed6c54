import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { signCommand as serverSign } from '../../../src/modules/commands/index.ts'
import {
  canonicalJson,
  signCommand,
  verifyCommand,
} from '../../../src/modules/simulator/command-signature.ts'
import { DutyCycle, type Phase } from '../../../src/modules/simulator/duty-cycle.ts'
import { planFleet } from '../../../src/modules/simulator/fleet-plan.ts'
import {
  activePower,
  MeterPhysics,
  type PhysicsSample,
} from '../../../src/modules/simulator/meter-physics.ts'
import { mixSeed, SeededRandom } from '../../../src/modules/simulator/seeded-random.ts'
import { SequenceCounter } from '../../../src/modules/simulator/sequence.ts'
import { SUPPLY_SYSTEMS, type VoltageSystem } from '../../../src/modules/simulator/supply-systems.ts'

const SYSTEMS = Object.keys(SUPPLY_SYSTEMS) as VoltageSystem[]

/** One simulated hour at 1 s sampling, as a meter of device index 1 under this seed would see it. */
function run(system: VoltageSystem, seed: number, seconds = 3600, dt = 1) {
  const physics = new MeterPhysics(system, new SeededRandom(mixSeed(seed, 1, 1)))
  const samples: PhysicsSample[] = []
  for (let i = 0; i < seconds / dt; i++) samples.push(physics.step(dt))
  let energy = 0
  let traction = 0
  let regen = 0
  for (const s of samples) {
    const p = activePower(s) * dt
    energy += p
    if (p > 0) traction += p
    else regen -= p
  }
  return { samples, meanPowerW: energy / seconds, regenShare: regen / traction }
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length

describe('seeded random', () => {
  test('the same seed gives the same sequence, another seed another one', () => {
    const a = new SeededRandom(42)
    const b = new SeededRandom(42)
    const c = new SeededRandom(43)
    const sa = Array.from({ length: 100 }, () => a.next())
    assert.deepEqual(
      sa,
      Array.from({ length: 100 }, () => b.next()),
    )
    assert.notDeepEqual(
      sa,
      Array.from({ length: 100 }, () => c.next()),
    )
    assert.notEqual(mixSeed(1, 1, 1), mixSeed(1, 2, 1))
    assert.notEqual(mixSeed(1, 1, 1), mixSeed(1, 1, 2))
  })

  test('uniform in [0, 1) with mean ½, gaussian with mean 0 and sd 1', () => {
    const r = new SeededRandom(7)
    const u = Array.from({ length: 20000 }, () => r.next())
    assert.ok(u.every((x) => x >= 0 && x < 1))
    assert.ok(Math.abs(mean(u) - 0.5) < 0.01, `mean ${mean(u)}`)
    const g = Array.from({ length: 20000 }, () => r.gaussian())
    const m = mean(g)
    const sd = Math.sqrt(mean(g.map((x) => (x - m) ** 2)))
    assert.ok(Math.abs(m) < 0.03, `mean ${m}`)
    assert.ok(Math.abs(sd - 1) < 0.03, `sd ${sd}`)
    assert.equal(new SeededRandom(1).chance(0), false)
  })
})

describe('sequence', () => {
  test('starts at 0, counts up, wraps after 2^32 − 1 and restarts at 0 on reset', () => {
    const seq = new SequenceCounter()
    assert.deepEqual([seq.next(), seq.next(), seq.next()], [0, 1, 2])
    seq.reset()
    assert.equal(seq.next(), 0)
    const high = new SequenceCounter(2 ** 32 - 2)
    assert.deepEqual([high.next(), high.next(), high.next()], [2 ** 32 - 2, 2 ** 32 - 1, 0])
  })
})

describe('duty cycle', () => {
  test('dwell → accelerate → (cruise) → coast → brake → dwell, with the demand of each phase', () => {
    const cycle = new DutyCycle(new SeededRandom(5))
    const phases: { phase: Phase; duration: number }[] = []
    const demand: Record<Phase, number[]> = { dwell: [], accelerate: [], cruise: [], coast: [], brake: [] }
    let current: { phase: Phase; duration: number } | undefined
    for (let t = 0; t < 7200; t++) {
      const d = cycle.step(1)
      assert.ok(d >= -1 && d <= 1)
      demand[cycle.phase].push(d)
      if (current?.phase !== cycle.phase) {
        current = { phase: cycle.phase, duration: 0 }
        phases.push(current)
      }
      current.duration++
    }
    const order = ['dwell', 'accelerate', 'cruise', 'coast', 'brake']
    for (let i = 1; i < phases.length; i++) {
      const prev = order.indexOf(phases[i - 1]?.phase as Phase)
      const next = order.indexOf(phases[i]?.phase as Phase)
      // cruise may be skipped on a short hop
      assert.ok(
        next === (prev + 1) % 5 || (prev === 1 && next === 3),
        `${phases[i - 1]?.phase} → ${phases[i]?.phase}`,
      )
    }
    const dwells = phases.slice(1, -1).filter((p) => p.phase === 'dwell')
    assert.ok(dwells.length > 20, 'about a minute and a half per station')
    assert.ok(
      dwells.every((p) => p.duration >= 20 && p.duration <= 41),
      JSON.stringify(dwells),
    )
    assert.ok(Math.max(...demand.accelerate) > 0.8, 'full traction while accelerating')
    assert.ok(Math.min(...demand.brake) < -0.45, 'regeneration while braking')
    assert.ok(
      demand.dwell.slice(5).every((d) => d >= 0),
      'no regeneration standing in a station',
    )
    assert.ok(demand.accelerate.every((d) => d >= 0) && demand.cruise.every((d) => d >= 0))
  })
})

describe('meter physics', () => {
  for (const system of SYSTEMS) {
    const spec = SUPPLY_SYSTEMS[system]
    test(`${spec.label}: values stay within PROTOCOL.md ranges; sag under traction, rise in regeneration`, () => {
      const { samples } = run(system, 1)
      for (const s of samples) {
        assert.ok(s.voltage >= spec.min_v && s.voltage <= spec.max_v, `${system} voltage ${s.voltage}`)
        if (spec.kind === 'dc') {
          assert.ok(s.voltage <= 4000 && Math.abs(s.current) <= 5000, `${system} ${s.current} A`)
        } else {
          assert.ok(s.voltage <= 30000 && s.current >= 0 && s.current <= 2000, `${system} ${s.current} A`)
          const pf = s.pf as number
          assert.ok(Math.abs(pf) >= 0.95 && Math.abs(pf) <= 0.99, `pf ${pf}`)
          const f = s.frequency as number
          assert.ok(Math.abs(f - (spec.frequency_hz as number)) <= 0.1 + 1e-9, `frequency ${f}`)
          assert.equal(Math.round(f * 100) / 100, f, '0.01 Hz resolution')
        }
      }
      const by = (phase: Phase) => samples.filter((s) => s.phase === phase)
      const signed = (s: PhysicsSample) => s.current * Math.sign(s.pf ?? 1)
      const accel = by('accelerate').filter((s) => signed(s) > 0.7 * spec.max_a)
      const braking = by('brake').filter((s) => signed(s) < -0.3 * spec.max_a)
      assert.ok(accel.length > 100 && braking.length > 100)
      assert.ok(mean(accel.map((s) => s.voltage)) < spec.no_load_v - 0.5 * spec.max_a * spec.line_ohm)
      assert.ok(
        mean(braking.map((s) => s.voltage)) > spec.nominal_v,
        'regeneration lifts the line above nominal',
      )
      const dwell = by('dwell').map((s) => Math.abs(s.current))
      assert.ok(mean(dwell) < 0.03 * spec.max_a, `dwell draws only the auxiliaries: ${mean(dwell)} A`)
      if (spec.kind === 'ac') {
        assert.ok(
          braking.every((s) => (s.pf as number) < 0),
          'negative PF while regenerating',
        )
        assert.ok(accel.every((s) => (s.pf as number) > 0))
      }
    })
  }

  test('temperature, battery and (AC) harmonic distortion stay plausible', () => {
    for (const system of ['DC750', 'AC25k'] as const) {
      const physics = new MeterPhysics(system, new SeededRandom(3))
      for (let i = 0; i < 600; i++) {
        physics.step(1)
        if (i % 60 !== 0) continue
        const aux = physics.auxiliary()
        assert.ok(aux.temperature >= -40 && aux.temperature <= 85)
        assert.ok(aux.battery >= 3.5 && aux.battery <= 3.75)
        if (system === 'AC25k') {
          assert.ok((aux.thd_v as number) > 0 && (aux.thd_v as number) < 10)
          assert.ok((aux.thd_i as number) > 0 && (aux.thd_i as number) < 30)
        } else assert.equal(aux.thd_v, undefined)
      }
    }
  })

  test('a fixed seed gives the same mean power and regeneration share; the numbers are plausible', (t) => {
    // Mean power per vehicle (MW) and share of the traction energy given back (EN 50463 terms).
    const plausible: Record<VoltageSystem, { mw: [number, number] }> = {
      DC750: { mw: [0.2, 0.6] },
      DC1500: { mw: [0.3, 0.8] },
      DC3000: { mw: [0.35, 1] },
      AC15k: { mw: [0.8, 2] },
      AC25k: { mw: [0.8, 2] },
    }
    for (const system of SYSTEMS) {
      const a = run(system, 1)
      const b = run(system, 1)
      const other = run(system, 2)
      assert.equal(a.meanPowerW, b.meanPowerW, `${system}: the same seed, the same run`)
      assert.equal(a.regenShare, b.regenShare)
      assert.notEqual(a.meanPowerW, other.meanPowerW, `${system}: another seed, another run`)
      const [lo, hi] = plausible[system].mw
      assert.ok(a.meanPowerW / 1e6 > lo && a.meanPowerW / 1e6 < hi, `${system} mean ${a.meanPowerW / 1e6} MW`)
      assert.ok(a.regenShare > 0.2 && a.regenShare < 0.5, `${system} regen share ${a.regenShare}`)
      t.diagnostic(
        `${system}: mean power ${(a.meanPowerW / 1e6).toFixed(3)} MW, regen share ${(a.regenShare * 100).toFixed(1)} %`,
      )
    }
  })
})

describe('fleet plan', () => {
  test('ids carry prefix, kind and position; AC meters are spread by the share; systems rotate', () => {
    const fleet = planFleet({
      SIMULATOR_DEVICES: 10,
      SIMULATOR_AC_SHARE: 0.3,
      SIMULATOR_ID_PREFIX: 'p',
      SIMULATOR_SEND_INTERVAL_S: 10,
      SIMULATOR_HELLO_INTERVAL_S: 30,
      SIMULATOR_SAMPLING_MS: 1000,
      SIMULATOR_ENCODING: 'json',
      SIMULATOR_SEED: 1,
      SIMULATOR_DUPLICATE_RATE: 0,
      SIMULATOR_DROP_RATE: 0,
      SIMULATOR_REORDER_RATE: 0,
      SIMULATOR_REBOOT_EVERY_S: 0,
    })
    assert.deepEqual(
      fleet.map((m) => m.device_id),
      [
        'p-dc-0001',
        'p-dc-0002',
        'p-dc-0003',
        'p-ac-0004',
        'p-dc-0005',
        'p-dc-0006',
        'p-ac-0007',
        'p-dc-0008',
        'p-dc-0009',
        'p-ac-0010',
      ],
    )
    assert.deepEqual(
      fleet.filter((m) => m.kind === 'dc').map((m) => m.system),
      ['DC750', 'DC1500', 'DC3000', 'DC750', 'DC1500', 'DC3000', 'DC750'],
    )
    assert.deepEqual(
      fleet.filter((m) => m.kind === 'ac').map((m) => m.system),
      ['AC25k', 'AC15k', 'AC25k'],
    )
  })
})

describe('command signature (device side)', () => {
  const key = 'a1'.repeat(32)
  const envelope = {
    v: 2,
    device_id: 'meter-1',
    cmd_id: '6f1c1c1e-0000-4000-8000-000000000001',
    ts: '2026-01-01T00:00:00.000Z',
    exp: '2026-01-01T00:05:00.000Z',
    cmd: 'update_config',
    params: { send_interval_s: 5, brokers: [{ port: 1883, host: 'b' }] },
  }

  test('canonical JSON sorts keys at every depth, keeps array order, has no whitespace', () => {
    assert.equal(
      canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: 'x' } }),
      '{"a":{"c":"x","d":[3,{"y":2,"z":1}]},"b":1}',
    )
  })

  test('agrees byte for byte with the server (commands module), and rejects any tampering', () => {
    const sig = signCommand(envelope, key)
    assert.equal(sig, serverSign(envelope as Parameters<typeof serverSign>[0], key))
    assert.equal(verifyCommand({ ...envelope, sig }, key), true)
    assert.equal(verifyCommand({ ...envelope, params: { send_interval_s: 6 }, sig }, key), false)
    assert.equal(verifyCommand({ ...envelope, sig }, 'b2'.repeat(32)), false)
    assert.equal(verifyCommand({ ...envelope }, key), false)
    assert.equal(verifyCommand({ ...envelope, sig: 'zz' }, key), false)
  })
})
