//! `sscard script run | import`: APDU scripts with expectations, against PC/SC readers or the
//! in-process model.

use crate::connect::{self, CardOpts};
use crate::exit::{BadInput, Reported};
use crate::output::Output;
use anyhow::{Context, Result};
use serde_json::json;
use sscard::keys::KeySource;
use sscard::script::{self, report, FileResult, Outcome, Script};
use sscard_core::crypto::Algorithm;
use sscard_core::fsutil::{read_text_file_bounded, write_private, Limit};
use sscard_model::build;
use sscard_model::card::shared;
use sscard_model::ssc::{Defect, Ssc};
use sscard_model::store::Store;
use sscard_transport::pcsc::{establish, list_readers, resolve_reader, PcscBackend};
use sscard_transport::{Connection, InProcess};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(clap::Subcommand)]
pub enum ScriptCmd {
    /// Run script files or directories of them (`*.apdu`, sorted); exit 1 on any failure.
    Run(RunArgs),
    /// Convert a pcsc-tools scriptor file to the .apdu language, keeping comments.
    Import { input: PathBuf, output: PathBuf },
}

#[derive(clap::Args)]
pub struct RunArgs {
    /// Script files or directories.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Run against the in-process card model instead of PC/SC readers (no --reader or --wait:
    /// there is no reader to name or wait for).
    #[arg(long, conflicts_with_all = ["reader", "wait"])]
    model: bool,
    /// Algorithm of the in-process model card.
    #[arg(long, value_parser = ["3des", "sm4"], default_value = "3des")]
    alg: String,
    /// Break one rule of the in-process model (proves the suite can fail).
    #[arg(long, requires = "model")]
    model_defect: Option<Defect>,
    #[command(flatten)]
    card: CardOpts,
    /// Write a JUnit XML report.
    #[arg(long)]
    junit: Option<PathBuf>,
    /// Write a JSON report (`--json` alone prints it on stdout).
    #[arg(long = "json-file")]
    json_file: Option<PathBuf>,
    /// Show failures without the decoded exchange whose check failed.
    #[arg(long)]
    raw: bool,
}

/// The most a scriptor file (`script import`) may hold, like an APDU script.
const SCRIPTOR_LIMIT: Limit =
    Limit::new("a scriptor script", sscard::script::parse::MAX_SCRIPT_BYTES);

fn collect(paths: &[PathBuf]) -> Result<Vec<PathBuf>, BadInput> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found = Vec::new();
            walk(p, &mut found).map_err(|e| BadInput(format!("{}: {e}", p.display())))?;
            found.sort();
            files.extend(found);
        } else if p.is_file() {
            files.push(p.clone());
        } else {
            return Err(BadInput(format!(
                "{}: no such script file or directory",
                p.display()
            )));
        }
    }
    Ok(files)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            walk(&p, out)?;
        } else if p.extension().is_some_and(|x| x == "apdu") {
            out.push(p);
        }
    }
    Ok(())
}

pub fn run(out: &Output, cmd: ScriptCmd) -> Result<()> {
    match cmd {
        ScriptCmd::Import { input, output } => {
            let text = read_text_file_bounded(&input, SCRIPTOR_LIMIT)
                .map_err(|e| BadInput(e.to_string()))?;
            let name = input
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            write_private(
                &output,
                script::import::from_scriptor(&text, &name).as_bytes(),
            )
            .with_context(|| format!("writing {}", output.display()))?;
            out.result(json!({ "written": output.display().to_string() }), || {
                format!("wrote {}", output.display())
            });
            Ok(())
        }
        ScriptCmd::Run(a) => run_all(out, a),
    }
}

fn run_all(out: &Output, a: RunArgs) -> Result<()> {
    let files = collect(&a.paths)?;
    // Parse everything first: a script error stops the run before any card is touched.
    let scripts: Vec<Script> = files
        .iter()
        .map(|f| script::load(f))
        .collect::<Result<_, _>>()?;
    let trace = a.card.trace.open()?;
    let mut keys: Box<dyn KeySource> =
        if a.model && a.card.keys.is_none() && a.card.psam_reader.is_none() {
            Box::new(sscard::keys::SoftKeys::test_set())
        } else {
            connect::key_source(&a.card, &trace)?
        };
    let start = Instant::now();
    let mut results: Vec<FileResult> = Vec::new();
    // Per file, per case: the decoded exchange whose check failed.
    let mut exchanges: Vec<Vec<Option<String>>> = Vec::new();
    if a.model {
        let alg = if a.alg == "sm4" {
            Algorithm::Sm4
        } else {
            Algorithm::Tdes
        };
        for s in &scripts {
            let (ssc, psam) = sscard_model::test_pair(alg);
            let mut ssc = if s.blank_card {
                Ssc::from_image(
                    build::blank_ssc(alg, &build::SAMPLE_CARD_ID),
                    Store::in_memory(),
                )?
            } else {
                ssc
            };
            if let Some(d) = a.model_defect {
                ssc.inject_defect(d);
            }
            let mut card =
                Connection::new(InProcess::new(shared(ssc), "model SSC")).traced(&trace, "card");
            let mut psam =
                Connection::new(InProcess::new(shared(psam), "model PSAM")).traced(&trace, "psam");
            let (result, decoded) =
                script::run_script_decoded(s, &mut card, Some(&mut psam), keys.as_mut());
            results.push(result);
            exchanges.push(decoded);
        }
    } else {
        let mut card = connect::card(&a.card, &trace)?;
        let ctx = establish()?;
        let mut psam = match &a.card.psam_reader {
            Some(r) => Some(
                Connection::new(PcscBackend::connect_named(
                    &ctx,
                    &resolve_reader(&list_readers(&ctx)?, r)?,
                    false,
                )?)
                .traced(&trace, "psam"),
            ),
            None => None,
        };
        for s in &scripts {
            let (result, decoded) =
                script::run_script_decoded(s, &mut card, psam.as_mut(), keys.as_mut());
            results.push(result);
            exchanges.push(decoded);
        }
    }
    let (passed, failed, skipped) = report::counts(&results);
    if let Some(p) = &a.junit {
        write_private(p, report::junit(&results, "sscard conformance").as_bytes())
            .with_context(|| format!("--junit {}", p.display()))?;
    }
    if let Some(p) = &a.json_file {
        write_private(
            p,
            (serde_json::to_string_pretty(&report::json_report(&results))? + "\n").as_bytes(),
        )
        .with_context(|| format!("--json-file {}", p.display()))?;
    }
    let seconds = start.elapsed().as_secs_f64();
    let mut report_json = report::json_report(&results);
    if !a.raw {
        add_exchanges(&mut report_json, &exchanges);
    }
    out.result(report_json, || {
        let mut t = String::new();
        for (f, decoded) in results.iter().zip(&exchanges) {
            for (c, exchange) in f.cases.iter().zip(decoded) {
                if let Outcome::Failed(m) = &c.outcome {
                    t += &format!("FAIL {} › {}: {m}\n", f.path, c.name);
                    if let (Some(x), false) = (exchange, a.raw) {
                        t += &format!("     {x}\n");
                    }
                }
            }
        }
        t + &format!(
            "{passed} passed, {failed} failed, {skipped} skipped ({} files, {seconds:.2} s)",
            results.len()
        )
    });
    if failed > 0 {
        return Err(Reported(format!("{failed} test case(s) failed")).into());
    }
    Ok(())
}

/// Adds `exchange` (the decoded exchange whose check failed) to the failed cases of a JSON
/// report.
fn add_exchanges(report: &mut serde_json::Value, exchanges: &[Vec<Option<String>>]) {
    let Some(files) = report["files"].as_array_mut() else {
        return;
    };
    for (file, decoded) in files.iter_mut().zip(exchanges) {
        let Some(cases) = file["cases"].as_array_mut() else {
            continue;
        };
        for (case, exchange) in cases.iter_mut().zip(decoded) {
            if let (Some(x), Some(o)) = (exchange, case.as_object_mut()) {
                o.insert("exchange".into(), x.clone().into());
            }
        }
    }
}
