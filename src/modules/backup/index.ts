import type { FastifyPluginAsync } from 'fastify'
import { pgliteSnapshot } from '../../platform/db/backup.ts'
import { ConflictError } from '../../platform/domain-errors.ts'
import { errors } from '../../platform/schemas.ts'

/**
 * `GET /api/admin/backup` (admin): a consistent snapshot of the embedded database while the server
 * runs — the only way to back PGlite up then, since no second process may open its directory.
 * `npm run backup` calls it when the server is up (docs/BACKUP.md). On PostgreSQL, pg_dump does it.
 */
export const backupPlugin: FastifyPluginAsync = async (app) => {
  app.get(
    '/api/admin/backup',
    {
      schema: {
        tags: ['admin'],
        summary: 'Backup of the embedded database (gzipped tar of its data directory)',
        description:
          'PGlite only: a crash-consistent snapshot taken between two statements, after a checkpoint; restore it with `npm run restore -- FILE` while the server is stopped. On PostgreSQL answers 409: use `npm run backup` (pg_dump).',
        produces: ['application/gzip'],
        response: { 200: { type: 'string', format: 'binary' }, ...errors(401, 403, 409) },
      },
    },
    async (_request, reply) => {
      const pglite = app.pglite
      if (!pglite)
        throw new ConflictError('the database is PostgreSQL: back it up with `npm run backup` (pg_dump)')
      const data = await pgliteSnapshot(pglite)
      const name = `iot-meter-${new Date().toISOString().replace(/[:.]/g, '-')}.tar.gz`
      return reply
        .header('content-type', 'application/gzip')
        .header('content-disposition', `attachment; filename="${name}"`)
        .send(data)
    },
  )
}
