//! `sscard keys derive | hsm-import`: the national key hierarchy by hand, and loading a key set
//! into a PKCS#11 token for test benches.

use crate::exit::BadInput;
use crate::output::Output;
use anyhow::Result;
use serde_json::json;
use sscard::keys::{KeySpec, Pkcs11Keys};
use sscard_core::crypto::{card_factor, city_factor, province_factor, Algorithm, Key};
use sscard_core::hexfmt::{parse_hex, to_hex};
use sscard_core::profile::{test_keys, Kid};

#[derive(clap::Subcommand)]
pub enum Keys {
    /// Diversify a national master key down to a card and print each level.
    Derive(DeriveArgs),
    /// Load a key set (default: the PROFILE test key set) into a PKCS#11 token as
    /// non-extractable objects labelled sscard:<NAME>. The PIN comes from SSCARD_PKCS11_PIN or a prompt.
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
    /// soft:FILE with the masters to import (default: the PROFILE test key set).
    #[arg(long)]
    from: Option<String>,
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
    let masters: Vec<(Kid, Key)> = match &a.from {
        None => Kid::ALL
            .into_iter()
            .filter_map(|k| test_keys::master(k).map(|m| (k, Key::new(m))))
            .collect(),
        Some(spec) => match spec.parse::<KeySpec>()? {
            KeySpec::Soft(path) => {
                let soft = sscard::keys::SoftKeys::from_file(&path)?;
                Kid::ALL
                    .into_iter()
                    .filter_map(|k| soft.master(k).map(|m| (k, m.clone())))
                    .collect()
            }
            _ => return Err(BadInput("--from takes soft:FILE".into()).into()),
        },
    };
    let pin = crate::connect::token_pin()?;
    let hsm = Pkcs11Keys::open(&module, &token, &pin, true)?;
    let n = hsm.import(&masters)?;
    out.result(json!({ "token": token, "imported": n }), || {
        format!("imported {n} master keys into token {token:?} (non-extractable)")
    });
    Ok(())
}
