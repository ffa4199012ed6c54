import fp from 'fastify-plugin'

export type ReadinessCheck = () => Promise<void> | void

/** Named checks /readyz runs; each platform piece and module registers what it depends on. */
export class Readiness {
  private readonly checks = new Map<string, ReadinessCheck>()
  private last: { at: number; result: Promise<{ ok: boolean; checks: Record<string, string> }> } | undefined

  /**
   * `run` shared by callers within `maxAgeMs` (issue 16 row 6): /readyz is open, and a flood of
   * calls costs one round of checks (one database query) per interval, not one per call.
   */
  cached(maxAgeMs = 500): Promise<{ ok: boolean; checks: Record<string, string> }> {
    const now = performance.now()
    if (!this.last || now - this.last.at > maxAgeMs) this.last = { at: now, result: this.run() }
    return this.last.result
  }

  add(name: string, check: ReadinessCheck): void {
    this.checks.set(name, check)
    this.last = undefined
  }

  /** Runs every check with a deadline; returns ok plus one line per check. */
  async run(timeoutMs = 2000): Promise<{ ok: boolean; checks: Record<string, string> }> {
    const results: Record<string, string> = {}
    let ok = true
    await Promise.all(
      [...this.checks].map(async ([name, check]) => {
        let timer: NodeJS.Timeout | undefined
        try {
          await Promise.race([
            Promise.resolve().then(check),
            new Promise((_, reject) => {
              timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs)
            }),
          ])
          results[name] = 'ok'
        } catch (error) {
          ok = false
          results[name] = error instanceof Error ? error.message : String(error)
        } finally {
          clearTimeout(timer)
        }
      }),
    )
    return { ok, checks: results }
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    readiness: Readiness
  }
}

/** Shares one Readiness registry with every plugin. */
export const readinessPlugin = fp(
  async (app) => {
    app.decorate('readiness', new Readiness())
  },
  { name: 'readiness' },
)
