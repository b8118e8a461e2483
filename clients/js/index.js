// lightning-wall's client helper for JavaScript: a fetch-compatible wrapper that answers a 402
// by paying through the caller's wallet hook and retries with the credential
// (docs/programs.md). No runtime dependencies: Node 20's global fetch (or any fetch passed in).
// It never pays without asking the hook, and never sends a credential in a URL.

const CREDENTIAL_HEADER = 'x-lightning-wall-credential';
const ENDED = new Set(['refunded', 'forfeited', 'expired']);

/** Parses the L402 `WWW-Authenticate` values of a 402 (docs/wire-format.md "Challenge"). */
export function parseChallenge(headerValue) {
  // Several challenges may be folded into one value ("LSAT …, L402 …"); take the L402 one.
  const at = headerValue.search(/(^|,\s*)L402\s/i);
  const text = at < 0 ? headerValue : headerValue.slice(at).replace(/^,\s*/, '');
  if (!/^(L402|LSAT)\s/i.test(text)) return null;
  const params = {};
  for (const m of text.matchAll(/([A-Za-z_][A-Za-z0-9_]*)="([^"]*)"/g)) {
    const name = m[1].toLowerCase();
    if (name === 'lsat' || name === 'l402') continue;
    if (!(name in params)) params[name] = m[2];
    // A second scheme's parameters start again at macaroon=: stop at the first challenge.
    if (name === 'macaroon' && Object.keys(params).length > 1) break;
  }
  if (!params.macaroon || !params.invoice) return null;
  return {
    macaroon: params.macaroon,
    invoice: params.invoice,
    mode: params.mode === 'deposit' ? 'deposit' : 'pay',
    statusUrl: params.status_url ?? null,
    leaveUrl: params.leave_url ?? null,
    termsUrl: params.terms_url ?? null,
  };
}

export class WallError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'WallError';
    this.code = code;
  }
}

/**
 * A session with one or more sites behind lightning-wall.
 *
 *   const wall = new LightningWall({ pay: async (invoice, challenge) => preimageOrNull });
 *   const res = await wall.fetch('https://site/api/quote');
 *   await wall.leave();
 *
 * `pay` pays the BOLT 11 invoice and resolves to the preimage (64 hex) if the wallet gives
 * one, else null; it sees the challenge (mode, amount_sat, route_id) and may refuse by
 * throwing. Request bodies must be replayable (string, Buffer, URLSearchParams): a paid
 * request is sent again.
 */
export class LightningWall {
  constructor({ pay, fetch: fetchImpl = globalThis.fetch, waitTimeoutMs = 120_000 } = {}) {
    if (typeof pay !== 'function') throw new TypeError('LightningWall needs a pay(invoice) hook');
    this.pay = pay;
    this.http = fetchImpl;
    this.waitTimeoutMs = waitTimeoutMs;
    this.byRoute = new Map(); // route id -> { credential, mode, leaveUrl, statusUrl }
    this.routeOfPath = new Map(); // origin + path -> route id, so a known path skips a 402
    this.fetch = this.fetch.bind(this);
  }

  async fetch(input, init = {}) {
    const url = new URL(input instanceof Request ? input.url : input);
    const key = url.origin + url.pathname;
    const known = this.byRoute.get(this.routeOfPath.get(key)) ?? this.last;
    let sent = known?.credential ?? null;
    let res = await this.send(input, init, sent);
    if (res.status === 401 && sent) {
      // A credential for another route (or one that ended): ask for this route's challenge.
      sent = null;
      res = await this.send(input, init, null);
    }
    if (res.status !== 402) return this.adopt(res, key, known);
    const challenge = await readChallenge(res);
    if (!challenge) return res;
    const held = this.byRoute.get(challenge.routeId);
    if (held && held.credential !== sent) {
      const retry = await this.send(input, init, held.credential);
      if (retry.status !== 401 && retry.status !== 402) return this.adopt(retry, key, held);
    }
    const entry = await this.acquire(challenge, url);
    this.byRoute.set(challenge.routeId, entry);
    return this.adopt(await this.send(input, init, entry.credential), key, entry);
  }

  /** Leaves every held deposit (or the one of `routeId`): one POST each; the refund follows. */
  async leave(routeId) {
    const answers = [];
    for (const [id, entry] of [...this.byRoute]) {
      if (entry.mode !== 'deposit' || (routeId !== undefined && id !== routeId)) continue;
      const res = await this.http(entry.leaveUrl, {
        method: 'POST',
        headers: { authorization: `L402 ${entry.credential}` },
      });
      const body = await res.json().catch(() => null);
      if (!res.ok) {
        throw new WallError(body?.error?.code ?? `http_${res.status}`, `leave answered ${res.status}`);
      }
      this.byRoute.delete(id);
      if (this.last === entry) this.last = undefined;
      answers.push(body);
    }
    return answers;
  }

  /** The deposit's status (state, reason) as the sidecar reports it. */
  async depositStatus(routeId) {
    const entry = this.byRoute.get(routeId);
    if (!entry || entry.mode !== 'deposit') throw new WallError('no_deposit', `no deposit for ${routeId}`);
    return (await this.poll(entry.statusUrl, entry.macaroon, 0)).body;
  }

  async send(input, init, credential) {
    const headers = new Headers(init.headers ?? (input instanceof Request ? input.headers : undefined));
    if (credential) headers.set('authorization', `L402 ${credential}`);
    else headers.delete('authorization');
    return this.http(input, { ...init, headers });
  }

  adopt(res, key, entry) {
    if (!entry || res.status === 401 || res.status === 402) return res;
    // A pay credential sent with an empty proof comes back whole (pay without the preimage).
    const full = res.headers.get(CREDENTIAL_HEADER);
    if (full && full.startsWith(entry.macaroon + ':')) entry.credential = full;
    this.routeOfPath.set(key, entry.routeId);
    this.last = entry;
    return res;
  }

  async acquire(challenge, url) {
    const preimage = await this.pay(challenge.invoice, challenge);
    const base = {
      routeId: challenge.routeId,
      mode: challenge.mode,
      macaroon: challenge.macaroon,
    };
    if (challenge.mode !== 'deposit') {
      if (preimage != null && !/^[0-9a-fA-F]{64}$/.test(preimage)) {
        throw new WallError('bad_preimage', 'the wallet returned something that is not a preimage');
      }
      return { ...base, credential: `${challenge.macaroon}:${preimage ?? ''}` };
    }
    const statusUrl = new URL(challenge.statusUrl, url).href;
    const leaveUrl = new URL(challenge.leaveUrl, url).href;
    const deadline = Date.now() + this.waitTimeoutMs;
    for (;;) {
      const left = Math.ceil((deadline - Date.now()) / 1000);
      if (left <= 0) throw new WallError('not_held', 'the deposit was not held in time');
      const { status, body } = await this.poll(statusUrl, challenge.macaroon, Math.min(30, left));
      if (status !== 200) {
        throw new WallError(body?.error?.code ?? `http_${status}`, `deposit status answered ${status}`);
      }
      if (body.state === 'held' && body.credential) {
        return { ...base, credential: body.credential, statusUrl, leaveUrl };
      }
      if (ENDED.has(body.state)) throw new WallError(body.state, `the deposit ${body.state}`);
    }
  }

  async poll(statusUrl, macaroon, waitS) {
    const url = new URL(statusUrl);
    if (waitS > 0) url.searchParams.set('wait', String(waitS));
    const res = await this.http(url, { headers: { authorization: `L402 ${macaroon}:` } });
    return { status: res.status, body: await res.json().catch(() => null) };
  }
}

async function readChallenge(res) {
  const header = res.headers.get('www-authenticate');
  const challenge = header ? parseChallenge(header) : null;
  if (!challenge) return null;
  const body = await res
    .clone()
    .json()
    .catch(() => ({}));
  if (challenge.mode === 'deposit' && !(challenge.statusUrl && challenge.leaveUrl)) return null;
  return {
    ...challenge,
    routeId: typeof body.route_id === 'string' ? body.route_id : '',
    amountSat: body.amount_sat,
    paymentHash: body.payment_hash,
  };
}
