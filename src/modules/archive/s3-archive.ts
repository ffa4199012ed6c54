import { Readable } from 'node:stream'
import {
  type BucketLocationConstraint,
  CreateBucketCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3'
import type { ArchiveConfig } from './archive-config.ts'
import type { ArchiveBody, ArchiveObject, ArchiveStore } from './archive-store.ts'
import { CATEGORIES, checkArchiveKey, lastExpiredDay, timePart } from './archive-store.ts'
import { type KeyPage, type ListPage, newestInCategory, readAll } from './s3-listing.ts'

const byKeyDesc = (a: string, b: string) => (a < b ? 1 : a > b ? -1 : 0)

/** The S3 client of the configuration: static keys when given, else the SDK's default credential chain. */
export function createS3Client(config: ArchiveConfig): S3Client {
  const { S3_ACCESS_KEY_ID: accessKeyId, S3_SECRET_ACCESS_KEY: secretAccessKey } = config
  return new S3Client({
    region: config.S3_REGION,
    endpoint: config.S3_ENDPOINT,
    forcePathStyle: config.S3_FORCE_PATH_STYLE,
    credentials: accessKeyId && secretAccessKey ? { accessKeyId, secretAccessKey } : undefined,
    // Checksums only where S3 demands them: s3rver and other S3 look-alikes store aws-chunked framing otherwise.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  })
}

const statusOf = (error: unknown) =>
  (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode
const nameOf = (error: unknown) => (error as { name?: string }).name

/**
 * Archive objects in an S3 bucket (created on first use), with the filesystem adapter's keys and
 * listing order. S3 lists ascending only: a listing reads each category's time windows backwards
 * with StartAfter (see `newestInCategory`), so the newest `limit` objects of a device with years of
 * history cost a handful of requests, not a scan of the device's keys.
 */
export class S3ArchiveStore implements ArchiveStore {
  readonly name = 's3'
  private bucketReady: Promise<void> | undefined

  constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
    private readonly region = 'us-east-1',
    private readonly now: () => number = Date.now,
  ) {}

  async put(key: string, parts: ArchiveBody): Promise<void> {
    checkKey(key)
    await this.ensureBucket()
    const body = Buffer.isBuffer(parts) ? parts : Buffer.concat(parts)
    await this.client.send(
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: key,
        Body: body,
        ContentLength: body.length,
        ContentType: 'application/x-ndjson',
      }),
    )
  }

  async list(prefix: string, limit: number): Promise<ArchiveObject[]> {
    if (limit <= 0) return []
    await this.ensureBucket()
    const list: ListPage = (request) => this.page(request)
    const [device, category, ...rest] = prefix.split('/')
    if (category === undefined) {
      // Not inside a device (the routes never ask this): every key under the prefix, read ascending.
      return (await readAll(list, prefix)).reverse().slice(0, limit)
    }
    const now = this.now()
    if (rest.length === 0) {
      // Under a device, each category of the key layout is read on its own and the results merged by time.
      const perCategory = await Promise.all(
        CATEGORIES.filter((c) => c.startsWith(category)).map((c) =>
          newestInCategory(list, `${device}/${c}/`, `${device}/${c}/`, limit, now),
        ),
      )
      const found = perCategory.flat()
      found.sort((a, b) => byKeyDesc(timePart(a.key), timePart(b.key)))
      return found.slice(0, limit)
    }
    return newestInCategory(list, `${device}/${category}/`, prefix, limit, now)
  }

  private async page(request: Parameters<ListPage>[0]): Promise<KeyPage> {
    const page = await this.client.send(
      new ListObjectsV2Command({
        Bucket: this.bucket,
        Prefix: request.prefix,
        StartAfter: request.startAfter,
        ContinuationToken: request.token,
        MaxKeys: request.maxKeys,
      }),
    )
    const objects: ArchiveObject[] = []
    for (const o of page.Contents ?? []) {
      if (o.Key === undefined) continue
      objects.push({ key: o.Key, size: o.Size ?? 0, lastModified: o.LastModified ?? new Date(0) })
    }
    return { objects, truncated: page.IsTruncated === true, token: page.NextContinuationToken }
  }

  get(key: string): Promise<{ body: Readable; size: number } | undefined> {
    return this.getObject(key)
  }

  /** One ranged GET: a device's section of a grouped object. */
  getRange(key: string, offset: number, length: number) {
    return this.getObject(key, `bytes=${offset}-${offset + length - 1}`)
  }

  private async getObject(
    key: string,
    range?: string,
  ): Promise<{ body: Readable; size: number } | undefined> {
    checkKey(key)
    await this.ensureBucket()
    try {
      const object = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: range }),
      )
      if (!(object.Body instanceof Readable)) throw new Error('S3 GetObject returned no stream body')
      return { body: object.Body, size: object.ContentLength ?? 0 }
    } catch (error) {
      if (nameOf(error) === 'NoSuchKey' || statusOf(error) === 404 || statusOf(error) === 416)
        return undefined
      throw error
    }
  }

  async deleteBefore(cutoff: Date): Promise<number> {
    await this.ensureBucket()
    const last = lastExpiredDay(cutoff)
    let deleted = 0
    // One ascending walk of the bucket ({device}/{category}/{YYYY}/{MM}/{DD}/…): expired keys come
    // first in each category; at its first kept key the walk jumps past the category ("~" sorts
    // after the digits of every time part). No delimiter listing: it reads the expired keys plus
    // about one request per device and category.
    let startAfter: string | undefined
    for (;;) {
      const page = await this.page({ prefix: '', startAfter, maxKeys: 1000 })
      const expired: string[] = []
      let jump: string | undefined
      for (const o of page.objects) {
        const [device, category, y, m, d] = o.key.split('/')
        if (`${y}/${m}/${d}`.length === 10 && `${y}/${m}/${d}` <= last) expired.push(o.key)
        else {
          jump = `${device}/${category}/~`
          break
        }
      }
      if (expired.length > 0) {
        await this.client.send(
          new DeleteObjectsCommand({
            Bucket: this.bucket,
            Delete: { Objects: expired.map((Key) => ({ Key })), Quiet: true },
          }),
        )
        deleted += expired.length
      }
      if (jump) startAfter = jump
      else if (page.truncated && page.objects.length > 0) startAfter = page.objects.at(-1)?.key
      else return deleted
    }
  }

  async ping(): Promise<void> {
    await this.ensureBucket()
    await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }))
  }

  async close(): Promise<void> {
    this.client.destroy()
  }

  /** Creates the bucket once when it is missing; a failed attempt is retried on the next call. */
  private ensureBucket(): Promise<void> {
    if (!this.bucketReady) {
      const attempt = this.createBucketIfMissing()
      this.bucketReady = attempt
      attempt.catch(() => {
        if (this.bucketReady === attempt) this.bucketReady = undefined
      })
    }
    return this.bucketReady
  }

  private async createBucketIfMissing(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }))
      return
    } catch (error) {
      if (statusOf(error) !== 404 && nameOf(error) !== 'NotFound') throw error
    }
    try {
      await this.client.send(
        new CreateBucketCommand({
          Bucket: this.bucket,
          // us-east-1 is the one region that refuses an explicit location constraint.
          CreateBucketConfiguration:
            this.region === 'us-east-1'
              ? undefined
              : { LocationConstraint: this.region as BucketLocationConstraint },
        }),
      )
    } catch (error) {
      // Another replica may have created it in the meantime.
      if (nameOf(error) !== 'BucketAlreadyOwnedByYou') throw error
    }
  }
}

const checkKey = checkArchiveKey

/** The S3 adapter of the configuration (S3_BUCKET set). */
export function createS3ArchiveStore(config: ArchiveConfig, bucket: string): S3ArchiveStore {
  return new S3ArchiveStore(createS3Client(config), bucket, config.S3_REGION)
}
