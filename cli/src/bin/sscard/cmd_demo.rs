//! `sscard demo`: the main job against the embedded virtual SSC and PSAM — through pcscd and
//! vpcd when they are there, in-process otherwise (and it says which).

use crate::connect::TraceOpts;
use crate::output::Output;
use anyhow::{Context, Result};
use serde_json::json;
use sscard::keys::{KeySource, PsamKeys};
use sscard::ssc::{Pin, PinStatus, Session, SscError};
use sscard_core::classify::Classified;
use sscard_core::crypto::Algorithm;
use sscard_core::profile::files::ef07;
use sscard_core::profile::{Kid, INITIAL_PIN};
use sscard_model::card::shared;
use sscard_model::vpcd::{serve, ServeOptions, ServedCard};
use sscard_transport::pcsc::{establish, list_readers, CardChange, PcscBackend, ReaderWatch};
use sscard_transport::trace::Trace;
use sscard_transport::{Connection, InProcess};
use std::time::Duration;

pub const CARD_READER: &str = "Virtual PCD 00 00";
pub const PSAM_READER: &str = "Virtual PCD 00 01";

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, value_enum, default_value = "3des")]
    alg: Alg,
    /// Skip pcscd and use the cards in-process.
    #[arg(long)]
    in_process: bool,
    #[command(flatten)]
    trace: TraceOpts,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Alg {
    #[value(name = "3des")]
    Tdes,
    Sm4,
}

/// The new PIN the demo sets on its (throw-away, in-memory) card.
const DEMO_NEW_PIN: &str = "802417";

/// Why pcscd/vpcd cannot be used, if they cannot.
fn pcsc_unavailable() -> Option<String> {
    let ctx = match establish() {
        Ok(c) => c,
        Err(e) => return Some(e.to_string()),
    };
    let readers = match list_readers(&ctx) {
        Ok(r) => r,
        Err(e) => return Some(e.to_string()),
    };
    for r in [CARD_READER, PSAM_READER] {
        if !readers.iter().any(|x| x == r) {
            return Some(format!(
                "pcscd has no reader {r:?} (is vsmartcard-vpcd installed?)"
            ));
        }
        if !reader_empties(&ctx, r, Duration::from_secs(3)) {
            return Some(format!(
                "{r:?} already holds a card (another sscard-model is serving)"
            ));
        }
    }
    None
}

/// Waits until pcscd sees no card in `reader` (a card just removed takes a moment to vanish).
fn reader_empties(ctx: &pcsc::Context, reader: &str, within: Duration) -> bool {
    sscard_transport::pcsc::wait_for_card_state(ctx, reader, false, within).unwrap_or(false)
}

/// How long the demo waits for pcscd to see one of its cards arrive or leave (pcscd polls a
/// vpcd reader every 400 ms).
const CARD_WAIT: Duration = Duration::from_secs(10);

/// Serves the cards to pcscd and connects to them once pcscd's own poll has seen each arrive
/// (its event count moved and the reader shows a card: see `sscard_transport::pcsc::wait`).
fn through_pcscd(alg: Algorithm) -> Result<(Vec<ServedCard>, PcscBackend, PcscBackend)> {
    let ctx = establish()?;
    let mut watches = [CARD_READER, PSAM_READER].map(|r| ReaderWatch::new(&ctx, r));
    let (ssc, psam) = sscard_model::test_pair(alg);
    let served = vec![
        serve(shared(ssc), ServeOptions::port(35963)),
        serve(shared(psam), ServeOptions::port(35964)),
    ];
    let mut connect = |i: usize, r: &str| -> Result<PcscBackend> {
        let watch = watches[i].as_mut().map_err(|e| e.clone())?;
        watch
            .wait(CardChange::Inserted, CARD_WAIT)
            .with_context(|| format!("waiting for the virtual card in {r:?}"))?;
        Ok(PcscBackend::connect_named(&ctx, r, false)?)
    };
    let card = connect(0, CARD_READER)?;
    let psam = connect(1, PSAM_READER)?;
    Ok((served, card, psam))
}

pub fn run(out: &Output, args: Args) -> Result<()> {
    let alg = match args.alg {
        Alg::Tdes => Algorithm::Tdes,
        Alg::Sm4 => Algorithm::Sm4,
    };
    let reason = if args.in_process {
        Some("--in-process".to_string())
    } else {
        pcsc_unavailable()
    };
    let trace = args.trace.open()?;
    match reason {
        None => {
            let (served, card, psam) = through_pcscd(alg)?;
            let how =
                format!("through pcscd/vpcd: SSC in {CARD_READER:?}, PSAM in {PSAM_READER:?}");
            let mut card = Connection::new(card).traced(&trace, "card");
            let psam = PsamKeys::open(Connection::new(psam).traced(&trace, "psam"))?;
            let result = flow(out, alg, &how, &mut card, psam);
            // Take the virtual cards out and leave the readers empty for whoever comes next:
            // empty as pcscd's own poll saw it, not only as it shows it (a card served next
            // while pcscd still believes ours in would go unseen).
            drop(card);
            let ctx = establish()?;
            let watches: Vec<_> = [CARD_READER, PSAM_READER]
                .iter()
                .map(|r| ReaderWatch::new(&ctx, r))
                .collect::<Result<_, _>>()?;
            drop(served);
            let mut left = Ok(());
            for mut w in watches {
                if let Err(e) = w.wait(CardChange::Removed, CARD_WAIT) {
                    left = Err(e);
                }
            }
            result.and(left.context("taking the virtual cards out of the readers"))
        }
        Some(why) => {
            let (ssc, psam) = sscard_model::test_pair(alg);
            let mut card = card_in_process(shared(ssc), "in-process SSC", &trace, "card");
            let psam = card_in_process(shared(psam), "in-process PSAM", &trace, "psam");
            let how = format!("in-process, without pcscd ({why})");
            flow(out, alg, &how, &mut card, PsamKeys::open(psam)?)
        }
    }
}

fn card_in_process(
    card: sscard_core::card::SharedCard,
    name: &str,
    trace: &Trace,
    role: &'static str,
) -> Connection {
    Connection::new(InProcess::new(card, name)).traced(trace, role)
}

fn code_of(r: &Result<(), SscError>) -> (i32, String) {
    match r {
        Ok(()) => (0, "ok".into()),
        Err(e) => (e.return_code(), e.to_string()),
    }
}

fn flow(
    out: &Output,
    alg: Algorithm,
    how: &str,
    card: &mut Connection,
    mut psam: PsamKeys,
) -> Result<()> {
    if !out.json() {
        crate::output::line(&format!(
            "sscard demo: embedded virtual {} social security card and city PSAM, {how}",
            alg.name()
        ));
    }
    let psam_desc = psam.describe();
    let mut tx = card.transaction()?;
    let keys: &mut dyn KeySource = &mut psam;
    let mut s = Session::open(&mut tx, keys)?;
    // Mutual authentication and basic info: internal authentication proves the card genuine,
    // external authentication with RKSSSE proves the terminal (PSAM) to the card.
    let info = s.read_basic_info()?;
    s.external_authenticate(Kid::Rkssse)?;
    let status = s.read_records(ef07())?;
    let initial = Pin::new(INITIAL_PIN)?;
    let verify = s.verify_pin(&initial)?;
    let refused = code_of(&s.change_pin(&initial, &initial));
    let new = Pin::new(DEMO_NEW_PIN)?;
    s.change_pin(&initial, &new)?;
    let after = s.verify_pin(&new)?;
    let old_again = code_of(&s.verify_pin(&initial).map(|_| ()));
    let apdus = s.apdu_count();
    drop(s);
    drop(tx);
    let verify_code = if verify == PinStatus::InitialMustChange {
        -35
    } else {
        0
    };
    out.result(
        json!({
            "transport": how,
            "key_source": psam_desc,
            "info": info,
            "unified": info.unified_line(),
            "social_insurance": status.iter().map(|r| sscard_core::hexfmt::to_hex(&r.to_bytes())).collect::<Vec<_>>(),
            "verify_initial_pin": { "code": verify_code, "message": "initial PIN, change required" },
            "change_to_initial_pin": { "code": refused.0, "message": refused.1 },
            "change_pin": { "code": 0 },
            "verify_new_pin": { "code": if after == PinStatus::Verified { 0 } else { -35 } },
            "verify_old_pin": { "code": old_again.0, "message": old_again.1 },
            "apdus": { "card": apdus, "psam": psam.apdu_count() },
        }),
        || {
            format!(
                "key source: {psam_desc}\n\n1. read basic info (internal authentication via the PSAM)\n   card number  {}\n   card id      {}\n   name         {}\n   SSN          {}\n   spec         {} ({})\n   valid        {} .. {}\n   terminal     {}\n   unified      {}\n2. external authentication with RKSSSE via the PSAM: ok; EF07 has {} records\n3. VERIFY 123456: {verify_code} initial PIN, change required\n4. CHANGE PIN to 123456: {} {}\n5. CHANGE PIN to ******: 0 PIN changed\n6. VERIFY new PIN: 0 verified; VERIFY 123456 now: {} {}\nAPDUs: {apdus} to the card, {} to the PSAM",
                info.card.card_number,
                sscard_core::hexfmt::to_hex(&info.card.card_id),
                info.holder.name,
                info.holder.ssn,
                info.card.spec_version,
                info.algorithm,
                info.card.issue_date,
                info.card.expiry_date,
                info.terminal_number,
                info.unified_line(),
                status.len(),
                refused.0,
                refused.1,
                old_again.0,
                old_again.1,
                psam.apdu_count()
            )
        },
    );
    Ok(())
}
