// lightning-wall: behaviour of the wall page (the filter's 402 for browsers) and of the leave
// page. Served by the sidecar from the site's own origin, so the pages need no inline script
// (CSP: script-src 'self') and the SameSite=Strict cookie travels with every call.
(function () {
  'use strict';
  var BASE = '/.well-known/lightning-wall/';

  function $(id) { return document.getElementById(id); }

  function say(el, text, kind) {
    el.textContent = text;
    el.className = 'lw-status' + (kind ? ' lw-' + kind : '');
  }

  function json(response) {
    var retry = parseInt(response.headers.get('Retry-After') || '', 10);
    return response.json().then(function (body) {
      return { status: response.status, body: body, retryAfter: retry > 0 ? retry : 1 };
    });
  }

  function status(headers, wait) {
    return fetch(BASE + 'deposit?wait=' + wait, {
      headers: headers, credentials: 'same-origin', cache: 'no-store'
    }).then(json);
  }

  function copyButton(invoice, live) {
    var button = $('lw-copy');
    var box = $('lw-invoice');
    button.hidden = false;
    button.addEventListener('click', function () {
      var done = function () { say(live, 'Invoice copied.'); };
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(invoice).then(done, function () { box.select(); });
      } else {
        box.select();
        if (document.execCommand('copy')) { done(); }
      }
    });
  }

  function weblnButton(wall, live) {
    if (!window.webln) { return; }
    var button = $('lw-webln');
    button.hidden = false;
    button.addEventListener('click', function () {
      window.webln.enable().then(function () {
        return window.webln.sendPayment(wall.dataset.invoice);
      }).then(function (paid) {
        if (wall.dataset.mode === 'pay' && /^[0-9a-f]{64}$/i.test(paid.preimage || '')) {
          // Pay tokens: the wallet handed us the preimage, the proof the filter checks.
          document.cookie = 'lightning-wall=' + wall.dataset.macaroon + ':' + paid.preimage +
            '; Path=/; SameSite=Strict' + (location.protocol === 'https:' ? '; Secure' : '');
          location.reload();
        }
      }, function (e) { say(live, 'The wallet did not pay: ' + (e && e.message || e), 'bad'); });
    });
  }

  // Deposits: wait for the hold invoice to be held. The status answer then sets the cookie,
  // and a reload shows the page that was asked for.
  function awaitDeposit(wall, live) {
    var auth = { Authorization: 'L402 ' + wall.dataset.macaroon + ':' };
    var failures = 0;
    function poll() {
      status(auth, 25).then(function (r) {
        failures = 0;
        var state = r.body && r.body.state;
        if (r.status === 200 && state === 'held') {
          say(live, 'Deposit held. Continuing…', 'ok');
          location.reload();
        } else if (r.status === 200 && state === 'awaiting_payment') {
          poll();
        } else if (r.status === 429 || r.status === 503) {
          // Too many status requests waiting (this page open twice, a busy sidecar): ask again
          // when told to.
          setTimeout(poll, 1000 * Math.min(r.retryAfter, 30));
        } else if (state === 'expired') {
          say(live, 'This invoice expired. Reload the page for a new one.', 'bad');
        } else {
          say(live, 'This deposit ended (' + (state || r.status) + '). Reload the page to start again.', 'bad');
        }
      }, function () {
        failures += 1;
        say(live, 'Connection lost; retrying…');
        setTimeout(poll, Math.min(30000, 1000 * failures));
      });
    }
    say(live, 'Waiting for your payment…');
    // A visitor who already holds a deposit (arriving from another site, where the Strict
    // cookie was not sent) continues at once without paying again.
    status({}, 0).then(function (r) {
      if (r.status === 200 && r.body.state === 'held') {
        location.reload();
      } else {
        poll();
      }
    }, poll);
  }

  function wallPage(wall) {
    var live = $('lw-status');
    copyButton(wall.dataset.invoice, live);
    weblnButton(wall, live);
    if (wall.dataset.mode === 'deposit') {
      awaitDeposit(wall, live);
    } else {
      say(live, '');
    }
  }

  function leavePage() {
    var live = $('lw-status');
    var form = $('lw-leave-form');
    form.hidden = true;
    // After a leave the refund waits out a short grace (a forfeit already decided still
    // wins); follow it until the node has cancelled the invoice.
    function followRefund(credential, tries) {
      status({ Authorization: 'L402 ' + credential }, 0).then(function (r) {
        var state = r.body && r.body.state;
        if (state === 'refunded') {
          say(live, 'Deposit refunded: the pending payment in your wallet is cancelled and the sats are back.', 'ok');
        } else if (state === 'leaving' && tries > 0) {
          setTimeout(function () { followRefund(credential, tries - 1); }, 500);
        } else if (state === 'leaving') {
          say(live, 'Your refund is on its way; your wallet will show it shortly.');
        } else {
          say(live, 'Your deposit ended (' + (state || r.status) + ').', state === 'forfeited' ? 'bad' : '');
        }
      }, function () { say(live, 'Your refund is on its way; your wallet will show it shortly.'); });
    }
    status({}, 0).then(function (r) {
      if (r.status === 200 && r.body.state === 'held') {
        say(live, 'Your deposit of ' + r.body.amount_sat + ' sats is held.');
        form.hidden = false;
      } else if (r.status === 200 && r.body.state === 'leaving') {
        say(live, 'Your refund is on its way.');
      } else if (r.status === 200) {
        say(live, 'No deposit is held (' + r.body.state + ').');
      } else {
        say(live, 'This browser holds no deposit for this site.');
      }
    }, function () { say(live, 'Could not reach the wall; try again.', 'bad'); });
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      fetch(BASE + 'leave', { method: 'POST', credentials: 'same-origin', cache: 'no-store' })
        .then(json).then(function (r) {
          var code = r.body && r.body.error && r.body.error.code;
          if (r.status === 403 && code === 'deposit_ended') {
            form.hidden = true;
            say(live, 'This deposit has already ended.', 'bad');
            return;
          }
          if (r.status !== 200) {
            say(live, 'Could not leave: ' + ((r.body.error && r.body.error.message) || r.status), 'bad');
            return;
          }
          form.hidden = true;
          var rewards = typeof r.body.reward_balance_sat === 'number' && r.body.reward_balance_sat > 0
            ? ' Rewards earned: ' + r.body.reward_balance_sat + ' sats.' : '';
          if (r.body.state === 'leaving') {
            say(live, 'Leaving: your refund is on its way…' + rewards);
            followRefund(r.body.status_credential, 20);
            return;
          }
          var text = r.body.state === 'refunded'
            ? 'Deposit refunded: the pending payment in your wallet is cancelled and the sats are back.'
            : 'Your deposit had already ended (' + r.body.state + ').';
          say(live, text + rewards, r.body.state === 'refunded' ? 'ok' : '');
        }, function () { say(live, 'Could not reach the wall; try again.', 'bad'); });
    });
  }

  var wall = $('lw-wall');
  if (wall) { wallPage(wall); }
  var leave = $('lw-leave');
  if (leave) { leavePage(); }
})();
