//! Call-outs (`proxy_http_call`): the request a guest dispatched, the response it gets back, and
//! the clusters that answer them (an in-process handler or a real HTTP server on loopback).
//! Responses mirror Envoy's async client: timeouts and connect failures arrive as 504/503
//! responses, a reset as a response with no headers.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::headers::HeaderMap;

#[derive(Clone, Debug)]
pub struct CallRequest {
    pub cluster: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub trailers: HeaderMap,
    /// `None` when the guest passed 0 (Envoy: no timeout).
    pub timeout: Option<Duration>,
}

impl CallRequest {
    pub fn method(&self) -> &str {
        self.headers.get(":method").unwrap_or("")
    }
    pub fn path(&self) -> &str {
        self.headers.get(":path").unwrap_or("")
    }
}

#[derive(Clone, Debug, Default)]
pub struct CallResponse {
    /// Includes `:status`. Empty means the call failed (stream reset): the guest sees 0 headers.
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub trailers: HeaderMap,
}

impl CallResponse {
    pub fn new(status: u16, headers: &[(&str, &str)], body: impl Into<Vec<u8>>) -> Self {
        let mut h = HeaderMap::new();
        h.add(b":status", status.to_string().as_bytes());
        for (k, v) in headers {
            h.add(k.as_bytes(), v.as_bytes());
        }
        CallResponse {
            headers: h,
            body: body.into(),
            trailers: HeaderMap::new(),
        }
    }

    /// A reset stream: Envoy calls `on_http_call_response` with zero headers.
    pub fn reset() -> Self {
        CallResponse::default()
    }

    /// Envoy's async client answers a timeout with a local 504.
    pub fn timeout() -> Self {
        CallResponse::new(
            504,
            &[("content-type", "text/plain")],
            "upstream request timeout",
        )
    }

    /// Envoy's router answers a connect failure with a local 503.
    pub fn connect_failure() -> Self {
        CallResponse::new(
            503,
            &[("content-type", "text/plain")],
            "upstream connect error or disconnect/reset before headers. reset reason: connection failure",
        )
    }

    pub fn status(&self) -> Option<u16> {
        self.headers.get(":status").and_then(|s| s.parse().ok())
    }
}

pub type CallHandler = Arc<dyn Fn(&CallRequest) -> CallResponse + Send + Sync>;

/// Who answers a cluster's call-outs.
#[derive(Clone)]
pub enum Cluster {
    /// Answered in-process, synchronously, when the host delivers pending call-outs.
    Handler(CallHandler),
    /// Forwarded over real HTTP/1.1 to this base URL (`http://127.0.0.1:PORT`).
    Url(String),
    /// Never answered until the test does it by hand (or the timeout fires).
    Manual,
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cluster::Handler(_) => f.write_str("Handler"),
            Cluster::Url(u) => write!(f, "Url({u})"),
            Cluster::Manual => f.write_str("Manual"),
        }
    }
}

/// A call-out the guest dispatched that has not been answered yet.
#[derive(Clone, Debug)]
pub struct PendingCall {
    pub worker: usize,
    pub token: u32,
    pub request: CallRequest,
}

pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

pub fn http_client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Performs a call-out over HTTP the way Envoy's async client reports it to the guest.
pub async fn send_http(client: &HttpClient, base: &str, req: &CallRequest) -> CallResponse {
    let uri = format!("{}{}", base.trim_end_matches('/'), req.path());
    let mut builder = hyper::Request::builder().method(req.method()).uri(uri);
    for (k, v) in req.headers.iter() {
        if k.first() == Some(&b':') {
            if k == b":authority" {
                builder = builder.header(hyper::header::HOST, v);
            }
            continue;
        }
        builder = builder.header(k, v);
    }
    let request = match builder.body(Full::new(Bytes::from(req.body.clone()))) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "call-out request could not be built");
            return CallResponse::reset();
        }
    };
    let exchange = async {
        let resp = client.request(request).await.map_err(|e| {
            tracing::debug!(error = %e, "call-out connect/send failed");
        })?;
        let (parts, body) = resp.into_parts();
        let collected = body.collect().await.map_err(|_| ())?;
        let trailers = collected.trailers().cloned();
        let body = collected.to_bytes().to_vec();
        let mut headers = HeaderMap::new();
        headers.add(b":status", parts.status.as_str().as_bytes());
        for (k, v) in parts.headers.iter() {
            headers.add(k.as_str().as_bytes(), v.as_bytes());
        }
        let mut t = HeaderMap::new();
        if let Some(tr) = trailers {
            for (k, v) in tr.iter() {
                t.add(k.as_str().as_bytes(), v.as_bytes());
            }
        }
        Ok::<_, ()>(CallResponse {
            headers,
            body,
            trailers: t,
        })
    };
    match req.timeout {
        Some(t) => match tokio::time::timeout(t, exchange).await {
            Ok(Ok(r)) => r,
            Ok(Err(())) => CallResponse::connect_failure(),
            Err(_) => CallResponse::timeout(),
        },
        None => exchange
            .await
            .unwrap_or_else(|()| CallResponse::connect_failure()),
    }
}
