//! The key service (`sscard keyd`): its wire protocol, and with the `remote` feature its client
//! [`RemoteKeys`].

#[cfg(feature = "remote")]
mod client;
#[cfg(feature = "remote")]
mod http;
pub mod protocol;
#[cfg(feature = "remote")]
mod tls;
mod url;

pub use url::RemoteUrl;

#[cfg(feature = "remote")]
pub use client::{RemoteKeys, TIMEOUT};
#[cfg(feature = "remote")]
pub use tls::{RemoteTls, ENV_CA, ENV_CERT, ENV_KEY};
