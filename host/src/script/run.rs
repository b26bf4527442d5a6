//! Runs parsed scripts against a card (and a PSAM) over any connection, with a key source for
//! the secure macros. Each test case starts from a warm reset and runs in one transaction on the
//! card; a `@psam` step takes a short transaction of its own on the PSAM, since the key source
//! may be the same PSAM and needs it between the card's steps.

use super::error::{CardFactsError, StepError, StepProblem};
use super::parse::{Action, Piece, Script, Step, Target, TestCase};
use crate::keys::{CardRef, KeySource};
use rand::RngCore;
use sscard_core::apdu::{Command, Response};
use sscard_core::crypto::{ct_eq, Algorithm};
use sscard_core::hexfmt::to_hex;
use sscard_core::profile::commands::{self, Apdu, LineProtected, Secrecy};
use sscard_core::profile::decode::Decoder;
use sscard_core::profile::files::ef05;
use sscard_core::profile::Kid;
use sscard_core::tlv::{Fci, Record};
use sscard_transport::trace::mask;
use sscard_transport::{Connection, Transaction};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// The outcome of one test case. A closed set (reports match it exhaustively), so not
/// `#[non_exhaustive]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    /// Failed, with what went wrong (for reports).
    Failed(String),
    /// Not run, with why.
    Skipped(String),
}

/// One test case's result.
#[derive(Clone, Debug)]
pub struct CaseResult {
    pub name: String,
    pub file: String,
    pub line: usize,
    pub outcome: Outcome,
    pub apdus: u64,
    pub duration: Duration,
}

/// One file's results.
#[derive(Clone, Debug)]
pub struct FileResult {
    pub path: String,
    pub algorithm: Option<Algorithm>,
    pub cases: Vec<CaseResult>,
    pub duration: Duration,
}

/// What the card said about itself before the tests.
struct CardFacts {
    algorithm: Algorithm,
    card: CardRef,
}

fn facts(card: &mut Connection) -> Result<CardFacts, CardFactsError> {
    card.reset().map_err(CardFactsError::Reset)?;
    let mut tx = card.transaction()?;
    let r = tx.send(&commands::select_ssse())?;
    if !r.is_success() {
        return Err(CardFactsError::NotSsc { sw: r.sw });
    }
    let fci = Fci::parse(&r.data).map_err(CardFactsError::Fci)?;
    let algorithm = Algorithm::from_id(fci.algorithm_id)?;
    let r = tx.send(&commands::read_record(ef05(), 1))?;
    let rec = Record::parse(&r.data).map_err(CardFactsError::Ef05)?;
    let id: [u8; 16] = rec
        .value
        .try_into()
        .map_err(|_| CardFactsError::CardIdLength)?;
    drop(tx);
    card.reset().map_err(CardFactsError::Reset)?;
    Ok(CardFacts {
        algorithm,
        card: CardRef::new(id),
    })
}

/// Runs every test case of `script` on `card` (and `psam` for `@psam` steps), with `keys` for
/// the secure macros. Every APDU reaches the connections' traces.
pub fn run_script(
    script: &Script,
    card: &mut Connection,
    psam: Option<&mut Connection>,
    keys: &mut dyn KeySource,
) -> FileResult {
    run_script_decoded(script, card, psam, keys).0
}

/// [`run_script`], and for each case (in the order of [`FileResult::cases`]) the exchange whose
/// check failed, decoded through the profile (`sscard_core::profile::decode`), secrets masked:
/// `card  READ RECORD EF06 #4  gender = 2  9000 success`. `None` for a case that passed, and
/// for a failure that is not a raw APDU's status word or data check.
pub fn run_script_decoded(
    script: &Script,
    card: &mut Connection,
    mut psam: Option<&mut Connection>,
    keys: &mut dyn KeySource,
) -> (FileResult, Vec<Option<String>>) {
    let start = Instant::now();
    let facts = facts(card);
    let mut cases = Vec::new();
    let mut decoded = Vec::new();
    let mut vars = Vars::default();
    let prologue_error = match &facts {
        Err(e) => Some(e.to_string()),
        Ok(f) => run_steps(
            &script.prologue,
            f,
            card,
            psam.as_deref_mut(),
            &mut *keys,
            &mut vars,
        )
        .1
        .err()
        .map(|e| e.to_string()),
    };
    for t in &script.tests {
        let case_start = Instant::now();
        let (outcome, apdus, exchange) = match (&facts, &prologue_error) {
            (_, Some(e)) => (Outcome::Failed(format!("before the tests: {e}")), 0, None),
            (Ok(f), None) => run_case(t, f, card, psam.as_deref_mut(), &mut *keys, &vars),
            (Err(e), None) => (Outcome::Failed(e.to_string()), 0, None),
        };
        decoded.push(exchange);
        cases.push(CaseResult {
            name: t.name.clone(),
            file: t.file.to_string(),
            line: t.line,
            outcome,
            apdus,
            duration: case_start.elapsed(),
        });
    }
    (
        FileResult {
            path: script.path.clone(),
            algorithm: facts.ok().map(|f| f.algorithm),
            cases,
            duration: start.elapsed(),
        },
        decoded,
    )
}

fn run_case(
    t: &TestCase,
    facts: &CardFacts,
    card: &mut Connection,
    mut psam: Option<&mut Connection>,
    keys: &mut dyn KeySource,
    prologue_vars: &Vars,
) -> (Outcome, u64, Option<String>) {
    if let Some(only) = t.only {
        if only != facts.algorithm {
            return (
                Outcome::Skipped(format!("only for {} cards", only.name())),
                0,
                None,
            );
        }
    }
    // Every test case starts from a warm reset: no security status, no challenge.
    if let Err(e) = card.reset() {
        return (Outcome::Failed(format!("reset: {e}")), 0, None);
    }
    if let Some(p) = psam.as_deref_mut() {
        let _ = p.reset();
    }
    let mut vars = prologue_vars.clone();
    let (apdus, result, exchange) = run_steps(&t.steps, facts, card, psam, keys, &mut vars);
    match result {
        Ok(()) => (Outcome::Passed, apdus, None),
        Err(e) => (Outcome::Failed(e.to_string()), apdus, exchange),
    }
}

/// Runs steps in one transaction on the card; returns the APDUs sent (card and PSAM), the
/// first failure, and the decoded exchange whose check failed.
fn run_steps(
    steps: &[Step],
    facts: &CardFacts,
    card: &mut Connection,
    psam: Option<&mut Connection>,
    keys: &mut dyn KeySource,
    vars: &mut Vars,
) -> (u64, Result<(), StepError>, Option<String>) {
    let card_before = card.apdu_count();
    let psam_before = psam.as_ref().map_or(0, |p| p.apdu_count());
    let mut psam_after = psam_before;
    let mut exchange = None;
    let result = match card.transaction() {
        Err(e) => Err(StepError {
            file: steps.first().map_or_else(|| "".into(), |s| s.file.clone()),
            line: steps.first().map_or(0, |s| s.line),
            problem: e.into(),
        }),
        Ok(mut tx) => {
            let mut ctx = Ctx {
                tx: &mut tx,
                psam,
                keys,
                facts,
                vars,
                secret_answer: [false; 2],
                decoder: Decoder::new(),
                last: None,
            };
            let r = steps.iter().try_for_each(|s| {
                ctx.step(s).map_err(|problem| StepError {
                    file: s.file.clone(),
                    line: s.line,
                    problem,
                })
            });
            psam_after = ctx.psam.as_ref().map_or(psam_before, |p| p.apdu_count());
            if r.is_err() {
                exchange = ctx.last.take();
            }
            r
        }
    };
    (
        card.apdu_count() - card_before + psam_after - psam_before,
        result,
        exchange,
    )
}

/// The script's variables, and which of them hold a secret answer (saved from a response
/// whose data is secret, such as a DES CRYPT's cryptogram): a command that carries one is
/// masked like that answer.
#[derive(Clone, Default)]
struct Vars {
    values: HashMap<String, Vec<u8>>,
    secret: HashSet<String>,
}

impl Vars {
    fn set(&mut self, name: &str, value: Vec<u8>, secret: bool) {
        self.values.insert(name.into(), value);
        if secret {
            self.secret.insert(name.into());
        } else {
            self.secret.remove(name);
        }
    }
}

/// Index of a target in [`Ctx::secret_answer`].
fn slot(target: Target) -> usize {
    match target {
        Target::Card => 0,
        Target::Psam => 1,
    }
}

/// Whether raw command bytes are a GET RESPONSE.
fn is_get_response(bytes: &[u8]) -> bool {
    bytes.get(1) == Some(&0xC0)
}

struct Ctx<'a, 'c> {
    tx: &'a mut Transaction<'c>,
    psam: Option<&'a mut Connection>,
    keys: &'a mut dyn KeySource,
    facts: &'a CardFacts,
    vars: &'a mut Vars,
    /// Per target (card, PSAM): whether the last answer had secret data. A script sends
    /// GET RESPONSE as a command of its own, so the rest of a secret answer (a raw DES CRYPT's
    /// `61xx`) is fetched by a command that does not tell it is secret: it takes this.
    secret_answer: [bool; 2],
    /// Follows the raw APDUs of the case (selections, challenges) to decode them.
    decoder: Decoder,
    /// The last raw APDU's exchange, decoded: what a failed check shows.
    last: Option<String>,
}

impl Ctx<'_, '_> {
    /// The bytes of `pieces`, and whether a variable holding a secret answer is among them.
    fn bytes(&self, pieces: &[Piece]) -> Result<(Vec<u8>, bool), StepProblem> {
        let mut out = Vec::new();
        let mut secret = false;
        for p in pieces {
            match p {
                Piece::Bytes(b) => out.extend_from_slice(b),
                Piece::Var(v) => {
                    out.extend_from_slice(
                        self.vars
                            .values
                            .get(v)
                            .ok_or_else(|| StepProblem::UnknownVariable { name: v.clone() })?,
                    );
                    secret |= self.vars.secret.contains(v);
                }
            }
        }
        Ok((out, secret))
    }

    /// The exchange of a raw APDU, decoded; the command data from a secret variable and a
    /// secret answer stay masked (the decoder masks the profile's secrets itself).
    fn decode(
        &mut self,
        target: Target,
        command: &[u8],
        secret_command: bool,
        r: &Response,
        secret_answer: bool,
    ) -> String {
        let role = match target {
            Target::Card => "card",
            Target::Psam => "psam",
        };
        let command_masked: Vec<bool> = (0..command.len())
            .map(|i| secret_command && i >= 4)
            .collect();
        let mut response = r.data.clone();
        response.extend_from_slice(&r.sw.to_bytes());
        let response_masked: Vec<bool> = (0..response.len())
            .map(|i| secret_answer && i < r.data.len())
            .collect();
        self.decoder
            .decode_masked(role, command, &command_masked, &response, &response_masked)
            .to_string()
    }

    fn psam(&mut self) -> Result<&mut Connection, StepProblem> {
        self.psam.as_deref_mut().ok_or(StepProblem::NoPsam)
    }

    fn challenge(&mut self, n: usize) -> Result<Vec<u8>, StepProblem> {
        let r = self.tx.send(&commands::get_challenge(n))?;
        if !r.is_success() || r.data.len() != n {
            return Err(StepProblem::Challenge {
                sw: r.sw,
                len: r.data.len(),
            });
        }
        Ok(r.data)
    }

    /// GET CHALLENGE 4, the MAC from the key source under `key` (spoilt when `wrong`), and the
    /// command carrying it.
    fn protected(
        &mut self,
        command: LineProtected,
        key: Kid,
        wrong: bool,
    ) -> Result<Apdu, StepProblem> {
        let message = command.mac_input()?;
        let challenge = self.challenge(4)?;
        let mut mac = self.keys.mac(
            self.facts.algorithm,
            &self.facts.card,
            key,
            &challenge,
            &message,
        )?;
        if wrong {
            mac[3] ^= 0x01;
        }
        Ok(command.with_mac(mac)?)
    }

    /// What the card answers INTERNAL AUTHENTICATE of `data` with, from the key source: the
    /// ECB encryption of `data` under the card key `kid`, one block at a time (the key
    /// source's cryptogram of each block, the last zero-padded), so 16 bytes are two 3DES
    /// blocks or one SM4 block, and 8 bytes the usual cryptogram.
    fn ecb_under(&mut self, kid: Kid, data: &[u8]) -> Result<Vec<u8>, StepProblem> {
        let alg = self.facts.algorithm;
        let mut out = Vec::with_capacity(data.len().next_multiple_of(alg.block_size()));
        for block in data.chunks(alg.block_size()) {
            out.extend(self.keys.cryptogram(alg, &self.facts.card, kid, block)?);
        }
        Ok(out)
    }

    fn step(&mut self, s: &Step) -> Result<(), StepProblem> {
        let alg = self.facts.algorithm;
        // Whether the answer's data is secret, for the failure message and what is saved.
        let mut secret_answer = false;
        self.last = None;
        let response: Response = match &s.action {
            Action::Set { name, value } => {
                self.vars.set(name, value.clone(), false);
                return Ok(());
            }
            Action::Reset => {
                self.secret_answer[slot(s.target)] = false;
                match s.target {
                    Target::Card => self.tx.reset(),
                    Target::Psam => self.psam()?.reset(),
                }
                .map_err(StepProblem::Reset)?;
                return Ok(());
            }
            Action::Apdu(pieces) => {
                // Script APDUs go out byte for byte and every status word comes back as is
                // (61xx, 6Cxx included): the script decides what to do next. A GET RESPONSE
                // fetches the rest of the last answer: as secret as it.
                let (bytes, secret_var) = self.bytes(pieces)?;
                let carried = is_get_response(&bytes) && self.secret_answer[slot(s.target)];
                let secrecy = Secrecy {
                    command_data: secret_var,
                    response_data: carried,
                };
                secret_answer = secrecy
                    .union(commands::describe_bytes(&bytes).secrecy)
                    .response_data;
                self.secret_answer[slot(s.target)] = secret_answer;
                let r = match s.target {
                    Target::Card => self.tx.transmit_raw_secret(&bytes, secrecy)?,
                    Target::Psam => self
                        .psam()?
                        .transaction()?
                        .transmit_raw_secret(&bytes, secrecy)?,
                };
                self.last = Some(self.decode(s.target, &bytes, secret_var, &r, secret_answer));
                r
            }
            Action::ExtAuth { kid, wrong } => {
                self.secret_answer[0] = false;
                let challenge = self.challenge(8)?;
                let mut c = self
                    .keys
                    .cryptogram(alg, &self.facts.card, *kid, &challenge)?;
                if *wrong {
                    c[0] ^= 0x01;
                }
                self.tx.send(&commands::external_authenticate(*kid, c))?
            }
            Action::IntAuth { kid, p2, data } => {
                self.secret_answer[0] = false;
                let (data, secret_var) = match data {
                    Some(d) => self.bytes(d)?,
                    None => {
                        let mut random = vec![0u8; 8];
                        rand::thread_rng().fill_bytes(&mut random);
                        (random, false)
                    }
                };
                // Le 00: the card answers as many bytes as its algorithm gives (16 for 16
                // bytes of data, PROFILE section 4's field-terminal shape).
                let command = Command::new(0x00, 0x88, 0x00, p2.unwrap_or(kid.id()))
                    .with_data(data.clone())
                    .with_le(256);
                let info = commands::describe(command.cla, command.ins);
                let r = self.tx.send(&Apdu {
                    name: info.name,
                    command,
                    idempotence: info.idempotence,
                    // Data from a variable saved from a secret answer is masked like it.
                    secrecy: Secrecy {
                        command_data: secret_var,
                        response_data: false,
                    }
                    .union(info.secrecy),
                })?;
                if r.is_success() {
                    let expected = self.ecb_under(*kid, &data)?;
                    if !ct_eq(&expected, &r.data) {
                        return Err(StepProblem::InternalAuthentication);
                    }
                }
                r
            }
            Action::Mac {
                header,
                data,
                kid,
                wrong,
            } => {
                self.secret_answer[0] = false;
                let (data, _) = self.bytes(data)?;
                let name = commands::describe(header[0], header[1]).name;
                // The macro's data may be anything (a PIN, a key block): always masked.
                let command = LineProtected::new(name, *header, data).secret();
                let apdu = self.protected(command, *kid, *wrong)?;
                self.tx.send(&apdu)?
            }
            Action::WriteKey { kid, tries } => {
                self.secret_answer[0] = false;
                let block = self
                    .keys
                    .key_load_block(alg, &self.facts.card, *kid, *tries)?;
                let apdu = self.protected(commands::write_key(*kid, block), Kid::Tk, false)?;
                self.tx.send(&apdu)?
            }
        };
        if !s.sw.matches(response.sw) {
            return Err(StepProblem::StatusWord {
                expected: s.sw.text().into(),
                got: response.sw,
            });
        }
        if let Some(p) = &s.data {
            if !p.matches(&response.data, &self.vars.values)? {
                // A secret answer is shown as the trace shows it, `**` per byte.
                let got = if secret_answer {
                    mask::response_hex(&[], &response.data, Secrecy::RESPONSE_DATA)
                } else {
                    to_hex(&response.data)
                };
                return Err(StepProblem::Data {
                    expected: p.text().into(),
                    got,
                });
            }
        }
        if let Some(save) = &s.save {
            let value = match save.range {
                None => response.data.clone(),
                Some((a, b)) => response
                    .data
                    .get(a..b)
                    .ok_or_else(|| StepProblem::SaveRange {
                        name: save.name.clone(),
                        start: a,
                        end: b,
                        len: response.data.len(),
                    })?
                    .to_vec(),
            };
            self.vars.set(&save.name, value, secret_answer);
        }
        Ok(())
    }
}
