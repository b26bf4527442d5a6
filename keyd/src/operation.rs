//! The operations keyd performs: one per endpoint, the unit of policy and audit.

use serde::Deserialize;

/// An operation a client may be allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Operation {
    Cryptogram,
    Mac,
    KeyLoadBlocks,
    Pkey,
    AuditMac,
    Preflight,
    Info,
}

impl Operation {
    /// The name in the policy file and the audit log (`key-load-blocks`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Cryptogram => "cryptogram",
            Self::Mac => "mac",
            Self::KeyLoadBlocks => "key-load-blocks",
            Self::Pkey => "pkey",
            Self::AuditMac => "audit-mac",
            Self::Preflight => "preflight",
            Self::Info => "info",
        }
    }

    /// The operation of a request line: `POST /v1/cryptogram` and so on; `GET /v1/info`.
    pub fn of_route(method: &str, path: &str) -> Option<Self> {
        let op = match path.strip_prefix("/v1/")? {
            "cryptogram" => Self::Cryptogram,
            "mac" => Self::Mac,
            "key-load-blocks" => Self::KeyLoadBlocks,
            "pkey" => Self::Pkey,
            "audit-mac" => Self::AuditMac,
            "preflight" => Self::Preflight,
            "info" => Self::Info,
            _ => return None,
        };
        let wanted = if op == Self::Info { "GET" } else { "POST" };
        (method == wanted).then_some(op)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_map_to_operations_with_their_method() {
        assert_eq!(
            Operation::of_route("POST", "/v1/key-load-blocks"),
            Some(Operation::KeyLoadBlocks)
        );
        assert_eq!(
            Operation::of_route("GET", "/v1/info"),
            Some(Operation::Info)
        );
        assert_eq!(Operation::of_route("GET", "/v1/cryptogram"), None);
        assert_eq!(Operation::of_route("POST", "/v1/info"), None);
        assert_eq!(Operation::of_route("POST", "/v2/mac"), None);
        assert_eq!(Operation::KeyLoadBlocks.name(), "key-load-blocks");
    }
}
