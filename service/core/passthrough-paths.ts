/**
 * OpenAI API paths whose objects are addressed by id: `POST <collection>` creates one,
 * `<collection>/<id>[/...]` reads, changes or deletes it, `GET <collection>` lists them. The
 * gateway records each id at creation against the creating team and answers 404 to others.
 */
export const OBJECT_COLLECTIONS: readonly string[] = [
  '/v1/files',
  '/v1/uploads',
  '/v1/batches',
  '/v1/vector_stores',
  '/v1/fine_tuning/jobs',
  '/v1/containers',
  '/v1/conversations',
  '/v1/responses',
];

/** Request-body fields that name an object by id: each must belong to the caller's team. */
export const ID_REFERENCE_FIELDS: readonly string[] = ['file_id', 'file_ids', 'input_file_id', 'training_file', 'validation_file', 'previous_response_id', 'vector_store_ids', 'conversation'];

/** A path split into its collection, the object id and what follows; or the collection itself. */
export interface ObjectPath {
  collection: string;
  /** Undefined for the collection itself (create, list). */
  id?: string;
  /** Below the object, e.g. "/content", "/input_items"; "" for the object itself. */
  rest: string;
}

export function objectPath(path: string): ObjectPath | undefined {
  for (const c of OBJECT_COLLECTIONS) {
    if (path === c) return { collection: c, rest: '' };
    if (path.startsWith(`${c}/`)) {
      const tail = path.slice(c.length + 1);
      const slash = tail.indexOf('/');
      const id = slash === -1 ? tail : tail.slice(0, slash);
      if (!id) return undefined;
      return { collection: c, id, rest: slash === -1 ? '' : tail.slice(slash) };
    }
  }
  return undefined;
}

/** Ids a JSON request body refers to (strings and arrays of strings in ID_REFERENCE_FIELDS, top level). */
export function referencedIds(body: unknown): string[] {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return [];
  const ids: string[] = [];
  for (const field of ID_REFERENCE_FIELDS) {
    const v = (body as Record<string, unknown>)[field];
    if (typeof v === 'string') {
      ids.push(v);
    } else if (Array.isArray(v)) {
      for (const x of v) if (typeof x === 'string') ids.push(x);
    } else if (v && typeof v === 'object' && typeof (v as { id?: unknown }).id === 'string') {
      ids.push((v as { id: string }).id); // e.g. "conversation": {"id": "conv_..."}
    }
  }
  return ids;
}
