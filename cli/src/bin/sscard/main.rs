//! `sscard`: social security cards and PSAMs over PC/SC.

mod bench;
mod bench_model;
mod bench_perso;
mod cmd_atr;
mod cmd_demo;
mod cmd_hsm;
mod cmd_keyd;
mod cmd_keys;
mod cmd_monitor;
mod cmd_perso;
mod cmd_reader_test;
mod cmd_readers;
mod cmd_script;
mod cmd_send;
mod cmd_ssc;
mod cmd_trace;
mod cmd_unified_test;
mod connect;
mod exit;
mod output;
mod prompt;
mod shell;

use clap::{Parser, Subcommand};

const EXIT_CODES: &str = "Exit codes: 0 success · 1 the card answered an unexpected status word or refused (PIN, authentication) · 2 bad input (hex, APDU, arguments, files) · 3 reader problem (none, unknown, ambiguous) · 4 card problem (no card, removed, mute, not genuine, wrong card) · 5 a service is away: pcscd not running, or the key service (--keys remote:) unreachable, timed out or rate-limiting (try again later) · 6 key source problem or other error · 7 a command that changes the card got no answer: the card may or may not have changed (read it before trying again).\nWith --json, errors are one JSON object {\"error\", \"code\", \"exit\"} where code is the unified-interface return code.";

#[derive(Parser)]
#[command(name = "sscard", version, about = "Social security cards and PSAMs over PC/SC", after_help = EXIT_CODES)]
struct Cli {
    /// Print results as JSON.
    #[arg(long, global = true)]
    json: bool,
    #[command(flatten)]
    budget: BudgetOpts,
    #[command(subcommand)]
    command: Cmd,
}

/// The transmit budget of every flow (one transaction on a card or PSAM): a card that keeps
/// the host talking longer is stopped with a typed error (docs/budget.md).
#[derive(clap::Args)]
struct BudgetOpts {
    /// Most APDUs one flow may exchange with a card (GET RESPONSE and resends included).
    #[arg(long, global = true, value_name = "N", env = "SSCARD_MAX_APDUS",
          default_value_t = sscard_transport::budget::DEFAULT_APDUS,
          value_parser = clap::value_parser!(u64).range(1..))]
    max_apdus: u64,
    /// Most bytes (commands and responses) one flow may exchange with a card.
    #[arg(long, global = true, value_name = "BYTES", env = "SSCARD_MAX_BYTES",
          default_value_t = sscard_transport::budget::DEFAULT_BYTES,
          value_parser = clap::value_parser!(u64).range(1..))]
    max_bytes: u64,
}

#[derive(Subcommand)]
enum Cmd {
    /// List PC/SC readers and whether a card is present.
    Readers,
    /// Explain an ATR: from a reader's card, or given as hex.
    Atr(cmd_atr::Args),
    /// Print reader and card events (added/removed, inserted/removed) as they happen.
    Monitor(cmd_monitor::Args),
    /// The key hierarchy: derive levels by hand, import a key set into a PKCS#11 token.
    #[command(subcommand)]
    Keys(cmd_keys::Keys),
    /// Qualify a reader with any card (SSSE, the loopback test application, a PSAM); `compare`
    /// two runs.
    ReaderTest(cmd_reader_test::Args),
    /// Qualify a library exposing the national unified interface against served model cards.
    UnifiedTest(cmd_unified_test::Args),
    /// Batch personalisation of blank cards with an exactly-once journal.
    #[command(subcommand)]
    Perso(cmd_perso::Perso),
    /// APDU scripts: run conformance suites, import scriptor files.
    #[command(subcommand)]
    Script(cmd_script::ScriptCmd),
    /// Benchmarks that print ratios measured side by side in one run.
    #[command(subcommand)]
    Bench(bench::Bench),
    /// Send APDUs and print responses with status word meanings (auto GET RESPONSE).
    Send(cmd_send::Args),
    /// Read the card's basic information (mutual authentication through the key source).
    Info(cmd_ssc::InfoArgs),
    /// Read a file of the social security card.
    Read(cmd_ssc::ReadArgs),
    /// Write a record (or binary data) with line protection.
    Write(cmd_ssc::WriteArgs),
    /// PIN life cycle: verify, change, reload (agency), unblock.
    Pin(cmd_ssc::PinArgs),
    /// The encryption machine's step of the unified interface's two-step reading.
    #[command(subcommand)]
    Hsm(cmd_hsm::Hsm),
    /// The key service: the key-source operations over HTTPS with mutual TLS.
    #[command(subcommand)]
    Keyd(cmd_keyd::Keyd),
    /// Traces: `decode` a pcap or JSON trace into one line per APDU pair.
    #[command(subcommand)]
    Trace(cmd_trace::Trace),
    /// The main job on the embedded virtual card: read basic info via the PSAM, the initial-PIN
    /// policy, and a PIN change.
    Demo(cmd_demo::Args),
    /// An interactive explorer of the card and PSAM that knows the profile: files, decoded
    /// records, authentication, PIN, writes, raw APDUs (docs/shell.md).
    Shell(shell::Args),
}

/// The PostgreSQL driver's debug and trace output: every statement with its parameters —
/// holder names and ID numbers. Dropped whatever RUST_LOG says (a filter of its own, since a
/// more specific RUST_LOG directive such as `tokio_postgres::query=trace` would win over any
/// directive added to RUST_LOG's); the driver's info and above (server notices) stay.
fn driver_detail(m: &tracing::Metadata<'_>) -> bool {
    const DRIVERS: [&str; 3] = ["tokio_postgres", "postgres", "postgres_protocol"];
    *m.level() > tracing::Level::INFO
        && DRIVERS.iter().any(|d| {
            m.target()
                .strip_prefix(d)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
        })
}

fn main() {
    // Diagnostics (`RUST_LOG=debug`, default warnings and errors) go to stderr, never stdout,
    // which carries results and --json.
    use tracing_subscriber::prelude::*;
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(
            tracing_subscriber::EnvFilter::try_from_default_env()
                // cryptoki logs what it returns to us as errors anyway.
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,cryptoki=off")),
        )
        .with(tracing_subscriber::filter::filter_fn(|m| !driver_detail(m)))
        .init();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => usage_error(e),
    };
    let out = output::Output::new(cli.json);
    // Every connection the command opens, its own or a library's, starts with this budget.
    sscard_transport::Budget::set_process_default(sscard_transport::Budget::new(
        cli.budget.max_apdus,
        cli.budget.max_bytes,
    ));
    let result = match cli.command {
        Cmd::Readers => cmd_readers::run(&out),
        Cmd::Atr(a) => cmd_atr::run(&out, a),
        Cmd::Send(a) => cmd_send::run(&out, a),
        Cmd::Monitor(a) => cmd_monitor::run(&out, a),
        Cmd::Bench(b) => bench::run(&out, b),
        Cmd::Keys(k) => cmd_keys::run(&out, k),
        Cmd::Script(c) => cmd_script::run(&out, c),
        Cmd::Perso(p) => cmd_perso::run(&out, p),
        Cmd::ReaderTest(a) => cmd_reader_test::run(&out, a),
        Cmd::UnifiedTest(a) => cmd_unified_test::run(&out, a),
        Cmd::Info(a) => cmd_ssc::info(&out, a),
        Cmd::Read(a) => cmd_ssc::read(&out, a),
        Cmd::Write(a) => cmd_ssc::write(&out, a),
        Cmd::Pin(a) => cmd_ssc::pin(&out, a),
        Cmd::Demo(a) => cmd_demo::run(&out, a),
        Cmd::Trace(t) => cmd_trace::run(&out, t),
        Cmd::Hsm(h) => cmd_hsm::run(&out, h),
        Cmd::Keyd(k) => cmd_keyd::run(k),
        Cmd::Shell(a) => shell::run(a),
    };
    if let Err(e) = result {
        let (exit, code) = exit::classify(&e);
        if !(out.json() && e.downcast_ref::<exit::Reported>().is_some()) {
            out.error(&e, exit, code);
        }
        std::process::exit(exit);
    }
}

/// Help and version print as clap makes them; a usage error is one line (JSON with `--json`)
/// and exit code 2, like any other bad input.
fn usage_error(e: clap::Error) -> ! {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        e.exit();
    }
    // The first paragraph of clap's message (a missing argument is named on the next line).
    let text = e.render().to_string();
    let first: Vec<&str> = text
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect();
    let first = first.join(" ");
    let message = first.strip_prefix("error: ").unwrap_or(&first);
    let json = std::env::args().any(|a| a == "--json");
    let out = output::Output::new(json);
    out.error(
        &anyhow::anyhow!("{message} (see --help)"),
        exit::BAD_INPUT,
        -23,
    );
    std::process::exit(exit::BAD_INPUT);
}
