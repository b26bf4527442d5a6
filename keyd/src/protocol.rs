//! The request and answer bodies keyd reads and writes (docs/keyd-openapi.yaml). Unknown
//! fields are refused; hex is upper-case in answers, either case in requests.

use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CryptogramRequest {
    pub algorithm: String,
    pub card_id: String,
    pub kid: String,
    pub random: String,
}

#[derive(Debug, Serialize)]
pub struct CryptogramResponse {
    pub cryptogram: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MacRequest {
    pub algorithm: String,
    pub card_id: String,
    pub kid: String,
    pub challenge: String,
    pub message: String,
}

#[derive(Debug, Serialize)]
pub struct MacResponse {
    pub mac: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyLoad {
    pub kid: String,
    pub tries: u8,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyLoadBlocksRequest {
    pub algorithm: String,
    pub card_id: String,
    pub keys: Vec<KeyLoad>,
}

#[derive(Debug, Serialize)]
pub struct KeyLoadBlocksResponse {
    pub blocks: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PkeyRequest {
    pub step1: String,
}

#[derive(Debug, Serialize)]
pub struct PkeyResponse {
    pub pkey: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditMacRequest {
    pub message: String,
}

#[derive(Debug, Serialize)]
pub struct AuditMacResponse {
    pub mac: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreflightRequest {
    pub kids: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Empty {}

#[derive(Debug, Serialize)]
pub struct InfoResponse {
    pub source: String,
    pub algorithm: Option<&'static str>,
    pub region: Option<String>,
    pub terminal_number: Option<String>,
}
