import fp from 'fastify-plugin'

export type ReadinessCheck = () => Promise<void> | void

/** Named checks /readyz runs; each platform piece and module registers what it depends on. */
export class Readiness {
  private readonly checks = new Map<string, ReadinessCheck>()

  add(name: string, check: ReadinessCheck): void {
    this.checks.set(name, check)
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
