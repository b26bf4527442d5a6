//! Two-step reading for terminals without a PSAM (PROFILE section 10): step 1 reads EF05, has
//! the card answer INTERNAL AUTHENTICATE over a fresh random and takes an 8-byte challenge on
//! `3.00` cards; the application hands the step-1 line to an encryption machine, which answers
//! `pKey` ([`hsm_step2_key`]); step 2, a separate call in a new transaction on the same card
//! connection, compares the machine's internal-authentication value with the card's answer
//! (−25 when they differ, and nothing is sent), sends EXTERNAL AUTHENTICATE with the machine's
//! cryptogram as its first APDU (the card's challenge is consumed by any command), reads EF06
//! and gives read basic info's result.

use super::error::{fields, strict_hex, UnifiedError};
use crate::keys::{CardRef, KeyError, KeySource};
use crate::ssc::{BasicInfo, CardIdentification, HolderInfo, Session, SscError};
use rand::RngCore;
use sscard_core::crypto::{ct_eq, Algorithm};
use sscard_core::hexfmt::to_hex;
use sscard_core::profile::commands;
use sscard_core::profile::fields::decode;
use sscard_core::profile::files::{ef05, ef06, Access};
use sscard_core::profile::Kid;
use sscard_transport::Transaction;

/// The longest step-1 line or `pKey` accepted, in bytes.
pub const MAX_STEP_LINE: usize = 512;

/// The most historical bytes an ATR has (ISO/IEC 7816-3: K ≤ 15).
const MAX_HISTORICAL: usize = 15;

/// The longest terminal number carried (a PSAM's EF16 has 12 digits).
const MAX_TERMINAL: usize = 20;

/// Whether reading EF06 on a card of `alg` needs external authentication with RKSSSE (`3.00`
/// cards), hence a challenge in step 1 and a cryptogram in `pKey`.
pub fn needs_external_auth(alg: Algorithm) -> bool {
    matches!(ef06().read_access(alg), Access::ExtAuth(Kid::Rkssse))
}

/// Step 1's output line:
/// `region|ATR historical bytes|algorithm id|card identification code|R|external-auth challenge|terminal number|`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step1Line {
    /// The issuing city: the card identification code's first 6 digits.
    pub region: String,
    /// The ATR's historical bytes (hex on the line).
    pub historical_bytes: Vec<u8>,
    /// The card's algorithm (`01` 3DES, `03` SM4 on the line).
    pub algorithm: Algorithm,
    /// The card identification code (32 hex digits on the line).
    pub card_id: [u8; 16],
    /// The random R the card answered INTERNAL AUTHENTICATE over (16 hex digits).
    pub random: [u8; 8],
    /// The card's 8-byte challenge for EXTERNAL AUTHENTICATE: `3.00` cards only (empty field
    /// on `2.00`).
    pub challenge: Option<[u8; 8]>,
    /// The terminal number (the key source's, a PSAM's EF16), else empty.
    pub terminal_number: String,
}

impl std::fmt::Display for Step1Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}|{}|{:02X}|{}|{}|{}|{}|",
            self.region,
            to_hex(&self.historical_bytes),
            self.algorithm.id(),
            to_hex(&self.card_id),
            to_hex(&self.random),
            self.challenge.map(|c| to_hex(&c)).unwrap_or_default(),
            self.terminal_number
        )
    }
}

impl std::str::FromStr for Step1Line {
    type Err = UnifiedError;
    /// Parses a step-1 line strictly (−23): seven `|`-terminated fields; the region equal to
    /// the card identification code's first 6 digits; hex where the line has hex; algorithm
    /// `01` or `03`; a challenge of 16 hex digits exactly when the algorithm's cards need one
    /// (`03`); a terminal number of up to 20 digits or empty.
    fn from_str(line: &str) -> Result<Self, UnifiedError> {
        const WHAT: &str = "step-1 line";
        let bad = |field, problem| UnifiedError::BadField {
            what: WHAT,
            field,
            problem,
        };
        let parts = fields(WHAT, line, MAX_STEP_LINE)?;
        let [region, historical, alg, card_id, random, challenge, terminal] = parts[..] else {
            return Err(UnifiedError::Layout {
                what: WHAT,
                problem: "it is not 7 fields (region|ATR historical bytes|algorithm id|card identification code|R|external-auth challenge|terminal number|)",
            });
        };
        let historical_bytes = strict_hex(historical)
            .filter(|h| h.len() <= MAX_HISTORICAL)
            .ok_or(bad(
                "ATR historical bytes",
                "are not up to 15 bytes of hex digits",
            ))?;
        let algorithm = match alg {
            "01" => Algorithm::Tdes,
            "03" => Algorithm::Sm4,
            _ => return Err(bad("algorithm id", "is not 01 (3DES) or 03 (SM4)")),
        };
        let card_id: [u8; 16] = strict_hex(card_id)
            .and_then(|b| b.try_into().ok())
            .ok_or(bad("card identification code", "is not 32 hex digits"))?;
        let id_rec = ef05().record_by_key("card_id").expect("EF05 has it");
        decode(ef05(), id_rec, &card_id).map_err(|_| {
            bad(
                "card identification code",
                "is not region BCD ‖ D156000005 ‖ serial",
            )
        })?;
        if region != to_hex(&card_id[..3]) {
            return Err(bad(
                "region",
                "is not the card identification code's first 6 digits",
            ));
        }
        let eight = |text: &str, field| {
            strict_hex(text)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .ok_or(bad(field, "is not 16 hex digits"))
        };
        let random = eight(random, "R")?;
        let challenge = match (needs_external_auth(algorithm), challenge.is_empty()) {
            (true, false) => Some(eight(challenge, "external-auth challenge")?),
            (false, true) => None,
            (true, true) => {
                return Err(bad(
                    "external-auth challenge",
                    "is empty; a 3.00 (SM4) card needs one",
                ))
            }
            (false, false) => {
                return Err(bad(
                    "external-auth challenge",
                    "is given; a 2.00 (3DES) card has none",
                ))
            }
        };
        if terminal.len() > MAX_TERMINAL || !terminal.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("terminal number", "is not up to 20 digits"));
        }
        Ok(Self {
            region: region.to_string(),
            historical_bytes,
            algorithm,
            card_id,
            random,
            challenge,
            terminal_number: terminal.to_string(),
        })
    }
}

/// The encryption machine's answer, `pKey`: `internal-auth value|external-auth cryptogram|`
/// (cryptogram empty on `2.00` cards). Not secret (a cryptogram over a single-use challenge),
/// but not to be logged either.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PKey {
    /// `E_IRK(R ‖ 00…)`: what a genuine card answered in step 1 (one block: 8 or 16 bytes).
    pub internal_auth: Vec<u8>,
    /// `E_RKSSSE(challenge ‖ 00…)` for EXTERNAL AUTHENTICATE (`3.00` cards).
    pub external_auth: Option<Vec<u8>>,
}

impl std::fmt::Display for PKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}|{}|",
            to_hex(&self.internal_auth),
            self.external_auth
                .as_deref()
                .map(to_hex)
                .unwrap_or_default()
        )
    }
}

impl std::str::FromStr for PKey {
    type Err = UnifiedError;
    /// Parses `pKey` strictly (−23): two `|`-terminated fields, an internal-authentication
    /// value of one block (16 or 32 hex digits), a cryptogram of one block or empty.
    fn from_str(line: &str) -> Result<Self, UnifiedError> {
        const WHAT: &str = "pKey";
        let parts = fields(WHAT, line, MAX_STEP_LINE)?;
        let [internal, external] = parts[..] else {
            return Err(UnifiedError::Layout {
                what: WHAT,
                problem: "it is not two fields (internal-auth value|external-auth cryptogram|)",
            });
        };
        let block = |text: &str, field| {
            strict_hex(text)
                .filter(|b| matches!(b.len(), 8 | 16))
                .ok_or(UnifiedError::BadField {
                    what: WHAT,
                    field,
                    problem: "is not 16 or 32 hex digits (one 3DES or SM4 block)",
                })
        };
        Ok(Self {
            internal_auth: block(internal, "internal-auth value")?,
            external_auth: match external {
                "" => None,
                text => Some(block(text, "external-auth cryptogram")?),
            },
        })
    }
}

/// The encryption machine's step: `pKey` for a step-1 line from any key source — the IRK
/// cryptogram over R and, when the line carries a challenge, the RKSSSE cryptogram over it,
/// each under the card key the line's card identification code diversifies to. A source that
/// serves another algorithm (a PSAM) gives −2202; a PSAM of another region −24.
pub fn hsm_step2_key(keys: &mut dyn KeySource, line: &Step1Line) -> Result<PKey, SscError> {
    let alg = line.algorithm;
    if let Some(served) = keys.algorithm() {
        if served != alg {
            return Err(KeyError::AlgorithmMismatch {
                psam: served.name(),
                card: alg.name(),
            }
            .into());
        }
    }
    let card = CardRef::new(line.card_id);
    let internal_auth = keys.cryptogram(alg, &card, Kid::Irk, &line.random)?;
    let external_auth = match &line.challenge {
        Some(c) => Some(keys.cryptogram(alg, &card, Kid::Rkssse, c)?),
        None => None,
    };
    Ok(PKey {
        internal_auth,
        external_auth,
    })
}

/// What step 1 leaves for step 2: the public line and, kept by the library, the card's
/// identification and its answer to INTERNAL AUTHENTICATE.
#[derive(Clone, Debug)]
pub struct Step1 {
    line: Step1Line,
    card: CardIdentification,
    pub(super) answer: Vec<u8>,
}

impl Step1 {
    /// The line step 1 outputs, for the encryption machine.
    pub fn line(&self) -> &Step1Line {
        &self.line
    }
}

impl<'a, 'c> Session<'a, 'c> {
    /// Step 2's session: in a new transaction on the card connection step 1 used, with
    /// nothing sent (SSSE is still selected and the card's challenge pending, which any
    /// command would consume). A card reset since step 1 is refused
    /// ([`sscard_transport::TransportError::CardReset`], −12): run step 1 again.
    pub fn resume(
        tx: &'a mut Transaction<'c>,
        keys: &'a mut dyn KeySource,
        step1: &Step1,
    ) -> Result<Self, SscError> {
        Self::resumed(tx, keys, step1.line.algorithm, step1.card.clone())
    }

    /// Step 1 (after [`Session::open`] selected SSSE): reads EF05, sends INTERNAL AUTHENTICATE
    /// with a fresh random R and keeps the answer, and on cards whose EF06 needs RKSSSE
    /// (`3.00`) takes an 8-byte challenge last, so that it is still pending for step 2.
    pub fn hsm_step1(&mut self) -> Result<Step1, SscError> {
        if !self.is_issued() {
            return Err(SscError::NotIssued);
        }
        let historical = self.historical_bytes()?;
        let card = self.read_identification()?;
        let terminal_number = self.key_source().terminal_number()?.unwrap_or_default();
        let mut random = [0u8; 8];
        rand::thread_rng().fill_bytes(&mut random);
        let answer = self
            .send(&commands::internal_authenticate(Kid::Irk, &random))?
            .data;
        let alg = self.algorithm();
        let challenge = if needs_external_auth(alg) {
            let c = self.send(&commands::get_challenge(8))?.data;
            Some(
                <[u8; 8]>::try_from(c.as_slice()).map_err(|_| SscError::ShortAnswer {
                    command: "GET CHALLENGE",
                    len: c.len(),
                    expected: 8,
                })?,
            )
        } else {
            None
        };
        Ok(Step1 {
            line: Step1Line {
                region: card.region.clone(),
                historical_bytes: strict_hex(&historical).unwrap_or_default(),
                algorithm: alg,
                card_id: card.card_id,
                random,
                challenge,
                terminal_number,
            },
            card,
            answer,
        })
    }

    /// Step 2 (on a session from [`Session::resume`]): the machine's internal-authentication
    /// value against the card's answer in constant time (−25 [`SscError::HsmDisagrees`], and
    /// nothing is sent); on `3.00` cards EXTERNAL AUTHENTICATE KID 0A with the machine's
    /// cryptogram (a refusal gives the card's status word: `63C2` → −25538); then EF06. The
    /// result is read basic info's, its [`BasicInfo::unified_line`] `iReadCardBas`'s line.
    pub fn hsm_step2(&mut self, step1: &Step1, key: &PKey) -> Result<BasicInfo, SscError> {
        if !ct_eq(&key.internal_auth, &step1.answer) {
            return Err(SscError::HsmDisagrees);
        }
        let alg = step1.line.algorithm;
        match (needs_external_auth(alg), &key.external_auth) {
            (true, Some(cryptogram)) => {
                self.send(&commands::external_authenticate(
                    Kid::Rkssse,
                    cryptogram.clone(),
                ))?;
            }
            (false, None) => {}
            (true, None) => {
                return Err(UnifiedError::BadField {
                    what: "pKey",
                    field: "external-auth cryptogram",
                    problem: "is empty; a 3.00 (SM4) card needs one",
                }
                .into())
            }
            (false, Some(_)) => {
                return Err(UnifiedError::BadField {
                    what: "pKey",
                    field: "external-auth cryptogram",
                    problem: "is given; a 2.00 (3DES) card has none",
                }
                .into())
            }
        }
        let holder = HolderInfo::from_records(&self.read_records(ef06())?)?;
        let historical = to_hex(&step1.line.historical_bytes);
        self.basic_info(step1.card.clone(), holder, historical)
    }
}
