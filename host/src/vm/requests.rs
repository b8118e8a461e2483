//! Driving one HTTP request through the guest, the way Envoy's filter manager drives a single
//! wasm filter in front of the router: PAUSE from a headers callback stops everything (body is
//! held back until continue), PAUSE from a body callback buffers, a local reply ends the request
//! (and is itself encoded through the filter's response callbacks), and header maps disappear
//! once their phase has continued. It never performs I/O: the embedder reads `upstream_request`
//! and feeds the response back.

use std::sync::Arc;

use crate::abi::Action;
use crate::headers::HeaderMap;
use crate::plugin::FailurePolicy;
use crate::semantics::HostSemantics;
use crate::stream::{Dir, LocalReply, Message, Phase, StreamState};

use super::Vm;

fn len_i32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// The 503 Envoy answers when the VM has failed (fail-closed), sent straight to the client.
fn failure_response() -> Message {
    let mut headers = HeaderMap::new();
    headers.add(b":status", b"503");
    Message {
        headers,
        body: Vec::new(),
        trailers: HeaderMap::new(),
    }
}

impl Vm {
    pub fn stream(&self, id: u32) -> Option<&StreamState> {
        self.store.data().streams.get(&id)
    }

    fn s(&mut self, id: u32) -> Option<&mut StreamState> {
        self.store.data_mut().streams.get_mut(&id)
    }

    /// Request headers arrive from the client.
    pub fn request_headers(&mut self, id: u32, headers: HeaderMap, end_stream: bool) {
        let failed = self.is_failed();
        let policy = self.store.data().env.plugin.failure_policy;
        let semantics = Arc::clone(&self.store.data().env.semantics);
        let headers = nginx_request_headers(&semantics, headers);
        let Some(s) = self.s(id) else { return };
        if semantics.removed_request_headers_reach_upstream {
            s.client_request_headers = Some(headers.clone());
        }
        s.req.headers = headers;
        s.req.end = end_stream;
        if failed {
            // Envoy's filter factory for a failed VM: 503 (fail-closed) or no filter (fail-open).
            s.failed = true;
            match policy {
                FailurePolicy::FailClosed => {
                    s.req.phase = Phase::Aborted;
                    s.resp.phase = Phase::Done;
                    s.resp.passed = failure_response();
                }
                FailurePolicy::FailOpen => {
                    s.bypass = true;
                    s.req.passed.headers = s.req.headers.clone();
                    s.req.phase = if end_stream { Phase::Done } else { Phase::Body };
                }
            }
            return;
        }
        s.req.headers_visible = true;
        // Until the callback returns, the headers are held here (a local reply sent from it
        // must see the request as started).
        s.req.phase = Phase::HeadersStopped;
        let n = len_i32(s.req.headers.len());
        let ex = Arc::clone(&self.exports);
        self.store.data_mut().callout_phase = true;
        let r = self.call_action3(ex.on_request_headers.as_ref(), id, n, end_stream as i32);
        self.store.data_mut().callout_phase = false;
        self.after_headers(id, Dir::Request, r);
        self.run_after();
    }

    /// A request body chunk arrives from the client.
    pub fn request_body(&mut self, id: u32, chunk: &[u8], end_stream: bool) {
        self.data(id, Dir::Request, chunk, end_stream);
        self.run_after();
    }

    /// Request trailers arrive (ends the request).
    pub fn request_trailers(&mut self, id: u32, trailers: HeaderMap) {
        self.trailers(id, Dir::Request, trailers);
        self.run_after();
    }

    /// The upstream's response headers arrive.
    pub fn response_headers(&mut self, id: u32, headers: HeaderMap, end_stream: bool) {
        let Some(s) = self.s(id) else { return };
        if s.reset || s.resp.phase != Phase::Idle {
            return;
        }
        s.resp.headers = headers;
        s.resp.end = end_stream;
        if s.pause_not_held {
            // ngx_wasm_module: the PAUSE left from the request skips this callback (and the
            // headers go to the client as the upstream sent them); body callbacks follow.
            s.resp.passed.headers = s.resp.headers.clone();
            s.resp.phase = if end_stream { Phase::Done } else { Phase::Body };
            return;
        }
        if s.bypass {
            s.resp.passed.headers = s.resp.headers.clone();
            s.resp.phase = if end_stream { Phase::Done } else { Phase::Body };
            return;
        }
        s.resp.headers_visible = true;
        s.resp.phase = Phase::HeadersStopped;
        let n = len_i32(s.resp.headers.len());
        let ex = Arc::clone(&self.exports);
        let r = self.call_action3(ex.on_response_headers.as_ref(), id, n, end_stream as i32);
        self.after_headers(id, Dir::Response, r);
        self.run_after();
    }

    /// A response body chunk arrives from the upstream.
    pub fn response_body(&mut self, id: u32, chunk: &[u8], end_stream: bool) {
        self.data(id, Dir::Response, chunk, end_stream);
        self.run_after();
    }

    pub fn response_trailers(&mut self, id: u32, trailers: HeaderMap) {
        self.trailers(id, Dir::Response, trailers);
        self.run_after();
    }

    /// Ends the stream: `proxy_on_log`, `proxy_on_done`, `proxy_on_delete` (Envoy runs the
    /// access-log pass, then destroys the filter), and forgets the context.
    pub fn finish_stream(&mut self, id: u32) -> Option<StreamState> {
        if !self.store.data().streams.contains_key(&id) {
            return None;
        }
        let ex = Arc::clone(&self.exports);
        if let Some(f) = &ex.on_log {
            let _ = self.guest(id, |s| f.call(s, id as i32));
        }
        if let Some(f) = &ex.on_done {
            let _ = self.guest(id, |s| f.call(s, id as i32));
        }
        if let Some(f) = &ex.on_delete {
            let _ = self.guest(id, |s| f.call(s, id as i32));
        }
        let d = self.store.data_mut();
        // Deferred work for a deleted context is dropped (Envoy's context is gone too).
        d.after.retain(|a| match a {
            crate::vm::After::Continue(c, _)
            | crate::vm::After::LocalReply(c, _)
            | crate::vm::After::Close(c, _) => *c != id,
        });
        // Call-outs belong to the root context in Envoy and are not cancelled with the stream:
        // their answers are still delivered (the SDK then finds no context and drops them).
        let mut s = d.streams.remove(&id)?;
        s.finished = true;
        Some(s)
    }

    fn after_headers(&mut self, id: u32, dir: Dir, r: Result<Action, crate::vm::Trapped>) {
        let Ok(action) = r else {
            self.fail_stream(id);
            return;
        };
        let not_held =
            dir == Dir::Request && self.store.data().env.semantics.request_pause_not_held;
        let Some(s) = self.s(id) else { return };
        if s.local_reply_pending || s.reset {
            return; // Envoy ignores the action after a local reply (stopNextIteration)
        }
        match action {
            Action::Continue => self.headers_continued(id, dir),
            Action::Pause if not_held => {
                // nginx's rewrite phase on a keep-alive connection: on to the upstream.
                s.pause_not_held = true;
                self.headers_continued(id, dir);
            }
            Action::Pause => s.half(dir).phase = Phase::HeadersStopped,
        }
    }

    /// Headers leave the filter: Envoy forgets the map (reads now fail with BadArgument), then
    /// delivers whatever body arrived while they were stopped.
    fn headers_continued(&mut self, id: u32, dir: Dir) {
        let Some(s) = self.s(id) else { return };
        let client = if dir == Dir::Request {
            s.client_request_headers.take()
        } else {
            None
        };
        let h = s.half(dir);
        h.headers_visible = false;
        h.passed.headers = h.headers.clone();
        if let Some(client) = client {
            // nginx 1.27.4 + proxy_pass: what the filter removed still goes upstream.
            for (name, value) in client.iter() {
                if !h.passed.headers.contains(&String::from_utf8_lossy(name)) {
                    h.passed.headers.add_as_sent(name, value);
                }
            }
        }
        h.phase = Phase::Body;
        if h.body_seen {
            let held = std::mem::take(&mut h.held);
            h.body.extend_from_slice(&held);
            self.call_body(id, dir);
        } else if h.has_trailers {
            self.call_trailers(id, dir);
        } else if h.end {
            h.phase = Phase::Done;
        }
    }

    fn data(&mut self, id: u32, dir: Dir, chunk: &[u8], end_stream: bool) {
        let Some(s) = self.s(id) else { return };
        if s.reset {
            return;
        }
        let bypass = s.bypass;
        let h = s.half(dir);
        h.end |= end_stream;
        match h.phase {
            Phase::HeadersStopped => {
                h.held.extend_from_slice(chunk);
                h.body_seen = true;
            }
            Phase::Body | Phase::BodyStopped if bypass => {
                h.passed.body.extend_from_slice(chunk);
                if h.end {
                    h.phase = Phase::Done;
                }
            }
            Phase::Body | Phase::BodyStopped => {
                h.body.extend_from_slice(chunk);
                h.body_seen = true;
                self.call_body(id, dir);
            }
            _ => {}
        }
    }

    fn call_body(&mut self, id: u32, dir: Dir) {
        let Some(s) = self.s(id) else { return };
        let h = s.half(dir);
        h.body_visible = true;
        let (size, end) = (len_i32(h.body.len()), h.end && !h.has_trailers);
        let ex = Arc::clone(&self.exports);
        let f = match dir {
            Dir::Request => ex.on_request_body.as_ref(),
            Dir::Response => ex.on_response_body.as_ref(),
        };
        self.store.data_mut().callout_phase = dir == Dir::Request;
        let r = self.call_action3(f, id, size, end as i32);
        self.store.data_mut().callout_phase = false;
        let Ok(action) = r else {
            self.fail_stream(id);
            return;
        };
        let Some(s) = self.s(id) else { return };
        if s.local_reply_pending || s.reset {
            return;
        }
        match action {
            Action::Continue => self.body_continued(id, dir),
            Action::Pause => {
                let h = s.half(dir);
                h.phase = Phase::BodyStopped;
                // Trailers that already arrived are delivered next, as Envoy's decodeTrailers.
                if h.has_trailers {
                    self.call_trailers(id, dir);
                }
            }
        }
    }

    fn body_continued(&mut self, id: u32, dir: Dir) {
        let Some(s) = self.s(id) else { return };
        let h = s.half(dir);
        h.body_visible = false;
        let body = std::mem::take(&mut h.body);
        h.passed.body.extend_from_slice(&body);
        if h.has_trailers {
            h.phase = Phase::Body;
            self.call_trailers(id, dir);
        } else if h.end {
            h.phase = Phase::Done;
        } else {
            h.phase = Phase::Body;
        }
    }

    fn trailers(&mut self, id: u32, dir: Dir, trailers: HeaderMap) {
        let Some(s) = self.s(id) else { return };
        if s.reset {
            return;
        }
        let bypass = s.bypass;
        let h = s.half(dir);
        h.end = true;
        h.has_trailers = true;
        h.trailers = trailers;
        if bypass {
            h.passed.trailers = h.trailers.clone();
            h.phase = Phase::Done;
            return;
        }
        // Envoy delivers trailers to a filter that stopped its body with buffering too; if it
        // lets them continue, the buffered body goes on with them.
        if matches!(h.phase, Phase::Body | Phase::BodyStopped) {
            self.call_trailers(id, dir);
        }
    }

    fn call_trailers(&mut self, id: u32, dir: Dir) {
        let Some(s) = self.s(id) else { return };
        let h = s.half(dir);
        h.trailers_visible = true;
        let n = len_i32(h.trailers.len());
        let ex = Arc::clone(&self.exports);
        let f = match dir {
            Dir::Request => ex.on_request_trailers.as_ref(),
            Dir::Response => ex.on_response_trailers.as_ref(),
        };
        let r = self.call_action2(f, id, n);
        let Ok(action) = r else {
            self.fail_stream(id);
            return;
        };
        let Some(s) = self.s(id) else { return };
        if s.local_reply_pending || s.reset {
            return;
        }
        match action {
            Action::Continue => self.trailers_continued(id, dir),
            Action::Pause => s.half(dir).phase = Phase::TrailersStopped,
        }
    }

    fn trailers_continued(&mut self, id: u32, dir: Dir) {
        let Some(s) = self.s(id) else { return };
        let h = s.half(dir);
        h.trailers_visible = false;
        h.body_visible = false;
        let body = std::mem::take(&mut h.body);
        h.passed.body.extend_from_slice(&body);
        h.passed.trailers = h.trailers.clone();
        h.phase = Phase::Done;
    }

    /// `proxy_continue_stream`, run after the guest call that asked for it.
    pub(crate) fn continue_stream(&mut self, id: u32, dir: Dir) {
        let Some(s) = self.s(id) else { return };
        if dir == Dir::Request {
            s.pause_not_held = false;
        }
        if s.reset || s.local_reply.is_some() && dir == Dir::Request {
            return;
        }
        match s.half(dir).phase {
            Phase::HeadersStopped => self.headers_continued(id, dir),
            Phase::BodyStopped => {
                let h = s.half(dir);
                if h.end || !h.body.is_empty() {
                    self.body_continued(id, dir);
                } else {
                    h.phase = Phase::Body;
                }
            }
            Phase::TrailersStopped => self.trailers_continued(id, dir),
            // Continuing a stream that is not stopped is a no-op in Envoy.
            _ => {}
        }
    }

    /// `proxy_send_local_response`, run after the guest call: ends the request and answers the
    /// client. Before the response started, the reply is encoded through the filter's response
    /// callbacks (Envoy's sendLocalReply goes through the encoder filter chain); during the
    /// response phase it replaces the upstream response directly.
    pub(crate) fn apply_local_reply(&mut self, id: u32, reply: LocalReply) {
        let Some(s) = self.s(id) else { return };
        s.local_reply_pending = false;
        s.pause_not_held = false;
        if s.reset || s.resp.phase == Phase::Done || s.local_reply.is_some() {
            tracing::debug!(context = id, "second local reply for a stream ignored");
            return;
        }
        let mut headers = HeaderMap::new();
        headers.add(b":status", reply.status.to_string().as_bytes());
        for (k, v) in reply.headers.iter() {
            if k.first() == Some(&b':') {
                // Envoy appends these to its inline pseudo-headers, producing an invalid
                // response; refuse them loudly instead of imitating that.
                tracing::warn!(context = id, header = %String::from_utf8_lossy(k),
                    "pseudo-header in a local reply ignored");
                continue;
            }
            headers.add(k, v);
        }
        if !reply.body.is_empty() {
            headers.replace(b"content-length", reply.body.len().to_string().as_bytes());
            // Envoy sets text/plain only if the filter did not choose a content type.
            if !headers.contains("content-type") {
                headers.add(b"content-type", b"text/plain");
            }
        }
        let body = reply.body.clone();
        s.local_reply = Some(reply);
        s.req.phase = Phase::Aborted;
        s.req.headers_visible = false;
        s.req.body_visible = false;
        if s.resp.phase == Phase::Idle {
            s.resp.headers = headers;
            s.resp.end = body.is_empty();
            s.resp.headers_visible = true;
            s.resp.phase = Phase::HeadersStopped;
            let n = len_i32(s.resp.headers.len());
            let end = body.is_empty();
            let ex = Arc::clone(&self.exports);
            let r = self.call_action3(ex.on_response_headers.as_ref(), id, n, end as i32);
            self.after_headers(id, Dir::Response, r);
            if !body.is_empty() {
                self.data(id, Dir::Response, &body, true);
            }
        } else {
            s.resp.passed = Message {
                headers,
                body,
                trailers: HeaderMap::new(),
            };
            s.resp.headers_visible = false;
            s.resp.body_visible = false;
            s.resp.phase = Phase::Done;
        }
    }

    /// `proxy_close_stream`: Envoy resets the stream; the client gets no response.
    pub(crate) fn close_stream(&mut self, id: u32, _dir: Dir) {
        let Some(s) = self.s(id) else { return };
        s.reset = true;
        s.req.phase = Phase::Aborted;
        s.resp.phase = Phase::Aborted;
    }

    /// The VM failed while serving `id`: apply the failure policy to this stream.
    pub(crate) fn fail_stream(&mut self, id: u32) {
        let policy = self.store.data().env.plugin.failure_policy;
        let Some(s) = self.s(id) else { return };
        if s.is_finished() {
            return;
        }
        s.failed = true;
        match policy {
            FailurePolicy::FailClosed => {
                // Envoy's failStream: a 503 local reply that bypasses the failed filter.
                s.req.phase = Phase::Aborted;
                s.resp.passed = failure_response();
                s.resp.phase = Phase::Done;
            }
            FailurePolicy::FailOpen => {
                s.bypass = true;
                for dir in [Dir::Request, Dir::Response] {
                    let h = s.half(dir);
                    match h.phase {
                        Phase::HeadersStopped | Phase::Idle if !h.headers.is_empty() => {
                            h.passed.headers = h.headers.clone();
                            let held = std::mem::take(&mut h.held);
                            h.passed.body.extend_from_slice(&held);
                            h.phase = if h.end { Phase::Done } else { Phase::Body };
                        }
                        Phase::Body | Phase::BodyStopped | Phase::TrailersStopped => {
                            if h.passed.headers.is_empty() {
                                h.passed.headers = h.headers.clone();
                            }
                            let body = std::mem::take(&mut h.body);
                            h.passed.body.extend_from_slice(&body);
                            if h.has_trailers {
                                h.passed.trailers = h.trailers.clone();
                            }
                            h.phase = if h.end { Phase::Done } else { Phase::Body };
                        }
                        _ => {}
                    }
                }
            }
        }
    }
}

/// The request headers as nginx hands them to a filter: names as the client spelled them,
/// `:authority` the server's `server_name:port` and the client's host only in `Host`.
fn nginx_request_headers(semantics: &HostSemantics, headers: HeaderMap) -> HeaderMap {
    let mut headers = if semantics.header_names_as_sent {
        headers.with_names_as_sent()
    } else {
        headers
    };
    if let Some(server) = &semantics.server_authority {
        let client_host = headers.get_bytes(b":authority").map(<[u8]>::to_vec);
        headers.replace(b":authority", server.as_bytes());
        if let Some(host) = client_host.filter(|_| !headers.contains("host")) {
            headers.add_as_sent(b"Host", &host);
        }
    }
    headers
}
