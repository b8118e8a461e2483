//! The generated gRPC clients and messages (build.rs, from `sidecar/proto/`).
#![allow(dead_code, clippy::all, clippy::pedantic, missing_docs)]

/// Core Lightning's own gRPC (`cln-grpc`): node info, normal invoices, payments.
pub mod cln {
    tonic::include_proto!("cln");
}

/// The hold plugin's gRPC (`hold.Hold`): hold invoices and their state stream.
pub mod hold {
    tonic::include_proto!("hold");
}
