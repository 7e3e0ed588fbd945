// Verifying a simrotor webhook delivery, written from the recipe in /openapi.json
// (webhooks.<event>.post.description and its x-signature fields) and docs/controller.md,
// "Verifying a delivery, in any language". Pure: no I/O, so it is checked against the
// document's worked example before the client trusts it (client.mjs, checkRecipe).
import { createHmac, timingSafeEqual } from 'node:crypto';

// The recipe's constants, as the document states them (x-signature).
export const RECIPE = Object.freeze({
  header: 'X-Simrotor-Signature',
  timestamp_header: 'X-Simrotor-Timestamp',
  algorithm: 'HMAC-SHA256',
  signed_bytes: '{timestamp}.{body}',
  encoding: 'hex',
  prefix: 'sha256=',
  tolerance_seconds: 300, // "more than 300 seconds from your clock": a captured request replayed later
});
export const EVENT_HEADER = 'X-Simrotor-Event';
export const DELIVERY_HEADER = 'X-Simrotor-Delivery';

/** 'sha256=' + the lower-case hex HMAC-SHA256, keyed with the secret's UTF-8 bytes, of
 *  the timestamp's ASCII digits, '.', and the body bytes unchanged. */
export function sign(secret, timestamp, body) {
  const mac = createHmac('sha256', Buffer.from(secret, 'utf8'));
  mac.update(Buffer.from(`${timestamp}.`, 'ascii'));
  mac.update(body);
  return RECIPE.prefix + mac.digest('hex');
}

/** Whether a delivery is genuine and fresh: { ok: true } or { ok: false, reason }.
 *  `headers` as node:http gives them (lower-case names); `body` the raw bytes (a Buffer),
 *  read before any JSON parsing; `nowSeconds` this machine's Unix time. */
export function verify(secret, headers, body, nowSeconds) {
  const timestamp = headers[RECIPE.timestamp_header.toLowerCase()];
  const given = headers[RECIPE.header.toLowerCase()];
  if (typeof timestamp !== 'string' || !/^[0-9]+$/.test(timestamp)) {
    return { ok: false, reason: 'bad_timestamp' };
  }
  if (typeof given !== 'string' || given === '') return { ok: false, reason: 'no_signature' };
  const expected = Buffer.from(sign(secret, timestamp, body), 'ascii');
  const received = Buffer.from(given, 'utf8');
  // timingSafeEqual needs equal lengths; a length differing says nothing about the secret
  if (received.length !== expected.length || !timingSafeEqual(received, expected)) {
    return { ok: false, reason: 'bad_signature' };
  }
  if (Math.abs(nowSeconds - Number(timestamp)) > RECIPE.tolerance_seconds) {
    return { ok: false, reason: 'stale_timestamp' };
  }
  return { ok: true };
}
