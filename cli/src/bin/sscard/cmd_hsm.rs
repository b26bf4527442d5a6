//! `sscard hsm step2`: the encryption machine's step of the unified interface's two-step
//! reading (PROFILE section 10): from a card reader's step-1 line to `pKey`, with any key source.

use crate::connect::{self, TraceOpts};
use crate::output::Output;
use anyhow::Result;
use serde_json::json;
use sscard::keys::KeySpec;
use sscard::ssc::SscError;
use sscard::unified::{hsm_step2_key, Step1Line};
use sscard_core::hexfmt::to_hex;

#[derive(clap::Subcommand)]
pub enum Hsm {
    /// Compute pKey (`internal-auth value|external-auth cryptogram|`, the cryptogram empty for
    /// a 2.00 card) for a step-1 line
    /// (`region|ATR historical bytes|algorithm id|card identification code|R|external-auth
    /// challenge|terminal number|`). pKey is the first and only line on stdout; a malformed
    /// line is bad input (exit 2, code -23).
    Step2(Step2Args),
}

#[derive(clap::Args)]
pub struct Step2Args {
    /// Key source: test | soft:FILE | psam:READER | pkcs11:MODULE:TOKEN-LABEL |
    /// remote:https://HOST:PORT.
    #[arg(long)]
    keys: String,
    /// The step-1 line, as iReadCardBas_HSM_Step1 output it.
    #[arg(value_name = "STEP1-LINE")]
    line: String,
    #[command(flatten)]
    trace: TraceOpts,
}

pub fn run(out: &Output, cmd: Hsm) -> Result<()> {
    match cmd {
        Hsm::Step2(a) => step2(out, a),
    }
}

fn step2(out: &Output, a: Step2Args) -> Result<()> {
    // The line is checked before any key source is opened (a PSAM, a token PIN prompt).
    let line: Step1Line = a.line.parse().map_err(SscError::from)?;
    let spec: KeySpec = a.keys.parse()?;
    let trace = a.trace.open()?;
    let mut keys = connect::open_keys(&spec, &trace)?;
    let pkey = hsm_step2_key(keys.as_mut(), &line)?;
    out.result(
        json!({
            "pkey": pkey.to_string(),
            "internal_auth": to_hex(&pkey.internal_auth),
            "external_auth": pkey.external_auth.as_deref().map(to_hex),
        }),
        || pkey.to_string(),
    );
    Ok(())
}
