//! Who may do what: a TOML file mapping a client certificate (subject CN or SHA-256
//! fingerprint) to the regions, key names and operations it may use, and its rate limit.
//! Without a policy file every client the client CA vouches for may do everything.
//!
//! ```toml
//! [[client]]
//! name = "front desk, city A"        # for messages and the audit log
//! cn = "desk-01.city-a"              # or: fingerprint = "AB12…" (64 hex digits)
//! regions = ["110100", "12"]         # cities (6 digits) or provinces (2 digits)
//! kids = ["IRK", "RKSSSE", "UK_L"]
//! operations = ["cryptogram", "mac", "pkey", "info"]
//! rate = { per_second = 50.0, burst = 100 }
//! ```

use crate::identity::ClientIdentity;
use crate::operation::Operation;
use serde::Deserialize;
use sscard_core::profile::Kid;
use std::path::Path;

/// Why a policy file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    #[error("policy file {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("policy file {path}: {reason}")]
    Parse { path: String, reason: String },
    #[error("policy file {path}: client {client:?}: {problem}")]
    Client {
        path: String,
        client: String,
        problem: String,
    },
}

impl sscard_core::classify::Classified for PolicyError {
    fn return_code(&self) -> i32 {
        sscard_core::profile::codes::INVALID_DATA
    }
    fn exit_class(&self) -> sscard_core::classify::ExitClass {
        sscard_core::classify::ExitClass::BadInput
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    client: Vec<RawClient>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClient {
    name: String,
    cn: Option<String>,
    fingerprint: Option<String>,
    regions: Vec<String>,
    kids: Vec<String>,
    operations: Vec<Operation>,
    rate: Option<Rate>,
}

/// A client's rate limit: a token bucket refilled at `per_second`, holding at most `burst`.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    pub per_second: f64,
    pub burst: u32,
}

/// Whom a rule matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Match {
    Cn(String),
    /// Upper-case hex of the certificate's SHA-256.
    Fingerprint(String),
}

/// One client's rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub name: String,
    pub matches: Match,
    /// `110100` (a city) or `11` (a province).
    pub regions: Vec<String>,
    pub kids: Vec<Kid>,
    pub operations: Vec<Operation>,
    pub rate: Option<Rate>,
}

/// What a client asks for, as far as the policy looks.
#[derive(Clone, Debug, Default)]
pub struct Ask<'a> {
    /// The 6-digit city of the card (`card_id`'s first digits).
    pub region: Option<&'a str>,
    pub kids: &'a [Kid],
}

/// A refusal: which rule said no, never a key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    #[error("no policy rule matches this client certificate")]
    UnknownClient,
    #[error("policy rule {rule:?} does not allow the operation {operation}")]
    Operation {
        rule: String,
        operation: &'static str,
    },
    #[error("policy rule {rule:?} does not allow region {region}")]
    Region { rule: String, region: String },
    #[error("policy rule {rule:?} does not allow key {kid}")]
    Kid { rule: String, kid: &'static str },
}

/// The parsed policy; `None` rules means development: everyone may do everything.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    rules: Option<Vec<Rule>>,
}

impl Policy {
    /// Every client of the client CA may do everything.
    pub fn open_to_all() -> Self {
        Self { rules: None }
    }

    pub fn is_open(&self) -> bool {
        self.rules.is_none()
    }

    pub fn from_file(path: &Path) -> Result<Self, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|e| PolicyError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses the TOML of a policy file (`origin` names it in messages).
    pub fn parse(text: &str, origin: &str) -> Result<Self, PolicyError> {
        let file: File = toml::from_str(text).map_err(|e| PolicyError::Parse {
            path: origin.into(),
            reason: e.to_string(),
        })?;
        let mut rules = Vec::new();
        for c in file.client {
            let bad = |problem: String| PolicyError::Client {
                path: origin.into(),
                client: c.name.clone(),
                problem,
            };
            let matches = match (&c.cn, &c.fingerprint) {
                (Some(cn), None) => Match::Cn(cn.clone()),
                (None, Some(fp)) => {
                    let fp = fp.replace(':', "").to_ascii_uppercase();
                    if fp.len() != 64 || !fp.bytes().all(|b| b.is_ascii_hexdigit()) {
                        return Err(bad(
                            "fingerprint must be the certificate's SHA-256: 64 hex digits".into(),
                        ));
                    }
                    Match::Fingerprint(fp)
                }
                _ => return Err(bad("give exactly one of cn and fingerprint".into())),
            };
            for r in &c.regions {
                if !(r.len() == 6 || r.len() == 2) || !r.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad(format!(
                        "region {r:?}: a city is 6 digits, a province 2"
                    )));
                }
            }
            let kids = c
                .kids
                .iter()
                .map(|k| Kid::from_name(k).ok_or_else(|| bad(format!("unknown key name {k:?}"))))
                .collect::<Result<Vec<_>, _>>()?;
            if let Some(rate) = c.rate {
                if !(rate.per_second > 0.0 && rate.per_second.is_finite()) || rate.burst == 0 {
                    return Err(bad("rate: per_second and burst must be positive".into()));
                }
            }
            rules.push(Rule {
                name: c.name.clone(),
                matches,
                regions: c.regions.clone(),
                kids,
                operations: c.operations.clone(),
                rate: c.rate,
            });
        }
        Ok(Self { rules: Some(rules) })
    }

    /// The rule for a client: the first one matching its fingerprint or CN.
    pub fn rule_for(&self, who: &ClientIdentity) -> Result<Option<&Rule>, Refusal> {
        let Some(rules) = &self.rules else {
            return Ok(None);
        };
        rules
            .iter()
            .find(|r| match &r.matches {
                Match::Fingerprint(fp) => *fp == who.fingerprint,
                Match::Cn(cn) => who.cn.as_deref() == Some(cn.as_str()),
            })
            .map(Some)
            .ok_or(Refusal::UnknownClient)
    }

    /// Whether `who` may perform `op` for `ask`.
    pub fn check(&self, who: &ClientIdentity, op: Operation, ask: &Ask<'_>) -> Result<(), Refusal> {
        let Some(rule) = self.rule_for(who)? else {
            return Ok(());
        };
        if !rule.operations.contains(&op) {
            return Err(Refusal::Operation {
                rule: rule.name.clone(),
                operation: op.name(),
            });
        }
        if let Some(region) = ask.region {
            let allowed = rule.regions.iter().any(|r| region.starts_with(r.as_str()));
            if !allowed {
                return Err(Refusal::Region {
                    rule: rule.name.clone(),
                    region: region.into(),
                });
            }
        }
        if let Some(kid) = ask.kids.iter().find(|k| !rule.kids.contains(k)) {
            return Err(Refusal::Kid {
                rule: rule.name.clone(),
                kid: kid.name(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"
[[client]]
name = "desk A"
cn = "desk-a"
regions = ["110100"]
kids = ["IRK", "RKSSSE"]
operations = ["cryptogram", "info"]
rate = { per_second = 5.0, burst = 2 }

[[client]]
name = "factory"
fingerprint = "aa:bb:cc:dd:aa:bb:cc:dd:aa:bb:cc:dd:aa:bb:cc:dd:aa:bb:cc:dd:aa:bb:cc:dd:aa:bb:cc:dd:aa:bb:cc:dd"
regions = ["12"]
kids = ["TK", "PIN", "IRK"]
operations = ["key-load-blocks"]
"#;

    fn who(cn: &str, fp: &str) -> ClientIdentity {
        ClientIdentity {
            cn: Some(cn.into()),
            fingerprint: fp.into(),
        }
    }

    #[test]
    fn rules_allow_and_refuse_by_operation_region_and_kid() {
        let p = Policy::parse(POLICY, "p.toml").unwrap();
        let desk = who("desk-a", "00");
        let ask = |region, kids| Ask {
            region: Some(region),
            kids,
        };
        assert_eq!(
            p.check(&desk, Operation::Cryptogram, &ask("110100", &[Kid::Irk])),
            Ok(())
        );
        assert_eq!(
            p.check(&desk, Operation::Cryptogram, &ask("120100", &[Kid::Irk])),
            Err(Refusal::Region {
                rule: "desk A".into(),
                region: "120100".into()
            })
        );
        assert_eq!(
            p.check(&desk, Operation::Cryptogram, &ask("110100", &[Kid::UkL])),
            Err(Refusal::Kid {
                rule: "desk A".into(),
                kid: "UK_L"
            })
        );
        assert_eq!(
            p.check(&desk, Operation::KeyLoadBlocks, &ask("110100", &[Kid::Irk])),
            Err(Refusal::Operation {
                rule: "desk A".into(),
                operation: "key-load-blocks"
            })
        );
        let factory = who("other", &"AABBCCDD".repeat(8));
        assert_eq!(
            p.check(
                &factory,
                Operation::KeyLoadBlocks,
                &ask("120100", &[Kid::Tk, Kid::Pin])
            ),
            Ok(())
        );
        assert_eq!(
            p.check(&who("nobody", "00"), Operation::Info, &Ask::default()),
            Err(Refusal::UnknownClient)
        );
        assert_eq!(
            p.rule_for(&desk).unwrap().unwrap().rate,
            Some(Rate {
                per_second: 5.0,
                burst: 2
            })
        );
    }

    #[test]
    fn an_open_policy_allows_everything() {
        let p = Policy::open_to_all();
        assert!(p.is_open());
        assert_eq!(
            p.check(
                &who("x", "00"),
                Operation::KeyLoadBlocks,
                &Ask {
                    region: Some("990000"),
                    kids: &[Kid::Tk]
                }
            ),
            Ok(())
        );
    }

    #[test]
    fn bad_files_are_refused_with_the_problem() {
        let e = Policy::parse("[[client]]\nname = \"x\"\ncn = \"a\"\nregions = []\nkids = []\noperations = []\ncolour = \"red\"\n", "p").unwrap_err();
        assert!(matches!(e, PolicyError::Parse { .. }), "{e}");
        assert!(e.to_string().contains("colour"), "{e}");
        let e = Policy::parse("[[client]]\nname = \"x\"\ncn = \"a\"\nregions = [\"1101\"]\nkids = []\noperations = []\n", "p").unwrap_err();
        assert_eq!(
            e.to_string(),
            "policy file p: client \"x\": region \"1101\": a city is 6 digits, a province 2"
        );
        let e = Policy::parse("[[client]]\nname = \"x\"\ncn = \"a\"\nregions = []\nkids = [\"MK\"]\noperations = []\n", "p").unwrap_err();
        assert_eq!(
            e.to_string(),
            "policy file p: client \"x\": unknown key name \"MK\""
        );
        let e = Policy::parse(
            "[[client]]\nname = \"x\"\nregions = []\nkids = []\noperations = []\n",
            "p",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "policy file p: client \"x\": give exactly one of cn and fingerprint"
        );
        let e = Policy::parse("[[client]]\nname = \"x\"\ncn = \"a\"\nregions = []\nkids = []\noperations = [\"steal\"]\n", "p").unwrap_err();
        assert!(matches!(e, PolicyError::Parse { .. }), "{e}");
    }
}
