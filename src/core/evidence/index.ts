/** Evidence items: the EvidenceService every feature reads and writes evidence through. */
import type { Readable } from 'node:stream';
import type { BlobStores } from '../../blob';
import type { Db } from '../../db/pool';
import { notFound } from '../../lib/errors';
import { audit } from '../audit';
import { Coalescer, ingestBatch } from './ingest';
import type { EvidenceHead, EvidenceItem, IngestInput, IngestResult } from './model';
import { findItem, HeadLookup, type ListQuery, listItems, openBlob, readBlob, storeOfTier } from './read';
import { type ItemState, transitionItems } from './state';

export { ingestBatch } from './ingest';
export * from './model';
export { type ListQuery, storeOfTier } from './read';
export { type ItemState, transitionItems } from './state';

const ALL_STATES: readonly ItemState[] = ['present', 'corrupted', 'quarantined', 'purged'];

export class EvidenceService {
  private readonly coalesced: Coalescer;
  private readonly heads: HeadLookup;

  constructor(
    private readonly db: Db,
    private readonly blobs: BlobStores,
  ) {
    this.coalesced = new Coalescer((inputs) => ingestBatch(this.db, this.blobs, inputs));
    this.heads = new HeadLookup(db);
  }

  /**
   * One item: a batch of one (src/core/evidence/ingest.ts). Single ingests that arrive while
   * others are being written join the next batch (group commit): N concurrent uploads share one
   * index commit and one leaf numbering instead of queueing N of each.
   */
  ingest(input: IngestInput): Promise<IngestResult> {
    return this.coalesced.submit(input);
  }

  /** Many items with one commit per call. */
  ingestMany(inputs: readonly IngestInput[], opts?: { concurrency?: number }): Promise<IngestResult[]> {
    return ingestBatch(this.db, this.blobs, inputs, opts);
  }

  find(tenant: string, id: string): Promise<EvidenceItem | null> {
    return findItem(this.db, tenant, id);
  }

  async get(tenant: string, id: string): Promise<EvidenceItem> {
    const item = await this.find(tenant, id);
    if (!item) throw notFound(`evidence ${id} not found`);
    return item;
  }

  list(q: ListQuery): Promise<{ items: EvidenceItem[]; nextCursor: string | null }> {
    return listItems(this.db, q);
  }

  /**
   * What retrieval needs (no subjects or edges): the hot path of GET /evidence/:id. Concurrent
   * lookups share one query (HeadLookup); each is still read after it was asked.
   */
  head(tenant: string, id: string): Promise<EvidenceHead> {
    return this.heads.get(tenant, id);
  }

  /** Streams a present item's bytes; the stream fails at the end if the blob is damaged. */
  async open<T extends EvidenceHead = EvidenceItem>(tenant: string, id: string, known?: T): Promise<{ item: T; stream: Readable }> {
    const item = (known ?? (await this.get(tenant, id))) as T;
    return { item, stream: await openBlob(this.blobs, item) };
  }

  async read(tenant: string, id: string, known?: EvidenceHead): Promise<Buffer> {
    return readBlob(this.blobs, known ?? (await this.head(tenant, id)));
  }

  /** Cold-tier items live under the `cold` namespace of the primary store (retention tier move). */
  storeOf(item: Pick<EvidenceHead, 'tier'>) {
    return storeOfTier(this.blobs, item.tier);
  }

  /** Sets an item's state whatever it was (operator action), audited. */
  async setState(tenant: string, id: string, state: ItemState, reason: string, actor: string): Promise<void> {
    const changed = await transitionItems(this.db, tenant, [id], { from: ALL_STATES, to: state, reason });
    if (!changed.length) throw notFound(`evidence ${id} not found`);
    await audit(this.db, { tenant, actor, action: `evidence.state.${state}`, target: id, reason });
  }
}
export { type BulkBatchResult, type BulkIngestSource, type BulkResume, ingestFiles, listSourceFiles } from './bulk';
export { ingestUpload, type Upload } from './upload';
