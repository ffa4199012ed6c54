import { Writable } from 'node:stream'

const LEVELS: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO ',
  40: 'WARN ',
  50: 'ERROR',
  60: 'FATAL',
}
const COLOURS: Record<number, string> = { 10: '90', 20: '90', 30: '32', 40: '33', 50: '31', 60: '35' }
/** Fields every line has or that the line already shows. */
const SKIP = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'service', 'reqId', 'v'])

const short = (value: unknown): string => {
  if (typeof value === 'string') return /[\s"]/.test(value) ? JSON.stringify(value) : value
  return JSON.stringify(value)
}

/** One JSON log line as `12:34:56.789 INFO  message key=value …` (the error's stack on the next lines). */
export function prettyLine(line: string, colour: boolean): string {
  let entry: Record<string, unknown>
  try {
    entry = JSON.parse(line)
  } catch {
    return line
  }
  const level = Number(entry.level)
  const time = new Date(Number(entry.time)).toISOString().slice(11, 23)
  const name = LEVELS[level] ?? String(level)
  const tag = colour ? `\x1b[${COLOURS[level] ?? '0'}m${name}\x1b[0m` : name
  const err = entry.err as { message?: string; stack?: string } | undefined
  const req = entry.req as { method?: string; url?: string } | undefined
  const res = entry.res as { statusCode?: number } | undefined
  const fields: string[] = []
  if (req?.method) fields.push(`${req.method} ${req.url}`)
  if (res?.statusCode) fields.push(`→ ${res.statusCode}`)
  for (const [key, value] of Object.entries(entry)) {
    if (SKIP.has(key) || key === 'err' || key === 'req' || key === 'res' || value === undefined) continue
    fields.push(`${key}=${short(key === 'responseTime' ? Math.round(Number(value)) : value)}`)
  }
  const text = [time, tag, entry.msg ?? '', ...fields].join(' ')
  return err?.stack ? `${text}\n    ${err.stack.split('\n').join('\n    ')}` : text
}

/** A pino destination that writes human-readable lines (LOG_FORMAT=pretty); colours on a terminal. */
export function prettyStream(out: NodeJS.WriteStream = process.stdout): Writable {
  const colour = out.isTTY === true && !process.env.NO_COLOR
  let pending = ''
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      pending += chunk.toString()
      const lines = pending.split('\n')
      pending = lines.pop() ?? ''
      if (lines.length > 0) out.write(`${lines.map((l) => prettyLine(l, colour)).join('\n')}\n`)
      done()
    },
  })
}
