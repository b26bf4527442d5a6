//! One request, from its body to its answer: parse, ask the policy, perform on the key source,
//! record in the audit log, answer. Independent of HTTP (the server only moves bytes).

use crate::api_error::{ApiError, ErrorKind};
use crate::audit_log::{AuditLog, AuditRecord};
use crate::identity::ClientIdentity;
use crate::key_worker::KeyWorker;
use crate::operation::Operation;
use crate::policy::{Ask, Policy};
use crate::rate::RateLimiter;
use serde::de::DeserializeOwned;
use sscard::keys::remote::protocol::*;
use sscard::keys::{CardRef, KeySource};
use sscard::unified::{hsm_step2_key, Step1Line};
use sscard_core::hexfmt::{parse_hex, to_hex};
use sscard_core::profile::{codes, Kid};
use std::sync::Mutex;
use std::time::Instant;

/// What every request shares.
pub struct Service {
    pub policy: Policy,
    pub keys: KeyWorker,
    pub audit: AuditLog,
    limiter: Mutex<RateLimiter<String>>,
}

/// A request parsed: what the policy and the audit log see, and the work for the key source.
struct Parsed {
    ask_region: Option<String>,
    kids: Vec<Kid>,
    card_id: Option<String>,
    /// Why the request is refused whoever asks (an audit MAC of keyd's own log).
    refused: Option<String>,
    work: Work,
}

type Work = Box<dyn FnOnce(&mut dyn KeySource) -> Result<String, ApiError> + Send>;

fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("request body: {e}")))
}

fn hex(field: &str, text: &str) -> Result<Vec<u8>, ApiError> {
    if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::bad_request(format!("{field}: not hex digits")));
    }
    parse_hex(text).map_err(|e| ApiError::bad_request(format!("{field}: {e}")))
}

fn card(text: &str) -> Result<(CardRef, String), ApiError> {
    let bytes: [u8; 16] = hex("card_id", text)?
        .try_into()
        .map_err(|_| ApiError::bad_request("card_id: 32 hex digits (16 bytes)"))?;
    let card = CardRef::new(bytes);
    let hex = to_hex(&bytes);
    Ok((card, hex))
}

fn kid(name: &str) -> Result<Kid, ApiError> {
    Kid::from_name(name).ok_or_else(|| {
        ApiError::bad_request(format!("kid {name:?}: not a key name of the profile"))
    })
}

fn key_err(e: impl sscard_core::classify::Classified + std::fmt::Display) -> ApiError {
    ApiError::key(&e)
}

fn answer<T: serde::Serialize>(v: &T) -> Result<String, ApiError> {
    serde_json::to_string(v).map_err(|e| ApiError::internal(e.to_string()))
}

fn parse(op: Operation, body: &[u8], audit: &AuditLog) -> Result<Parsed, ApiError> {
    Ok(match op {
        Operation::Cryptogram => {
            let r: CryptogramRequest = parse_json(body)?;
            let alg = r.algorithm.algorithm();
            let (card, card_hex) = card(&r.card_id)?;
            let k = kid(&r.kid)?;
            let random = hex("random", &r.random)?;
            Parsed {
                ask_region: Some(card.city()),
                kids: vec![k],
                card_id: Some(card_hex),
                refused: None,
                work: Box::new(move |keys| {
                    let c = keys.cryptogram(alg, &card, k, &random).map_err(key_err)?;
                    answer(&CryptogramResponse {
                        cryptogram: to_hex(&c),
                    })
                }),
            }
        }
        Operation::Mac => {
            let r: MacRequest = parse_json(body)?;
            let alg = r.algorithm.algorithm();
            let (card, card_hex) = card(&r.card_id)?;
            let k = kid(&r.kid)?;
            let challenge = hex("challenge", &r.challenge)?;
            let message = hex("message", &r.message)?;
            Parsed {
                ask_region: Some(card.city()),
                kids: vec![k],
                card_id: Some(card_hex),
                refused: None,
                work: Box::new(move |keys| {
                    let m = keys
                        .mac(alg, &card, k, &challenge, &message)
                        .map_err(key_err)?;
                    answer(&MacResponse { mac: to_hex(&m) })
                }),
            }
        }
        Operation::KeyLoadBlocks => {
            let r: KeyLoadBlocksRequest = parse_json(body)?;
            let alg = r.algorithm.algorithm();
            let (card, card_hex) = card(&r.card_id)?;
            let loads = r
                .keys
                .iter()
                .map(|l| Ok((kid(&l.kid)?, l.tries)))
                .collect::<Result<Vec<_>, ApiError>>()?;
            if loads.is_empty() {
                return Err(ApiError::bad_request("keys: at least one key to load"));
            }
            Parsed {
                ask_region: Some(card.city()),
                kids: loads.iter().map(|(k, _)| *k).collect(),
                card_id: Some(card_hex),
                refused: None,
                work: Box::new(move |keys| {
                    let blocks = loads
                        .iter()
                        .map(|(k, tries)| {
                            keys.key_load_block(alg, &card, *k, *tries)
                                .map(|b| to_hex(&b))
                                .map_err(key_err)
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    answer(&KeyLoadBlocksResponse { blocks })
                }),
            }
        }
        Operation::Pkey => {
            let r: PkeyRequest = parse_json(body)?;
            let line: Step1Line = r
                .step1
                .parse()
                .map_err(|e: sscard::unified::UnifiedError| ApiError {
                    kind: ErrorKind::BadRequest,
                    code: sscard_core::classify::Classified::return_code(&e),
                    message: format!("step1: {e}"),
                })?;
            let mut kids = vec![Kid::Irk];
            if line.challenge.is_some() {
                kids.push(Kid::Rkssse);
            }
            Parsed {
                ask_region: Some(line.region.clone()),
                kids,
                card_id: Some(to_hex(&line.card_id)),
                refused: None,
                work: Box::new(move |keys| {
                    let p = hsm_step2_key(keys, &line).map_err(key_err)?;
                    answer(&PkeyResponse {
                        pkey: p.to_string(),
                    })
                }),
            }
        }
        Operation::AuditMac => {
            let r: AuditMacRequest = parse_json(body)?;
            let message = hex("message", &r.message)?;
            Parsed {
                ask_region: None,
                kids: vec![],
                card_id: None,
                refused: if crate::own_log::is_own_log_message(&message) {
                    Some(
                        "audit-mac: the message is an entry or anchor of keyd's own audit log \
                         (station keyd@…, actor keyd), which keyd MACs for no client"
                            .to_string(),
                    )
                } else if crate::own_log::chains_onto(&message, audit.open_hashes()) {
                    Some(
                        "audit-mac: the message is an entry chained onto keyd's own audit log \
                         after its last anchor, which keyd MACs for no client"
                            .to_string(),
                    )
                } else {
                    None
                },
                work: Box::new(move |keys| {
                    let m = keys.audit_mac(&message).map_err(key_err)?;
                    answer(&AuditMacResponse { mac: to_hex(&m) })
                }),
            }
        }
        Operation::Preflight => {
            let r: PreflightRequest = parse_json(body)?;
            let kids = r
                .kids
                .iter()
                .map(|k| kid(k))
                .collect::<Result<Vec<_>, _>>()?;
            let for_source = kids.clone();
            Parsed {
                ask_region: None,
                kids,
                card_id: None,
                refused: None,
                work: Box::new(move |keys| {
                    keys.preflight(&for_source).map_err(key_err)?;
                    answer(&PreflightResponse {})
                }),
            }
        }
        Operation::Info => Parsed {
            ask_region: None,
            kids: vec![],
            card_id: None,
            refused: None,
            work: Box::new(|keys| {
                let region = keys.region().map_err(key_err)?;
                let terminal_number = keys.terminal_number().map_err(key_err)?;
                answer(&InfoResponse {
                    source: keys.describe(),
                    algorithm: keys.algorithm().and_then(WireAlgorithm::from_algorithm),
                    region,
                    terminal_number,
                })
            }),
        },
    })
}

impl Service {
    pub fn new(policy: Policy, keys: KeyWorker, audit: AuditLog) -> Self {
        Self {
            policy,
            keys,
            audit,
            limiter: Mutex::new(RateLimiter::new()),
        }
    }

    /// Answers one request: `(status, JSON body)`.
    pub async fn handle(&self, who: &ClientIdentity, op: Operation, body: &[u8]) -> (u16, String) {
        match self.perform(who, op, body).await {
            Ok(json) => (200, json),
            Err(e) => (e.kind.status(), e.body()),
        }
    }

    /// Records a refusal of a client before its request was read.
    async fn refused(
        &self,
        who: &ClientIdentity,
        op: Operation,
        e: &ApiError,
    ) -> Result<(), ApiError> {
        self.audit
            .record(AuditRecord {
                client: who.label(),
                operation: op.name(),
                kids: String::new(),
                card_id: None,
                outcome: e.outcome(),
            })
            .await
            .map_err(|a| ApiError::internal(a.to_string()))
    }

    async fn perform(
        &self,
        who: &ClientIdentity,
        op: Operation,
        body: &[u8],
    ) -> Result<String, ApiError> {
        // The client first: one the policy does not know is refused before anything else.
        let rule = match self.policy.rule_for(who) {
            Ok(rule) => rule,
            Err(r) => {
                let e = ApiError {
                    kind: ErrorKind::Unauthorised,
                    code: codes::KEY_SERVICE_UNAUTHORISED,
                    message: r.to_string(),
                };
                self.refused(who, op, &e).await?;
                return Err(e);
            }
        };
        if let Some(rate) = rule.and_then(|r| r.rate) {
            let admitted = self
                .limiter
                .lock()
                .map(|mut l| {
                    l.admit(
                        rule.map(|r| r.name.clone()).unwrap_or_default(),
                        rate,
                        Instant::now(),
                    )
                })
                .unwrap_or(false);
            if !admitted {
                return Err(ApiError {
                    kind: ErrorKind::RateLimited,
                    code: codes::KEY_SERVICE_RATE_LIMITED,
                    message: format!(
                        "over the rate limit of {} requests a second (burst {}): retry later",
                        rate.per_second, rate.burst
                    ),
                });
            }
        }
        let parsed = parse(op, body, &self.audit)?;
        let mut record = AuditRecord {
            client: who.label(),
            operation: op.name(),
            kids: parsed
                .kids
                .iter()
                .map(|k| k.name())
                .collect::<Vec<_>>()
                .join(","),
            card_id: parsed.card_id.clone(),
            outcome: "ok".into(),
        };
        let ask = Ask {
            region: parsed.ask_region.as_deref(),
            kids: &parsed.kids,
        };
        let refusal = match self.policy.check(who, op, &ask) {
            Err(refusal) => Some(refusal.to_string()),
            Ok(()) => parsed.refused,
        };
        if let Some(message) = refusal {
            let e = ApiError {
                kind: ErrorKind::Forbidden,
                code: codes::KEY_SERVICE_REFUSED,
                message,
            };
            record.outcome = e.outcome();
            self.audit
                .record(record)
                .await
                .map_err(|a| ApiError::internal(a.to_string()))?;
            return Err(e);
        }
        let result = self
            .keys
            .run(parsed.work)
            .await
            .map_err(|w| match w {
                crate::key_worker::WorkerError::Open(e) => ApiError::key(&e),
                gone => ApiError::internal(gone.to_string()),
            })
            .and_then(|r| r);
        if let Err(e) = &result {
            record.outcome = e.outcome();
        }
        // Durable, then answer: an operation the log cannot record is not answered.
        self.audit
            .record(record)
            .await
            .map_err(|a| ApiError::internal(a.to_string()))?;
        result
    }
}
