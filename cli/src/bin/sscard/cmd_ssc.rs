//! info · read · write · pin: the social security card functions.

use crate::connect::{self, CardOpts};
use crate::exit::BadInput;
use crate::output::Output;
use anyhow::Result;
use serde_json::json;
use sscard::ssc::{DeviceNumber, FileContent, Pin, PinStatus, Session, SscError};
use sscard_core::hexfmt::{parse_hex, to_hex};
use sscard_core::profile::decode;
use sscard_core::profile::files::{self, FileDef};
use sscard_core::tlv::Record;
use sscard_transport::trace::{Exchange, MemorySink, Trace};

#[derive(clap::Args)]
pub struct InfoArgs {
    #[command(flatten)]
    card: CardOpts,
    /// Print the unified interface's `|`-separated line.
    #[arg(long, conflicts_with = "json")]
    unified: bool,
    /// The terminal device number the unified line reports when the reader has no serial
    /// number of its own (up to 64 printable ASCII characters, no `|`).
    #[arg(long, value_name = "ID", env = "SSCARD_DEVICE_NUMBER")]
    device_number: Option<DeviceNumber>,
    /// Print the records the card answered as file, tag, length and value hex instead of the
    /// decoded fields.
    #[arg(long, conflicts_with = "unified")]
    raw: bool,
    #[arg(long, hide = true)]
    json: bool,
}

#[derive(clap::Args)]
pub struct ReadArgs {
    /// EF05, EF06, EF07, DF01/EF01 or DF01/EF02.
    file: String,
    /// One record (default: all).
    #[arg(long)]
    record: Option<u8>,
    /// Print each record as tag, length and value hex instead of its decoded field.
    #[arg(long)]
    raw: bool,
    #[command(flatten)]
    card: CardOpts,
}

#[derive(clap::Args)]
pub struct WriteArgs {
    /// EF05, EF06, EF07, DF01/EF01 or DF01/EF02.
    file: String,
    /// Record number (record files).
    #[arg(long)]
    record: Option<u8>,
    /// The record as TLV hex (tag, length, value).
    #[arg(long)]
    tlv: Option<String>,
    /// Offset and data for DF01/EF02.
    #[arg(long)]
    offset: Option<u8>,
    #[arg(long)]
    data: Option<String>,
    #[command(flatten)]
    card: CardOpts,
}

#[derive(clap::Args)]
pub struct PinArgs {
    #[arg(value_enum)]
    action: PinAction,
    /// Read PINs from stdin, one per line (old before new); otherwise prompt without echo.
    #[arg(long)]
    pin_stdin: bool,
    #[command(flatten)]
    card: CardOpts,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum PinAction {
    Verify,
    Change,
    Reload,
    Unblock,
}

/// Runs `f` on a session over the card, in one transaction; the card's and the PSAM's APDUs go
/// to the trace the options ask for.
fn with_session<T>(
    opts: &CardOpts,
    f: impl FnOnce(&mut Session<'_, '_>) -> Result<T, SscError>,
) -> Result<T> {
    with_session_traced(opts, opts.trace.open()?, f)
}

/// [`with_session`] with this trace.
fn with_session_traced<T>(
    opts: &CardOpts,
    trace: Trace,
    f: impl FnOnce(&mut Session<'_, '_>) -> Result<T, SscError>,
) -> Result<T> {
    let mut keys = connect::key_source(opts, &trace)?;
    let mut card = connect::card(opts, &trace)?;
    let mut tx = card.transaction()?;
    let mut s = Session::open(&mut tx, keys.as_mut())?;
    Ok(f(&mut s)?)
}

pub fn info(out: &Output, args: InfoArgs) -> Result<()> {
    // `--raw` keeps the exchanges beside the options' trace to show what the card answered.
    let memory = MemorySink::default();
    let trace = if args.raw {
        Trace::to(vec![
            Box::new(args.card.trace.open()?),
            Box::new(memory.clone()),
        ])
    } else {
        args.card.trace.open()?
    };
    let info = with_session_traced(&args.card, trace, |s| {
        s.set_device_number(args.device_number.clone());
        s.read_basic_info()
    })?;
    if args.unified {
        crate::output::line(&info.unified_line());
        return Ok(());
    }
    if args.raw && !out.json() {
        crate::output::line(&raw_records(&memory.exchanges()));
        return Ok(());
    }
    out.result(json!({ "code": 0, "info": info, "unified": info.unified_line() }), || {
        format!(
            "card number      {}\ncard id          {}\nregion           {}\nspec version     {} ({})\nissued/expires   {} / {}\nname             {}\nSSN              {}\ngender           {}\nbirth date       {}\nATR historical   {}\nterminal         {}\ndevice           {}\nAPDUs            {}",
            info.card.card_number,
            to_hex(&info.card.card_id),
            info.card.region,
            info.card.spec_version,
            info.algorithm,
            info.card.issue_date,
            info.card.expiry_date,
            info.holder.name,
            info.holder.ssn,
            info.holder.gender,
            info.holder.birth_date,
            info.historical_bytes,
            info.terminal_number,
            info.terminal_device_number,
            info.apdus
        )
    });
    Ok(())
}

/// The records the card answered READ RECORD(S) with, one per line: `EF05  01 10 1101…`; the
/// decoder names the file from the selections and SFIs before.
fn raw_records(exchanges: &[Exchange]) -> String {
    let mut decoder = decode::Decoder::new();
    let mut lines = Vec::new();
    for e in exchanges {
        let d = decoder.decode_masked(
            e.role,
            &e.command,
            &e.command_masked,
            &e.response,
            &e.response_masked,
        );
        if e.role != "card" || e.command.get(1) != Some(&0xB2) || !e.sw.is_success() {
            continue;
        }
        let file = d
            .target
            .as_deref()
            .and_then(|t| t.split(' ').next())
            .unwrap_or("?")
            .to_string();
        let data = &e.response[..e.response.len().saturating_sub(2)];
        match Record::parse_all(data) {
            Ok(records) => lines.extend(records.iter().map(|r| {
                format!(
                    "{file}  {:02X} {:02X} {}",
                    r.tag,
                    r.value.len(),
                    to_hex(&r.value)
                )
            })),
            Err(_) => lines.push(format!("{file}  {}", to_hex(data))),
        }
    }
    lines.join("\n")
}

fn ef(name: &str) -> Result<&'static FileDef, BadInput> {
    files::by_name(name)
        .ok_or_else(|| BadInput(format!("unknown file {name:?}: {}", files::names())))
}

pub fn read(out: &Output, args: ReadArgs) -> Result<()> {
    let file = ef(&args.file)?;
    let record = args.record;
    // The file table says what opens the file; the session does it.
    let (records, binary) = match with_session(&args.card, |s| s.read_file(file, record))? {
        FileContent::Records(r) => (r, Vec::new()),
        FileContent::Binary(b) => (Vec::new(), b),
    };
    let items: Vec<_> = records
        .iter()
        .map(|r| json!({ "tag": format!("{:02X}", r.tag), "value": to_hex(&r.value) }))
        .collect();
    // The same records decoded through the file table (`--json` keeps the raw hex above).
    let fields = decode::record_values(file, &records);
    out.result(
        json!({ "file": file.name, "records": items, "binary": to_hex(&binary), "fields": fields }),
        || {
            if file.is_binary() {
                return to_hex(&binary);
            }
            if args.raw {
                return records
                    .iter()
                    .map(|r| format!("{:02X} {:02X} {}", r.tag, r.value.len(), to_hex(&r.value)))
                    .collect::<Vec<_>>()
                    .join("\n");
            }
            fields
                .iter()
                .map(|f| f.line(file))
                .collect::<Vec<_>>()
                .join("\n")
        },
    );
    Ok(())
}

pub fn write(out: &Output, args: WriteArgs) -> Result<()> {
    let file = ef(&args.file)?;
    if file.is_binary() {
        let data = parse_hex(
            args.data
                .as_deref()
                .ok_or_else(|| BadInput("--data is required for DF01/EF02".into()))?,
        )
        .map_err(|e| BadInput(format!("--data: {e}")))?;
        let offset = args.offset.unwrap_or(0);
        with_session(&args.card, |s| s.update_binary(file, offset, &data))?;
    } else {
        let number = args
            .record
            .ok_or_else(|| BadInput("--record is required".into()))?;
        let tlv = parse_hex(
            args.tlv
                .as_deref()
                .ok_or_else(|| BadInput("--tlv is required".into()))?,
        )
        .map_err(|e| BadInput(format!("--tlv: {e}")))?;
        let record = Record::parse(&tlv).map_err(|e| BadInput(format!("--tlv: {e}")))?;
        with_session(&args.card, |s| s.update_record(file, number, &record))?;
    }
    out.result(json!({ "code": 0, "file": file.name }), || {
        format!("{} updated", file.name)
    });
    Ok(())
}

/// Reads PINs: from stdin lines, or prompted without echo on the terminal.
fn read_pins(from_stdin: bool, prompts: &[&str]) -> Result<Vec<Pin>> {
    let mut pins = Vec::new();
    if from_stdin {
        let mut stdin = std::io::stdin().lock();
        for p in prompts {
            // Bounded: `--pin-stdin < /dev/zero` fails at once instead of filling memory.
            let line = crate::prompt::read_secret_line(&mut stdin, "standard input")?
                .ok_or_else(|| BadInput(format!("stdin ended before the {p}")))?;
            pins.push(Pin::new(&line)?);
        }
        return Ok(pins);
    }
    for p in prompts {
        let line = match crate::prompt::secret_line(p) {
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Err(sscard::ssc::SscError::PinCancelled.into())
            }
            // Too long a line (`< /dev/zero`), or not UTF-8.
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                return Err(BadInput(e.to_string()).into())
            }
            r => r?,
        };
        pins.push(Pin::new(&line)?);
    }
    Ok(pins)
}

pub fn pin(out: &Output, args: PinArgs) -> Result<()> {
    let (code, message) = match args.action {
        PinAction::Verify => {
            let pins = read_pins(args.pin_stdin, &["PIN"])?;
            match with_session(&args.card, |s| s.verify_pin(&pins[0]))? {
                PinStatus::Verified => (0, "PIN verified".to_string()),
                PinStatus::InitialMustChange => (
                    -35,
                    "PIN verified: initial PIN, change required".to_string(),
                ),
            }
        }
        PinAction::Change => {
            let pins = read_pins(args.pin_stdin, &["old PIN", "new PIN", "new PIN again"])?;
            if pins[1].to_bcd() != pins[2].to_bcd() {
                return Err(SscError::PinsDiffer.into());
            }
            pins[1].check_new()?;
            with_session(&args.card, |s| s.change_pin(&pins[0], &pins[1]))?;
            (0, "PIN changed".to_string())
        }
        PinAction::Reload => {
            let pins = read_pins(args.pin_stdin, &["new PIN"])?;
            with_session(&args.card, |s| s.reload_pin(&pins[0]))?;
            (0, "PIN reloaded, try counter restored".to_string())
        }
        PinAction::Unblock => {
            with_session(&args.card, |s| s.unblock_pin())?;
            (0, "PIN unblocked, try counter restored".to_string())
        }
    };
    out.result(json!({ "code": code, "message": message }), || {
        message.clone()
    });
    Ok(())
}
