import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { Readable } from 'node:stream'
import { after, before, describe, test } from 'node:test'
import { HeadBucketCommand, type S3Client } from '@aws-sdk/client-s3'
import type { Kysely } from 'kysely'
import { loadConfig } from '../../../src/config.ts'
import { ArchiveBuffer } from '../../../src/modules/archive/archive-buffer.ts'
import type { ArchiveStore } from '../../../src/modules/archive/archive-store.ts'
import { FsArchiveStore } from '../../../src/modules/archive/fs-archive.ts'
import { createArchiveModule, RawArchive } from '../../../src/modules/archive/index.ts'
import { createS3Client, S3ArchiveStore } from '../../../src/modules/archive/s3-archive.ts'
import type { DevicesService } from '../../../src/modules/devices/index.ts'
import { connectDatabase, type Database, migrateToLatest } from '../../../src/platform/db/index.ts'
import { createSchema, realDatabaseUrl, tempDir, uniqueName } from '../../helpers/env.ts'

// The SDK warns once per process that Node 20 nears its end of support; tests and CI silence it.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'

const pad = (n: number, width = 2) => String(n).padStart(width, '0')
/** `{device_id}/{category}/{YYYY}/{MM}/{DD}/{HHmmssSSS}-{run}-{n}.ndjson`, as the ingest writes them. */
function key(device: string, category: string, at: number, n = 0, run = 'r1'): string {
  const d = new Date(at)
  const day = `${d.getUTCFullYear()}/${pad(d.getUTCMonth() + 1)}/${pad(d.getUTCDate())}`
  const time = `${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}${pad(d.getUTCMilliseconds(), 3)}`
  return `${device}/${category}/${day}/${time}-${run}-${n.toString(36)}.ndjson`
}

async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of body) chunks.push(Buffer.from(chunk))
  return Buffer.concat(chunks)
}

/** Puts with a bounded number in flight. */
async function putAll(store: ArchiveStore, keys: string[], concurrency = 16): Promise<void> {
  let next = 0
  const worker = async () => {
    while (next < keys.length) {
      const k = keys[next++] as string
      await store.put(k, Buffer.from(`{"key":"${k}"}\n`))
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
}

const timeDesc = (a: string, b: string) => {
  const ta = a.split('/').slice(2).join('/')
  const tb = b.split('/').slice(2).join('/')
  return ta < tb ? 1 : ta > tb ? -1 : 0
}

/** One database (the index of grouped objects) for the whole file; each case uses devices of its own. */
let indexDb: Promise<{ db: Kysely<Database>; close: () => Promise<void> }> | undefined
function sharedDb(): Promise<Kysely<Database>> {
  indexDb ??= (async () => {
    const dir = tempDir()
    const schema = realDatabaseUrl ? await createSchema(realDatabaseUrl) : undefined
    const { db } = await connectDatabase({
      databaseUrl: schema?.url,
      dataDir: dir.path,
      poolMax: 2,
      inMemory: true,
    })
    await migrateToLatest(db)
    return {
      db,
      close: async () => {
        await db.destroy()
        await schema?.drop()
        dir.remove()
      },
    }
  })()
  return indexDb.then((d) => d.db)
}
after(async () => (await indexDb)?.close())

/** Grouped objects of a period of `periodS`, written through the ingest's buffer (run `run`). */
async function grouped(store: ArchiveStore, run: string) {
  const archive = new RawArchive(store, await sharedDb(), 60_000)
  const buffer = new ArchiveBuffer(archive, run)
  return { archive, buffer }
}

const lineOf = (device: string, category: string, i: number) =>
  Buffer.from(`{"device":"${device}","category":"${category}","i":${i},"v":"Ω ✓"}`)

interface Adapter {
  name: string
  /** A new store on an empty container (directory or bucket) that does not exist yet. */
  create(): Promise<ArchiveStore>
  /** Whether the store's container exists now. */
  containerExists(store: ArchiveStore): Promise<boolean>
}

const DAY = 86_400_000
/** 08:00 UTC five days ago: the cases' keys lie in the past, as the ingest's (receive-time) keys do. */
const T = Math.floor(Date.now() / DAY) * DAY - 5 * DAY + 8 * 3_600_000

/** The ArchiveStore contract: the same cases for every adapter. */
function archiveContract(adapter: Adapter) {
  describe(`ArchiveStore contract: ${adapter.name}`, () => {
    test('the container is created on first use', async () => {
      const store = await adapter.create()
      assert.equal(await adapter.containerExists(store), false)
      await store.ping()
      assert.equal(await adapter.containerExists(store), true)
      assert.deepEqual(await store.list('nobody/', 10), [])
      await store.close()
    })

    test('put and get round-trip the bytes as a stream', async () => {
      const store = await adapter.create()
      const k = key('dev-a', 'telemetry', T)
      const body = Buffer.from(`${'{"v":"Ω µ ✓"}\n'.repeat(20_000)}`)
      await store.put(k, body)
      const object = await store.get(k)
      assert.ok(object)
      assert.ok(object.body instanceof Readable)
      assert.equal(object.size, body.length)
      assert.ok((await readAll(object.body)).equals(body))
      await store.put(k, Buffer.from('replaced\n'))
      const replaced = await store.get(k)
      assert.equal((await readAll(replaced?.body as Readable)).toString(), 'replaced\n')
      // A body in parts (past the 1,024 a single writev takes) is stored as their concatenation.
      const parts = Array.from({ length: 3000 }, (_, i) => Buffer.from(i % 2 ? `${i}\n` : '{"n":'))
      await store.put(k, parts)
      const joined = await store.get(k)
      assert.ok((await readAll(joined?.body as Readable)).equals(Buffer.concat(parts)))
      await store.close()
    })

    test('get of a missing key is undefined; keys that climb out are refused', async () => {
      const store = await adapter.create()
      assert.equal(await store.get(key('dev-a', 'telemetry', T)), undefined)
      await store.put(key('dev-a', 'telemetry', T), Buffer.from('x\n'))
      assert.equal(await store.get(key('dev-a', 'telemetry', T + 1)), undefined)
      await assert.rejects(store.put('../escape.ndjson', Buffer.from('x')), /invalid archive key/)
      await store.close()
    })

    test('retention deletes whole days up to the cutoff, in every device and category, and keeps the rest', async () => {
      const store = await adapter.create()
      // Days T-3 … T (08:00 UTC), three devices, two categories; 1,100 objects on the oldest day
      // of one device (more than a page of a listing).
      const old = Array.from({ length: 1100 }, (_, i) => key('dev-r', 'telemetry', T - 3 * DAY + i * 10))
      const kept: string[] = []
      const expired: string[] = [...old]
      for (const device of ['dev-r', 'dev-s', 'dev-t'])
        for (const category of ['telemetry', 'status'])
          for (let d = 0; d <= 3; d++) {
            const k = key(device, category, T - d * DAY + 5, d)
            ;(d >= 2 ? expired : kept).push(k)
          }
      await putAll(store, [...expired, ...kept])
      // Cutoff at 12:00 of day T-1: days T-3 and T-2 end before it and go; T-1 is partly younger: kept.
      const deleted = await store.deleteBefore(new Date(T - DAY + 4 * 3_600_000))
      assert.equal(deleted, expired.length)
      for (const k of expired.slice(-12)) assert.equal(await store.get(k), undefined, k)
      assert.equal(await store.get(old[0] as string), undefined)
      for (const k of kept) assert.ok(await store.get(k), k)
      const left = await store.list('dev-r/', 1000)
      assert.deepEqual(left.map((o) => o.key).sort(), kept.filter((k) => k.startsWith('dev-r/')).sort())
      assert.equal(
        await store.deleteBefore(new Date(T - DAY + 4 * 3_600_000)),
        0,
        'a second run finds nothing',
      )
      await store.close()
    })

    test('a device listing is newest first across categories, with size and time', async () => {
      const store = await adapter.create()
      const keys = [
        key('dev-a', 'telemetry', T),
        key('dev-a', 'hello', T + 1000),
        key('dev-a', 'telemetry', T + 2000),
        key('dev-a', 'status', T + 3000),
        key('dev-a', 'command_ack', T + DAY),
        key('dev-a', 'telemetry', T + DAY + 1),
        key('dev-ab', 'telemetry', T + 5 * DAY), // shares the prefix "dev-a" but not "dev-a/"
      ]
      await putAll(store, keys)
      const listed = await store.list('dev-a/', 100)
      const expected = keys.filter((k) => k.startsWith('dev-a/')).sort(timeDesc)
      assert.deepEqual(
        listed.map((o) => o.key),
        expected,
      )
      for (const o of listed) {
        assert.equal(o.size, Buffer.byteLength(`{"key":"${o.key}"}\n`))
        assert.ok(o.lastModified instanceof Date && !Number.isNaN(o.lastModified.getTime()))
      }
      await store.close()
    })

    test('a prefix narrows the listing and a limit keeps the newest', async () => {
      const store = await adapter.create()
      const keys = [
        key('dev-b', 'telemetry', Date.UTC(2025, 9, 31, 23, 59, 59, 999)),
        key('dev-b', 'telemetry', Date.UTC(2025, 10, 1)),
        key('dev-b', 'telemetry', Date.UTC(2025, 10, 2, 12)),
        key('dev-b', 'telemetry', Date.UTC(2025, 10, 2, 13), 1),
        key('dev-b', 'hello', Date.UTC(2025, 10, 3)),
        key('dev-b', 'status', Date.UTC(2025, 10, 4)),
      ]
      await putAll(store, keys)
      const keysOf = async (prefix: string, limit = 100) =>
        (await store.list(prefix, limit)).map((o) => o.key)
      const telemetry = keys.filter((k) => k.includes('/telemetry/')).sort(timeDesc)
      assert.deepEqual(await keysOf('dev-b/telemetry/'), telemetry)
      assert.deepEqual(await keysOf('dev-b/tele'), telemetry)
      assert.deepEqual(await keysOf('dev-b/telemetry/2025/11'), telemetry.slice(0, 3))
      assert.deepEqual(await keysOf('dev-b/telemetry/2025/11/02/'), telemetry.slice(0, 2))
      assert.deepEqual(await keysOf('dev-b/telemetry/2025/11/02/13'), telemetry.slice(0, 1))
      assert.deepEqual(await keysOf('dev-b/telemetry/2025/12'), [])
      assert.deepEqual(await keysOf('dev-b/', 2), [keys[5], keys[4]])
      assert.deepEqual(await keysOf('dev-b/telemetry/', 3), telemetry.slice(0, 3))
      assert.deepEqual(await keysOf('dev-none/'), [])
      await store.close()
    })

    test('grouped objects: the lines of one device across several objects are listed and downloaded exactly, old objects too', async () => {
      const store = await adapter.create()
      const { archive, buffer } = await grouped(store, 'g1')
      const [a, b] = [`${adapter.name}-ga`, `${adapter.name}-gb`]
      const expected = new Map<string, string>() // listed filename → its exact bytes
      // Three periods: device a (telemetry every period, status in the second), device b in between.
      for (let p = 0; p < 3; p++) {
        const at = T + p * 60_000
        const bodies = new Map<string, string>() // category → a's lines of this period
        for (let i = 0; i < 5; i++) {
          const sources: [string, 'telemetry' | 'status'][] = [
            [a, 'telemetry'],
            [b, 'telemetry'],
          ]
          if (p === 1) sources.push([a, 'status'])
          for (const [device, category] of sources) {
            const line = lineOf(device, category, p * 10 + i)
            buffer.add(device, category, [line.subarray(0, 7), line.subarray(7)], at + i * 1000)
            if (device === a) bodies.set(category, `${bodies.get(category) ?? ''}${line}\n`)
          }
        }
        assert.equal(buffer.due(at + 59_999), false, 'not before the period')
        assert.ok(buffer.due(at + 60_000))
        await buffer.take().write()
        assert.equal(buffer.buffered, 0)
        const fresh = (await archive.list(a, '', 100)).filter((o) => !expected.has(o.key))
        assert.equal(fresh.length, bodies.size, `period ${p}: one listed object per category`)
        for (const o of fresh) expected.set(o.key, bodies.get(o.key.split('/')[1] as string) as string)
      }
      // An object of the earlier per-device layout, before and between the grouped ones.
      const old = key(a, 'telemetry', T - 1000)
      await store.put(old, Buffer.from('{"old":1}\n'))
      expected.set(old, '{"old":1}\n')

      const listed = await archive.list(a, '', 100)
      assert.deepEqual(
        listed.map((o) => o.key),
        [...expected.keys()].sort(timeDesc),
      )
      assert.equal(listed.length, 5, '3 telemetry sections, 1 status section, 1 old object')
      for (const o of listed) {
        const got = await archive.get(a, o.key.slice(a.length + 1))
        assert.ok(got, o.key)
        const body = (await readAll(got.body)).toString()
        assert.equal(body, expected.get(o.key), o.key)
        assert.equal(got.size, Buffer.byteLength(body))
        assert.equal(o.size, Buffer.byteLength(body))
      }
      const day = new Date(T).toISOString().slice(0, 10).replace(/-/g, '/')
      assert.equal((await archive.list(a, 'status/', 100)).length, 1)
      assert.equal((await archive.list(a, 'tele', 100)).length, 4)
      assert.equal((await archive.list(a, `telemetry/${day}/08`, 100)).length, 3, 'the grouped ones')
      assert.equal((await archive.list(a, `telemetry/${day}/07`, 100)).length, 1, 'the old one')
      assert.equal((await archive.list(a, `telemetry/${day}/09`, 100)).length, 0)
      assert.deepEqual(
        (await archive.list(a, 'telemetry/', 2)).map((o) => o.key),
        listed
          .filter((o) => o.key.includes('/telemetry/'))
          .slice(0, 2)
          .map((o) => o.key),
      )
      assert.equal((await archive.list(b, '', 100)).length, 3)
      assert.equal(await archive.get(a, `telemetry/${day}/080000000-nope-0.ndjson`), undefined)
      // Three grouped objects in the store, one per period, whatever the number of devices.
      assert.equal((await store.list('.grouped/all/', 100)).length, 3)
      await store.close()
    })

    test('retention deletes grouped objects of expired days and their index', async () => {
      const store = await adapter.create()
      const { archive, buffer } = await grouped(store, 'g2')
      const device = `${adapter.name}-gr`
      for (const d of [3, 2, 0]) {
        buffer.add(device, 'telemetry', [lineOf(device, 'telemetry', d)], T - d * DAY)
        buffer.add(`${device}x`, 'telemetry', [lineOf(`${device}x`, 'telemetry', d)], T - d * DAY)
        await buffer.take().write()
      }
      await store.put(key(device, 'hello', T - 3 * DAY), Buffer.from('{}\n'))
      assert.equal((await archive.list(device, '', 100)).length, 4)
      const before = await archive.list(device, '', 100)
      const deleted = await archive.deleteBefore(new Date(T - DAY + 4 * 3_600_000))
      assert.equal(deleted, 3, 'two grouped objects and one old object')
      const left = await archive.list(device, '', 100)
      assert.equal(left.length, 1)
      assert.ok(left[0]?.key.includes(new Date(T).toISOString().slice(0, 10).replace(/-/g, '/')))
      for (const o of before.slice(1))
        assert.equal(await archive.get(device, o.key.slice(device.length + 1)), undefined)
      const kept = await archive.get(device, (left[0] as { key: string }).key.slice(device.length + 1))
      assert.equal((await readAll(kept?.body as Readable)).toString(), `${lineOf(device, 'telemetry', 0)}\n`)
      assert.equal(await archive.deleteBefore(new Date(T - DAY + 4 * 3_600_000)), 0)
      await store.close()
    })

    test('more than 1,000 objects of one device: the newest `limit` in order', async () => {
      const store = await adapter.create()
      // 1,150 on the newest day (more than one S3 page), 50 the day before.
      const keys = [
        ...Array.from({ length: 1150 }, (_, i) => key('dev-c', 'telemetry', T + DAY + i * 1000)),
        ...Array.from({ length: 50 }, (_, i) => key('dev-c', 'telemetry', T + i * 1000)),
        key('dev-c', 'hello', T + DAY + 500_500),
      ]
      await putAll(store, keys)
      const all = [...keys].sort(timeDesc)
      const keysOf = async (prefix: string, limit: number) =>
        (await store.list(prefix, limit)).map((o) => o.key)
      assert.deepEqual(await keysOf('dev-c/', 5), all.slice(0, 5))
      assert.deepEqual(await keysOf('dev-c/', 1000), all.slice(0, 1000))
      assert.deepEqual(await keysOf('dev-c/', 1180), all.slice(0, 1180))
      const telemetry = all.filter((k) => k.includes('/telemetry/'))
      assert.deepEqual(await keysOf('dev-c/telemetry/', 5000), telemetry)
      assert.equal(telemetry.length, 1200)
      await store.close()
    })
  })
}

const fsRoots = new Map<ArchiveStore, string>()
const fsDirs: { remove: () => void }[] = []
after(() => {
  for (const dir of fsDirs) dir.remove()
})
archiveContract({
  name: 'filesystem',
  async create() {
    const dir = tempDir('archive-contract-')
    fsDirs.push(dir)
    const root = join(dir.path, 'archive')
    const store = new FsArchiveStore(root)
    fsRoots.set(store, root)
    return store
  },
  async containerExists(store) {
    return existsSync(fsRoots.get(store) as string)
  },
})

/**
 * s3rver in a child process of its own: it signs ListObjectsV2 continuation tokens with DES, which
 * OpenSSL 3 (Node 17+) only offers with --openssl-legacy-provider — in this process every listing
 * longer than a page would fail with a 500.
 */
async function startS3rver(directory: string): Promise<{ endpoint: string; stop: () => Promise<void> }> {
  const script = `
    const S3rver = require(${JSON.stringify(createRequire(import.meta.url).resolve('s3rver'))})
    new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: ${JSON.stringify(directory)} })
      .run().then((a) => process.stdout.write(a.port + '\\n'))`
  const child = spawn(process.execPath, ['--openssl-legacy-provider', '-e', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const [line] = (await once(createInterface({ input: child.stdout }), 'line')) as [string]
  return {
    endpoint: `http://127.0.0.1:${Number(line)}`,
    stop: async () => {
      const exited = once(child, 'exit')
      child.kill('SIGTERM')
      await exited
    },
  }
}

describe('S3 adapter against s3rver', () => {
  const dir = tempDir('s3rver-')
  let server: Awaited<ReturnType<typeof startS3rver>>
  let endpoint = ''
  const clients: S3Client[] = []
  const config = () => ({
    S3_ENDPOINT: endpoint,
    S3_REGION: 'us-east-1',
    S3_ACCESS_KEY_ID: 'S3RVER',
    S3_SECRET_ACCESS_KEY: 'S3RVER',
    S3_FORCE_PATH_STYLE: true,
  })
  const newClient = () => {
    const client = createS3Client(config())
    clients.push(client)
    return client
  }
  before(async () => {
    server = await startS3rver(dir.path)
    endpoint = server.endpoint
  })
  after(async () => {
    for (const c of clients) c.destroy()
    await server?.stop()
    dir.remove()
  })

  const buckets = new Map<ArchiveStore, string>()
  archiveContract({
    name: 's3',
    async create() {
      const bucket = uniqueName('archive').replace(/_/g, '-')
      const store = new S3ArchiveStore(newClient(), bucket)
      buckets.set(store, bucket)
      return store
    },
    async containerExists(store) {
      try {
        await newClient().send(new HeadBucketCommand({ Bucket: buckets.get(store) }))
        return true
      } catch {
        return false
      }
    },
  })

  test('a short listing reads only the newest objects, not the whole history', async (t) => {
    const client = newClient()
    const reads: { prefix: string; objects: number }[] = []
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const result = await next(args)
        if (context.commandName === 'ListObjectsV2Command') {
          const prefix = String((args.input as { Prefix?: string }).Prefix)
          reads.push({ prefix, objects: (result.output as { Contents?: unknown[] }).Contents?.length ?? 0 })
        }
        return result
      },
      { step: 'initialize', name: 'recordListings' },
    )
    const store = new S3ArchiveStore(client, uniqueName('history').replace(/_/g, '-'))
    // 30 days × 40 objects up to yesterday; the 10 newest lie in the last day.
    const from = T - 25 * DAY
    const keys = Array.from({ length: 1200 }, (_, i) =>
      key('dev-h', 'telemetry', from + Math.floor(i / 40) * DAY + (i % 40) * 1000),
    )
    await putAll(store, keys)
    reads.length = 0
    const newest = await store.list('dev-h/telemetry/', 10)
    assert.deepEqual(
      newest.map((o) => o.key),
      [...keys].sort(timeDesc).slice(0, 10),
    )
    const read = reads.reduce((n, r) => n + r.objects, 0)
    t.diagnostic(`${reads.length} listings read ${read} of 1,200 objects`)
    assert.ok(read <= 81 && reads.length <= 12, `${reads.length} listings read ${read} objects`)
    await store.close()
  })

  test('objects dated after the clock (a skewed replica) come first', async () => {
    const now = Date.now()
    const store = new S3ArchiveStore(
      newClient(),
      uniqueName('skew').replace(/_/g, '-'),
      'us-east-1',
      () => now,
    )
    const keys = [
      key('dev-s', 'telemetry', now - DAY),
      key('dev-s', 'telemetry', now + DAY),
      key('dev-s', 'hello', now),
    ]
    await putAll(store, keys)
    assert.deepEqual(
      (await store.list('dev-s/', 10)).map((o) => o.key),
      [keys[1], keys[2], keys[0]],
    )
    await store.close()
  })

  test('a missing S3_SECRET_ACCESS_KEY is named at start (by the configuration)', () => {
    assert.throws(
      () => loadConfig({ S3_BUCKET: 'archive', S3_ACCESS_KEY_ID: 'S3RVER' }),
      /S3_SECRET_ACCESS_KEY: required/,
    )
  })
})

test('archive module: S3_BUCKET selects S3, unset keeps the filesystem', async () => {
  const dir = tempDir()
  const devices = {} as DevicesService // only handed to the routes, never called here
  const env = { DATA_DIR: dir.path, LOG_LEVEL: 'silent' }
  const db = {} as Kysely<Database> // only handed to the index, never queried here
  const files = createArchiveModule({ dataDir: dir.path, db, devices, config: loadConfig(env) })
  assert.equal(files.archive.name, 'filesystem')
  assert.equal(files.archive.objectPeriodMs, 0, 'files: one object per device and category')
  const s3 = createArchiveModule({
    dataDir: dir.path,
    db,
    devices,
    config: loadConfig({ ...env, S3_BUCKET: 'iot-archive', S3_ENDPOINT: 'http://127.0.0.1:9' }),
  })
  assert.equal(s3.archive.name, 's3')
  assert.equal(s3.archive.objectPeriodMs, 60_000, 'S3: grouped objects of 60 s')
  await s3.archive.close()
  dir.remove()
})
