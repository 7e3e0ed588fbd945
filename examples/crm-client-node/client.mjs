#!/usr/bin/env node
// A CRM's integration with the simrotor controller, written from /openapi.json and
// docs/controller.md alone, with nothing but Node's built-ins (Node 18+: global fetch,
// node:crypto, node:http, node:util parseArgs). It runs one campaign through the whole
// contract and checks every answer against what the document promises:
//
//   1. check this client's signature recipe against the document's (x-signature, worked example)
//   2. listen for webhooks and register the URL (POST /v1/webhooks)
//   3. create the campaign as a draft, with an Idempotency-Key, and send that request again
//   4. import the contacts (CSV or JSON, each with the CRM's external_id), all or nothing
//   5. start it, and wait until every contact is done
//   6. page its results with the cursor; wait until a verified webhook came for each
//   7. look every contact up by external_id; the debtors' replies (inbound webhooks) against
//      GET /v1/inbound and each contact's history
//   8. read the campaign report and the CSV export, and check they add up to the results
//
// Progress goes to stderr; the last line on stdout is one JSON summary. Exit 0 when
// everything agreed, 1 on the first mismatch (with what differed), 2 on a usage error.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { extname } from 'node:path';
import { parseArgs } from 'node:util';

import { Api, Mismatch } from './api.mjs';
import { csvRecords, SEPARATORS, unneutralised } from './csv.mjs';
import { DELIVERY_HEADER, EVENT_HEADER, RECIPE, sign, verify } from './signature.mjs';

const USAGE = `usage: node client.mjs --contacts FILE [options]

  --url URL             the controller (env SIMROTOR_URL; default http://127.0.0.1:8480)
  --api-key KEY         an API key from \`simrotor controller keys create\` (env SIMROTOR_API_KEY)
  --contacts FILE       contacts to import: .csv (comma, semicolon or tab) or .json, each with an external_id
  --campaign ID         the campaign to create (env CAMPAIGN_ID; default crm-demo-<unix time>)
  --strategy FILE       the campaign's strategy as JSON (default: one call, then an SMS)
  --listen-host HOST    where the webhook server listens (env WEBHOOK_HOST; default 127.0.0.1)
  --listen-port PORT    its port (env WEBHOOK_PORT; default 0: any free port)
  --webhook-url URL     the URL the controller posts to, when it is not http://HOST:PORT/simrotor/webhook
                        (behind a proxy or NAT) (env WEBHOOK_URL)
  --webhook-secret S    the signing secret to register, 16-200 characters (env WEBHOOK_SECRET;
                        default: the controller draws one and its reply carries it)
  --timeout SECONDS     how long the campaign may take (default 600)
  --webhook-wait SECS   how long to wait for webhooks after the last result (default 90: the
                        controller retries a failed delivery after 10 s, 20 s, 40 s ...)
  --page-size N         results per page when paging (default 50)
  --wait-inbound N      after the last result, wait for N inbound events of the campaign (debtors
                        texting or calling back), at most --webhook-wait (default 0)
  --lose-answers N      answer 503 to the first N deliveries after recording them, as if the answer
                        had been lost: the controller sends them again and the repeats are dropped
                        by X-Simrotor-Delivery (default 0)
`;

const WEBHOOK_PATH = '/simrotor/webhook';
const MAX_BODY_BYTES = 1 << 20; // a delivery is one result or inbound event: a few kB
const POLL_SECONDS = 1; // how often the campaign's counts are read while it runs (no "done" event exists)
const WEBHOOK_POLL_SECONDS = 0.2; // deliveries are local state: a cheap check
const DEFAULT_STRATEGY = [
  { kind: 'call', attempts: 1, ring_seconds: 30 },
  { kind: 'sms', text: 'Dzień dobry {name}, prosimy o wpłatę {amount} {currency}.' },
];
// the fields a webhook shares with its row in GET /v1/results and GET /v1/inbound
const RESULT_FIELDS = ['seq', 'job_id', 'campaign_id', 'contact_id', 'external_id', 'kind', 'callee', 'outcome',
  'reason', 'final', 'number_shown'];
const INBOUND_FIELDS = ['seq', 'id', 'kind', 'from', 'to', 'text', 'contact_id', 'external_id', 'campaign_id',
  'opted_out', 'choice'];

const log = (msg) => process.stderr.write(`crm-client: ${msg}\n`);
const sleep = (seconds) => new Promise((done) => setTimeout(done, seconds * 1000));
const nowSeconds = () => Date.now() / 1000;
const digest = (bytes) => createHash('sha256').update(bytes).digest('hex');

class UsageError extends Error {}

function expectEqual(what, got, want) {
  const a = JSON.stringify(got);
  const b = JSON.stringify(want);
  if (a !== b) throw new Mismatch(`${what}: got ${a}, expected ${b}`);
}

function positive(name, text, { integer = false, min = 0 } = {}) {
  const n = Number(text);
  if (!Number.isFinite(n) || n < min || (integer && !Number.isInteger(n))) {
    throw new UsageError(`--${name}: ${JSON.stringify(text)} is not ${integer ? 'an integer' : 'a number'} of at least ${min}`);
  }
  return n;
}

function options(argv, env) {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: Object.fromEntries(['url', 'api-key', 'contacts', 'campaign', 'strategy', 'listen-host', 'listen-port',
        'webhook-url', 'webhook-secret', 'timeout', 'webhook-wait', 'page-size', 'wait-inbound', 'lose-answers']
        .map((k) => [k, { type: 'string' }]).concat([['help', { type: 'boolean' }]])),
    }).values;
  } catch (err) {
    throw new UsageError(err.message);
  }
  if (parsed.help) { process.stdout.write(USAGE); process.exit(0); }
  const o = {
    url: parsed.url ?? env.SIMROTOR_URL ?? 'http://127.0.0.1:8480',
    apiKey: parsed['api-key'] ?? env.SIMROTOR_API_KEY,
    contacts: parsed.contacts ?? env.CONTACTS,
    campaign: parsed.campaign ?? env.CAMPAIGN_ID ?? `crm-demo-${Math.floor(nowSeconds())}`,
    strategy: DEFAULT_STRATEGY,
    listenHost: parsed['listen-host'] ?? env.WEBHOOK_HOST ?? '127.0.0.1',
    listenPort: positive('listen-port', parsed['listen-port'] ?? env.WEBHOOK_PORT ?? '0', { integer: true }),
    webhookUrl: parsed['webhook-url'] ?? env.WEBHOOK_URL,
    webhookSecret: parsed['webhook-secret'] ?? env.WEBHOOK_SECRET,
    timeout: positive('timeout', parsed.timeout ?? '600', { min: 1 }),
    webhookWait: positive('webhook-wait', parsed['webhook-wait'] ?? '90', { min: 1 }),
    pageSize: positive('page-size', parsed['page-size'] ?? '50', { integer: true, min: 1 }),
    waitInbound: positive('wait-inbound', parsed['wait-inbound'] ?? '0', { integer: true }),
    loseAnswers: positive('lose-answers', parsed['lose-answers'] ?? '0', { integer: true }),
  };
  if (!o.apiKey) throw new UsageError('no API key: give --api-key or set SIMROTOR_API_KEY');
  if (!o.contacts) throw new UsageError('no contacts: give --contacts FILE (.csv or .json)');
  if (!['.csv', '.json'].includes(extname(o.contacts).toLowerCase())) {
    throw new UsageError(`--contacts ${o.contacts}: expected a .csv or .json file`);
  }
  if (o.webhookSecret !== undefined && (o.webhookSecret.length < 16 || o.webhookSecret.length > 200)) {
    throw new UsageError('--webhook-secret: 16 to 200 characters (the controller\'s bounds)');
  }
  if (parsed.strategy) {
    try {
      o.strategy = JSON.parse(readFileSync(parsed.strategy, 'utf8'));
    } catch (err) {
      throw new UsageError(`--strategy ${parsed.strategy}: ${err.message}`);
    }
  }
  try {
    o.contactsBody = readFileSync(o.contacts);
  } catch (err) {
    throw new UsageError(`--contacts ${o.contacts}: ${err.message}`);
  }
  return o;
}

/** Step 1: the document's recipe is the one this client implements, and the client's
 *  sign() reproduces the document's worked example of every event. */
async function checkRecipe(api) {
  const { body: doc } = await api.call('GET', '/openapi.json');
  const events = Object.keys(doc.webhooks || {}).sort();
  expectEqual('/openapi.json webhooks', events, ['inbound', 'result']);
  for (const event of events) {
    const recipe = doc.webhooks[event].post['x-signature'];
    for (const [field, value] of Object.entries(RECIPE)) {
      expectEqual(`/openapi.json webhooks.${event}.post.x-signature.${field}`, recipe[field], value);
    }
    const ex = recipe.example;
    expectEqual(`the worked example of the ${event} webhook, signed by this client`,
      sign(ex.secret, ex.timestamp, Buffer.from(ex.body, 'utf8')), ex.signature);
    const stale = verify(ex.secret, { 'x-simrotor-timestamp': ex.timestamp, 'x-simrotor-signature': ex.signature },
      Buffer.from(ex.body, 'utf8'), nowSeconds());
    expectEqual(`the ${event} example verified today (it was signed in the past)`, stale, { ok: false, reason: 'stale_timestamp' });
  }
  return events;
}

/** The webhook endpoint: every delivery verified from its raw bytes; repeats of a delivery
 *  id acknowledged and dropped; what arrived kept for the checks. */
class Receiver {
  constructor(secret, loseAnswers) {
    this.secret = secret; // set once the webhook is registered
    this.loseAnswers = loseAnswers;
    this.received = 0;
    this.verified = 0;
    this.rejected = {}; // reason -> count
    this.duplicates = 0;
    this.lost = new Set(); // delivery ids answered 503 on purpose
    this.repeatedLost = new Set(); // ... and delivered again
    this.seen = new Map(); // X-Simrotor-Delivery -> sha256 of the body first accepted
    this.events = []; // { event, delivery, payload }
    this.contractErrors = []; // a delivery that broke the document (checked by the main flow)
    this.server = createServer((req, res) => this.handle(req, res));
  }

  listen(host, port) {
    return new Promise((ready, fail) => {
      this.server.once('error', fail);
      this.server.listen(port, host, () => ready(this.server.address().port));
    });
  }

  close() {
    return new Promise((done) => { this.server.close(() => done()); this.server.closeAllConnections?.(); });
  }

  answer(res, status, text) {
    res.writeHead(status, { 'Content-Type': 'text/plain' });
    res.end(text);
  }

  handle(req, res) {
    if (req.url !== WEBHOOK_PATH || req.method !== 'POST') return this.answer(res, 404, 'not a webhook URL');
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) { this.answer(res, 413, 'too large'); req.destroy(); } else chunks.push(chunk);
    });
    req.on('end', () => {
      if (size <= MAX_BODY_BYTES) this.delivery(req.headers, Buffer.concat(chunks), res);
    });
  }

  delivery(headers, body, res) {
    this.received += 1;
    const check = this.secret ? verify(this.secret, headers, body, nowSeconds()) : { ok: false, reason: 'not_registered' };
    if (!check.ok) {
      this.rejected[check.reason] = (this.rejected[check.reason] || 0) + 1;
      log(`webhook rejected (${check.reason}), delivery ${headers[DELIVERY_HEADER.toLowerCase()] ?? '-'}`);
      return this.answer(res, 401, check.reason);
    }
    this.verified += 1;
    const id = headers[DELIVERY_HEADER.toLowerCase()];
    const event = headers[EVENT_HEADER.toLowerCase()];
    const hash = digest(body);
    if (this.seen.has(id)) { // a retry or a replay: acknowledged, not processed twice
      this.duplicates += 1;
      if (this.lost.has(id)) this.repeatedLost.add(id);
      if (this.seen.get(id) !== hash) this.contractErrors.push(`delivery ${id} came again with another body`);
      return this.answer(res, 200, 'duplicate');
    }
    let payload;
    try {
      payload = JSON.parse(body.toString('utf8'));
    } catch (err) {
      this.contractErrors.push(`delivery ${id}: the body is not JSON (${err.message})`);
      return this.answer(res, 400, 'not JSON');
    }
    if (!/^[0-9]+$/.test(id ?? '')) this.contractErrors.push(`delivery without a numeric ${DELIVERY_HEADER}: ${id}`);
    if (payload.type !== event) this.contractErrors.push(`delivery ${id}: ${EVENT_HEADER} ${event}, body type ${payload.type}`);
    this.seen.set(id, hash);
    this.events.push({ event, delivery: id, payload });
    if (this.lost.size < this.loseAnswers) { // recorded, but the answer "gets lost": the controller retries
      this.lost.add(id);
      return this.answer(res, 503, 'answer lost on purpose (--lose-answers)');
    }
    return this.answer(res, 204, '');
  }
}

/** Wait for `done()` (checked every `every` s) at most `seconds`; then `why()` is the error. */
async function waitFor(done, seconds, every, why) {
  const until = nowSeconds() + seconds;
  while (!(await done())) {
    if (nowSeconds() > until) throw new Mismatch(why());
    await sleep(every);
  }
}

function externalIdsOf(o, delimiter) {
  const text = o.contactsBody.toString('utf8');
  const rows = extname(o.contacts).toLowerCase() === '.json'
    ? (() => { const j = JSON.parse(text); return Array.isArray(j) ? j : j.contacts; })()
    : csvRecords(text, SEPARATORS[delimiter]);
  return rows.map((r, i) => {
    if (!r.external_id) throw new UsageError(`${o.contacts}: row ${i + 1} has no external_id (the CRM's key this client maps results by)`);
    return String(r.external_id).trim();
  });
}

async function run(o, summary) {
  const api = new Api(o.url, o.apiKey, log);
  const id = o.campaign;
  const cpath = `/v1/campaigns/${encodeURIComponent(id)}`;

  log(`checking the signature recipe against ${o.url}/openapi.json`);
  summary.recipe_checked = await checkRecipe(api);

  const receiver = new Receiver(o.webhookSecret, o.loseAnswers);
  const port = await receiver.listen(o.listenHost, o.listenPort);
  const url = o.webhookUrl ?? `http://${o.listenHost.includes(':') ? `[${o.listenHost}]` : o.listenHost}:${port}${WEBHOOK_PATH}`;
  log(`receiving webhooks on ${url}`);
  let webhookId = null;
  try {
    const hook = await api.call('POST', '/v1/webhooks', {
      json: { url, events: ['result', 'inbound'], ...(o.webhookSecret ? { secret: o.webhookSecret } : {}) }, expect: [201],
    });
    webhookId = hook.body.id;
    if (o.webhookSecret) expectEqual('the registered secret', hook.body.secret, o.webhookSecret);
    receiver.secret = hook.body.secret;
    summary.webhook_id = webhookId;

    // 3. a draft campaign; the same request again (a CRM that timed out) gets the first answer
    const create = { id, name: `CRM demo ${id}`, strategy: o.strategy };
    const first = await api.call('POST', '/v1/campaigns', { json: create, expect: [201] });
    expectEqual(`POST /v1/campaigns: state of ${id}`, first.body.state, 'draft');
    const again = await api.call('POST', '/v1/campaigns', { json: create, idempotent: first.key, expect: [201] });
    expectEqual('the retried POST /v1/campaigns: Idempotent-Replayed', again.headers.get('idempotent-replayed'), 'true');
    expectEqual('the retried POST /v1/campaigns: its answer', again.body, first.body);
    summary.idempotent_replay = true;
    log(`campaign ${id} created as a draft (a retry with the same Idempotency-Key replayed the answer)`);

    // 4. import, all or nothing
    const csv = extname(o.contacts).toLowerCase() === '.csv';
    const imported = (await api.call('POST', `${cpath}/contacts`, {
      body: o.contactsBody, contentType: csv ? 'text/csv' : 'application/json',
    })).body;
    if (!imported.stored) throw new Mismatch(`import of ${o.contacts}: not stored (${JSON.stringify(imported)})`);
    const externalIds = externalIdsOf(o, imported.delimiter);
    expectEqual(`import of ${o.contacts}: created + updated`, imported.created + imported.updated, externalIds.length);
    summary.contacts = { imported: externalIds.length, created: imported.created, updated: imported.updated,
      delimiter: imported.delimiter ?? null, warnings: imported.warnings_total };
    log(`imported ${externalIds.length} contacts${imported.delimiter ? ` (${imported.delimiter}-separated)` : ''}`);
    const draft = (await api.call('GET', cpath)).body;
    expectEqual(`${id} after the import: state`, draft.state, 'draft');
    expectEqual(`${id} after the import: contacts.total`, draft.contacts.total, externalIds.length);
    const early = await api.pages('/v1/results', { campaign_id: id }, o.pageSize);
    expectEqual(`results of the draft ${id} (a draft dials nothing)`, early.items.length, 0);

    // 5. start, and again (asking for the state it is in is a 200); wait until done
    expectEqual(`POST ${cpath}/start: state`, (await api.call('POST', `${cpath}/start`)).body.state, 'running');
    const restart = (await api.call('POST', `${cpath}/start`)).body.state;
    if (!['running', 'done'].includes(restart)) throw new Mismatch(`a second start of ${id}: state ${restart}`);
    log(`started ${id}; waiting for its ${externalIds.length} contacts (at most ${o.timeout} s)`);
    let campaign = null;
    let shown = '';
    await waitFor(async () => {
      campaign = (await api.call('GET', cpath)).body;
      const counts = JSON.stringify(campaign.contacts);
      if (counts !== shown) { log(`${id}: ${campaign.state} ${counts}`); shown = counts; }
      if (campaign.state === 'cancelled') throw new Mismatch(`${id} was cancelled`); // paused: someone will resume it
      return campaign.state === 'done';
    }, o.timeout, POLL_SECONDS, () => `${id} not done after ${o.timeout} s: ${campaign?.state} ${JSON.stringify(campaign?.contacts)}`);
    expectEqual(`${id} when done: contacts.done`, campaign.contacts.done, externalIds.length);

    // 6. every result, by the cursor; a verified webhook for each
    const { items: results, pages } = await api.pages('/v1/results', { campaign_id: id }, o.pageSize);
    const ours = new Set(externalIds);
    results.forEach((r, i) => {
      if (i > 0 && r.seq <= results[i - 1].seq) throw new Mismatch(`results not in seq order: ${results[i - 1].seq} then ${r.seq}`);
      if (r.campaign_id !== id) throw new Mismatch(`GET /v1/results?campaign_id=${id}: result ${r.seq} is of ${r.campaign_id}`);
      if (!ours.has(r.external_id)) throw new Mismatch(`result ${r.seq}: external_id ${r.external_id} is not one we imported`);
    });
    const outcomes = {};
    for (const r of results) if (r.final) outcomes[r.outcome] = (outcomes[r.outcome] || 0) + 1;
    summary.results = { paged: results.length, pages, page_size: o.pageSize, final: results.filter((r) => r.final).length, outcomes };
    log(`${results.length} results in ${pages} pages of at most ${o.pageSize}`);
    const pushed = (event = 'result') => new Map(receiver.events
      .filter((e) => e.event === event && e.payload.campaign_id === id).map((e) => [e.payload.seq, e.payload]));
    await waitFor(() => results.every((r) => pushed().has(r.seq)) && receiver.repeatedLost.size === receiver.lost.size,
      o.webhookWait, WEBHOOK_POLL_SECONDS,
      () => `after ${o.webhookWait} s, ${results.filter((r) => !pushed().has(r.seq)).length} of ${results.length} results `
        + `came by no verified webhook, and ${receiver.lost.size - receiver.repeatedLost.size} lost answers were not retried`);
    const byWebhook = pushed();
    expectEqual(`result webhooks of ${id}: their seqs`, [...byWebhook.keys()].sort((a, b) => a - b), results.map((r) => r.seq));
    for (const r of results) {
      const p = byWebhook.get(r.seq);
      for (const f of RESULT_FIELDS) expectEqual(`result ${r.seq}: ${f} by webhook and by GET /v1/results`, p[f], r[f]);
    }
    if (receiver.contractErrors.length) throw new Mismatch(receiver.contractErrors.join('; '));

    // 7. the CRM's key: each contact by external_id, in this campaign and in all
    const contactOf = new Map();
    for (const ext of externalIds) {
      const { items } = await api.pages('/v1/contacts', { external_id: ext, campaign_id: id }, o.pageSize);
      expectEqual(`GET /v1/contacts?external_id=${ext}&campaign_id=${id}: the contacts found`, items.map((c) => c.external_id), [ext]);
      contactOf.set(items[0].id, ext);
    }
    const everywhere = await api.pages('/v1/contacts', { external_id: externalIds[0] }, o.pageSize);
    if (!everywhere.items.some((c) => c.campaign_id === id)) {
      throw new Mismatch(`GET /v1/contacts?external_id=${externalIds[0]} (every campaign) does not list the one in ${id}`);
    }
    for (const r of results) expectEqual(`result ${r.seq}: the contact's external_id`, contactOf.get(r.contact_id), r.external_id);
    summary.lookups = { by_external_id: externalIds.length, matched: contactOf.size };
    log(`looked up ${contactOf.size} contacts by external_id; every result maps to its debtor`);

    // the debtors' replies: by webhook, in GET /v1/inbound (no campaign filter there: all of
    // it is read; a CRM keeps its cursor instead) and in each replying contact's history
    await waitFor(() => pushed('inbound').size >= o.waitInbound, o.webhookWait, WEBHOOK_POLL_SECONDS,
      () => `after ${o.webhookWait} s, ${pushed('inbound').size} inbound events of ${id} of the ${o.waitInbound} awaited`);
    const inbound = (await api.pages('/v1/inbound', {}, o.pageSize)).items.filter((e) => e.campaign_id === id);
    const inboundPushed = pushed('inbound');
    expectEqual(`inbound events of ${id}: seqs by webhook and by GET /v1/inbound`,
      [...inboundPushed.keys()].sort((a, b) => a - b), inbound.map((e) => e.seq));
    for (const e of inbound) {
      for (const f of INBOUND_FIELDS) expectEqual(`inbound ${e.seq}: ${f} by webhook and by GET /v1/inbound`, inboundPushed.get(e.seq)[f], e[f]);
      expectEqual(`inbound ${e.seq}: the contact's external_id`, contactOf.get(e.contact_id), e.external_id);
      const { body: history } = await api.call('GET', `/v1/contacts/${e.contact_id}/history`);
      if (!history.inbound.some((h) => h.seq === e.seq)) throw new Mismatch(`inbound ${e.seq} is not in contact ${e.contact_id}'s history`);
    }
    summary.inbound = { paged: inbound.length, by_webhook: inboundPushed.size,
      replies: inbound.map((e) => ({ external_id: e.external_id, kind: e.kind, text: e.text, opted_out: e.opted_out })) };
    if (inbound.length) log(`${inbound.length} replies of debtors came by webhook and are in their history`);

    // 8. the report and the export add up to the results
    const { body: report } = await api.call('GET', `${cpath}/report`);
    expectEqual('report: state', report.state, 'done');
    expectEqual('report: contacts.total', report.contacts.total, externalIds.length);
    expectEqual('report: contacts.done', report.contacts.done, externalIds.length);
    expectEqual('report: results', report.results, { total: results.length, final: summary.results.final });
    const exportCsv = (await api.call('GET', `/v1/results/export?${new URLSearchParams({ campaign_id: id, format: 'csv' })}`,
      { accept: 'text/csv' })).body;
    const rows = csvRecords(exportCsv, ',');
    expectEqual('export: seq column', rows.map((r) => Number(r.seq)), results.map((r) => r.seq));
    rows.forEach((row, i) => {
      expectEqual(`export row of result ${row.seq}: external_id`, unneutralised(row.external_id), results[i].external_id);
      expectEqual(`export row of result ${row.seq}: outcome`, row.outcome, results[i].outcome);
      expectEqual(`export row of result ${row.seq}: final`, row.final, String(results[i].final));
    });
    const perStep = {}; // final results by step and outcome, from the export's step column
    for (const row of rows.filter((r) => r.final === 'true' && r.step !== '')) {
      (perStep[row.step] ??= {})[row.outcome] = (perStep[row.step][row.outcome] || 0) + 1;
    }
    const reported = Object.fromEntries(report.steps.filter((s) => s.results > 0).map((s) => [String(s.step), s.outcomes]));
    const sorted = (x) => Object.fromEntries(Object.entries(x).sort().map(([k, v]) => [k, typeof v === 'object' ? sorted(v) : v]));
    expectEqual('report: outcomes per step against the export', sorted(reported), sorted(perStep));
    summary.report = { contacts: report.contacts, results: report.results, reached_contacts: report.reached_contacts,
      contact_rate: report.contact_rate, spent: report.spent, steps: report.steps.map((s) => ({ step: s.step, kind: s.kind, results: s.results })) };
    summary.export = { rows: rows.length };
    log(`report and export agree with the ${results.length} results (contact rate ${report.contact_rate})`);
  } finally {
    summary.webhooks = { received: receiver.received, verified: receiver.verified,
      rejected: Object.values(receiver.rejected).reduce((a, b) => a + b, 0), rejected_by_reason: receiver.rejected,
      duplicates: receiver.duplicates, lost_answers: receiver.lost.size,
      accepted: Object.fromEntries(['result', 'inbound'].map((e) => [e, receiver.events.filter((x) => x.event === e).length])),
      delivery_ids: receiver.events.map((e) => e.delivery) };
    if (webhookId) await api.call('DELETE', `/v1/webhooks/${encodeURIComponent(webhookId)}`).catch((err) => log(`could not delete the webhook: ${err.message}`));
    await receiver.close();
  }
}

async function main() {
  const started = nowSeconds();
  let o;
  try {
    o = options(process.argv.slice(2), process.env);
  } catch (err) {
    process.stderr.write(`crm-client: ${err.message}\n\n${USAGE}`);
    return 2;
  }
  const summary = { ok: false, controller: o.url, campaign_id: o.campaign };
  let code = 0;
  try {
    await run(o, summary);
    summary.ok = true;
  } catch (err) {
    summary.error = err.message;
    log(err instanceof Mismatch || err instanceof UsageError ? `MISMATCH: ${err.message}` : `failed: ${err.stack}`);
    code = err instanceof UsageError ? 2 : 1;
  }
  summary.seconds = Math.round((nowSeconds() - started) * 10) / 10;
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  return code;
}

process.exitCode = await main();
