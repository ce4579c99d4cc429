import { badRequest } from './errors';

/**
 * OpenAI API paths whose objects are addressed by id: `POST <collection>` creates one,
 * `<collection>/<id>[/...]` reads, changes or deletes it, `GET <collection>` lists them. The
 * gateway records each id at creation against the creating team and answers 404 to others.
 */
export const OBJECT_COLLECTIONS: readonly string[] = ['/v1/files', '/v1/uploads', '/v1/batches', '/v1/vector_stores', '/v1/fine_tuning/jobs', '/v1/containers', '/v1/conversations', '/v1/responses'];

/**
 * Request-body fields that name a team-private object by id, from the OpenAI API reference:
 * files (`file_id`, `file_ids`, batches' `input_file_id`, fine-tuning's `training_file` and
 * `validation_file`), stored responses (`previous_response_id`), vector stores
 * (`vector_store_ids` of the file_search tool), conversations (`conversation`, a string or
 * `{id}`), containers (the code_interpreter tool's `container`, an id or `{type: "auto",
 * file_ids}`), and upload parts (`part_ids` of POST /uploads/{id}/complete). Items of stored
 * responses and conversations are named by `{"type": "item_reference", "id": ...}` in input.
 */
export const ID_REFERENCE_FIELDS: readonly string[] = [
  'file_id',
  'file_ids',
  'input_file_id',
  'training_file',
  'validation_file',
  'previous_response_id',
  'vector_store_ids',
  'conversation',
  'container',
  'part_ids',
];

/** Most distinct object ids one request may name (a 400 above): every one is looked up before the request leaves. */
export const MAX_REFERENCED_IDS = 1000;

/**
 * Paths whose request body may be multipart/form-data (a file upload), streamed to the
 * provider as received: every other pass-through body must be JSON.
 */
const MULTIPART_PATHS: readonly RegExp[] = [
  /^\/v1\/files$/,
  /^\/v1\/uploads\/[^/]+\/parts$/,
  /^\/v1\/containers\/[^/]+\/files$/,
  /^\/v1\/audio\/(transcriptions|translations)$/,
  /^\/v1\/images\/(edits|variations)$/,
  /^\/v1\/videos$/,
];

export const acceptsMultipart = (path: string): boolean => MULTIPART_PATHS.some((r) => r.test(path));

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

function add(into: Set<string>, id: string): void {
  into.add(id);
  if (into.size > MAX_REFERENCED_IDS) throw badRequest(`A request may name at most ${MAX_REFERENCED_IDS} distinct object ids (files, vector stores, containers, items...).`, 'too_many_object_ids');
}

/** An id-bearing field's value: a string, strings in an array, `{id}`, or an object to look into (`container: {file_ids}`). */
function addField(v: unknown, into: Set<string>): void {
  if (typeof v === 'string') add(into, v);
  else if (Array.isArray(v)) {
    for (const x of v) if (typeof x === 'string') add(into, x);
  } else if (v && typeof v === 'object') {
    if (typeof (v as { id?: unknown }).id === 'string')
      add(into, (v as { id: string }).id); // "conversation": {"id": ...}
    else collect(v, into);
  }
}

function collect(body: unknown, into: Set<string>): void {
  if (Array.isArray(body)) {
    for (const x of body) if (x && typeof x === 'object') collect(x, into);
    return;
  }
  if (!body || typeof body !== 'object') return;
  const o = body as Record<string, unknown>;
  if (o.type === 'item_reference' && typeof o.id === 'string') add(into, o.id);
  for (const key in o) {
    const v = o[key];
    if (REFERENCE_FIELDS.has(key)) addField(v, into);
    else if (v && typeof v === 'object') collect(v, into);
  }
}

/**
 * The distinct ids a JSON request body refers to, at any depth: values of the fields in
 * ID_REFERENCE_FIELDS (e.g. a Responses `input_file` part's file_id, a file_search tool's
 * vector_store_ids, a code_interpreter tool's container) and `item_reference` ids. A 400
 * past MAX_REFERENCED_IDS distinct ids (it stops walking there).
 */
export function referencedIds(body: unknown): string[] {
  const into = new Set<string>();
  collect(body, into);
  return [...into];
}
