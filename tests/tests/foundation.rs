//! Foundation through real pcscd + vpcd: readers, send, pcap, atr, bad input, typed errors.

use sscard_core::apdu::Command;
use sscard_e2e::*;
use sscard_transport::pcsc::{establish, PcscBackend};
use sscard_transport::{Connection, TransportError};

#[test]
fn readers_json_lists_the_vpcd_readers() {
    let _g = exclusive();
    ensure_pcscd();
    let o = sscard(&["readers", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(&o);
    let names: Vec<&str> = v["readers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&READER_0) && names.contains(&READER_1),
        "{names:?}"
    );
}

#[test]
fn send_answers_through_pcscd_and_pcap_decodes() {
    let _g = exclusive();
    let _m = ModelServer::start(&["--no-psam"], &[READER_0]);
    let o = sscard(&["send", "--reader", READER_0, "00A4040000"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "> 00A4040000\n< 9000 success\n");

    let pcap = std::env::temp_dir().join(format!("sscard-e2e-{}.pcap", std::process::id()));
    let aid = "00A404000F7378312E73682EC9E7BBE1B1A3D5CF00";
    let o = sscard(&[
        "send",
        "--reader",
        "PCD 00 00",
        "--pcap",
        pcap.to_str().unwrap(),
        aid,
        "00B2012C00",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("< 0110110100D15600000599110145000000A1 9000 success"),
        "{}",
        stdout(&o)
    );
    let t = std::process::Command::new("tshark")
        .args([
            "-r",
            pcap.to_str().unwrap(),
            "-d",
            "iso14443.subdissector,iso7816",
        ])
        .output()
        .expect("tshark runs (scripts/setup.sh installs it)");
    let text = String::from_utf8_lossy(&t.stdout);
    assert_eq!(text.lines().count(), 4, "{text}");
    assert!(text.contains("Select file"), "{text}");
    assert!(text.contains("Read record, EF 5, record 1"), "{text}");
    let _ = std::fs::remove_file(pcap);
}

#[test]
fn atr_parse_explains_and_checks_tck() {
    let o = sscard(&["atr", "--parse", "3B880153534341524430319C", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["protocols"], serde_json::json!(["T=1"]));
    assert_eq!(v["historical_ascii"], "SSCARD01");
    assert_eq!(v["tck"]["status"], "valid");
    assert_eq!(v["bytes"].as_array().unwrap().len(), 5);
    let o = sscard(&["atr", "--parse", "3B880153534341524430319D"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stdout(&o).contains("check byte wrong: found 9D, expected 9C"),
        "{}",
        stdout(&o)
    );
    assert_eq!(
        stderr(&o),
        "sscard: error: ATR 3B880153534341524430319D: TCK check failed\n"
    );
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    let o = sscard(&["send", "00A40"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        // Shorter than a command header, it could be a PIN: not quoted (issue 15).
        "sscard: error: APDU 1 (**): odd number of hex digits (5): every byte needs two\n"
    );
    let o = sscard(&["send", "00A4040005AABB"]);
    assert_eq!(
        stderr(&o),
        // A command that does not parse: its header alone, whatever follows (issue 15).
        "sscard: error: APDU 1 (00A40400…): Lc says 5 data bytes but 2 follow\n"
    );
    let file = std::env::temp_dir().join(format!("sscard-long-{}.apdu", std::process::id()));
    std::fs::write(&file, format!("00D6000000FFFF{}\n", "00".repeat(70_000))).unwrap();
    let o = sscard(&["send", &format!("@{}", file.display())]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        "sscard: error: APDU 1 (00D60000…): Lc says 65535 data bytes but 70000 follow\n"
    );
    let _ = std::fs::remove_file(file);
}

#[test]
fn unknown_reader_and_missing_pcscd() {
    let _g = exclusive();
    ensure_pcscd();
    let o = sscard(&["send", "--reader", "No Such Reader", "00A4040000"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).starts_with("sscard: error: no reader matches \"No Such Reader\"; readers: Virtual PCD 00 00, Virtual PCD 00 01"), "{}", stderr(&o));
    let o = sscard_env(
        &["readers"],
        &[("PCSCLITE_CSOCK_NAME", "/nonexistent/pcscd.comm")],
        None,
    );
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert_eq!(stderr(&o), "sscard: error: pcscd is not running: start it (e.g. `pcscd` as root, or run scripts/setup.sh)\n");
}

#[test]
fn t0_get_response_through_pcscd() {
    let _g = exclusive();
    let _m = ModelServer::start(&[], &[READER_0, READER_1]);
    // DES INIT + DES CRYPT on the PSAM: 61xx, then GET RESPONSE.
    let o = sscard(&[
        "send",
        "--trace",
        "--reader",
        READER_1,
        "00A4000002DF01",
        "801A0801089911014500000 0A1".replace(' ', "").as_str(),
        "80FA000008 0102030405060708".replace(' ', "").as_str(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("< 6108 8 response bytes available (GET RESPONSE)") || err.contains("< 6108"),
        "{err}"
    );
    assert!(err.contains("> 00C0000008"), "{err}");
}

#[test]
fn card_removed_mid_transaction_is_a_typed_error() {
    let _g = exclusive();
    let m = ModelServer::start(&["--no-psam"], &[READER_0]);
    let ctx = establish().unwrap();
    let mut t = Connection::new(PcscBackend::connect(&ctx, Some(READER_0), false).unwrap());
    let result: Result<(), TransportError> = (|| {
        let mut ch = t.transaction()?;
        ch.transmit(&Command::new(0, 0xA4, 0, 0))?;
        assert_eq!(m.control("remove 0"), "ok");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match ch.transmit(&Command::new(0, 0xA4, 0, 0)) {
                Ok(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(50))
                }
                Ok(r) => panic!("card still answers {r:?}"),
                Err(e) => return Err(e),
            }
        }
    })();
    assert_eq!(result, Err(TransportError::CardRemoved));
    assert_eq!(m.control("insert 0"), "ok");
}

#[test]
fn monitor_reports_insert_and_remove() {
    let _g = exclusive();
    ensure_pcscd();
    let child = std::process::Command::new(bin("sscard"))
        .args(["monitor", "--json", "--count", "2", "--timeout", "30"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    drop(ModelServer::start(&["--no-psam"], &[READER_0]));
    let o = child.wait_with_output().unwrap();
    let events: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 2, "{}", stdout(&o));
    assert_eq!(events[0]["event"], "card_inserted");
    assert_eq!(events[0]["reader"], READER_0);
    assert_eq!(events[0]["atr"], "3B880153534341524430319C");
    assert_eq!(events[1]["event"], "card_removed");
}

#[test]
fn opensc_tool_reads_ef05_by_sfi() {
    let _g = exclusive();
    let _m = ModelServer::start(&["--no-psam"], &[READER_0]);
    let o = std::process::Command::new("opensc-tool")
        .args([
            "-r",
            READER_0,
            "-s",
            "00A404000F7378312E73682EC9E7BBE1B1A3D5CF",
            "-s",
            "00B2012C00",
        ])
        .output()
        .expect("opensc-tool runs (scripts/setup.sh installs opensc)");
    let text = String::from_utf8_lossy(&o.stdout).to_uppercase();
    assert!(o.status.success(), "{text}");
    assert!(text.contains("SW1=0X90, SW2=0X00"), "{text}");
    // opensc-tool prints 16 bytes per line: record 1 of EF05 is tag 01, length 16, the card id.
    assert!(
        text.contains("01 10 11 01 00 D1 56 00 00 05 99 11 01 45 00 00 "),
        "{text}"
    );
    assert!(text.contains("\n00 A1 "), "{text}");
}

#[test]
fn bench_transport_prints_both_rates() {
    let _g = exclusive();
    let _m = ModelServer::start(&["--no-psam"], &[READER_0]);
    let o = sscard(&[
        "bench",
        "transport",
        "--reader",
        READER_0,
        "--count",
        "200",
        "--rounds",
        "4",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["apdus_per_side"], 200);
    assert!(v["bare_pcsc_apdus_per_s"].as_f64().unwrap() > 0.0);
    assert!(v["sscard_apdus_per_s"].as_f64().unwrap() > 0.0);
}

#[test]
fn model_reconnects_after_pcscd_restart() {
    let _g = exclusive();
    let _m = ModelServer::start(&["--no-psam"], &[READER_0]);
    // The system pcscd alone, by its pid file: `pkill -x pcscd` would also stop the private
    // pcscd of a fault test running beside this one (tests/tests/faults.rs).
    let pid = std::fs::read_to_string("/run/pcscd/pcscd.pid")
        .expect("the system pcscd's pid file")
        // pcscd pads its pid file with NUL bytes.
        .trim_matches(|c: char| c == '\0' || c.is_whitespace())
        .parse::<u32>()
        .expect("a pid in pcscd's pid file")
        .to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success(), "pcscd {pid} was running");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        assert!(std::time::Instant::now() < deadline, "pcscd did not stop");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    ensure_pcscd();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !card_present(READER_0) {
        assert!(
            std::time::Instant::now() < deadline,
            "the model did not reconnect to the new pcscd"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let o = sscard(&["send", "--reader", READER_0, "00A4040000"]);
    assert_eq!(
        stdout(&o),
        "> 00A4040000\n< 9000 success\n",
        "{}",
        stderr(&o)
    );
}

#[test]
fn bench_model_and_vpcd_print_their_figures() {
    let _g = exclusive();
    ensure_pcscd();
    let o = sscard(&[
        "bench",
        "model",
        "--apdus",
        "2000",
        "--sessions",
        "50",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(
        v["in_process"][0]["apdus_per_info"], 4,
        "3DES info: SELECT, READ RECORDS EF05, INTERNAL AUTH, READ RECORDS EF06"
    );
    assert_eq!(
        v["in_process"][1]["apdus_per_info"], 6,
        "SM4 adds GET CHALLENGE and EXTERNAL AUTH"
    );
    let o = sscard(&["bench", "vpcd", "--count", "100", "--rounds", "1", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["apdus_per_side"], 100);
    assert!(v["ratio"].as_f64().unwrap() > 0.0);
}

#[test]
fn usage_errors_are_one_line_and_json_with_json() {
    let o = sscard(&["send", "--bogus", "00A4040000"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        "sscard: error: unexpected argument '--bogus' found (see --help)\n"
    );
    let o = sscard(&["--json", "send"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        json(&o),
        serde_json::json!({
            "error": "the following required arguments were not provided: <APDUS>... (see --help)",
            "code": -23,
            "exit": 2
        })
    );
}

#[test]
fn a_replug_is_an_insertion_and_a_removal_pcscd_sees() {
    let _g = exclusive();
    ensure_pcscd();
    assert_eq!(vpcd_port(READER_0), Some(35963));
    assert_eq!(vpcd_port(READER_1), Some(35964));
    assert_eq!(vpcd_port("Virtual PCD F 00 01"), Some(35974));
    assert!(!card_present(READER_0));
    let plug = std::thread::spawn(|| replug(READER_0));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    let mut seen = false;
    while !seen && std::time::Instant::now() < deadline {
        seen = card_present(READER_0);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    plug.join().unwrap();
    assert!(seen, "pcscd never saw the card the replug presented");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while card_present(READER_0) {
        assert!(
            std::time::Instant::now() < deadline,
            "the replugged card stayed"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
