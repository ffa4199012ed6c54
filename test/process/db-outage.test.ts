import assert from 'node:assert/strict'
import { once } from 'node:events'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { after, test } from 'node:test'
import { dcTelemetry, publishJson, waitFor } from '../helpers/device.ts'
import { realDatabaseUrl } from '../helpers/env.ts'
import {
  countPoints,
  meterClient,
  readyz,
  registerOverHttp,
  rssMiB,
  scrape,
  sleep,
  waitMqttReady,
} from '../helpers/fleet.ts'
import type { Mosquitto } from '../helpers/mosquitto.ts'
import { serverFixture } from '../helpers/server-fixture.ts'

const DEVICES = 20
const PER_DEVICE = 500
const SAMPLES = 5
const OUTAGE_MS = 15000
/** ~2,300 of these ~0.7 KB datagrams: the outage journals far more than that. */
const MAX_PENDING_BYTES = 2 * 1024 * 1024

const skip = realDatabaseUrl
  ? false
  : 'PGlite runs inside the server process: a database outage needs TEST_DATABASE_URL (PostgreSQL)'

/** A TCP proxy to PostgreSQL that can be cut: every socket closed and new ones refused. */
class CuttableProxy {
  private readonly sockets = new Set<Socket>()
  private cut = false
  readonly server: Server

  constructor(
    private readonly host: string,
    private readonly port: number,
  ) {
    this.server = createServer((client) => {
      if (this.cut) {
        client.destroy()
        return
      }
      const upstream = connect(this.port, this.host)
      for (const s of [client, upstream]) {
        this.sockets.add(s)
        s.on('error', () => undefined)
        s.on('close', () => {
          this.sockets.delete(s)
          client.destroy()
          upstream.destroy()
        })
      }
      client.pipe(upstream)
      upstream.pipe(client)
    })
  }

  async listen(): Promise<number> {
    this.server.listen(0, '127.0.0.1')
    await once(this.server, 'listening')
    return (this.server.address() as { port: number }).port
  }

  setCut(on: boolean): void {
    this.cut = on
    if (on) for (const s of this.sockets) s.destroy()
  }

  async close(): Promise<void> {
    this.setCut(true)
    this.server.close()
  }
}

const fixture = serverFixture({ skip: !realDatabaseUrl })
let proxy: CuttableProxy | undefined
after(async () => {
  await proxy?.close()
})

test('PostgreSQL unreachable for 15 s while devices stream: no crash, not ready, intake paused, nothing lost', {
  skip,
}, async () => {
  const broker = fixture.brokers[0] as Mosquitto
  const dbUrl = new URL((fixture.schema as { url: string }).url)
  proxy = new CuttableProxy(dbUrl.hostname, Number(dbUrl.port || 5432))
  dbUrl.port = String(await proxy.listen())
  dbUrl.hostname = '127.0.0.1'
  const server = await fixture.start(
    fixture.env({ DATABASE_URL: dbUrl.toString(), INGEST_MAX_PENDING_BYTES: String(MAX_PENDING_BYTES) }),
  )
  const base = server.baseUrl
  const ids = Array.from({ length: DEVICES }, (_, i) => `dbo-${String(i).padStart(2, '0')}`)
  await registerOverHttp(base, ids)
  await waitMqttReady(base)
  const rssBefore = await rssMiB(server.child.pid)

  const clients = await Promise.all(ids.map((id) => meterClient(broker.url, id)))
  const t0 = Date.now() - 3600_000
  let sent = 0
  const publishing = Promise.all(
    clients.map(async (client, i) => {
      const id = ids[i] as string
      for (let seq = 0; seq < PER_DEVICE; seq++) {
        await publishJson(
          client,
          `iot/${id}/telemetry`,
          dcTelemetry(id, seq, t0 + seq * SAMPLES * 1000, SAMPLES),
        )
        sent++
        await sleep(30)
      }
    }),
  )
  await waitFor(() => sent >= DEVICES * 50, 20000, 'streaming')

  proxy.setCut(true)
  const cutAt = Date.now()
  let notReady: { status: number; checks: Record<string, string> } | undefined
  let paused = 0
  let maxInflight = 0
  let rssMax = rssBefore
  while (Date.now() - cutAt < OUTAGE_MS) {
    const r = await readyz(base).catch(async (error: Error) => {
      const srv = server
      await sleep(500)
      const lines = srv
        .output()
        .split('\n')
        .filter((l) => /uncaught|level":60/.test(l))
      throw new Error(
        `${error.message} (${String(error.cause)}); server exit ${srv.child.exitCode} ${srv.child.signalCode}:\n${lines.slice(-15).join('\n').slice(-4000)}`,
      )
    })
    if (r.status === 503) notReady = r
    paused = Math.max(paused, await scrape(base, 'ingest_paused'))
    maxInflight = Math.max(maxInflight, await scrape(base, 'ingest_inflight'))
    rssMax = Math.max(rssMax, await rssMiB(server.child.pid))
    assert.equal(server.child.exitCode, null, 'the server is still running')
    await sleep(500)
  }
  const sentDuringOutage = sent
  proxy.setCut(false)
  await publishing
  await Promise.all(clients.map((c) => c.endAsync()))

  assert.ok(notReady, '/readyz answered 503 during the outage')
  const failing = Object.entries(notReady.checks).filter(([, v]) => v !== 'ok')
  assert.ok(
    failing.some(([name]) => name === 'database' || name === 'ingest'),
    `a failing check names the database: ${JSON.stringify(notReady.checks)}`,
  )
  assert.equal(paused, 1, 'intake paused at INGEST_MAX_PENDING_BYTES')

  const expected = DEVICES * PER_DEVICE * SAMPLES
  const drainStart = Date.now()
  await waitFor(async () => (await countPoints(base, ids, t0)) === expected, 45000, `${expected} points`)
  const drainMs = Date.now() - drainStart
  await sleep(1000)
  assert.equal(await countPoints(base, ids, t0), expected, 'stored exactly once')
  await waitFor(async () => (await readyz(base)).status === 200, 15000, 'ready again')
  assert.equal(server.child.exitCode, null)
  process.stdout.write(
    `# db-outage: ${sent} messages (${sentDuringOutage} sent by the end of a ${OUTAGE_MS} ms outage), ${expected} points stored once; ` +
      `readyz 503 with ${failing.map(([n, v]) => `${n}: ${v.slice(0, 80)}`).join('; ')}; ` +
      `ingest_paused=${paused}, max ingest_inflight read ${maxInflight}; RSS ${rssBefore.toFixed(0)} → max ${rssMax.toFixed(0)} MiB; ` +
      `backlog stored ${drainMs} ms after the check started\n`,
  )
  assert.ok(rssMax < rssBefore + 200, `RSS bounded: ${rssBefore} → ${rssMax} MiB`)
})
