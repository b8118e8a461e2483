//! The development gateway over real HTTP on loopback: a real upstream, a real call-out
//! cluster, N worker VMs running in parallel, and a guest that traps.
// Test code: a failed expectation is reported by panicking.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use lightning_wall_host::callout::http_client;
use lightning_wall_host::gateway::{self, GatewayConfig, RunningGateway};
use lightning_wall_host::testing::wasm_file;
use lightning_wall_host::{FailurePolicy, PluginConfig};
use tokio::net::TcpListener;

/// An upstream that answers 200 with every request header as `name: value` lines.
async fn echo_server(tag: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let svc = service_fn(move |req: hyper::Request<Incoming>| async move {
                    let mut body = format!("{} {}\n", req.method(), req.uri());
                    for (k, v) in req.headers() {
                        body.push_str(&format!("{}: {}\n", k, v.to_str().unwrap_or("?")));
                    }
                    let b = req.into_body().collect().await.unwrap().to_bytes();
                    body.push_str(&format!("body: {}\n", String::from_utf8_lossy(&b)));
                    let resp = hyper::Response::builder()
                        .header("x-upstream", tag)
                        .header("x-upstream-secret", "s3cret")
                        .body(Full::new(Bytes::from(body)))
                        .unwrap();
                    Ok::<_, Infallible>(resp)
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    addr
}

/// A call-out cluster that answers with one line describing the request it got.
async fn sidecar_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let svc = service_fn(move |req: hyper::Request<Incoming>| async move {
                    let line = format!("{} {}", req.method(), req.uri());
                    let b = req.into_body().collect().await.unwrap().to_bytes();
                    let body = format!("{line} body={}", String::from_utf8_lossy(&b));
                    Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from(body))))
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    addr
}

async fn start(
    upstream: SocketAddr,
    sidecar: SocketAddr,
    config: &str,
    workers: usize,
) -> RunningGateway {
    let wasm = wasm_file("conformance_filter.wasm").unwrap_or_else(|e| panic!("{e}"));
    let config = GatewayConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        upstream: format!("http://{upstream}"),
        wasm: Some(wasm),
        plugin: PluginConfig {
            configuration: config.as_bytes().to_vec(),
            failure_policy: FailurePolicy::FailClosed,
            ..PluginConfig::default()
        },
        routes: vec![],
        clusters: vec![("sidecar".into(), format!("http://{sidecar}"))],
        workers,
    };
    gateway::start_with(config, Some(common::conformance()))
        .await
        .unwrap()
}

async fn get(
    gw: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, hyper::HeaderMap, String) {
    let mut b = hyper::Request::get(format!("http://{gw}{path}"));
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let resp = http_client()
        .request(b.body(Full::new(Bytes::new())).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_go_through_the_filter_to_a_real_upstream_and_back() {
    let upstream = echo_server("up").await;
    let gw = start(upstream, upstream, "", 2).await;
    let (status, headers, body) = get(
        gw.addr,
        "/headers",
        &[("x-one", "1"), ("x-lightning-wall-token", "forged")],
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.contains("x-conformance-added: yes"), "{body}");
    assert!(body.contains("x-one-seen: 1"), "{body}");
    assert!(!body.contains("x-lightning-wall-token"), "{body}");
    assert!(body.contains(&format!("host: {}", gw.addr)), "{body}");
    assert_eq!(headers["x-conformance-response"], "yes");
    assert_eq!(headers["x-upstream"], "up");
    assert!(!headers.contains_key("x-upstream-secret"));
    gw.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_outs_reach_a_real_cluster_and_resume_the_request() {
    let upstream = echo_server("up").await;
    let sidecar = sidecar_server().await;
    let gw = start(upstream, sidecar, "cluster=sidecar", 2).await;
    let (status, _, body) = get(gw.addr, "/callout", &[]).await;
    assert_eq!(status, 200);
    assert!(body.contains("x-callout-status: 200"), "{body}");
    // The sidecar echoed the call-out request: method, path and body as the guest sent them.
    assert!(
        body.contains("x-callout-body: POST /internal/challenge body=callout-body\n"),
        "{body}"
    );
    let (status, headers, body) = get(gw.addr, "/local-reply", &[]).await;
    assert_eq!(status, 402);
    assert_eq!(
        headers["www-authenticate"],
        "L402 macaroon=\"m\", invoice=\"i\""
    );
    assert_eq!(body, "payment required");
    gw.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cas_counter_is_exact_with_workers_in_parallel() {
    let upstream = echo_server("up").await;
    let gw = start(upstream, upstream, "", 4).await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let addr = gw.addr;
        tasks.push(tokio::spawn(async move {
            for _ in 0..25 {
                let (status, _, _) = get(addr, "/shared", &[]).await;
                assert_eq!(status, 200);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let (_, _, body) = get(gw.addr, "/shared", &[]).await;
    assert!(body.contains("x-counter: 201\n"), "{body}");
    gw.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trapped_guest_never_takes_the_gateway_down() {
    let upstream = echo_server("up").await;
    let gw = start(upstream, upstream, "", 2).await;
    for path in ["/trap/panic", "/trap/oob"] {
        let (status, _, _) = get(gw.addr, path, &[]).await;
        assert_eq!(status, 503, "{path}");
    }
    // Both workers have now failed (round-robin): fail-closed answers 503, and keeps answering.
    for _ in 0..4 {
        let (status, _, _) = get(gw.addr, "/headers", &[]).await;
        assert_eq!(status, 503);
    }
    gw.stop();
    // A fresh gateway with one failed worker out of two still serves on the other.
    let gw = start(upstream, upstream, "", 2).await;
    assert_eq!(get(gw.addr, "/trap/panic", &[]).await.0, 503);
    let statuses: Vec<u16> = {
        let mut v = Vec::new();
        for _ in 0..4 {
            v.push(get(gw.addr, "/headers", &[]).await.0);
        }
        v
    };
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        2,
        "{statuses:?}"
    );
    gw.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_filter_the_gateway_forwards_plainly() {
    let upstream = echo_server("up").await;
    let wall = echo_server("wall").await;
    let gw = gateway::start(GatewayConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        upstream: format!("http://{upstream}"),
        routes: vec![(
            "/.well-known/lightning-wall/".into(),
            format!("http://{wall}/"),
        )],
        wasm: None,
        plugin: PluginConfig::default(),
        clusters: vec![],
        workers: 1,
    })
    .await
    .unwrap();
    let (status, headers, body) = get(gw.addr, "/plain?q=1", &[]).await;
    assert_eq!(status, 200);
    assert!(body.starts_with("GET /plain?q=1\n"), "{body}");
    assert_eq!(headers["x-upstream"], "up");
    // A prefix route picks its own upstream, with the path unchanged.
    let (status, routed, body) = get(gw.addr, "/.well-known/lightning-wall/wall.js", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(routed["x-upstream"], "wall");
    assert!(
        body.starts_with("GET /.well-known/lightning-wall/wall.js\n"),
        "{body}"
    );
    assert!(headers.contains_key("x-upstream-secret"));
    gw.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_upstream_is_a_503_seen_by_the_filter() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let gw = start(closed, closed, "", 1).await;
    let (status, headers, body) = get(gw.addr, "/headers", &[]).await;
    assert_eq!(status, 503);
    assert!(body.starts_with("upstream connect error"), "{body}");
    assert_eq!(headers["x-seen-status"], "503");
    tokio::time::sleep(Duration::from_millis(10)).await;
    gw.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_messages_cross_worker_threads() {
    let upstream = echo_server("up").await;
    let gw = start(upstream, upstream, "", 2).await;
    // Worker 1 registered the queue last and owns it. Requests alternate 0, 1, 0, …: messages
    // sent through worker 0 (even i) reach worker 1 only through the cross-thread inbox, and
    // each request shows the last message dequeued before it ran.
    let mut delivered_across = false;
    for i in 0..10 {
        let msg = format!("m{i}");
        let (status, _, body) = get(gw.addr, "/queue", &[("x-message", msg.as_str())]).await;
        assert_eq!(status, 200);
        assert!(body.contains("enqueue=Ok"), "{body}");
        delivered_across |= (0..10)
            .step_by(2)
            .any(|even| body.contains(&format!("x-last-dequeued: m{even}\n")));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        delivered_across,
        "no message enqueued on worker 0 was dequeued by worker 1"
    );
    gw.stop();
}
