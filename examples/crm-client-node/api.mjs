// The controller's CRM API over the global fetch (Node 18+), from /openapi.json:
// bearer API key, JSON bodies, errors as RFC 9457 problems (application/problem+json,
// with `code` and every bad field or row in `errors`), Idempotency-Key on every POST.
import { randomUUID } from 'node:crypto';

/** A request answered otherwise than the contract says, or the data disagreeing with it. */
export class Mismatch extends Error {}

/** Network failures and these answers are retried; a POST only with its Idempotency-Key,
 *  so the retry gets the first answer instead of doing it twice. */
const RETRY_STATUSES = new Set([409, 502, 503, 504]); // 409 only when idempotency_key_in_use
const RETRY_BACKOFF_SECONDS = [0.5, 1, 2, 4]; // four retries, then the error stands
const REQUEST_TIMEOUT_MS = 30_000; // the longest answer we wait for (an export streams within it)

const sleep = (seconds) => new Promise((done) => setTimeout(done, seconds * 1000));

function describeProblem(method, path, status, problem) {
  if (!problem || typeof problem !== 'object') return `${method} ${path}: HTTP ${status}`;
  const errors = (problem.errors || []).map((e) =>
    `  - ${e.line !== undefined ? `line ${e.line}: ` : ''}${e.field ?? ''}${e.external_id ? ` (${e.external_id})` : ''}: ${e.reason}`);
  return [`${method} ${path}: ${status} ${problem.code} — ${problem.detail}`, ...errors].join('\n');
}

export class Api {
  constructor(baseUrl, apiKey, log = () => {}) {
    this.base = baseUrl.replace(/\/+$/, '');
    this.apiKey = apiKey;
    this.log = log;
  }

  /** One call. `expect`: the statuses that are an answer (others throw a Mismatch naming
   *  the problem). `idempotent`: send an Idempotency-Key (a fresh UUID unless a string). */
  async call(method, path, { json, body, contentType, accept, expect = [200], idempotent = method === 'POST' } = {}) {
    const headers = { Authorization: `Bearer ${this.apiKey}` };
    if (accept) headers.Accept = accept;
    if (json !== undefined) { body = JSON.stringify(json); headers['Content-Type'] = 'application/json'; }
    else if (contentType) headers['Content-Type'] = contentType;
    const key = idempotent === true ? randomUUID() : idempotent || null;
    if (key) headers['Idempotency-Key'] = key;
    for (let attempt = 0; ; attempt += 1) {
      const retryable = method === 'GET' || key !== null;
      let response;
      try {
        response = await fetch(this.base + path, { method, headers, body, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
      } catch (err) {
        if (!retryable || attempt >= RETRY_BACKOFF_SECONDS.length) {
          throw new Mismatch(`${method} ${path}: no answer from ${this.base} (${err.cause?.code || err.name}: ${err.message})`);
        }
        this.log(`${method} ${path}: ${err.message}; retrying in ${RETRY_BACKOFF_SECONDS[attempt]} s with the same Idempotency-Key`);
        await sleep(RETRY_BACKOFF_SECONDS[attempt]);
        continue;
      }
      const type = response.headers.get('content-type') || '';
      const text = await response.text();
      const data = type.includes('json') && text ? JSON.parse(text) : text;
      const answer = { status: response.status, headers: response.headers, body: data, key };
      if (expect.includes(response.status)) return answer;
      const inUse = response.status !== 409 || data?.code === 'idempotency_key_in_use';
      if (retryable && inUse && RETRY_STATUSES.has(response.status) && attempt < RETRY_BACKOFF_SECONDS.length) {
        const wait = Number(response.headers.get('retry-after')) || RETRY_BACKOFF_SECONDS[attempt];
        this.log(`${method} ${path}: ${response.status}; retrying in ${wait} s`);
        await sleep(wait);
        continue;
      }
      if (response.status >= 400 && !type.startsWith('application/problem+json')) {
        throw new Mismatch(`${method} ${path}: ${response.status} answered as ${type || 'no Content-Type'}, not application/problem+json`);
      }
      throw new Mismatch(describeProblem(method, path, response.status, data));
    }
  }

  /** Every item of a cursor-paginated list: `after` from each page's `next`, until a page
   *  comes back empty. Returns { items, pages } (pages: those that held items). */
  async pages(path, params, limit) {
    const items = [];
    let after = null;
    for (let pages = 1; ; pages += 1) {
      const q = new URLSearchParams({ ...params, limit: String(limit), ...(after === null ? {} : { after: String(after) }) });
      const { body } = await this.call('GET', `${path}?${q}`);
      if (!Array.isArray(body.items)) throw new Mismatch(`GET ${path}: no items list in the page`);
      if (body.items.length === 0) return { items, pages: pages - 1 };
      if (body.items.length > limit) throw new Mismatch(`GET ${path}: ${body.items.length} items, asked for at most ${limit}`);
      if (body.next === null || body.next === undefined || body.next === after) {
        throw new Mismatch(`GET ${path}: a full page without a new cursor (next=${body.next})`);
      }
      items.push(...body.items);
      after = body.next;
    }
  }
}
