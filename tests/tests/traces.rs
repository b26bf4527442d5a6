//! The connection owns the trace: every APDU of a command, the card's and the PSAM's alike,
//! reaches `--trace`, `--pcap` and `--trace-json`, secrets masked, and the pcapng files of
//! `info`, `script run` and `perso run` open in tshark with an interface per card.

use sscard_e2e::*;
use std::path::{Path, PathBuf};

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sscard-traces-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Each packet's interface name and tshark's one-line summary.
fn tshark(pcap: &Path) -> Vec<(String, String)> {
    let o = std::process::Command::new("tshark")
        .args([
            "-r",
            pcap.to_str().unwrap(),
            "-d",
            "iso14443.subdissector,iso7816",
        ])
        .args([
            "-T",
            "fields",
            "-e",
            "frame.interface_name",
            "-e",
            "_ws.col.Info",
        ])
        .output()
        .expect("tshark runs (scripts/setup.sh installs it)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| {
            let (i, info) = l.split_once('\t').unwrap_or((l, ""));
            (i.to_string(), info.to_string())
        })
        .collect()
}

#[test]
fn info_traces_the_psam_beside_the_card_everywhere() {
    let _g = exclusive();
    let _m = ModelServer::start(&[], &[READER_0, READER_1]);
    let (pcap, jsonl) = (tmp("info.pcapng"), tmp("info.jsonl"));
    let o = sscard(&[
        "info",
        "--reader",
        READER_0,
        "--psam-reader",
        READER_1,
        "--trace",
        "--pcap",
        pcap.to_str().unwrap(),
        "--trace-json",
        jsonl.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().collect();
    let at = |prefix: &str| {
        lines
            .iter()
            .position(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line starting {prefix:?} in\n{err}"))
    };
    // The card's INTERNAL AUTHENTICATE, then the PSAM's DES INIT (IRK, card level) and DES
    // CRYPT whose cryptogram is masked, fetched with GET RESPONSE.
    let internal = at("card > 0088000808");
    let des_init = at("psam > 801A080108");
    let des_crypt = at("psam > 80FA000008");
    assert!(internal < des_init && des_init < des_crypt, "{err}");
    assert!(
        lines.contains(&"psam > 00C0000008")
            || lines.iter().any(|l| l.starts_with("psam > 00C00000")),
        "{err}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("psam < **************** 9000")),
        "the DES CRYPT answer is masked: {err}"
    );
    let packets = tshark(&pcap);
    assert!(
        packets.iter().any(|(i, _)| i == "card Virtual PCD 00 00"),
        "{packets:?}"
    );
    assert!(
        packets.iter().any(|(i, _)| i == "psam Virtual PCD 00 01"),
        "{packets:?}"
    );
    assert!(
        packets.iter().any(|(_, s)| s.contains("Select file")),
        "{packets:?}"
    );
    let json: Vec<serde_json::Value> = std::fs::read_to_string(&jsonl)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // One object per exchange, two packets each in the pcapng.
    assert_eq!(packets.len(), 2 * json.len());
    assert_eq!(
        json.iter().filter(|e| e["role"] == "card").count() * 2,
        packets
            .iter()
            .filter(|(i, _)| i.starts_with("card"))
            .count()
    );
    assert!(json
        .iter()
        .any(|e| e["role"] == "psam" && e["command"].as_str().unwrap().starts_with("801A")));
}

#[test]
fn script_run_and_perso_run_write_pcapng_that_tshark_reads() {
    let _g = exclusive();
    {
        let _m = ModelServer::start(&[], &[READER_0, READER_1]);
        let pcap = tmp("script.pcapng");
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../apdu-scripts/ssc/02-ef05.apdu"
        );
        let o = sscard(&[
            "script",
            "run",
            script,
            "--reader",
            READER_0,
            "--psam-reader",
            READER_1,
            "--pcap",
            pcap.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
        let packets = tshark(&pcap);
        assert!(
            packets
                .iter()
                .any(|(i, s)| i == "card Virtual PCD 00 00" && s.contains("Read record")),
            "{packets:?}"
        );
    }
    let dir = tmp("perso");
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("perso.pcapng");
    personalise_one_card_traced(&dir, &pcap);
    let packets = tshark(&pcap);
    assert!(
        packets.iter().all(|(i, _)| i == "card Virtual PCD 00 00"),
        "{packets:?}"
    );
    // The whole personalisation: 8 WRITE KEYs, the records, the read-back, END PERSONALISATION.
    assert!(packets.len() > 2 * 40, "{} packets", packets.len());
}
