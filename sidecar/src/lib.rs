//! The lightning-wall sidecar.
