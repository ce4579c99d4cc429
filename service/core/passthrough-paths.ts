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

const REFERENCE_FIELDS: ReadonlySet<string> = new Set(ID_REFERENCE_FIELDS);

/**
 * Ids a JSON request body refers to, at any depth: strings (or arrays of strings, or
 * `{"id": ...}`) under the keys in ID_REFERENCE_FIELDS, e.g. a Responses `input_file` part's
 * file_id or a file_search tool's vector_store_ids.
 */
export function referencedIds(body: unknown, into: string[] = []): string[] {
  if (Array.isArray(body)) {
    for (const x of body) if (x && typeof x === 'object') referencedIds(x, into);
    return into;
  }
  if (!body || typeof body !== 'object') return into;
  for (const key in body as Record<string, unknown>) {
    const v = (body as Record<string, unknown>)[key];
    if (REFERENCE_FIELDS.has(key)) {
      if (typeof v === 'string') {
        into.push(v);
      } else if (Array.isArray(v)) {
        for (const x of v) if (typeof x === 'string') into.push(x);
      } else if (v && typeof v === 'object' && typeof (v as { id?: unknown }).id === 'string') {
        into.push((v as { id: string }).id); // "conversation": {"id": ...}
      }
    } else if (v && typeof v === 'object') {
      referencedIds(v, into);
    }
  }
  return into;
}
