//! Errors the host reports to its embedder (tests, the gateway). Guest misbehaviour at request
//! time is not an error here: it marks the VM failed and the failure policy answers.

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("loading the wasm module: {0}")]
    Load(String),
    #[error("instantiating worker {worker}: {reason}")]
    Instantiate { worker: usize, reason: String },
    #[error("the plugin's on_vm_start returned false (worker {worker})")]
    VmStartRejected { worker: usize },
    #[error("the plugin's on_configure rejected its configuration (worker {worker})")]
    ConfigureRejected { worker: usize },
    #[error("the guest trapped during start-up of worker {worker}: {reason}")]
    StartTrapped { worker: usize, reason: String },
}
