#!/usr/bin/env node
// Peer benchmark: verifications/s of the l402 token (bench/peers/, `make bench`) with npm
// `macaroon` 3.0.4 (pinned in package.json / package-lock.json, `npm ci`), one thread.
//
// Reads the token JSON of `cargo run --release -p l402 --example peer_token` on stdin and times
// the same verification work as l402's `verify_authorization` for SECONDS (argv[2]): parse the
// `Authorization` value, decode the V2 binary macaroon, pick the master key named by lw_key,
// derive the root key (HMAC-SHA256(master, SHA-256(identifier)), node:crypto), check the MAC
// chain (the library, sjcl) with every first-party caveat checked for its meaning, then the
// preimage against the payment hash in the identifier. Prints one JSON line.
'use strict';
const crypto = require('node:crypto');
const fs = require('node:fs');
const macaroon = require('macaroon');

const token = JSON.parse(fs.readFileSync(0, 'utf8'));
const masters = Object.fromEntries(
  Object.entries(token.master_keys).map(([k, v]) => [k, Buffer.from(v, 'hex')]));
const text = new TextDecoder();

function check(keyId) {
  return (caveat) => {
    const i = caveat.indexOf('=');
    const name = caveat.slice(0, i);
    const value = caveat.slice(i + 1);
    switch (name) {
      case 'services':
        return value.split(',').some((s) => s.trim().split(':')[0] === token.service) ? null : 'services';
      case `${token.service}_valid_until`:
        return token.now < Number(value) ? null : 'expired';
      case 'lw_mode':
        return value === token.mode ? null : 'mode';
      case 'lw_route':
        return value === token.route ? null : 'route';
      case 'lw_key':
        return value === keyId ? null : 'key';
      case 'lw_methods':
        return value.split(',').includes('GET') ? null : 'method';
      default:
        return 'unknown caveat';
    }
  };
}

function verify(authorization) {
  const space = authorization.indexOf(' ');
  const scheme = authorization.slice(0, space);
  if (scheme !== 'L402' && scheme !== 'LSAT') throw new Error('scheme');
  const credential = authorization.slice(space + 1);
  const colon = credential.lastIndexOf(':');
  const m = macaroon.importMacaroon(credential.slice(0, colon));
  const preimage = Buffer.from(credential.slice(colon + 1), 'hex');
  const keyCaveat = m.caveats.map((c) => text.decode(c.identifier)).find((c) => c.startsWith('lw_key='));
  const keyId = keyCaveat.slice('lw_key='.length);
  const id = m.identifier;
  const root = crypto.createHmac('sha256', masters[keyId])
    .update(crypto.createHash('sha256').update(id).digest()).digest();
  m.verify(new Uint8Array(root), check(keyId));
  const hash = crypto.createHash('sha256').update(preimage).digest();
  if (!hash.equals(Buffer.from(id.slice(2, 34)))) throw new Error('preimage');
  return true;
}

const seconds = Number(process.argv[2] || 3);
const auth = token.authorization;
verify(auth);
let rejected = false;
try {
  verify(auth.slice(0, -1) + (auth.endsWith('0') ? '1' : '0'));
} catch (e) {
  rejected = true;
}
if (!rejected) throw new Error('npm macaroon accepted a wrong preimage');
let n = 0;
const start = process.hrtime.bigint();
const elapsed = () => Number(process.hrtime.bigint() - start) / 1e9;
while (elapsed() < seconds) {
  for (let i = 0; i < 100; i++) verify(auth);
  n += 100;
}
console.log(JSON.stringify({
  peer: 'npm macaroon 3.0.4', node: process.version,
  verifications_per_second: n / elapsed(),
}));
