//! `sscard keys derive | hsm-import`: the national key hierarchy by hand, and loading a key set
//! into a PKCS#11 token for test benches.

use crate::exit::BadInput;
use crate::output::Output;
use anyhow::Result;
use serde_json::json;
use sscard::keys::ceremony::Ceremony;
use sscard::keys::{ComponentError, KeyError, KeySpec, Pkcs11Keys, SoftKeys};
use sscard_core::crypto::{card_factor, city_factor, province_factor, Algorithm, Key};
use sscard_core::hexfmt::{parse_hex, to_hex};
use sscard_core::profile::Kid;
use std::io::IsTerminal;

#[derive(clap::Subcommand)]
pub enum Keys {
    /// Diversify a national master key down to a card and print each level.
    Derive(DeriveArgs),
    /// Load master keys into a PKCS#11 token as sensitive, non-extractable, derive-only objects
    /// labelled sscard:<NAME> — a key set (default: the PROFILE test key set) or one master
    /// built from key components (--components) — and make sure the token has an audit key
    /// (sscard:AUDIT, generated in the token unless the key set has one) and its region. The
    /// PIN comes from SSCARD_PKCS11_PIN or a prompt.
    HsmImport(ImportArgs),
}

#[derive(clap::Args)]
pub struct DeriveArgs {
    #[arg(long, value_parser = ["3des", "sm4"])]
    alg: String,
    /// The national master key (16 bytes hex).
    #[arg(long)]
    master: String,
    #[arg(long, default_value = "110000")]
    province: String,
    #[arg(long, default_value = "110100")]
    city: String,
    /// Card identification code (16 bytes hex).
    #[arg(long)]
    card_id: String,
}

#[derive(clap::Args)]
pub struct ImportArgs {
    /// pkcs11:MODULE:TOKEN-LABEL
    #[arg(long)]
    keys: String,
    /// soft:FILE with the masters to import (default: the PROFILE test key set, its public
    /// test audit key and region 110100).
    #[arg(long, conflicts_with = "components")]
    from: Option<String>,
    /// Import only this master (IRK, RKSSSE, UK_N, EAK_L, UK_L, RPK, UPK or TK).
    #[arg(long)]
    key: Option<String>,
    /// Key ceremony (dual control): build the master --key from N key components, each
    /// entered by its custodian with its check value (KCV: the first 3 bytes of 3DES-ECB of
    /// eight zero bytes under the component). On a terminal each custodian is prompted (the
    /// component is not shown); otherwise stdin holds N lines `COMPONENT-HEX KCV-HEX` and the
    /// token PIN must come from SSCARD_PKCS11_PIN.
    #[arg(long, value_name = "N", requires = "key")]
    components: Option<usize>,
    /// The city region the token's keys serve (6 digits), stored as the data object
    /// sscard:REGION (default with the test key set: 110100; with --from: the file's REGION).
    #[arg(long, value_name = "CITY")]
    region: Option<String>,
}

pub fn run(out: &Output, keys: Keys) -> Result<()> {
    match keys {
        Keys::Derive(a) => derive(out, a),
        Keys::HsmImport(a) => import(out, a),
    }
}

fn derive(out: &Output, a: DeriveArgs) -> Result<()> {
    let alg = if a.alg == "sm4" {
        Algorithm::Sm4
    } else {
        Algorithm::Tdes
    };
    let master =
        Key::from_slice(&parse_hex(&a.master).map_err(|e| BadInput(format!("--master: {e}")))?)
            .map_err(|e| BadInput(format!("--master: {e}")))?;
    let card_id = parse_hex(&a.card_id).map_err(|e| BadInput(format!("--card-id: {e}")))?;
    let factors = [
        (
            "province",
            province_factor(&a.province).map_err(|e| BadInput(format!("--province: {e}")))?,
        ),
        (
            "city",
            city_factor(&a.city).map_err(|e| BadInput(format!("--city: {e}")))?,
        ),
        (
            "card",
            card_factor(&card_id).map_err(|e| BadInput(format!("--card-id: {e}")))?,
        ),
    ];
    let mut key = master;
    let mut levels = Vec::new();
    for (name, f) in factors {
        key = alg.diversify(&key, &f);
        levels.push(json!({ "level": name, "factor": to_hex(&f), "key": to_hex(key.expose()) }));
    }
    out.result(json!({ "algorithm": alg.name(), "levels": levels }), || {
        levels
            .iter()
            .map(|l| {
                format!(
                    "{:<9} factor {}  key {}",
                    l["level"].as_str().unwrap_or(""),
                    l["factor"].as_str().unwrap_or(""),
                    l["key"].as_str().unwrap_or("")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(())
}

fn import(out: &Output, a: ImportArgs) -> Result<()> {
    let (module, token) = match a.keys.parse::<KeySpec>()? {
        KeySpec::Pkcs11 { module, token } => (module, token),
        _ => {
            return Err(BadInput(format!(
                "--keys {:?}: hsm-import needs pkcs11:MODULE:TOKEN-LABEL",
                a.keys
            ))
            .into())
        }
    };
    let only = a.key.as_deref().map(master_name).transpose()?;
    if let Some(region) = &a.region {
        if region.len() != 6 || !region.bytes().all(|b| b.is_ascii_digit()) {
            return Err(BadInput(format!(
                "--region {region:?}: a 6-digit city code such as 110100"
            ))
            .into());
        }
    }
    let ceremony = match a.components {
        Some(n) => Some(Ceremony::new(n).map_err(KeyError::from)?),
        None => None,
    };
    let piped = !std::io::stdin().is_terminal();
    if ceremony.is_some() && piped && std::env::var_os("SSCARD_PKCS11_PIN").is_none() {
        // The components are on stdin: the PIN must not be read from there.
        return Err(KeyError::NoTokenPin.into());
    }
    // Opened before the custodians type anything: a wrong PIN or token fails first.
    let pin = crate::connect::token_pin()?;
    let hsm = Pkcs11Keys::open(&module, &token, &pin, true)?;

    let mut check_value = None;
    let set = if let Some(ceremony) = ceremony {
        let kid = only.expect("clap requires --key with --components");
        let (key, kcv) = enter_components(ceremony, piped)?;
        check_value = Some(to_hex(&kcv));
        ImportSet {
            masters: vec![(kid, key)],
            audit: None,
            region: a.region.clone(),
        }
    } else {
        let soft = match &a.from {
            None => SoftKeys::test_set(),
            Some(spec) => match spec.parse::<KeySpec>()? {
                KeySpec::Soft(path) => SoftKeys::from_file(&path)?,
                _ => return Err(BadInput("--from takes soft:FILE".into()).into()),
            },
        };
        ImportSet {
            masters: Kid::ALL
                .into_iter()
                .filter(|k| only.is_none_or(|o| o == *k))
                .filter_map(|k| soft.master(k).map(|m| (k, m.clone())))
                .collect(),
            audit: soft.audit_key().map(|k| zeroize::Zeroizing::new(*k)),
            region: a.region.clone().or(soft.region_code().map(str::to_string)),
        }
    };
    let ImportSet {
        masters,
        audit,
        region,
    } = set;
    if masters.is_empty() {
        return Err(BadInput(format!(
            "no master to import{}",
            only.map(|k| format!(": the key set has no {k}"))
                .unwrap_or_default()
        ))
        .into());
    }
    let names: Vec<&str> = masters.iter().map(|(k, _)| k.name()).collect();
    let n = hsm.import(&masters)?;
    let audit_origin = hsm.ensure_audit_key(audit.as_deref())?;
    if let Some(r) = &region {
        hsm.write_region(r)?;
    }
    out.result(
        json!({
            "token": token,
            "imported": n,
            "keys": names,
            "check_value": check_value,
            "audit_key": audit_origin.as_str(),
            "region": region,
        }),
        || {
            let mut lines = Vec::new();
            if let Some(kcv) = &check_value {
                lines.push(format!("combined key {}: check value {kcv}", names[0]));
            }
            lines.push(format!(
                "imported {n} master key{} into token {token:?} ({}): derive-only, non-extractable",
                if n == 1 { "" } else { "s" },
                names.join(" ")
            ));
            lines.push(format!("audit key sscard:AUDIT {}", audit_origin.as_str()));
            if let Some(r) = &region {
                lines.push(format!("region {r}"));
            }
            lines.join("\n")
        },
    );
    Ok(())
}

/// The master `--key` names.
fn master_name(name: &str) -> Result<Kid, BadInput> {
    Kid::from_name(name)
        .filter(|k| *k != Kid::Pin)
        .ok_or_else(|| {
            BadInput(format!(
                "--key {name:?}: expected IRK, RKSSSE, UK_N, EAK_L, UK_L, RPK, UPK or TK"
            ))
        })
}

/// What one `hsm-import` writes into the token.
struct ImportSet {
    masters: Vec<(Kid, Key)>,
    /// The audit key to import; without one the token's is kept or generated.
    audit: Option<zeroize::Zeroizing<[u8; 32]>>,
    region: Option<String>,
}

/// The custodians' components, each checked against its check value as it comes: prompted
/// without echo on a terminal, else one `COMPONENT-HEX KCV-HEX` line each from stdin.
fn enter_components(mut ceremony: Ceremony, piped: bool) -> Result<(Key, [u8; 3])> {
    let total = ceremony.count();
    while !ceremony.is_complete() {
        let i = ceremony.next_number();
        if piped {
            // Bounded and read into memory allocated once (never reallocated and copied).
            let Some(line) =
                crate::prompt::read_secret_line(&mut std::io::stdin().lock(), "standard input")?
            else {
                return Err(KeyError::from(ComponentError::Incomplete {
                    entered: i - 1,
                    expected: total,
                })
                .into());
            };
            if line.trim().is_empty() {
                continue;
            }
            ceremony.add_line(&line).map_err(KeyError::from)?;
        } else {
            let component = crate::prompt::secret_line(&format!(
                "custodian {i} of {total}: key component {i} (32 hex digits, not shown)"
            ))
            .map_err(|_| KeyError::from(ComponentError::NotALine { component: i }))?;
            eprint!("custodian {i} of {total}: check value of component {i} (6 hex digits): ");
            let kcv =
                crate::prompt::read_secret_line(&mut std::io::stdin().lock(), "standard input")?
                    .unwrap_or_default();
            ceremony
                .add(&component, kcv.trim())
                .map_err(KeyError::from)?;
        }
    }
    Ok(ceremony.finish().map_err(KeyError::from)?)
}
