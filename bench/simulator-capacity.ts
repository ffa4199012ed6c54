/**
 * npm run bench:simulator -- N — how many simulated meters one process sustains at the default
 * cadence (1 s sampling, 10 s send) while the same process ingests them: runs the server with the
 * simulator on, waits 30 s, then measures 60 s of telemetry rate against the expected N / 10 per s,
 * CPU, event-loop lag and memory. Prints one JSON line.
 */
import { tempDir } from '../test/helpers/env.ts'
import { startServer } from '../test/helpers/process.ts'

const n = Number(process.argv[2] ?? 2000)
const dir = tempDir()
const s = await startServer(
  { SIMULATOR_ENABLED: 'true', SIMULATOR_DEVICES: String(n), DATA_DIR: dir.path },
  120000,
)
const metric = (text: string, name: string) =>
  text
    .split('\n')
    .filter((l) => l.startsWith(name))
    .reduce((a, l) => a + Number(l.split(' ').pop()), 0)
const t0 = Date.now()
await new Promise((r) => setTimeout(r, 30000))
const m1 = await (await fetch(`${s.baseUrl}/metrics`)).text()
const a = metric(m1, 'ingest_messages_total{type="telemetry"}')
const c1 = metric(m1, 'process_cpu_seconds_total')
const t1 = Date.now()
await new Promise((r) => setTimeout(r, 60000))
const m2 = await (await fetch(`${s.baseUrl}/metrics`)).text()
const b = metric(m2, 'ingest_messages_total{type="telemetry"}')
const c2 = metric(m2, 'process_cpu_seconds_total')
const t2 = Date.now()
const stats = (await (await fetch(`${s.baseUrl}/api/stats`)).json()) as { devices_online: number }
console.log(
  JSON.stringify({
    devices: n,
    connected: metric(m2, 'simulator_devices_connected'),
    online: stats.devices_online,
    telemetry_per_s: ((b - a) / ((t2 - t1) / 1000)).toFixed(1),
    expected_per_s: n / 10,
    cpu_cores: ((c2 - c1) / ((t2 - t1) / 1000)).toFixed(2),
    lag_p99_ms: (metric(m2, 'nodejs_eventloop_lag_p99_seconds') * 1000).toFixed(1),
    rss_mb: Math.round(metric(m2, 'process_resident_memory_bytes') / 1e6),
    startup_s: (t1 - t0) / 1000 - 30,
  }),
)
s.child.kill('SIGTERM')
await s.exited
dir.remove()
