//! A small closed-loop HTTP/1.1 load generator (`lightning-wall-host load`) for the gateway
//! benchmark: C keep-alive connections, each sending the next request as soon as the previous
//! answer arrived, for a fixed time. Development tooling; prints requests per second.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

#[derive(Debug, Clone, Copy)]
pub struct LoadReport {
    pub requests: u64,
    pub errors: u64,
    pub elapsed: Duration,
}

impl LoadReport {
    pub fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Runs `connections` loops against `url` (`http://host:port/path`) for `duration`, each
/// request carrying `headers` (e.g. a credential, to load the filter's hot path).
pub async fn run(
    url: &str,
    headers: &[(String, String)],
    connections: usize,
    duration: Duration,
) -> anyhow::Result<LoadReport> {
    let headers: Arc<[(hyper::header::HeaderName, hyper::header::HeaderValue)]> = headers
        .iter()
        .map(|(n, v)| {
            Ok::<_, anyhow::Error>((
                n.parse::<hyper::header::HeaderName>()?,
                v.parse::<hyper::header::HeaderValue>()?,
            ))
        })
        .collect::<anyhow::Result<Vec<_>>>()
        .context("a header that HTTP/1.1 cannot carry")?
        .into();
    let uri: hyper::Uri = url.parse().with_context(|| format!("parsing {url}"))?;
    let authority = uri
        .authority()
        .context("the URL has no host:port")?
        .to_string();
    let path = uri
        .path_and_query()
        .map_or("/".to_string(), |p| p.to_string());
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    let started = Instant::now();
    for _ in 0..connections.max(1) {
        let (stop, ok, errors) = (Arc::clone(&stop), Arc::clone(&ok), Arc::clone(&errors));
        let (authority, path, headers) = (authority.clone(), path.clone(), Arc::clone(&headers));
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let Ok(tcp) = TcpStream::connect(&authority).await else {
                    errors.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let _ = tcp.set_nodelay(true);
                let Ok((mut send, conn)) =
                    hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(tcp))
                        .await
                else {
                    errors.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                tokio::spawn(conn);
                while !stop.load(Ordering::Relaxed) {
                    let mut req = hyper::Request::get(path.as_str())
                        .header(hyper::header::HOST, authority.as_str());
                    for (name, value) in headers.iter() {
                        req = req.header(name.clone(), value.clone());
                    }
                    let req = req.body(Empty::new());
                    let Ok(req) = req else { break };
                    match send.send_request(req).await {
                        Ok(resp) => {
                            let good = resp.status().is_success();
                            if resp.into_body().collect().await.is_ok() && good {
                                ok.fetch_add(1, Ordering::Relaxed);
                            } else {
                                errors.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Err(_) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            break; // reconnect
                        }
                    }
                }
            }
        }));
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed();
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
    }
    Ok(LoadReport {
        requests: ok.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
        elapsed,
    })
}
