import { type Static, Type } from 'typebox'
import { IsoTime, Nullable } from '../../platform/schemas.ts'

export const RetentionPolicyItem = Type.Object({
  data: Type.String({ description: 'kind of data' }),
  keep_days: Nullable(Type.Integer({ description: 'days kept; null = kept for ever' })),
  how: Type.String({ description: 'how it expires' }),
})

export const RetentionResponse = Type.Object({
  policies: Type.Array(RetentionPolicyItem),
  telemetry_partitions: Type.Object({
    count: Type.Integer({ description: 'daily partitions of raw samples' }),
    oldest_day: Nullable(Type.String({ format: 'date' })),
    newest_day: Nullable(Type.String({ format: 'date' })),
  }),
  job: Type.Object({
    interval_s: Type.Integer(),
    last_run: Nullable(
      Type.Object({
        started_at: IsoTime,
        finished_at: IsoTime,
        replica: Type.String(),
        ok: Type.Boolean(),
        result: Type.Record(Type.String(), Type.Unknown()),
      }),
    ),
  }),
})
export type RetentionResponse = Static<typeof RetentionResponse>
