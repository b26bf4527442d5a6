//! The benchmark of issue 16's "must show": calls per second of the unified library's
//! `iReadCardBas` through pcscd against `sscard info` on the same served card, for both
//! algorithms, side by side in one run.
//!
//! Three sides, each `--count` reads of basic info per round, in rounds whose order rotates
//! (library, info, in-process; info, in-process, library; …) so that drift hits all alike:
//! - library: `tests/unified/bench_unified.c` (`--c-bench`), one process calling
//!   `iReadCardBas(1, …)` in a loop, timed around the loop;
//! - info: `sscard info --unified --reader "Virtual PCD 00 00" --psam-reader auto` (or the
//!   `--psam` reader), one process per read, as a script or an application shelling out to the
//!   CLI would;
//! - in-process: what one `sscard info` does (connect, find the PSAM, transaction, read basic
//!   info), repeated in this process, so process start-up is out of the figure.
//!
//! Every read's line is checked (the library's GBK name mapped to UTF-8 to compare). Prints the
//! per-round rates, their medians and the medians of the per-round ratios library/info and
//! library/in-process. Run by `scripts/bench-unified.sh`, which builds it and the C program
//! and holds the pcscd lock.

use sscard::keys::PsamKeys;
use sscard::ssc::Session;
use sscard_e2e::{bin, ModelServer, READER_0, READER_1};
use sscard_transport::pcsc::{establish, list_readers, PcscBackend};
use sscard_transport::Connection;
use std::error::Error;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// GBK of 张三, the served card's name: the library's default encoding.
const NAME_GBK: &[u8] = &[0xD5, 0xC5, 0xC8, 0xFD];

const USAGE: &str = "usage: bench-unified --c-bench PROGRAM [--count N] [--rounds N] [--alg 3des|sm4|both] [--psam READER] [--sscard PATH]
  --c-bench PROGRAM  tests/unified/bench_unified.c compiled against the library
  --count N          reads per side and round (default 100)
  --rounds N         rounds, at least 3 (default 7)
  --alg ALG          the served card's algorithm (default both)
  --psam READER      the info sides' --psam-reader (default auto: probe the readers each read)
  --sscard PATH      the sscard binary (default: beside this one)
Run it under `flock -o /tmp/sscard-pcscd.lock` (scripts/bench-unified.sh does).";

struct Args {
    c_bench: PathBuf,
    sscard: PathBuf,
    count: usize,
    rounds: usize,
    algorithms: Vec<&'static str>,
    /// `--psam-reader` of the info and in-process sides.
    psam: String,
}

fn parse_args() -> Result<Args> {
    let mut args = std::env::args().skip(1);
    let (mut c_bench, mut sscard, mut count, mut rounds) = (None, None, 100, 7);
    let mut algorithms = vec!["3des", "sm4"];
    let mut psam = "auto".to_string();
    while let Some(a) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| format!("{a} needs a value\n{USAGE}"))
        };
        match a.as_str() {
            "--c-bench" => c_bench = Some(PathBuf::from(value()?)),
            "--sscard" => sscard = Some(PathBuf::from(value()?)),
            "--psam" => psam = value()?,
            "--count" => count = value()?.parse()?,
            "--rounds" => rounds = value()?.parse()?,
            "--alg" => {
                algorithms = match value()?.as_str() {
                    "3des" => vec!["3des"],
                    "sm4" => vec!["sm4"],
                    "both" => vec!["3des", "sm4"],
                    other => return Err(format!("unknown --alg {other}\n{USAGE}").into()),
                }
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}\n{USAGE}").into()),
        }
    }
    if count == 0 || rounds < 3 {
        return Err(format!("--count must be at least 1 and --rounds at least 3\n{USAGE}").into());
    }
    Ok(Args {
        c_bench: c_bench.ok_or(USAGE)?,
        sscard: sscard.unwrap_or_else(|| bin("sscard")),
        count,
        rounds,
        algorithms,
        psam,
    })
}

/// The library's line with the GBK name as UTF-8, to compare with `sscard`'s.
fn gbk_name_to_utf8(line: &[u8]) -> Vec<u8> {
    match line.windows(NAME_GBK.len()).position(|w| w == NAME_GBK) {
        Some(at) => [&line[..at], "张三".as_bytes(), &line[at + NAME_GBK.len()..]].concat(),
        None => line.to_vec(),
    }
}

/// The library side: one run of the C program. Calls per second of its loop, and its line.
fn library_round(args: &Args, config: &std::path::Path) -> Result<(f64, Vec<u8>)> {
    let o = Command::new(&args.c_bench)
        .arg(args.count.to_string())
        .env("SSCARD_UNIFIED_CONFIG", config)
        .stdin(Stdio::null())
        .output()?;
    if !o.status.success() {
        return Err(format!(
            "{} failed: {}",
            args.c_bench.display(),
            String::from_utf8_lossy(&o.stderr)
        )
        .into());
    }
    let mut lines = o.stdout.split(|b| *b == b'\n');
    let head = String::from_utf8_lossy(lines.next().unwrap_or_default()).into_owned();
    let seconds: f64 = head
        .split_once(" seconds=")
        .map(|(_, s)| s.trim())
        .ok_or_else(|| format!("unexpected first line {head:?}"))?
        .parse()?;
    let line = gbk_name_to_utf8(lines.next().unwrap_or_default());
    Ok((args.count as f64 / seconds, line))
}

/// The CLI side: `sscard info --unified` once per read.
fn info_round(args: &Args, expected: &[u8]) -> Result<f64> {
    let start = Instant::now();
    for _ in 0..args.count {
        let o = Command::new(&args.sscard)
            .args(["info", "--unified", "--reader", READER_0])
            .args(["--psam-reader", &args.psam])
            .env_remove("SSCARD_DEVICE_NUMBER")
            .stdin(Stdio::null())
            .output()?;
        if !o.status.success() || o.stdout.trim_ascii_end() != expected {
            return Err(format!(
                "sscard info: {:?} {}{}",
                o.status.code(),
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
            .into());
        }
    }
    Ok(args.count as f64 / start.elapsed().as_secs_f64())
}

/// One `sscard info --reader READER_0 --psam-reader PSAM` without the process: connect to the
/// card, open the PSAM (`auto`: the first reader whose card opens as one), read basic info in a
/// transaction.
fn read_in_process(psam: &str) -> Result<String> {
    let ctx = establish()?;
    let mut card = Connection::new(PcscBackend::connect(&ctx, Some(READER_0), false)?);
    let candidates = match psam {
        "auto" => list_readers(&ctx)?,
        named => vec![named.to_string()],
    };
    let mut psam = candidates
        .iter()
        .filter_map(|r| PcscBackend::connect_named(&ctx, r, false).ok())
        .find_map(|b| PsamKeys::open(Connection::new(b)).ok())
        .ok_or("no PSAM in any reader")?;
    let mut tx = card.transaction()?;
    let mut session = Session::open(&mut tx, &mut psam)?;
    Ok(session.read_basic_info()?.unified_line())
}

fn in_process_round(args: &Args, expected: &[u8]) -> Result<f64> {
    let start = Instant::now();
    for _ in 0..args.count {
        let line = read_in_process(&args.psam)?;
        if line.as_bytes() != expected {
            return Err(format!("in-process read gave {line:?}").into());
        }
    }
    Ok(args.count as f64 / start.elapsed().as_secs_f64())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() % 2 {
        1 => v[v.len() / 2],
        _ => (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0,
    }
}

fn bench(args: &Args, alg: &str, config: &std::path::Path) -> Result<()> {
    let _model = ModelServer::start(&["--alg", alg], &[READER_0, READER_1]);
    // Warm-up and agreement: all three sides read the same line before anything is timed.
    let o = Command::new(&args.sscard)
        .args([
            "info",
            "--unified",
            "--reader",
            READER_0,
            "--psam-reader",
            &args.psam,
        ])
        .env_remove("SSCARD_DEVICE_NUMBER")
        .output()?;
    if !o.status.success() {
        return Err(format!("sscard info: {}", String::from_utf8_lossy(&o.stderr)).into());
    }
    let expected = o.stdout.trim_ascii_end().to_vec();
    let (_, line) = library_round(args, config)?;
    if line != expected {
        return Err(format!(
            "the library read {:?}, sscard info {:?}",
            String::from_utf8_lossy(&line),
            String::from_utf8_lossy(&expected)
        )
        .into());
    }
    if read_in_process(&args.psam)?.as_bytes() != expected {
        return Err("the in-process read differs from sscard info".into());
    }
    println!(
        "{alg} card in {READER_0}, --psam-reader {}: {}",
        args.psam,
        String::from_utf8_lossy(&expected)
    );
    println!("  round  order                     library/s  info/s  in-process/s");
    let mut rates = Vec::new();
    for round in 0..args.rounds {
        let mut r = [0.0; 3];
        let order: Vec<usize> = (0..3).map(|i| (i + round) % 3).collect();
        for &side in &order {
            r[side] = match side {
                0 => library_round(args, config)?.0,
                1 => info_round(args, &expected)?,
                _ => in_process_round(args, &expected)?,
            };
        }
        let names: Vec<&str> = order
            .iter()
            .map(|s| ["library", "info", "in-process"][*s])
            .collect();
        println!(
            "  {:>5}  {:<24}  {:>9.1}  {:>6.1}  {:>12.1}",
            round + 1,
            names.join(","),
            r[0],
            r[1],
            r[2]
        );
        rates.push(r);
    }
    let side = |i: usize| median(rates.iter().map(|r| r[i]).collect());
    let ratio = |i: usize| median(rates.iter().map(|r| r[0] / r[i]).collect());
    let vs_info = ratio(1);
    println!(
        "  medians of {} rounds, {} reads per side and round:",
        args.rounds, args.count
    );
    println!(
        "    library iReadCardBas (loop in one C process):  {:.1} calls/s",
        side(0)
    );
    println!(
        "    sscard info (one process per read):             {:.1} calls/s",
        side(1)
    );
    println!(
        "    sscard info's flow in-process (no start-up):     {:.1} calls/s",
        side(2)
    );
    println!(
        "    ratio library/info:       {vs_info:.3}  (issue 16 goal >= 0.95: {})",
        if vs_info >= 0.95 { "met" } else { "NOT met" }
    );
    println!("    ratio library/in-process: {:.3}", ratio(2));
    Ok(())
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let dir = std::env::temp_dir().join(format!("sscard-bench-unified-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    // An empty configuration: the library's defaults (GBK, readers found by their cards).
    let config = dir.join("unified.toml");
    std::fs::write(&config, "# defaults\n")?;
    println!(
        "bench-unified: {} (library side), {} (info side)",
        args.c_bench.display(),
        args.sscard.display()
    );
    let result = args
        .algorithms
        .iter()
        .try_for_each(|alg| bench(&args, alg, &config));
    let _ = std::fs::remove_dir_all(&dir);
    result
}
