//! The qualification cases as data: the scene in the readers, then calls, each with the return
//! code and the output a correct library gives (PROFILE sections 7 and 10).

use crate::expected::{basic_info_line, line, mask};
use crate::scene::{CardSpec, PsamSpec, Scene, LONG_NAME, OTHER_CITY_CARD_ID};
use sscard_core::crypto::Algorithm;
use sscard_core::hexfmt::{parse_hex, to_hex};
use sscard_core::profile::codes;
use sscard_core::profile::holder::gbk_name;
use sscard_core::profile::Kid;

/// The contact interface (`iType` 1).
pub const CONTACT: i32 = 1;
/// `iAuthType` 1: internal authentication, then what the files need.
pub const AUTHENTICATED: i32 = 1;
/// A PIN the cards are changed to (not the initial one).
const NEW_PIN: &str = "246810";
const WRONG_PIN: &str = "999999";
/// The PIN a reload or a terminal change sets.
const RELOADED_PIN: &str = "135790";

/// One call of the library.
#[derive(Clone, Debug)]
pub enum Call {
    ReadCardBas(i32),
    /// `iReadCardBas_HSM_Step1`; the runner keeps R and the challenge for the next step.
    Step1,
    /// `iReadCardBas_HSM_Step2` with the `pKey` the harness computes from the last step 1;
    /// `corrupt` flips a bit of the internal-auth value.
    Step2 {
        corrupt: bool,
    },
    ReadCard {
        auth: i32,
        card_info: Option<String>,
        addr: String,
    },
    WriteCard {
        card_info: String,
        addr: String,
        data: String,
    },
    VerifyPinK(String),
    ChangePinK(String, String),
    /// `iReloadPIN`, the new PIN typed twice on the terminal when the library asks.
    ReloadPin {
        card_info: String,
        typed: String,
    },
    /// `iVerifyPIN`, the PIN typed on the terminal.
    VerifyPin(String),
    /// `iChangePIN`: the old PIN, the new one, the new one again, typed on the terminal.
    ChangePin(String, String),
    UnblockPin(String),
    ReaderInfo,
}

impl Call {
    /// The call as a report shows it, PINs masked.
    pub fn describe(&self) -> String {
        match self {
            Self::ReadCardBas(t) => format!("iReadCardBas({t})"),
            Self::Step1 => format!("iReadCardBas_HSM_Step1({CONTACT})"),
            Self::Step2 { corrupt: false } => "iReadCardBas_HSM_Step2(pKey)".into(),
            Self::Step2 { corrupt: true } => "iReadCardBas_HSM_Step2(wrong pKey)".into(),
            Self::ReadCard {
                auth,
                card_info,
                addr,
            } => format!(
                "iReadCard({CONTACT}, {auth}, {}, {addr:?})",
                card_info
                    .as_deref()
                    .map_or("NULL".into(), |c| format!("{c:?}"))
            ),
            Self::WriteCard {
                card_info,
                addr,
                data,
            } => format!("iWriteCard({CONTACT}, {card_info:?}, {addr:?}, {data:?})"),
            Self::VerifyPinK(p) => format!("iVerifyPINK({CONTACT}, {})", mask(p)),
            Self::ChangePinK(o, n) => {
                format!("iChangePINK({CONTACT}, {}, {})", mask(o), mask(n))
            }
            Self::ReloadPin { card_info, typed } => format!(
                "iReloadPIN({CONTACT}, {card_info:?}), typed {} twice",
                mask(typed)
            ),
            Self::VerifyPin(p) => format!("iVerifyPIN({CONTACT}), typed {}", mask(p)),
            Self::ChangePin(o, n) => format!(
                "iChangePIN({CONTACT}), typed {}, {}, {}",
                mask(o),
                mask(n),
                mask(n)
            ),
            Self::UnblockPin(c) => format!("iUnblockPIN({CONTACT}, {c:?})"),
            Self::ReaderInfo => "iGetReaderInfo".into(),
        }
    }
}

/// What the output buffer must hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Exactly this line (encoded in the library's text encoding).
    Line(String),
    /// An error text: not empty (PROFILE section 10: error texts in `pOutInfo` on failure).
    ErrorText,
    /// An error text naming this (the tries left after a wrong PIN).
    ErrorNaming(String),
    /// The step-1 line: fixed fields as given, R 8 bytes hex, the challenge 8 bytes hex on
    /// `3.00` cards and empty on `2.00`.
    Step1Line,
    /// Whatever the library writes (the PIN functions' success text is not specified).
    Anything,
    /// `iGetReaderInfo`: the reader's serial number and the PSAM's terminal number.
    ReaderInfo { serial: String, terminal: String },
}

/// One call and what it must give.
#[derive(Clone, Debug)]
pub struct Step {
    pub call: Call,
    pub code: i64,
    pub expect: Expect,
}

fn step(call: Call, code: i32, expect: Expect) -> Step {
    Step {
        call,
        code: code.into(),
        expect,
    }
}

/// One qualification case.
#[derive(Clone, Debug)]
pub struct Case {
    pub id: String,
    pub title: String,
    /// What the case proves, for the report.
    pub checks: String,
    pub scene: Scene,
    pub steps: Vec<Step>,
}

/// What the harness learnt of the bench before the cases: the terminal device number a
/// correct library reports (the card reader's serial number, else the configured one, else
/// empty).
#[derive(Clone, Debug, Default)]
pub struct Facts {
    pub device_number: String,
}

fn alg_tag(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::Sm4 => "sm4",
        _ => "3des",
    }
}

fn alg_title(alg: Algorithm) -> String {
    format!("{} {} card", alg.name(), alg.spec_version())
}

/// The name and name-extension records of a holder name as text, padding removed.
fn name_records(name: &str) -> (String, String) {
    let text = |b: &[u8]| {
        let end = b.iter().position(|&x| x == 0).unwrap_or(b.len());
        encoding_rs::GBK
            .decode_without_bom_handling(&b[..end])
            .0
            .into_owned()
    };
    gbk_name(name).map_or_else(
        |_| (name.into(), String::new()),
        |(a, b)| (text(&a), text(&b)),
    )
}

/// The national items read back: every EF05 record a station writes and the EF06 records.
const NATIONAL_ADDR: &str = "SSSEEF05|01|02|03|05|06|07|$SSSEEF06|08|09|4E|0A|0B|0C|0D|$";

fn national_values(card: &CardSpec) -> String {
    let h = &card.holder;
    let (name, extension) = name_records(&h.name);
    format!(
        "SSSEEF05|{}|3|{}|{}|{}|{}|$SSSEEF06|{}|{name}|{extension}|{}|{}|{}|{}|$",
        card.card_id_hex(),
        card.algorithm.spec_version(),
        h.issue_date,
        h.expiry_date,
        h.card_number,
        h.ssn,
        h.gender,
        h.nation,
        h.birthplace,
        h.birth_date
    )
}

/// Every case, in report order.
pub fn all(facts: &Facts) -> Vec<Case> {
    let mut cases = Vec::new();
    for alg in [Algorithm::Tdes, Algorithm::Sm4] {
        per_algorithm(alg, facts, &mut cases);
    }
    once(facts, &mut cases);
    cases
}

fn per_algorithm(alg: Algorithm, facts: &Facts, cases: &mut Vec<Case>) {
    let (tag, title) = (alg_tag(alg), alg_title(alg));
    let terminal = PsamSpec::city(alg).terminal_number().unwrap_or_default();
    let dev = facts.device_number.as_str();
    let sample = CardSpec::sample(alg);
    let info = sample.card_info();
    let bas = |card: &CardSpec| basic_info_line(card, &terminal, dev);
    let with = |card: CardSpec| Scene {
        card: Some(card),
        psam: Some(PsamSpec::city(alg)),
    };
    let mut case = |id: &str, t: String, checks: &str, scene: Scene, steps: Vec<Step>| {
        cases.push(Case {
            id: format!("{id}-{tag}"),
            title: t,
            checks: checks.into(),
            scene,
            steps,
        })
    };

    case(
        "read-basic",
        format!("iReadCardBas on a {title}"),
        "return 0 and the whole line of section 7: historical bytes (not the whole ATR), dates YYYYMMDD, the PSAM's terminal number",
        Scene::sample(alg),
        vec![step(Call::ReadCardBas(CONTACT), codes::SUCCESS, Expect::Line(bas(&sample)))],
    );
    let long = sample.clone().with_name(LONG_NAME);
    case(
        "name-extension",
        format!("iReadCardBas, name continued in the extension record (EF06 4E), {title}"),
        "the full name is the name record and the name extension, padding removed",
        with(long.clone()),
        vec![step(
            Call::ReadCardBas(CONTACT),
            codes::SUCCESS,
            Expect::Line(bas(&long)),
        )],
    );
    case(
        "two-step",
        format!("two-step reading (Step1, HSM pKey, Step2), {title}"),
        "Step1's line (region, historical bytes, algorithm id, card id, R, challenge, terminal); Step2 with the HSM's pKey gives iReadCardBas's line",
        Scene::sample(alg),
        vec![
            step(Call::Step1, codes::SUCCESS, Expect::Step1Line),
            step(Call::Step2 { corrupt: false }, codes::SUCCESS, Expect::Line(bas(&sample))),
        ],
    );
    case(
        "two-step-long-name",
        format!("two-step reading of a name with the extension record, {title}"),
        "Step2's line carries the full name (name and name extension)",
        with(long.clone()),
        vec![
            step(Call::Step1, codes::SUCCESS, Expect::Step1Line),
            step(
                Call::Step2 { corrupt: false },
                codes::SUCCESS,
                Expect::Line(bas(&long)),
            ),
        ],
    );
    case(
        "two-step-wrong-key",
        format!("two-step reading with a wrong pKey, {title}"),
        "an internal-auth value that is not the card's answer gives -25",
        Scene::sample(alg),
        vec![
            step(Call::Step1, codes::SUCCESS, Expect::Step1Line),
            step(
                Call::Step2 { corrupt: true },
                codes::HSM_DISAGREES,
                Expect::ErrorText,
            ),
        ],
    );
    case(
        "initial-pin-verify",
        format!("iVerifyPINK with the initial PIN, {title}"),
        "a correct initial PIN 123456 gives -35 (must be changed before transactions)",
        Scene::sample(alg),
        vec![step(
            Call::VerifyPinK("123456".into()),
            codes::INITIAL_PIN,
            Expect::ErrorText,
        )],
    );
    case(
        "initial-pin-change",
        format!("iChangePINK to the initial PIN, {title}"),
        "changing the PIN to 123456 gives -36",
        with(sample.clone().with_pin(NEW_PIN)),
        vec![step(
            Call::ChangePinK(NEW_PIN.into(), "123456".into()),
            codes::NEW_PIN_IS_INITIAL,
            Expect::ErrorText,
        )],
    );
    case(
        "change-pin",
        format!("iChangePINK from the initial PIN, then iVerifyPINK, {title}"),
        "a correct change gives 0 and the new PIN then verifies with 0",
        Scene::sample(alg),
        vec![
            step(
                Call::ChangePinK("123456".into(), NEW_PIN.into()),
                codes::SUCCESS,
                Expect::Anything,
            ),
            step(
                Call::VerifyPinK(NEW_PIN.into()),
                codes::SUCCESS,
                Expect::Anything,
            ),
        ],
    );
    case(
        "wrong-pin",
        format!("iVerifyPINK with a wrong PIN, {title}"),
        "a wrong PIN gives -51 and the error text names the tries left (2 of 3)",
        with(sample.clone().with_pin(NEW_PIN)),
        vec![step(
            Call::VerifyPinK(WRONG_PIN.into()),
            codes::WRONG_PIN,
            Expect::ErrorNaming("2".into()),
        )],
    );
    case(
        "blocked-pin",
        format!("iVerifyPINK on a blocked PIN, {title}"),
        "a PIN with no tries left gives -52, even when the PIN given is right",
        with(sample.clone().with_pin(NEW_PIN).with_pin_tries(0)),
        vec![step(
            Call::VerifyPinK(NEW_PIN.into()),
            codes::PIN_LOCKED,
            Expect::ErrorText,
        )],
    );
    case(
        "reload-pin",
        format!("iReloadPIN, the new PIN typed on the terminal, {title}"),
        "reload (RPK MAC through the PSAM) with the new PIN entered twice on the controlling terminal gives 0; the new PIN then verifies (0)",
        with(sample.clone().with_pin(NEW_PIN).with_pin_tries(1)),
        vec![
            step(
                Call::ReloadPin {
                    card_info: info.clone(),
                    typed: RELOADED_PIN.into(),
                },
                codes::SUCCESS,
                Expect::Anything,
            ),
            step(Call::VerifyPinK(RELOADED_PIN.into()), codes::SUCCESS, Expect::Anything),
        ],
    );
    case(
        "verify-pin-terminal",
        format!("iVerifyPIN, the PIN typed on the terminal (no PIN pad), {title}"),
        "the PIN entered on the controlling terminal verifies: 0",
        with(sample.clone().with_pin(NEW_PIN)),
        vec![step(
            Call::VerifyPin(NEW_PIN.into()),
            codes::SUCCESS,
            Expect::Anything,
        )],
    );
    case(
        "change-pin-terminal",
        format!("iChangePIN, the PINs typed on the terminal (no PIN pad), {title}"),
        "old PIN, new PIN twice on the controlling terminal: 0; the new PIN then verifies (0)",
        with(sample.clone().with_pin(NEW_PIN)),
        vec![
            step(
                Call::ChangePin(NEW_PIN.into(), RELOADED_PIN.into()),
                codes::SUCCESS,
                Expect::Anything,
            ),
            step(
                Call::VerifyPinK(RELOADED_PIN.into()),
                codes::SUCCESS,
                Expect::Anything,
            ),
        ],
    );
    case(
        "unblock-pin",
        format!("iUnblockPIN, {title}"),
        "unblock (UPK MAC through the PSAM) gives 0 and the unchanged PIN verifies again (0)",
        with(sample.clone().with_pin(NEW_PIN).with_pin_tries(0)),
        vec![
            step(
                Call::UnblockPin(info.clone()),
                codes::SUCCESS,
                Expect::Anything,
            ),
            step(
                Call::VerifyPinK(NEW_PIN.into()),
                codes::SUCCESS,
                Expect::Anything,
            ),
        ],
    );
    case(
        "read-national",
        format!("iReadCard of national items (EF05, EF06), {title}"),
        "the values of section 10's layout: hex for binary, YYYYMMDD dates, ASCII as is, the name records as text",
        with(long.clone()),
        vec![step(
            Call::ReadCard {
                auth: AUTHENTICATED,
                card_info: Some(info.clone()),
                addr: NATIONAL_ADDR.into(),
            },
            codes::SUCCESS,
            Expect::Line(national_values(&long)),
        )],
    );
    let addr = "SSSEEF05|06|$SSSEEF06|0C|$";
    let data = "SSSEEF05|20441231|$SSSEEF06|120101|$";
    case(
        "write-national",
        format!("iWriteCard of national items, read back, {title}"),
        "a write (UK_N MAC) gives 0 and iReadCard of the same address gives the written data",
        Scene::sample(alg),
        vec![
            step(
                Call::WriteCard {
                    card_info: info.clone(),
                    addr: addr.into(),
                    data: data.into(),
                },
                codes::SUCCESS,
                Expect::Anything,
            ),
            step(
                Call::ReadCard {
                    auth: AUTHENTICATED,
                    card_info: Some(info.clone()),
                    addr: addr.into(),
                },
                codes::SUCCESS,
                Expect::Line(data.into()),
            ),
        ],
    );
    let addr = "SSSEDF01EF01|40|41|42|$";
    let values: Vec<String> = [8usize, 16, 32]
        .iter()
        .map(|&n| to_hex(&(1..=n as u8).collect::<Vec<_>>()))
        .collect();
    let data = format!("SSSEDF01EF01|{}$", line(&values));
    case(
        "local-items",
        format!("iWriteCard/iReadCard of local items (DF01 EF01), {title}"),
        "a write (UK_L MAC) gives 0 and iReadCard of the same address (EAK_L) gives the written data",
        Scene::sample(alg),
        vec![
            step(
                Call::WriteCard {
                    card_info: info.clone(),
                    addr: addr.into(),
                    data: data.clone(),
                },
                codes::SUCCESS,
                Expect::Anything,
            ),
            step(
                Call::ReadCard {
                    auth: AUTHENTICATED,
                    card_info: Some(info.clone()),
                    addr: addr.into(),
                },
                codes::SUCCESS,
                Expect::Line(data),
            ),
        ],
    );
    case(
        "half-personalised",
        format!("iReadCardBas on a card not issued, {title}"),
        "a card still in personalisation (END PERSONALISATION never sent) gives -1",
        with(sample.clone().not_issued()),
        vec![step(
            Call::ReadCardBas(CONTACT),
            codes::WRONG_CARD,
            Expect::ErrorText,
        )],
    );
}

fn once(facts: &Facts, cases: &mut Vec<Case>) {
    let alg = Algorithm::Sm4;
    let sample = CardSpec::sample(alg);
    let terminal = PsamSpec::city(alg).terminal_number().unwrap_or_default();
    let mut case = |id: &str, title: &str, checks: &str, scene: Scene, steps: Vec<Step>| {
        cases.push(Case {
            id: id.into(),
            title: title.into(),
            checks: checks.into(),
            scene,
            steps,
        })
    };
    case(
        "no-card",
        "iReadCardBas with no card",
        "an empty card reader gives -2",
        Scene {
            card: None,
            psam: Some(PsamSpec::city(alg)),
        },
        vec![step(
            Call::ReadCardBas(CONTACT),
            codes::NO_CARD,
            Expect::ErrorText,
        )],
    );
    case(
        "no-psam",
        "iReadCardBas with no PSAM",
        "a card and no PSAM gives -2201",
        Scene {
            card: Some(sample.clone()),
            psam: None,
        },
        vec![step(
            Call::ReadCardBas(CONTACT),
            codes::NO_PSAM,
            Expect::ErrorText,
        )],
    );
    let other_id: [u8; 16] = parse_hex(OTHER_CITY_CARD_ID)
        .ok()
        .and_then(|v| v.try_into().ok())
        .unwrap_or(sample.card_id);
    case(
        "other-city",
        "iReadCardBas, a city PSAM (110100) and a card of another city (120100)",
        "the PSAM's keys cannot reach the card's city: -24",
        Scene {
            card: Some(sample.clone().with_card_id(other_id)),
            psam: Some(PsamSpec::city(alg)),
        },
        vec![step(
            Call::ReadCardBas(CONTACT),
            codes::PSAM_LEVEL_TOO_LOW,
            Expect::ErrorText,
        )],
    );
    case(
        "psam-without-rkssse",
        "iReadCardBas, SM4 3.00 card, a PSAM without RKSSSE",
        "EF06 of a 3.00 card needs RKSSSE: a PSAM without it gives -2203",
        Scene {
            card: Some(sample.clone()),
            psam: Some(PsamSpec::city(alg).without(Kid::Rkssse)),
        },
        vec![step(
            Call::ReadCardBas(CONTACT),
            codes::PSAM_LACKS_RKSSSE,
            Expect::ErrorText,
        )],
    );
    case(
        "read-free-items",
        "iReadCard without authentication (iAuthType 0, pCardInfo NULL)",
        "EF05 is free to read: 0 and its values, with no PSAM work asked for",
        Scene::sample(alg),
        vec![step(
            Call::ReadCard {
                auth: 0,
                card_info: None,
                addr: "SSSEEF05|01|07|$".into(),
            },
            codes::SUCCESS,
            Expect::Line(format!(
                "SSSEEF05|{}|{}|$",
                sample.card_id_hex(),
                sample.holder.card_number
            )),
        )],
    );
    let mut other = sample.card_id;
    other[15] ^= 0x03;
    case(
        "card-info-mismatch",
        "iReadCard with the pCardInfo of another card",
        "a card identification code that is not the card's gives -22",
        Scene::sample(alg),
        vec![step(
            Call::ReadCard {
                auth: AUTHENTICATED,
                card_info: Some(format!("{}|{}|", to_hex(&other), sample.holder.card_number)),
                addr: "SSSEEF05|07|$".into(),
            },
            codes::DATA_MISMATCH,
            Expect::ErrorText,
        )],
    );
    case(
        "itype-invalid",
        "iReadCardBas with iType 9",
        "an iType other than 1-4 gives -1",
        Scene::sample(alg),
        vec![step(
            Call::ReadCardBas(9),
            codes::WRONG_CARD,
            Expect::ErrorText,
        )],
    );
    case(
        "reader-info",
        "iGetReaderInfo",
        "0, the reader's serial number (else the configured device number) and the PSAM's terminal number (EF16)",
        Scene::sample(alg),
        vec![step(
            Call::ReaderInfo,
            codes::SUCCESS,
            Expect::ReaderInfo {
                serial: facts.device_number.clone(),
                terminal,
            },
        )],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_ids_are_unique_and_name_their_algorithm() {
        let cases = all(&Facts::default());
        let mut ids: Vec<&str> = cases.iter().map(|c| c.id.as_str()).collect();
        let n = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), n);
        assert_eq!(n, 2 * 18 + 8);
        assert!(ids.contains(&"name-extension-sm4"));
        assert!(ids.contains(&"name-extension-3des"));
    }

    #[test]
    fn national_values_split_the_long_name() {
        let card = CardSpec::sample(Algorithm::Tdes).with_name(LONG_NAME);
        assert_eq!(
            national_values(&card),
            "SSSEEF05|110100D15600000599110145000000A1|3|2.00|20240101|20340101|A12345674|$\
             SSSEEF06|11010519491231002X|阿卜杜热合曼·买买提明·艾力克|木江|2|01|110105|19491231|$"
        );
    }

    #[test]
    fn pins_never_show_in_a_call() {
        let c = Call::ChangePinK("123456".into(), "246810".into());
        assert_eq!(c.describe(), "iChangePINK(1, ******, ******)");
    }
}
