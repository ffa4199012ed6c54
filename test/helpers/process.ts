import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../..', import.meta.url))

export interface ServerProcess {
  child: ChildProcess
  baseUrl: string
  output: () => string
  /** Resolves with the exit code (or signal) once the process is gone. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/** Runs the real entry point (`src/main.ts`) as a child process and waits until it listens. */
export async function startServer(env: Record<string, string>, timeoutMs = 30000): Promise<ServerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: root,
    env: {
      ...process.env,
      HOST: '127.0.0.1',
      PORT: '0',
      MQTT_BROKER_PORT: '0',
      LOG_LEVEL: 'info',
      // Suites that call routes without tokens; test/auth.test.ts overrides both.
      AUTH_DISABLED: 'true',
      RATE_LIMIT_MAX: '0',
      // Anonymous devices on the embedded broker (test/mqtt-auth.test.ts covers authentication).
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
      text += chunk.toString()
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
  return { child, baseUrl, output: () => text, exited }
}
