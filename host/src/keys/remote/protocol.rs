//! The key service's wire protocol (issue 17), shared by the client ([`super::RemoteKeys`] with
//! the `remote` feature) and the server (`sscard keyd serve`): plain serde types, no I/O.
//!
//! HTTPS with mutual TLS, JSON bodies. Bytes travel as upper-case hex strings; `algorithm` is
//! `"3des"` or `"sm4"`; `kid` is the profile key name ([`Kid::name`], parsed with
//! [`Kid::from_name`]). A failure is an HTTP status with an [`ErrorBody`]: 400 bad request,
//! 401 unauthorised, 403 forbidden, 429 rate limited, 422 key-source error (its `code` is the
//! source's unified return code), 500 internal.

use serde::{Deserialize, Serialize};
use sscard_core::crypto::Algorithm;

/// `POST`: [`CryptogramRequest`] → [`CryptogramResponse`].
pub const PATH_CRYPTOGRAM: &str = "/v1/cryptogram";
/// `POST`: [`MacRequest`] → [`MacResponse`].
pub const PATH_MAC: &str = "/v1/mac";
/// `POST`: [`KeyLoadBlocksRequest`] → [`KeyLoadBlocksResponse`].
pub const PATH_KEY_LOAD_BLOCKS: &str = "/v1/key-load-blocks";
/// `POST`: [`PkeyRequest`] → [`PkeyResponse`].
pub const PATH_PKEY: &str = "/v1/pkey";
/// `POST`: [`AuditMacRequest`] → [`AuditMacResponse`].
pub const PATH_AUDIT_MAC: &str = "/v1/audit-mac";
/// `POST`: [`PreflightRequest`] → [`PreflightResponse`] (`{}`).
pub const PATH_PREFLIGHT: &str = "/v1/preflight";
/// `GET` → [`InfoResponse`].
pub const PATH_INFO: &str = "/v1/info";

/// The algorithm of a request, as it travels: `"3des"` or `"sm4"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireAlgorithm {
    #[serde(rename = "3des")]
    Tdes,
    #[serde(rename = "sm4")]
    Sm4,
}

impl WireAlgorithm {
    /// The wire form of `alg`; `None` for an algorithm the protocol does not carry (AES-128).
    pub fn from_algorithm(alg: Algorithm) -> Option<Self> {
        match alg {
            Algorithm::Tdes => Some(Self::Tdes),
            Algorithm::Sm4 => Some(Self::Sm4),
            _ => None,
        }
    }

    /// The algorithm this names.
    pub fn algorithm(self) -> Algorithm {
        match self {
            Self::Tdes => Algorithm::Tdes,
            Self::Sm4 => Algorithm::Sm4,
        }
    }
}

/// `E_K(R ‖ 00…)` under card key `kid` of card `card_id`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CryptogramRequest {
    pub algorithm: WireAlgorithm,
    /// The card's identification (32 hex digits).
    pub card_id: String,
    /// The key name, e.g. `"IRK"`.
    pub kid: String,
    /// The card's (or the terminal's) random, hex.
    pub random: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CryptogramResponse {
    pub cryptogram: String,
}

/// The 4-byte line-protection MAC under card key `kid`, IV = challenge ‖ 00….
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MacRequest {
    pub algorithm: WireAlgorithm,
    pub card_id: String,
    pub kid: String,
    pub challenge: String,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MacResponse {
    /// 8 hex digits.
    pub mac: String,
}

/// One key to load: its name and try limit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyToLoad {
    pub kid: String,
    pub tries: u8,
}

/// The WRITE KEY data fields of a card's keys, in one round trip.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyLoadBlocksRequest {
    pub algorithm: WireAlgorithm,
    pub card_id: String,
    pub keys: Vec<KeyToLoad>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyLoadBlocksResponse {
    /// One hex block per requested key, in the request's order.
    pub blocks: Vec<String>,
}

/// The unified library's two-step pKey: the step-1 line in, the pKey line out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PkeyRequest {
    pub step1: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PkeyResponse {
    pub pkey: String,
}

/// HMAC-SHA256 under the audit key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditMacRequest {
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditMacResponse {
    /// 64 hex digits.
    pub mac: String,
}

/// Whether the service holds every key of `kids` (and its audit key).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreflightRequest {
    pub kids: Vec<String>,
}

/// `{}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreflightResponse {}

/// What the service's key source is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InfoResponse {
    /// The source's description (`software keys from …`, `PSAM in …`).
    pub source: String,
    /// The one algorithm the source serves, if it serves only one.
    pub algorithm: Option<WireAlgorithm>,
    /// The city region (6 digits) of the source's keys, if known.
    pub region: Option<String>,
    /// The terminal number (PSAM EF16), if any.
    pub terminal_number: Option<String>,
}

/// The kind of a failure, with its HTTP status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// 400: the request is malformed.
    BadRequest,
    /// 401: no or an unknown client certificate.
    Unauthorised,
    /// 403: the client may not do this.
    Forbidden,
    /// 429: too many requests.
    RateLimited,
    /// 422: the key source refused or failed; `code` is its return code.
    Key,
    /// 500: anything else.
    Internal,
}

impl ErrorKind {
    /// The HTTP status that carries this kind.
    pub fn status(self) -> u16 {
        match self {
            Self::BadRequest => 400,
            Self::Unauthorised => 401,
            Self::Forbidden => 403,
            Self::RateLimited => 429,
            Self::Key => 422,
            Self::Internal => 500,
        }
    }
}

/// The body of every failure: `{"error": {...}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub kind: ErrorKind,
    /// The unified return code of the failure.
    pub code: i32,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{from_str, json, to_value};

    #[test]
    fn cryptogram_request_has_the_fixed_shape() {
        let req = CryptogramRequest {
            algorithm: WireAlgorithm::Sm4,
            card_id: "0".repeat(32),
            kid: "IRK".into(),
            random: "0102030405060708".into(),
        };
        assert_eq!(
            to_value(&req).unwrap(),
            json!({"algorithm": "sm4", "card_id": "0".repeat(32), "kid": "IRK",
                   "random": "0102030405060708"})
        );
        let back: CryptogramRequest =
            from_str(r#"{"algorithm":"3des","card_id":"AB","kid":"UK_N","random":"00"}"#).unwrap();
        assert_eq!(back.algorithm, WireAlgorithm::Tdes);
        assert_eq!(back.kid, "UK_N");
        assert_eq!(
            to_value(CryptogramResponse {
                cryptogram: "AA".into()
            })
            .unwrap(),
            json!({"cryptogram": "AA"})
        );
    }

    #[test]
    fn unknown_fields_and_algorithms_are_refused() {
        assert!(from_str::<CryptogramRequest>(
            r#"{"algorithm":"3des","card_id":"AB","kid":"IRK","random":"00","x":1}"#
        )
        .is_err());
        assert!(from_str::<CryptogramRequest>(
            r#"{"algorithm":"aes","card_id":"AB","kid":"IRK","random":"00"}"#
        )
        .is_err());
    }

    #[test]
    fn mac_request_and_response() {
        let req = MacRequest {
            algorithm: WireAlgorithm::Tdes,
            card_id: "C".into(),
            kid: "UK_L".into(),
            challenge: "11".into(),
            message: "22".into(),
        };
        assert_eq!(
            to_value(&req).unwrap(),
            json!({"algorithm": "3des", "card_id": "C", "kid": "UK_L", "challenge": "11",
                   "message": "22"})
        );
        let res: MacResponse = from_str(r#"{"mac":"01020304"}"#).unwrap();
        assert_eq!(res.mac, "01020304");
    }

    #[test]
    fn key_load_blocks_keep_order() {
        let req = KeyLoadBlocksRequest {
            algorithm: WireAlgorithm::Sm4,
            card_id: "C".into(),
            keys: vec![
                KeyToLoad {
                    kid: "IRK".into(),
                    tries: 15,
                },
                KeyToLoad {
                    kid: "PIN".into(),
                    tries: 3,
                },
            ],
        };
        assert_eq!(
            to_value(&req).unwrap(),
            json!({"algorithm": "sm4", "card_id": "C",
                   "keys": [{"kid": "IRK", "tries": 15}, {"kid": "PIN", "tries": 3}]})
        );
        let res: KeyLoadBlocksResponse = from_str(r#"{"blocks":["AA","BB"]}"#).unwrap();
        assert_eq!(res.blocks, ["AA", "BB"]);
    }

    #[test]
    fn pkey_audit_preflight() {
        assert_eq!(
            to_value(PkeyRequest {
                step1: "a|b|".into()
            })
            .unwrap(),
            json!({"step1": "a|b|"})
        );
        assert_eq!(
            from_str::<PkeyResponse>(r#"{"pkey":"x"}"#).unwrap().pkey,
            "x"
        );
        assert_eq!(
            to_value(AuditMacRequest {
                message: "00".into()
            })
            .unwrap(),
            json!({"message": "00"})
        );
        assert_eq!(
            from_str::<AuditMacResponse>(&format!(r#"{{"mac":"{}"}}"#, "A".repeat(64)))
                .unwrap()
                .mac
                .len(),
            64
        );
        assert_eq!(
            to_value(PreflightRequest {
                kids: vec!["IRK".into(), "TK".into()]
            })
            .unwrap(),
            json!({"kids": ["IRK", "TK"]})
        );
        assert_eq!(to_value(PreflightResponse {}).unwrap(), json!({}));
        from_str::<PreflightResponse>("{}").unwrap();
    }

    #[test]
    fn info_with_and_without_values() {
        let none: InfoResponse =
            from_str(r#"{"source":"s","algorithm":null,"region":null,"terminal_number":null}"#)
                .unwrap();
        assert_eq!(none.algorithm, None);
        assert_eq!(none.region, None);
        let some = InfoResponse {
            source: "PSAM".into(),
            algorithm: Some(WireAlgorithm::Sm4),
            region: Some("110100".into()),
            terminal_number: Some("123456789012".into()),
        };
        assert_eq!(
            to_value(&some).unwrap(),
            json!({"source": "PSAM", "algorithm": "sm4", "region": "110100",
                   "terminal_number": "123456789012"})
        );
    }

    #[test]
    fn errors_carry_kind_code_and_status() {
        let body: ErrorBody =
            from_str(r#"{"error":{"kind":"rate_limited","code":-1,"message":"slow down"}}"#)
                .unwrap();
        assert_eq!(body.error.kind, ErrorKind::RateLimited);
        assert_eq!(body.error.kind.status(), 429);
        assert_eq!(body.error.code, -1);
        for (kind, name, status) in [
            (ErrorKind::BadRequest, "bad_request", 400),
            (ErrorKind::Unauthorised, "unauthorised", 401),
            (ErrorKind::Forbidden, "forbidden", 403),
            (ErrorKind::RateLimited, "rate_limited", 429),
            (ErrorKind::Key, "key", 422),
            (ErrorKind::Internal, "internal", 500),
        ] {
            assert_eq!(to_value(kind).unwrap(), json!(name));
            assert_eq!(kind.status(), status);
        }
    }

    #[test]
    fn wire_algorithm_maps_both_ways() {
        assert_eq!(
            WireAlgorithm::from_algorithm(Algorithm::Tdes),
            Some(WireAlgorithm::Tdes)
        );
        assert_eq!(
            WireAlgorithm::from_algorithm(Algorithm::Sm4),
            Some(WireAlgorithm::Sm4)
        );
        assert_eq!(WireAlgorithm::from_algorithm(Algorithm::Aes128), None);
        assert_eq!(WireAlgorithm::Sm4.algorithm(), Algorithm::Sm4);
    }
}
