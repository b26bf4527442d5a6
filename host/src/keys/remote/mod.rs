//! The key service (`sscard keyd`): its wire protocol, and with the `remote` feature its client.

pub mod protocol;
