import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import fc from 'fast-check'
import { sql } from 'kysely'
import type { MqttClient } from 'mqtt'
import { type ParseLimits, parseMessage, Rejected } from '../../src/modules/ingest/index.ts'
import { DEVICE_KINDS, encodeBinaryTelemetry, MESSAGE_KINDS } from '../../src/protocol/index.ts'
import { brokerUrl, build, type TestApp } from '../helpers/build.ts'
import {
  connectDevice,
  dcTelemetry,
  publishJson,
  registerDevice,
  twoSampleBinary,
  waitFor,
} from '../helpers/device.ts'
import { uniqueName } from '../helpers/env.ts'

/**
 * Property-based fuzzing (fast-check) of everything that takes input from outside: the ingest
 * parser, every HTTP route in /openapi.json, and the MQTT telemetry path. Random and adversarial
 * inputs: malformed JSON, wrong types, huge strings, deep nesting, unicode, 1e999, prototype
 * pollution keys, SQL/Flux metacharacters. Bounded: the whole file runs in a minute or two.
 * A failure prints fast-check's shrunk counterexample and its seed (re-run with FUZZ_SEED=<seed>).
 */
/**
 * Fixed seeds, so CI runs the same cases every time; a seed that finds a bug is added here when
 * it is fixed (the `start=-999999d` 500 of /metrics and /energy, issue 14, was found by a random
 * seed that was not recorded; its input is now a constant of queryValue below; 1_826_551_656 drew a
 * telemetry payload over the broker's packet limit, see BROKER_PACKET_LIMIT). Plus one random
 * seed per run, printed, so new ground is covered; FUZZ_SEED=<seed> replays exactly one.
 */
const FIXED_SEEDS = [1, 20_261_127, 1_796_400_000, 424_242, 1_826_551_656]
const RANDOM_SEED = Math.floor(Math.random() * 2 ** 31)
const SEEDS = process.env.FUZZ_SEED ? [Number(process.env.FUZZ_SEED)] : [...FIXED_SEEDS, RANDOM_SEED]
process.stdout.write(`# fuzz: seeds ${SEEDS.join(', ')} (the last one random unless FUZZ_SEED is set)\n`)

/** Runs a property once per seed, the runs shared out among them (the total stays about `n`). */
function eachSeed(n: number, check: (parameters: fc.Parameters<unknown>) => void | Promise<void>) {
  return (async () => {
    for (const seed of SEEDS) await check(runs(Math.max(10, Math.ceil(n / SEEDS.length)), seed))
  })()
}

/** fast-check parameters; a failure is reported with the input cut short (some inputs are megabytes). */
const runs = (n: number, seed: number): fc.Parameters<unknown> => ({
  numRuns: n,
  seed,
  reporter: (out) => {
    if (!out.failed) return
    const input = JSON.stringify(out.counterexample, (_k, v) =>
      typeof v === 'string' && v.length > 300 ? `${v.slice(0, 300)}…(${v.length} chars)` : v,
    )
    const error = out.errorInstance instanceof Error ? out.errorInstance.message : String(out.errorInstance)
    throw new Error(
      `property failed after ${out.numRuns} runs (seed ${out.seed}, path "${out.counterexamplePath}"):\n` +
        `${error.slice(0, 1500)}\ncounterexample: ${input?.slice(0, 3000)}`,
    )
  },
})
let cases = 0

/** The protocol's cap on measurements per datagram (PROTOCOL.md; src/protocol/message-schemas.ts). */
const MAX_MEASUREMENTS = 200
const LIMITS: ParseLimits = { maxBytes: 64 * 1024, maxFutureMs: 86400_000, maxPastMs: 365 * 86400_000 }
/** The embedded broker's largest packet after login at the default INGEST_MAX_BYTES (docs/PROTOCOL.md), less its header. */
const BROKER_PACKET_LIMIT = 1024 * 1024

// ---------------------------------------------------------------------------------------------
// Adversarial building blocks

const META = [
  "'; DROP TABLE devices; --",
  "' OR '1'='1",
  '" or 1=1 --',
  '1; select pg_sleep(5)',
  '$$; drop schema public cascade; $$',
  '") |> drop(columns: ["_value"]) //',
  'r._measurement == "x" or true',
  'from(bucket: "telemetry") |> range(start: 0)',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a log4shell-style probe, literally
  '${jndi:ldap://x}',
  '{{7*7}}',
  '../../../../etc/passwd',
  '..%2f..%2fetc%2fpasswd',
  '\u0000',
  'a\u0000b',
  '\r\nX-Injected: 1',
  '__proto__',
  'constructor',
  'prototype',
  'hasOwnProperty',
  'toString',
  '\uD800',
  '\uDFFF\uD800',
  '\u202Eevil',
  '𝔥𝔢𝔩𝔩𝔬',
  '🔥💧⚡',
  'Z͑ͫ̓ͪ̂ͫ̽͏̴̙̤̞͉͚̯̞̠͍',
  '%',
  '%zz',
  '%c0%af',
  '*',
  '?',
  '#',
  '',
  ' ',
  'null',
  'NaN',
  '-Infinity',
  '1e999',
  'now()',
  '2026-02-31T25:61:61Z',
]
const meta = fc.constantFrom(...META)
const hugeString = fc.integer({ min: 1, max: 5 }).map((k) => 'ä𝔵'.repeat(k * 20_000))
/** Strings a caller might send: arbitrary unicode (lone surrogates included), metacharacters, bulk. */
const nastyString = fc.oneof(
  { weight: 4, arbitrary: meta },
  { weight: 3, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ maxLength: 80 }) },
  {
    weight: 2,
    arbitrary: fc.tuple(meta, fc.string({ unit: 'grapheme', maxLength: 10 })).map(([a, b]) => a + b),
  },
  { weight: 1, arbitrary: fc.string({ minLength: 65, maxLength: 300 }) },
  { weight: 1, arbitrary: hugeString },
)
const nastyNumber = fc.oneof(
  fc.double(),
  fc.integer(),
  fc.constantFrom(-0, 2 ** 53 + 1, -(2 ** 63), 1e308, 4294967296, -1, 0.5),
)
/** JSON values that round-trip through JSON.stringify (no undefined/BigInt). */
const nastyJson: fc.Arbitrary<unknown> = fc.letrec<{ v: unknown }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    nastyString,
    nastyNumber.map((n) => (Number.isFinite(n) ? n : null)),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('v'), { maxLength: 4 }),
    fc.dictionary(fc.oneof(meta, fc.string({ maxLength: 8 })), tie('v'), { maxKeys: 4 }),
  ),
})).v

/** Raw payload texts that are not (valid) JSON or abuse the parser: numbers beyond double, depth, pollution. */
const rawText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.constantFrom(
    '',
    '{',
    '}',
    '{"v":2,',
    'NaN',
    'Infinity',
    '1e999',
    '-1e999',
    '[1e999]',
    '{"val": NaN}',
    "{'v':2}",
    '{"a":1,}',
    'null',
    'true',
    '"string"',
    '[]',
    '\uFEFF{}',
    '{"__proto__":{"polluted":"yes"}}',
    '{"constructor":{"prototype":{"polluted":"yes"}}}',
    '{"__proto__":[],"polluted":"no"}',
  ),
  fc.integer({ min: 1000, max: 20_000 }).map((n) => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`),
  fc.integer({ min: 1000, max: 50_000 }).map((n) => `${'['.repeat(n)}${']'.repeat(n)}`),
  fc.integer({ min: 1000, max: 50_000 }).map((n) => '['.repeat(n)),
)

/** A JSON object text with pollution keys spliced in front of a real body's fields. */
function withPollution(body: Record<string, unknown>, which: number): string {
  const inner = JSON.stringify(body).slice(1)
  const keys = [
    '"__proto__":{"polluted":"yes","device_id":"x"}',
    '"constructor":{"prototype":{"polluted":"yes"}}',
    '"__proto__":{"__proto__":{"polluted":"yes"}}',
  ]
  return `{${keys[which % keys.length]},${inner}`
}

/**
 * Percent-encodes like encodeURIComponent, but lone surrogates (which it refuses) become their
 * WTF-8 bytes: invalid UTF-8 on the wire, which is exactly what a hostile client may send.
 */
function enc(s: string): string {
  let out = ''
  for (const ch of s) {
    try {
      out += encodeURIComponent(ch)
    } catch {
      const c = ch.charCodeAt(0)
      out += [0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f)]
        .map((b) => `%${b.toString(16).toUpperCase()}`)
        .join('')
    }
  }
  return out
}

/** Object.prototype as it must stay. */
const protoKeys = () => Reflect.ownKeys(Object.prototype).map(String).sort().join(',')
const PROTO_KEYS = protoKeys()
function assertNotPolluted(where: string) {
  assert.equal(protoKeys(), PROTO_KEYS, `Object.prototype changed (${where})`)
  assert.equal(({} as Record<string, unknown>).polluted, undefined, `Object.prototype polluted (${where})`)
}

// ---------------------------------------------------------------------------------------------
// (a) The ingest parser

const NOW = Date.now()
const T0 = NOW - 3600_000
const ID = 'meter_01'

type Mutation = { name: string; apply: (m: Record<string, unknown>) => string | Record<string, unknown> }

/** Changes to a valid v2 telemetry that make it invalid, each for a reason the protocol states. */
const invalidTelemetry: fc.Arbitrary<[string, string]> = fc
  .tuple(
    fc.integer({ min: 1, max: 20 }),
    fc.oneof(
      nastyJson.filter((x) => x !== 2).map<Mutation>((x) => ({ name: 'v', apply: (m) => ({ ...m, v: x }) })),
      nastyJson
        .filter((x) => x !== ID)
        .map<Mutation>((x) => ({ name: 'device_id', apply: (m) => ({ ...m, device_id: x }) })),
      nastyJson
        .filter((x) => typeof x !== 'string' || !/^\d{4}-\d\d-\d\dT/.test(x))
        .map<Mutation>((x) => ({ name: 'ts', apply: (m) => ({ ...m, ts: x }) })),
      fc
        .constantFrom('1970-01-01T00:00:00Z', '2999-01-01T00:00:00Z', '2026-13-01T00:00:00Z')
        .map<Mutation>((x) => ({ name: 'ts window', apply: (m) => ({ ...m, ts: x }) })),
      nastyJson
        .filter((x) => !(Number.isInteger(x) && (x as number) >= 0 && (x as number) <= 4294967295))
        .map<Mutation>((x) => ({ name: 'seq', apply: (m) => ({ ...m, seq: x }) })),
      nastyJson
        .filter((x) => x !== 'telemetry')
        .map<Mutation>((x) => ({ name: 'msg_type', apply: (m) => ({ ...m, msg_type: x }) })),
      nastyJson
        .filter((x) => !Array.isArray(x))
        .map<Mutation>((x) => ({ name: 'measurements', apply: (m) => ({ ...m, measurements: x }) })),
      fc.constantFrom('v', 'device_id', 'ts', 'msg_type', 'measurements').map<Mutation>((k) => ({
        name: `missing ${k}`,
        apply: (m) => {
          const { [k]: _, ...rest } = m
          return rest
        },
      })),
      fc.constant<Mutation>({ name: 'no measurements', apply: (m) => ({ ...m, measurements: [] }) }),
      fc.constant<Mutation>({
        name: 'too many measurements',
        apply: (m) => ({ ...m, measurements: dcTelemetry(ID, 1, T0, 101).measurements }),
      }),
      fc
        .tuple(fc.constantFrom('1e999', '-1e999', 'NaN', 'Infinity', '"750"', 'null', '[]', '{}'))
        .map<Mutation>(([lit]) => ({
          name: `val ${lit}`,
          apply: (m) => JSON.stringify(m).replace('"val":750', `"val":${lit}`),
        })),
      fc
        .tuple(
          fc.constantFrom('ts', 'type', 'unit'),
          nastyJson.filter((x) => typeof x !== 'string'),
        )
        .map<Mutation>(([k, x]) => ({
          name: `measurement ${k}`,
          apply: (m) => {
            const list = [...(m.measurements as Record<string, unknown>[])]
            list[0] = { ...list[0], [k]: x }
            return { ...m, measurements: list }
          },
        })),
      fc
        .constantFrom('Voltage', '1v', 'a-b', 'x'.repeat(33), "v'; drop", '__proto__', 'ä')
        .map<Mutation>((x) => ({
          name: 'measurement type',
          apply: (m) => {
            const list = [...(m.measurements as Record<string, unknown>[])]
            list[0] = { ...list[0], type: x }
            return { ...m, measurements: list }
          },
        })),
      fc.constant<Mutation>({
        name: 'unit too long',
        apply: (m) => {
          const list = [...(m.measurements as Record<string, unknown>[])]
          list[0] = { ...list[0], unit: 'V'.repeat(17) }
          return { ...m, measurements: list }
        },
      }),
      fc.constant<Mutation>({ name: 'too large', apply: (m) => ({ ...m, pad: 'x'.repeat(70_000) }) }),
    ),
  )
  .map(([samples, mutation]) => {
    const out = mutation.apply(dcTelemetry(ID, 7, T0, samples) as unknown as Record<string, unknown>)
    return [mutation.name, typeof out === 'string' ? out : JSON.stringify(out)]
  })

const topic = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .constantFrom(...DEVICE_KINDS.map((kind) => MESSAGE_KINDS[kind].suffix))
      .map((c) => `iot/${ID}/${c}`),
  },
  {
    weight: 1,
    arbitrary: fc
      .tuple(nastyString, fc.constantFrom('telemetry', 'hello', '#', '+'))
      .map(([id, c]) => `iot/${id}/${c}`),
  },
  { weight: 1, arbitrary: nastyString },
)

/** Anything at all on the wire: raw text, arbitrary JSON, real messages with pollution or mutations. */
const anyPayload = fc.oneof(
  rawText,
  nastyJson.map((x) => JSON.stringify(x)),
  invalidTelemetry.map(([, text]) => text),
  fc
    .tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 1, max: 5 }))
    .map(([w, n]) => withPollution(dcTelemetry(ID, 3, T0, n) as unknown as Record<string, unknown>, w)),
  fc.constant(JSON.stringify(dcTelemetry(ID, 1, T0, 3))),
)

/** What any accepted message must satisfy, checked independently of the parser's own code. */
function assertSound(
  topicName: string,
  text: string,
  parsed: Exclude<ReturnType<typeof parseMessage>, Rejected>,
) {
  const topicId = topicName.split('/')[1]
  assert.equal(parsed.deviceId, topicId)
  assert.equal(JSON.parse(text).device_id, topicId, 'payload device_id = topic device id')
  assert.ok(Buffer.byteLength(text) <= LIMITS.maxBytes)
  assert.ok(Number.isFinite(parsed.ts))
  assert.ok(parsed.ts <= NOW + LIMITS.maxFutureMs && parsed.ts >= NOW - LIMITS.maxPastMs, 'ts in window')
  if (parsed.seq !== null)
    assert.ok(Number.isInteger(parsed.seq) && parsed.seq >= 0 && parsed.seq <= 4294967295)
  if (parsed.category === 'telemetry') {
    const { times, values, other } = parsed.samples
    for (const t of times)
      assert.ok(t <= NOW + LIMITS.maxFutureMs && t >= NOW - LIMITS.maxPastMs, 'measurement ts in window')
    let count = 0
    for (const [type, column] of [...Object.entries(values), ...Object.entries(other ?? {})]) {
      assert.match(type, /^[a-z][a-z0-9_]{0,31}$/)
      assert.equal(column?.length, times.length, `${type}: one slot per sample`)
      for (const v of column ?? []) {
        if (v === null) continue
        count++
        assert.ok(Number.isFinite(v), `${type} finite`)
      }
    }
    // Fewer when a type repeats within a sample (the last value wins).
    assert.ok(count >= 1 && count <= MAX_MEASUREMENTS, `${count} measurements`)
  }
}

describe('fuzz: ingest parser (parseMessage)', () => {
  after(() => assertNotPolluted('parser'))

  test('never throws on anything; whatever it accepts is sound; Object.prototype stays clean', async () => {
    let accepted = 0
    await eachSeed(3000, (parameters) =>
      fc.assert(
        fc.property(topic, anyPayload, (t, text) => {
          cases++
          const result = parseMessage(t, Buffer.from(text, 'utf8'), NOW, LIMITS)
          assertNotPolluted(`${t} ${text.slice(0, 80)}`)
          if (result instanceof Rejected) {
            assert.equal(typeof result.reason, 'string')
            return
          }
          accepted++
          assertSound(t, text, result)
        }),
        parameters,
      ),
    )
    assert.ok(accepted > 0, 'the generator reached the accepting paths too')
  })

  test('every protocol violation of a valid telemetry is rejected', async () => {
    await eachSeed(1500, (parameters) =>
      fc.assert(
        fc.property(invalidTelemetry, ([name, text]) => {
          cases++
          const result = parseMessage(`iot/${ID}/telemetry`, Buffer.from(text, 'utf8'), NOW, LIMITS)
          assert.ok(
            result instanceof Rejected,
            `accepted a message with an invalid ${name}: ${text.slice(0, 200)}`,
          )
        }),
        parameters,
      ),
    )
  })

  test('arbitrary bytes (invalid UTF-8 included) never throw', async () => {
    await eachSeed(1000, (parameters) =>
      fc.assert(
        fc.property(topic, fc.uint8Array({ maxLength: 512 }), (t, bytes) => {
          cases++
          const result = parseMessage(t, Buffer.from(bytes), NOW, LIMITS)
          assert.ok(result instanceof Rejected || typeof result.category === 'string')
        }),
        parameters,
      ),
    )
  })
})

// ---------------------------------------------------------------------------------------------
// (b) Every HTTP route, (c) the MQTT telemetry path: one app

interface Operation {
  method: string
  path: string
  pathParams: string[]
  queryParams: string[]
  bodyKeys: string[] | null
}

/** Obtains the collector without --expose-gc on the command line (same V8 flag, set at run time). */
function exposeGc(): () => void {
  const existing = (globalThis as { gc?: () => void }).gc
  if (existing) return existing
  setFlagsFromString('--expose-gc')
  return runInNewContext('gc') as () => void
}
const gc = exposeGc()
const heapMb = () => {
  gc()
  gc()
  return process.memoryUsage().heapUsed / 2 ** 20
}

const TABLES = [
  'devices',
  'device_configs',
  'device_alerts',
  'device_commands',
  'device_secrets',
  'device_keys',
  'api_tokens',
  'telemetry',
]

describe('fuzz: HTTP routes and MQTT ingest of the real app', () => {
  let t: TestApp
  let ops: Operation[]
  const known = uniqueName('fuzzdev')
  let baselineHeap = 0

  before(async () => {
    t = await build({ INGEST_FLUSH_MS: '50' })
    await registerDevice(t, known)
    const spec = (await t.inject({ url: '/openapi.json' })).json() as {
      paths: Record<
        string,
        Record<
          string,
          {
            parameters?: { in: string; name: string }[]
            requestBody?: { content: Record<string, { schema?: { properties?: Record<string, unknown> } }> }
          }
        >
      >
    }
    ops = []
    for (const [path, methods] of Object.entries(spec.paths)) {
      for (const [method, op] of Object.entries(methods)) {
        const params = op.parameters ?? []
        const schema = op.requestBody?.content['application/json']?.schema
        ops.push({
          method: method.toUpperCase(),
          path,
          pathParams: params.filter((p) => p.in === 'path').map((p) => p.name),
          queryParams: params.filter((p) => p.in === 'query').map((p) => p.name),
          bodyKeys: op.requestBody ? Object.keys(schema?.properties ?? {}) : null,
        })
      }
    }
    assert.ok(ops.length >= 20, `routes from /openapi.json: ${ops.length}`)
    // Warm up every route once, so lazily built state does not count as growth.
    for (const op of ops)
      await t.inject({ method: op.method as 'GET', url: op.path.replace(/\{[^}]+\}/g, 'x') })
    baselineHeap = heapMb()
  })
  after(async () => {
    await t?.close()
    process.stdout.write(`# fuzz: ${cases} cases\n`)
  })

  const counts = async () => {
    const select = TABLES.map((name) => `(select count(*) from ${name})::int as ${name}`).join(', ')
    return (await sql<Record<string, number>>`select ${sql.raw(select)}`.execute(t.app.db)).rows[0]
  }

  const segment = fc.oneof(
    { weight: 3, arbitrary: nastyString.map((s) => enc(s.slice(0, 2000))) },
    {
      weight: 1,
      arbitrary: fc.constantFrom('%', '%zz', '%c0%af', '%00', '..', '%2e%2e', '%2F', '%E0%A4%A', ';', ':'),
    },
  )
  const queryValue = fc.oneof(
    nastyString.map((s) => enc(s.slice(0, 3000))),
    fc.constantFrom(
      '%',
      '%zz',
      '-1',
      '0',
      '1e999',
      '99999999999999999999',
      'true',
      '2026-02-30T00:00:00Z',
      'now()',
      '-1h',
      '-999999d',
    ),
    fc.integer().map(String),
    fc.date({ noInvalidDate: true }).map((d) => enc(d.toISOString())),
  )

  const request = (op: Operation) =>
    fc.record({
      params: fc.tuple(
        ...op.pathParams.map((name) =>
          name === '*'
            ? fc.array(segment, { minLength: 1, maxLength: 4 }).map((s) => s.join('/'))
            : op.method === 'DELETE'
              ? segment
              : fc.oneof(fc.constant(known), segment),
        ),
      ),
      query: fc.array(
        fc.tuple(
          fc.oneof(
            { weight: 4, arbitrary: fc.constantFrom(...op.queryParams, '__proto__', 'constructor') },
            meta,
          ),
          queryValue,
        ),
        { maxLength: 5 },
      ),
      body: fc.oneof(
        fc
          .dictionary(
            fc.oneof(fc.constantFrom(...(op.bodyKeys ?? []), '__proto__', 'constructor'), meta),
            nastyJson,
            { maxKeys: 6 },
          )
          .map((o) => JSON.stringify(o)),
        fc
          .tuple(
            fc.constantFrom(...(op.bodyKeys?.length ? op.bodyKeys : ['x'])),
            fc.constantFrom(
              '1e999',
              '-1e999',
              '"\\ud800"',
              `"${'x'.repeat(200_000)}"`,
              '[[[[[[[[[[]]]]]]]]]]',
            ),
          )
          .map(([k, v]) => `{"${k}":${v}}`),
        nastyJson.map((x) => JSON.stringify(x)),
        rawText,
        fc.constant(`{"device_id":"${'x'.repeat(1_100_000)}"}`),
      ),
      contentType: fc.constantFrom(
        'application/json',
        'application/json',
        'application/json',
        'application/json; charset=utf-16',
        'text/plain',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=x',
        '',
      ),
    })

  test('every route answers < 500, 4xx as {"error": ...}, and a rejected request stores nothing', async () => {
    const statuses = new Map<number, number>()
    const perOp = Math.max(25 * SEEDS.length, Math.floor(3000 / ops.length))
    for (const op of ops) {
      const writes = op.method !== 'GET'
      await eachSeed(perOp, (parameters) =>
        fc.assert(
          fc.asyncProperty(request(op), async (r) => {
            cases++
            let i = 0
            const path = op.path.replace(/\{[^}]+\}/g, () => String(r.params[i++]))
            const qs = r.query.map(([k, v]) => `${enc(k)}=${v}`).join('&')
            const url = qs ? `${path}?${qs}` : path
            const hasBody = op.method !== 'GET' && op.method !== 'DELETE'
            const before = writes ? await counts() : undefined
            const res = await t.inject({
              method: op.method as 'GET',
              url,
              ...(hasBody
                ? { payload: r.body, headers: r.contentType ? { 'content-type': r.contentType } : {} }
                : {}),
            })
            statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1)
            const input = `${op.method} ${url.slice(0, 300)} body=${hasBody ? r.body.slice(0, 300) : '-'}`
            assert.ok(res.statusCode < 500, `${res.statusCode} ${res.body.slice(0, 200)} for ${input}`)
            if (res.statusCode >= 400) {
              let body: unknown
              assert.doesNotThrow(() => {
                body = res.json()
              }, `non-JSON ${res.statusCode} body for ${input}`)
              assert.ok(
                typeof body === 'object' && body !== null && 'error' in body,
                `no "error" in ${res.body.slice(0, 200)} for ${input}`,
              )
              if (before) assert.deepEqual(await counts(), before, `rejected ${input} changed stored rows`)
            }
            if (
              op.method === 'DELETE' &&
              (await t.inject({ url: `/api/devices/${known}` })).statusCode === 404
            )
              await registerDevice(t, known)
            assertNotPolluted(input)
          }),
          parameters,
        ),
      )
    }
    process.stdout.write(
      `# fuzz: HTTP statuses ${JSON.stringify(Object.fromEntries([...statuses].sort()))}\n`,
    )
    const health = await t.inject({ url: '/healthz' })
    assert.equal(health.statusCode, 200)
  })

  test('garbage on a device telemetry topic is rejected and counted; nothing of it is stored; still healthy', async () => {
    const id = uniqueName('fuzzmqtt')
    await registerDevice(t, id)
    const device: MqttClient = await connectDevice(brokerUrl(t), uniqueName('fuzzprobe'))
    try {
      const rows = async (warmup = false) =>
        Number(
          (
            await sql<{
              n: number
            }>`select count(*)::int as n from telemetry tl join devices d on d.id = tl.device_pk
              where d.device_id = ${id} and (${warmup} or tl.seq < 1000)`.execute(t.app.db)
          ).rows[0]?.n,
        )
      if (t.config.MQTT_URL) {
        // The server's subscription on an external broker is asynchronous: wait until a valid one lands
        // (seq ≥ 1000: late copies of these are not counted below).
        let seq = 1000
        await waitFor(
          async () => {
            await publishJson(device, `iot/${id}/telemetry`, dcTelemetry(id, seq++, T0 + seq * 60_000, 1), 1)
            return (await rows(true)) > 0
          },
          15000,
          'server subscription',
        )
      }
      const storedBefore = await rows()
      // Payloads for this device's topic that the parser rejects (the parser's verdict is proven above).
      // Binary datagrams (PROTOCOL.md) cut short and followed by random bytes: whatever the reader
      // refuses must be refused as cleanly as bad JSON.
      const binary = encodeBinaryTelemetry(twoSampleBinary(id, T0 - 2000))
      const binaryGarbage = fc
        .tuple(fc.nat({ max: binary.length }), fc.uint8Array({ maxLength: 120 }))
        .map(([cut, bytes]) => Buffer.concat([binary.subarray(0, Math.max(1, cut)), bytes]))
      const garbage = fc.oneof(
        invalidTelemetry.map(([, text]) => text.replaceAll(ID, id)),
        rawText,
        nastyJson.map((x) => JSON.stringify(x)),
        binaryGarbage,
      )
      const payloads = SEEDS.flatMap((seed) =>
        fc.sample(garbage, { numRuns: Math.ceil(300 / SEEDS.length), seed }),
      ).filter(
        (text) =>
          // Beyond the broker's packet limit the connection is closed instead (broker-memory.test.ts),
          // and MQTT.js resends an unacknowledged QoS 1 publish on every reconnect: random seed
          // 1826551656 drew a 1.2 MB one and the test waited on its PUBACK until CI's time ran out.
          Buffer.byteLength(text) <= BROKER_PACKET_LIMIT &&
          parseMessage(`iot/${id}/telemetry`, Buffer.from(text), Date.now(), LIMITS) instanceof Rejected,
      )
      const rejectedBefore = await rejectedTotal(t)
      for (const text of payloads) {
        cases++
        await device.publishAsync(`iot/${id}/telemetry`, text, { qos: 1 })
      }
      await waitFor(
        async () => (await rejectedTotal(t)) - rejectedBefore >= payloads.length,
        20000,
        `${payloads.length} rejections counted`,
      )
      const counted = (await rejectedTotal(t)) - rejectedBefore
      // On a shared external broker other suites' rejected messages reach this server too.
      if (t.config.MQTT_URL) assert.ok(counted >= payloads.length, `${counted} < ${payloads.length}`)
      else assert.equal(counted, payloads.length)
      assert.equal(await rows(), storedBefore, 'nothing of the rejected payloads stored')
      // Still healthy: a valid datagram after the garbage is stored.
      await publishJson(device, `iot/${id}/telemetry`, dcTelemetry(id, 1, T0, 2), 1)
      await waitFor(async () => (await rows()) > storedBefore, 10000, 'the valid datagram stored')
      const voltage = await t.inject({
        url: `/api/devices/${id}/metrics?metric=voltage_dc&start=${new Date(T0 - 60_000).toISOString()}&stop=${new Date(T0 + 60_000).toISOString()}`,
      })
      assert.equal(voltage.json().length, 2, 'exactly the valid datagram stored in its window')
      assert.equal((await t.inject({ url: '/readyz' })).statusCode, 200)
      process.stdout.write(`# fuzz: MQTT ${payloads.length} rejected payloads, all counted, none stored\n`)
    } finally {
      await device.endAsync()
    }
  })

  test('the heap returns near its baseline after the fuzzing', () => {
    const after = heapMb()
    const growth = after - baselineHeap
    process.stdout.write(
      `# fuzz: heapUsed baseline ${baselineHeap.toFixed(1)} MB, after ${after.toFixed(1)} MB (+${growth.toFixed(1)} MB)\n`,
    )
    assert.ok(growth < Math.max(48, baselineHeap * 0.5), `heap grew ${growth.toFixed(1)} MB`)
  })
})

/** ingest_rejected_total summed over its reasons. */
async function rejectedTotal(t: TestApp): Promise<number> {
  const text = (await t.inject({ url: '/metrics' })).body
  let sum = 0
  for (const line of text.split('\n'))
    if (line.startsWith('ingest_rejected_total{')) sum += Number(line.split(' ').pop())
  return sum
}
