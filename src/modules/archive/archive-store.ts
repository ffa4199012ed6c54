import type { Readable } from 'node:stream'
import { ARCHIVE_CATEGORIES, type ArchiveCategory, isDeviceId } from '../../protocol/index.ts'
import { GROUP_ROOT } from './archive-key.ts'

export interface ArchiveObject {
  key: string
  size: number
  lastModified: Date
}

/**
 * Where raw messages are archived: one object per device, category and flush, or grouped objects
 * of many devices (see archive-key.ts; their index is in the database, see raw-archive.ts). Keys look like
 * `{device_id}/{category}/{YYYY}/{MM}/{DD}/{HHmmssSSS}-{run}-{n}.ndjson`, so their lexical order
 * within a category is their time order. Adapters: filesystem (fs-archive.ts) and S3 (s3-archive.ts).
 */
/** An object's bytes: one buffer, or its parts in order (written as they are where the store can). */
export type ArchiveBody = Buffer | readonly Buffer[]

export interface ArchiveStore {
  readonly name: string
  put(key: string, body: ArchiveBody): Promise<void>
  /** Objects whose key starts with `prefix`, newest first, at most `limit`. */
  list(prefix: string, limit: number): Promise<ArchiveObject[]>
  /** A stream of the object, or undefined when there is none. */
  get(key: string): Promise<{ body: Readable; size: number } | undefined>
  /** A stream of `length` bytes of the object from `offset` (a device's section of a grouped object). */
  getRange(key: string, offset: number, length: number): Promise<{ body: Readable; size: number } | undefined>
  /**
   * Retention: deletes every object whose key's day (`…/{YYYY}/{MM}/{DD}/…`) ends at or before
   * `cutoff`; returns how many. Reads only what it deletes plus a page per device and category.
   */
  deleteBefore(cutoff: Date): Promise<number>
  ping(): Promise<void>
  close(): Promise<void>
}

/** The archive's categories: the kinds of the protocol table that are archived. */
export const CATEGORIES: readonly ArchiveCategory[] = ARCHIVE_CATEGORIES
export type Category = ArchiveCategory

/** The part of a key after `{device_id}/{category}/`: its time order across categories. */
export const timePart = (key: string) => key.split('/').slice(2).join('/')

/** `{YYYY}/{MM}/{DD}` of the last whole UTC day before `cutoff`: keys of days up to it are expired. */
export function lastExpiredDay(cutoff: Date): string {
  const day = new Date(Math.floor(cutoff.getTime() / 86_400_000) * 86_400_000 - 86_400_000)
  return day.toISOString().slice(0, 10).replace(/-/g, '/')
}

/** A key no adapter may write or read: it could leave the archive's root or name another device's objects. */
export class InvalidArchiveKey extends Error {
  constructor(key: string) {
    super(`invalid archive key ${JSON.stringify(key.slice(0, 100))}`)
    this.name = 'InvalidArchiveKey'
  }
}

const SEGMENT = /^[A-Za-z0-9_.-]+$/

/**
 * Throws InvalidArchiveKey unless the key is `{device_id}/…` with a device id of the one grammar
 * (or a grouped object's `.grouped/…`) and every further segment a plain name (never empty, `.` or `..`): the same check on files and S3.
 */
export function checkArchiveKey(key: string): void {
  const [device, ...rest] = key.split('/')
  const ok =
    device !== undefined &&
    (isDeviceId(device) || device === GROUP_ROOT.split('/')[0]) &&
    rest.every((s) => SEGMENT.test(s) && s !== '.' && s !== '..')
  if (!ok) throw new InvalidArchiveKey(key)
}
