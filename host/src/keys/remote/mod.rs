//! The key service (`sscard keyd`): its wire protocol, and with the `remote` feature its client
//! [`RemoteKeys`].

#[cfg(feature = "remote")]
mod client;
pub mod protocol;
mod url;

pub use url::RemoteUrl;

#[cfg(feature = "remote")]
pub use client::{RemoteKeys, RemoteTls, ENV_CA, ENV_CERT, ENV_KEY, TIMEOUT};
