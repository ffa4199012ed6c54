import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../..', import.meta.url))

export interface ServerProcess {
  child: ChildProcess
  baseUrl: string
  /** Port of the embedded broker, when the server runs one. */
  brokerPort?: number
  /** The last 200 kB of the server's log (older lines are dropped: long runs must not hoard memory). */
  output: () => string
  /** Resolves with the exit code (or signal) once the process is gone. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/** The admin token of each spawned server, by origin (see `serverFetch`). */
const adminTokens = new Map<string, string>()

/**
 * `fetch` signed in as the admin of the spawned server at that URL's origin, the way users call it
 * (servers run with authentication on); a caller's own authorization header wins.
 */
export function serverFetch(url: string, init: RequestInit = {}): Promise<Response> {
  const token = adminTokens.get(new URL(url).origin)
  const headers = new Headers(init.headers)
  if (token && !headers.has('authorization')) headers.set('authorization', `Bearer ${token}`)
  return fetch(url, { ...init, headers })
}

/**
 * Runs the real entry point (`src/main.ts`) as a child process and waits until it listens.
 * Authentication is on, with an admin token of its own for `serverFetch`, unless `env` sets
 * AUTH_DISABLED or ADMIN_TOKEN itself (suites about authentication and the start-up banner).
 */
// 60 s: a first start (PGlite, migrations) on the shared, loaded 2-core machine can pass 30 s.
export async function startServer(env: Record<string, string>, timeoutMs = 60_000): Promise<ServerProcess> {
  // SERVER_NODE_FLAGS: extra node flags for the server only, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"
  // to profile it under a benchmark (NODE_OPTIONS refuses --cpu-prof).
  const adminToken =
    env.ADMIN_TOKEN ??
    (env.AUTH_DISABLED === undefined ? `test-admin-${randomBytes(16).toString('hex')}` : undefined)
  const flags = process.env.SERVER_NODE_FLAGS?.split(' ').filter(Boolean) ?? []
  const child = spawn(process.execPath, [...flags, '--import', 'tsx', 'src/main.ts'], {
    cwd: root,
    env: {
      ...process.env,
      HOST: '127.0.0.1',
      PORT: '0',
      MQTT_BROKER_PORT: '0',
      LOG_LEVEL: 'info',
      AUTH_DISABLED: 'false',
      ...(adminToken ? { ADMIN_TOKEN: adminToken } : {}),
      RATE_LIMIT_MAX: '0',
      // Anonymous devices on the embedded broker (test/app/mqtt-auth.test.ts covers authentication).
      MQTT_DEVICE_AUTH: 'none',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let text = ''
  const exited = once(child, 'exit').then(([code, signal]) => ({ code, signal }))
  const baseUrl = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not listen in time:\n${text}`)), timeoutMs)
    const onData = (chunk: Buffer) => {
      text = (text + chunk.toString()).slice(-200_000)
      const m = text.match(/Server listening at (http:\/\/127\.0\.0\.1:\d+)/)
      if (m) {
        clearTimeout(timer)
        resolve(m[1] as string)
      }
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', onData)
    exited.then(() => reject(new Error(`server exited before listening:\n${text}`)))
  })
  if (adminToken) adminTokens.set(new URL(baseUrl).origin, adminToken)
  const brokerPort =
    Number(/"port":(\d+),"msg":"embedded MQTT broker listening"/.exec(text)?.[1]) || undefined
  return { child, baseUrl, brokerPort, output: () => text, exited }
}
