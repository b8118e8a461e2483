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
      return {
        status: response.status, body: body, retryAfter: retry > 0 ? retry : 1,
        toldToWait: retry > 0
      };
    });
  }

  function status(headers, wait) {
    return fetch(BASE + 'deposit?wait=' + wait, {
      headers: headers, credentials: 'same-origin', cache: 'no-store'
    }).then(json);
  }

  function copyButton(wall, live) {
    var invoice = wall.dataset.invoice;
    var button = $('lw-copy');
    var box = $('lw-invoice');
    button.hidden = false;
    button.addEventListener('click', function () {
      var done = function () { say(live, wall.getAttribute('data-t-copied') || 'Invoice copied.'); };
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

  // The page's texts come from the filter (the operator's `wall.text`), as data-t-* attributes.
  function t(wall, key) { return wall.getAttribute('data-t-' + key) || ''; }

  // Once held: load the page again for a GET; a link for a form that was posted (loading it
  // again would send the form twice, or ask the visitor whether to); the home page for a trap
  // path (data-continue; the filter never puts a trap path there).
  function proceed(wall, live) {
    if (wall.dataset.reload === '1') {
      say(live, t(wall, 'held_continuing'), 'ok');
      location.reload();
    } else if (wall.dataset.post === '1') {
      say(live, t(wall, 'continue_form'), 'ok');
      var link = document.createElement('a');
      link.className = 'lw-button';
      link.href = wall.dataset.continue;
      link.textContent = t(wall, 'continue_link');
      live.appendChild(document.createElement('br'));
      live.appendChild(link);
    } else {
      say(live, t(wall, 'held_continuing'), 'ok');
      location.assign(wall.dataset.continue);
    }
  }

  // Deposits: wait for the hold invoice to be held (long-poll). A phone that switches to the
  // wallet app suspends this tab: coming back (visibility, focus) and the "I have paid" button
  // check at once instead of waiting for the next poll or back-off.
  function awaitDeposit(wall, live) {
    var auth = { Authorization: 'L402 ' + wall.dataset.macaroon + ':' };
    var failures = 0;
    var done = false;
    function settled(r) {
      var state = r.body && r.body.state;
      if (r.status === 200 && state === 'held') {
        done = true;
        proceed(wall, live);
        return true;
      }
      if (state === 'expired') {
        done = true;
        say(live, t(wall, 'expired'), 'bad');
        return true;
      }
      if (r.status === 200 && state !== 'awaiting_payment') {
        done = true;
        say(live, t(wall, 'ended').replace('{state}', state || r.status), 'bad');
        return true;
      }
      return false;
    }
    function poll() {
      if (done) { return; }
      status(auth, 25).then(function (r) {
        failures = 0;
        if (settled(r)) { return; }
        if (r.status === 200 && !r.toldToWait) {
          poll();
        } else if (r.status === 200 || r.status === 429 || r.status === 503) {
          // No place to wait (a 200 with Retry-After: the state at once), too many status
          // requests waiting (this page open twice), a busy sidecar: ask again when told to.
          setTimeout(poll, 1000 * Math.min(r.retryAfter, 30));
        } else {
          done = true;
          say(live, t(wall, 'ended').replace('{state}', r.status), 'bad');
        }
      }, function () {
        failures += 1;
        say(live, t(wall, 'connection_lost'));
        setTimeout(poll, Math.min(30000, 1000 * failures));
      });
    }
    // One immediate look (no wait): the button, and a tab that comes back to the front. The
    // node may hold the payment a moment before the wall has seen it (the wallet app says
    // "paid" at once), and the tab's long-poll may have died while it was suspended: a tab
    // coming back that finds nothing looks again each second, five times (the button is
    // pressed again by the visitor, who is told "not yet").
    function checkNow(fromButton, tries) {
      if (done) { return; }
      tries = tries || 0;
      status(auth, 0).then(function (r) {
        if (settled(r)) { return; }
        if (fromButton && tries === 0) { say(live, t(wall, 'not_paid_yet')); }
        if (!fromButton && tries < 5) { setTimeout(function () { checkNow(false, tries + 1); }, 1000); }
      }, function () { say(live, t(wall, 'connection_lost')); });
    }
    var form = $('lw-check');
    if (form) {
      form.addEventListener('submit', function (event) {
        event.preventDefault();
        checkNow(true);
      });
    }
    document.addEventListener('visibilitychange', function () {
      if (document.visibilityState === 'visible') { checkNow(false); }
    });
    window.addEventListener('focus', function () { checkNow(false); });
    say(live, t(wall, 'waiting'));
    // A visitor who already holds a deposit (arriving from another site, where the Strict
    // cookie was not sent) continues at once without paying again.
    status({}, 0).then(function (r) {
      if (r.status === 200 && r.body.state === 'held') {
        done = true;
        proceed(wall, live);
      } else {
        poll();
      }
    }, poll);
  }

  function wallPage(wall) {
    var live = $('lw-status');
    copyButton(wall, live);
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
