//! One HTTP request's state as the filter sees it: both directions' headers, body and trailers,
//! what has passed the filter, local replies and properties. Plain data below the VM; the VM
//! drives it (`vm/requests.rs`) and the host functions read and edit it.

use std::collections::HashMap;
use std::net::SocketAddr;

use crate::headers::HeaderMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    Request,
    Response,
}

/// What Envoy's stream info knows about the connection (read through properties).
#[derive(Clone, Debug)]
pub struct StreamInfo {
    pub source: SocketAddr,
    pub destination: SocketAddr,
    pub scheme: String,
    pub protocol: String,
    pub start_nanos: u64,
    pub connection_id: u64,
}

impl Default for StreamInfo {
    fn default() -> Self {
        StreamInfo {
            source: SocketAddr::from(([127, 0, 0, 1], 40000)),
            destination: SocketAddr::from(([127, 0, 0, 1], 8080)),
            scheme: "http".into(),
            protocol: "HTTP/1.1".into(),
            start_nanos: 0,
            connection_id: 1,
        }
    }
}

/// `proxy_send_local_response` as the guest asked for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalReply {
    pub status: u32,
    pub details: String,
    pub body: Vec<u8>,
    pub headers: HeaderMap,
    pub grpc_status: i32,
}

/// Where one direction of the stream is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Headers not seen yet.
    Idle,
    /// PAUSE from the headers callback: nothing moves until continue.
    HeadersStopped,
    /// Headers passed; body chunks go through the filter.
    Body,
    /// PAUSE from a body callback: data accumulates in the buffer the filter sees.
    BodyStopped,
    TrailersStopped,
    /// Everything passed the filter.
    Done,
    /// Ended by a local reply, a reset or a failure.
    Aborted,
}

/// The part of a request/response that has passed the filter.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Message {
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub trailers: HeaderMap,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Bodies shown as text: test failures are read by people.
        f.debug_struct("Message")
            .field("headers", &self.headers)
            .field("body", &String::from_utf8_lossy(&self.body))
            .field("trailers", &self.trailers)
            .finish()
    }
}

impl Message {
    pub fn status(&self) -> Option<u16> {
        self.headers.get(":status").and_then(|s| s.parse().ok())
    }
}

/// One direction's working state.
#[derive(Debug)]
pub(crate) struct Half {
    pub phase: Phase,
    pub headers: HeaderMap,
    pub headers_visible: bool,
    /// The body buffer the filter sees in its body callback.
    pub body: Vec<u8>,
    pub body_visible: bool,
    /// Data that arrived while the headers were stopped.
    pub held: Vec<u8>,
    pub trailers: HeaderMap,
    pub trailers_visible: bool,
    pub has_trailers: bool,
    /// A body chunk (possibly empty, with end of stream) arrived.
    pub body_seen: bool,
    /// The peer has sent everything.
    pub end: bool,
    pub passed: Message,
}

impl Half {
    fn new() -> Self {
        Half {
            phase: Phase::Idle,
            headers: HeaderMap::new(),
            headers_visible: false,
            body: Vec::new(),
            body_visible: false,
            held: Vec::new(),
            trailers: HeaderMap::new(),
            trailers_visible: false,
            has_trailers: false,
            body_seen: false,
            end: false,
            passed: Message::default(),
        }
    }
}

/// One http context's state.
#[derive(Debug)]
pub struct StreamState {
    pub(crate) info: StreamInfo,
    pub(crate) req: Half,
    pub(crate) resp: Half,
    /// Values written with `proxy_set_property` (Envoy filter state `wasm.<name>`).
    pub(crate) properties: HashMap<Vec<u8>, Vec<u8>>,
    /// Set when the guest called `proxy_send_local_response` in the current callback: the
    /// callback's returned action is then ignored.
    pub(crate) local_reply_pending: bool,
    pub(crate) local_reply: Option<LocalReply>,
    /// The filter is skipped for the rest of the stream (fail-open after a VM failure).
    pub(crate) bypass: bool,
    pub(crate) reset: bool,
    pub(crate) failed: bool,
    pub(crate) finished: bool,
    /// The request headers as the client sent them, kept where a header the filter removed
    /// still reaches the upstream (nginx; `HostSemantics::removed_request_headers_reach_upstream`).
    pub(crate) client_request_headers: Option<HeaderMap>,
    /// The filter paused the request headers and the host went on to the upstream anyway
    /// (`HostSemantics::request_pause_not_held`); cleared when the filter continues or replies.
    pub(crate) pause_not_held: bool,
}

impl StreamState {
    pub(crate) fn new(info: StreamInfo) -> Self {
        StreamState {
            info,
            req: Half::new(),
            resp: Half::new(),
            properties: HashMap::new(),
            local_reply_pending: false,
            local_reply: None,
            bypass: false,
            reset: false,
            failed: false,
            finished: false,
            client_request_headers: None,
            pause_not_held: false,
        }
    }

    pub(crate) fn half(&mut self, dir: Dir) -> &mut Half {
        match dir {
            Dir::Request => &mut self.req,
            Dir::Response => &mut self.resp,
        }
    }

    /// The request as it left the filter for the upstream, once complete.
    pub fn upstream_request(&self) -> Option<&Message> {
        (self.req.phase == Phase::Done).then_some(&self.req.passed)
    }

    /// The response as it left the filter for the client, once complete.
    pub fn downstream_response(&self) -> Option<&Message> {
        (self.resp.phase == Phase::Done).then_some(&self.resp.passed)
    }

    /// The request headers left the filter towards the upstream (even if the stream ended
    /// before the request was complete).
    pub fn request_headers_forwarded(&self) -> bool {
        !self.req.passed.headers.is_empty()
    }

    /// What the filter sent with `proxy_send_local_response`, if it did.
    pub fn local_reply(&self) -> Option<&LocalReply> {
        self.local_reply.as_ref()
    }

    /// The stream was reset (`proxy_close_stream`): the client gets no response.
    pub fn was_reset(&self) -> bool {
        self.reset
    }

    /// The VM failed while serving this stream.
    pub fn failed(&self) -> bool {
        self.failed
    }

    /// Nothing more will happen: a response is complete, or the stream was reset.
    pub fn is_finished(&self) -> bool {
        self.reset || self.resp.phase == Phase::Done
    }

    /// The call-outs of this stream wait for its upstream response
    /// (`HostSemantics::request_pause_not_held`).
    pub(crate) fn call_outs_after_upstream(&self) -> bool {
        self.pause_not_held && !self.reset && self.resp.phase != Phase::Done
    }

    /// Waiting for the request to go upstream (request complete, no response yet).
    pub fn awaiting_upstream(&self) -> bool {
        self.req.phase == Phase::Done && self.resp.phase == Phase::Idle && !self.reset
    }
}
