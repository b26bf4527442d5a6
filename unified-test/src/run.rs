//! Running the cases: each case's scene into the readers, its calls through the loaded
//! library, every return code and output compared with what the served card makes correct.

use crate::bench::{Bench, BenchConfig, BenchError};
use crate::cases::{self, Call, Case, Expect, Facts, Step, CONTACT};
use crate::expected::{hsm_key_line, is_hex_of, step1_line};
use crate::loader::{LoadError, Output, TextEncoding, UnifiedLibrary};
use crate::report::{CaseReport, Report, Verdict};
use crate::scene::{CardSpec, Scene};
use crate::terminal::PinTerminal;
use sscard_core::crypto::Algorithm;
use sscard_core::hexfmt::parse_hex;
use std::path::Path;
use std::time::Instant;

/// How to run a qualification.
#[derive(Clone, Debug)]
pub struct Options {
    pub bench: BenchConfig,
    pub encoding: TextEncoding,
    /// The terminal device number the library is configured with, for a reader without a
    /// serial number.
    pub device_number: Option<String>,
    /// Only the cases whose id starts with one of these (all when empty).
    pub only: Vec<String>,
}

/// Why a qualification could not run at all (a case that cannot run is reported per case).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Bench(#[from] BenchError),
    #[error("no case id starts with {0:?}")]
    NoCase(String),
}

impl sscard_core::classify::Classified for RunError {
    fn return_code(&self) -> i32 {
        match self {
            Self::Load(e) => e.return_code(),
            Self::Bench(e) => e.return_code(),
            Self::NoCase(_) => sscard_core::profile::codes::INVALID_DATA,
        }
    }
    fn exit_class(&self) -> sscard_core::classify::ExitClass {
        match self {
            Self::Load(e) => e.exit_class(),
            Self::Bench(e) => e.exit_class(),
            Self::NoCase(_) => sscard_core::classify::ExitClass::BadInput,
        }
    }
}

/// Loads the library, takes the readers and runs every case (or those of `options.only`).
/// `terminal` is where PINs are typed when the library asks on `/dev/tty`; without one those
/// cases are errors.
pub fn qualify(
    library: &Path,
    options: &Options,
    terminal: Option<&PinTerminal>,
) -> Result<Report, RunError> {
    let lib = UnifiedLibrary::open(library, options.encoding)?;
    let mut bench = Bench::open(options.bench.clone())?;
    // The reader's serial number is read with a card in, as the library reads it.
    bench.set(&Scene::sample(Algorithm::Sm4))?;
    let serial = bench.card_reader_serial()?;
    bench.clear()?;
    let facts = Facts {
        device_number: serial
            .or_else(|| options.device_number.clone())
            .unwrap_or_default(),
    };
    let mut cases = cases::all(&facts);
    if !options.only.is_empty() {
        cases.retain(|c| options.only.iter().any(|o| c.id.starts_with(o.as_str())));
        if cases.is_empty() {
            return Err(RunError::NoCase(options.only.join(",")));
        }
    }
    let start = Instant::now();
    let results = cases
        .iter()
        .map(|c| run_case(&lib, &mut bench, c, terminal))
        .collect();
    bench.clear()?;
    Ok(Report {
        library: library.display().to_string(),
        encoding: options.encoding,
        missing: lib.missing(),
        device_number: facts.device_number,
        cases: results,
        duration: start.elapsed(),
    })
}

/// What the last step 1 gave: the random numbers the HSM works over.
#[derive(Default)]
struct TwoStep {
    random: Vec<u8>,
    challenge: Vec<u8>,
}

/// Runs one case; a case never aborts the run.
pub fn run_case(
    lib: &UnifiedLibrary,
    bench: &mut Bench,
    case: &Case,
    terminal: Option<&PinTerminal>,
) -> CaseReport {
    let start = Instant::now();
    let mut report = CaseReport {
        id: case.id.clone(),
        title: case.title.clone(),
        checks: case.checks.clone(),
        verdict: Verdict::Pass,
        call: String::new(),
        expected: String::new(),
        got: String::new(),
        seconds: 0.0,
    };
    if let Err(e) = bench.set(&case.scene) {
        report.verdict = Verdict::Error;
        report.call = "setting the readers".into();
        report.got = e.to_string();
        report.seconds = start.elapsed().as_secs_f64();
        return report;
    }
    let mut two_step = TwoStep::default();
    for step in &case.steps {
        report.call = step.call.describe();
        let (verdict, expected, got) = run_step(lib, case, step, &mut two_step, terminal);
        report.expected = expected;
        report.got = got;
        report.verdict = verdict;
        if verdict != Verdict::Pass {
            break;
        }
    }
    report.seconds = start.elapsed().as_secs_f64();
    report
}

fn show(enc: TextEncoding, out: &Output) -> String {
    let mut s = format!("code {}, {:?}", out.code, enc.decode(&out.bytes));
    if out.overflow {
        s += " (wrote past the 2048-byte buffer)";
    }
    if out.unterminated {
        s += " (no NUL within 2048 bytes)";
    }
    s
}

fn run_step(
    lib: &UnifiedLibrary,
    case: &Case,
    step: &Step,
    two_step: &mut TwoStep,
    terminal: Option<&PinTerminal>,
) -> (Verdict, String, String) {
    let enc = lib.encoding();
    let card = case.scene.card.as_ref();
    let terminal_number = case
        .scene
        .psam
        .as_ref()
        .and_then(|p| p.terminal_number().ok())
        .unwrap_or_default();
    let output = match call(lib, &step.call, card, two_step, terminal) {
        Ok(Called::Out(o)) => o,
        Ok(Called::Reader(info)) => {
            let Expect::ReaderInfo { serial, terminal } = &step.expect else {
                return (
                    Verdict::Error,
                    String::new(),
                    "iGetReaderInfo answered a case that expects another call".into(),
                );
            };
            let expected = format!("code {}, {serial:?}, {terminal:?}", step.code);
            let got = format!(
                "code {}, {:?}, {:?}",
                info.code,
                enc.decode(&info.reader_serial.bytes),
                enc.decode(&info.psam_terminal.bytes)
            );
            let ok = info.code == step.code
                && info.reader_serial.bytes == enc.encode(serial)
                && info.psam_terminal.bytes == enc.encode(terminal)
                && ![&info.reader_serial, &info.psam_terminal]
                    .iter()
                    .any(|o| o.overflow || o.unterminated);
            return (verdict(ok), expected, got);
        }
        Err(e) => return (Verdict::Error, format!("code {}", step.code), e),
    };
    let mut got = show(enc, &output);
    let untyped = terminal.map_or(0, PinTerminal::take_untyped);
    if untyped > 0 {
        got += &format!(" ({untyped} PIN entries not asked for)");
    }
    let sound = !output.overflow && !output.unterminated && output.code == step.code;
    let (ok, expected) = match &step.expect {
        Expect::Line(line) => (
            sound && output.bytes == enc.encode(line),
            format!("code {}, {line:?}", step.code),
        ),
        Expect::ErrorText => (
            sound && !output.bytes.is_empty(),
            format!("code {}, an error text", step.code),
        ),
        Expect::ErrorNaming(what) => (
            sound && enc.decode(&output.bytes).contains(what.as_str()),
            format!("code {}, an error text naming {what:?}", step.code),
        ),
        Expect::Anything => (sound, format!("code {}", step.code)),
        Expect::Step1Line => {
            let Some(card) = card else {
                return (
                    Verdict::Error,
                    String::new(),
                    "a step 1 without a card".into(),
                );
            };
            let text = enc.decode(&output.bytes);
            let fields: Vec<&str> = text.split('|').collect();
            let (random, challenge) = (
                fields.get(4).copied().unwrap_or(""),
                fields.get(5).copied().unwrap_or(""),
            );
            let challenge_len = if card.algorithm == Algorithm::Sm4 {
                8
            } else {
                0
            };
            let formed = is_hex_of(random, 8) && is_hex_of(challenge, challenge_len);
            if formed {
                two_step.random = parse_hex(random).unwrap_or_default();
                two_step.challenge = parse_hex(challenge).unwrap_or_default();
            }
            let shape_r = if formed { random } else { "<R: 8 bytes hex>" };
            let shape_c = match (formed, challenge_len) {
                (true, _) => challenge,
                (false, 0) => "",
                (false, _) => "<challenge: 8 bytes hex>",
            };
            let line = step1_line(card, shape_r, shape_c, &terminal_number);
            (
                sound && formed && output.bytes == enc.encode(&line),
                format!("code {}, {line:?}", step.code),
            )
        }
        Expect::ReaderInfo { .. } => (false, "iGetReaderInfo".into()),
    };
    (verdict(ok), expected, got)
}

fn verdict(ok: bool) -> Verdict {
    if ok {
        Verdict::Pass
    } else {
        Verdict::Fail
    }
}

enum Called {
    Out(Output),
    Reader(crate::loader::ReaderInfo),
}

/// Queues what to type at the library's prompts; no terminal is an error of the case.
fn typing(terminal: Option<&PinTerminal>, entries: &[&str]) -> Result<(), String> {
    let t = terminal.ok_or(
        "no terminal to type the PIN on (the harness could not take a controlling terminal)",
    )?;
    t.type_at_prompts(entries);
    Ok(())
}

fn call(
    lib: &UnifiedLibrary,
    call: &Call,
    card: Option<&CardSpec>,
    two_step: &TwoStep,
    terminal: Option<&PinTerminal>,
) -> Result<Called, String> {
    let out = match call {
        Call::ReadCardBas(t) => lib.read_card_bas(*t),
        Call::Step1 => lib.read_card_bas_step1(CONTACT),
        Call::Step2 { corrupt } => {
            let card = card.ok_or("a step 2 without a card")?;
            if two_step.random.is_empty() {
                return Err("step 1 gave no R to compute the pKey from".into());
            }
            let mut key = hsm_key_line(card, &two_step.random, &two_step.challenge)
                .map_err(|e| e.to_string())?;
            if *corrupt {
                // Flip the low bit of the first digit: still hex, no longer the card's answer.
                let first = key.remove(0);
                let flipped = match first {
                    '0'..='8' | 'A'..='E' => ((first as u8) + 1) as char,
                    '9' => '8',
                    _ => 'E',
                };
                key.insert(0, flipped);
            }
            lib.read_card_bas_step2(&key)
        }
        Call::ReadCard {
            auth,
            card_info,
            addr,
        } => lib.read_card(CONTACT, *auth, card_info.as_deref(), addr),
        Call::WriteCard {
            card_info,
            addr,
            data,
        } => lib.write_card(CONTACT, card_info, addr, data),
        Call::VerifyPinK(p) => lib.verify_pin_k(CONTACT, p),
        Call::ChangePinK(o, n) => lib.change_pin_k(CONTACT, o, n),
        Call::ReloadPin { card_info, typed } => {
            typing(terminal, &[typed, typed])?;
            lib.reload_pin(CONTACT, card_info)
        }
        Call::VerifyPin(p) => {
            typing(terminal, &[p])?;
            lib.verify_pin(CONTACT)
        }
        Call::ChangePin(old, new) => {
            typing(terminal, &[old, new, new])?;
            lib.change_pin(CONTACT)
        }
        Call::UnblockPin(c) => lib.unblock_pin(CONTACT, c),
        Call::ReaderInfo => {
            return lib
                .get_reader_info()
                .map(Called::Reader)
                .map_err(|e| e.to_string())
        }
    };
    out.map(Called::Out).map_err(|e| e.to_string())
}
