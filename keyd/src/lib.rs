//! The sscard key service: the key-source operations (cryptograms, line-protection MACs,
//! WRITE KEY blocks, the two-step `pKey`, audit MACs) over HTTPS with mutual TLS, in front of
//! any local key source, never returning a key. A policy file says which client may use which
//! regions, keys and operations at what rate; every operation goes into the keyed, anchored
//! audit chain of personalisation's journal. The protocol: `docs/keyd.md`,
//! `docs/keyd-openapi.yaml`.

pub mod api_error;
pub mod audit_log;
pub mod handler;
pub mod identity;
pub mod key_worker;
pub mod open_hashes;
pub mod operation;
pub mod own_log;
pub mod policy;
pub mod rate;
pub mod server;
pub mod tls;

pub use api_error::{ApiError, ErrorKind};
pub use audit_log::{AuditError, AuditLog, AuditRecord};
pub use handler::Service;
pub use identity::ClientIdentity;
pub use key_worker::{KeyWorker, WorkerError};
pub use operation::Operation;
pub use policy::{Policy, PolicyError, Refusal};
pub use server::{serve, Handler};
pub use tls::{server_config, TlsError};
