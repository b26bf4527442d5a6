/*
 * sscard_unified.h — libsscard_unified.so: the national unified reader interface for the
 * social security card (sscard PROFILE.md version 3, sections 7 and 10).
 *
 * Link with -lsscard_unified. Every function returns a code of PROFILE section 7:
 *   0 success; -1 wrong card type or bad iType; -2 no card; -3 card not powered; -4 card does
 *   not answer; -11 reader connection error; -12 no connection; -20 card identification code
 *   malformed; -21 card not genuine; -22 pCardInfo is another card; -23 data given is invalid
 *   (also: a NULL argument, an output longer than its buffer); -24 PSAM key level too low or a
 *   PSAM of another region; -25 the encryption machine's value disagrees with the card; -31 PIN
 *   entry cancelled (or no PIN pad and no terminal); -32 PIN entry timed out; -33 PIN length
 *   wrong; -34 the two new PINs differ; -35 the initial PIN 123456 verified but must be changed;
 *   -36 the new PIN would be 123456; -51 wrong PIN; -52 PIN locked; -2201 no PSAM; -2202 the
 *   PSAM does not serve the card's algorithm; -2203 the PSAM lacks RKSSSE; with
 *   keys = "remote:https://..." (sscard's own codes, the profile has none for a key service):
 *   -2301 key service unreachable, -2302 timed out, -2303 it did not accept this client's
 *   certificate, -2304 its policy refused the request, -2305 rate-limited (try later), -2306 it
 *   failed or answered malformed; -999 unknown (also:
 *   a bad configuration file, an internal error); any other card status word SW as -SW
 *   (6982 -> -27010).
 *
 * Buffers. pOutInfo is a caller buffer of at least 2048 bytes (SSCARD_OUT_INFO_SIZE). On
 * success it holds the function's output, NUL-terminated (an empty string for functions
 * without output); on failure an error text (never a PIN). Output longer than 2047 bytes is
 * not written: the call fails with -23. A NULL pOutInfo is refused with -23 and nothing is
 * written; any other NULL argument is -23 with the error text in pOutInfo.
 *
 * Text. Every string, in and out (pCardInfo, pFileAddr, pWriteData, PINs, pKey, output and
 * error texts), is GBK by default and UTF-8 when the configuration says encoding = "utf-8".
 * Input strings are read up to their NUL, at most their limit and one byte more: a PIN 6
 * bytes (longer: -33), pCardInfo 128, pFileAddr 1024, pWriteData 2048, pKey and pStep1 512
 * (longer: -23). An empty pCardInfo ("") is treated as NULL. In GBK, a character whose second
 * byte is 0x7C, the byte of '|' (e.g. U+4E85, GBK 81 7C), is refused: -999 when read from the
 * card, -23 in the caller's input (UTF-8 carries it).
 *
 * iType. 1 contact, 2 contactless, 3 both (contact first), 4 both (contactless first); any
 * other value -1. A card is contactless when it is in the configured contactless_reader, or,
 * with no reader configured, when its ATR is the PC/SC part 3 contactless pseudo-ATR
 * (3B 8n 80 01 ...) or the reader's name contains "PICC" or "Contactless".
 *
 * Configuration. A TOML file named by the environment variable SSCARD_UNIFIED_CONFIG, else
 * /etc/sscard/unified.toml, else defaults (see the crate's README.md): card_reader,
 * contactless_reader, psam_reader, keys, device_number, encoding, pin_pad, pin_timeout,
 * card_disposition. A broken file (or keys and psam_reader both set, or a path that is not a
 * regular file) makes every call fail with -999 and a text naming the problem.
 *
 * The card is left, not reset, when a call ends (card_disposition = "leave", the default, as
 * PC/SC applications sharing a reader do): a verified PIN lasts until the card is reset or
 * removed. card_disposition = "reset" resets the card after every call (a kiosk that wants
 * the PIN forgotten); then any call on the card between the two steps of the two-step reading
 * makes step 2 fail with -12.
 *
 * Threads. Any function may be called from any thread; calls on the same reader are served one
 * after the other. When a key source cannot be opened, a missing card is reported first: no
 * card and no PSAM is -2. The library prints nothing on stdout or stderr, and no panic or exception
 * leaves it (-999).
 */
#ifndef SSCARD_UNIFIED_H
#define SSCARD_UNIFIED_H

#ifdef __cplusplus
extern "C" {
#endif

/* The smallest pOutInfo buffer, in bytes. */
#define SSCARD_OUT_INFO_SIZE 2048
/* The smallest pReaderSN buffer: a 64-byte serial number shown as hex, and the NUL. */
#define SSCARD_READER_SN_SIZE 129
/* The smallest pPsamTermNo buffer: 12 digits and the NUL. */
#define SSCARD_PSAM_TERM_NO_SIZE 13
/* The smallest pKey buffer of iSscardHsmStep2. */
#define SSCARD_KEY_SIZE 2048

/*
 * Read basic info: select SSSE, EF05, internal authentication through the PSAM or key source,
 * RKSSSE on 3.00 cards, EF06. pOutInfo, each field followed by '|':
 * region|SSN|card number|card identification code|name|ATR historical bytes (hex)|
 * specification version|issue date|expiry date|terminal number (PSAM EF16)|
 * terminal device number (the reader's serial number, else the configured device_number)|
 */
long iReadCardBas(int iType, char *pOutInfo);

/*
 * Two-step reading for terminals without a PSAM, step 1: selects, reads EF05, INTERNAL
 * AUTHENTICATE with a fresh random R (the card's answer is kept), an 8-byte GET CHALLENGE on
 * 3.00 cards. pOutInfo:
 * region|ATR historical bytes|algorithm id|card identification code|R|external-auth challenge|terminal number|
 * (challenge empty on 2.00 cards). The terminal number is the configured PSAM's, empty when
 * there is none (no key is needed: they are the encryption machine's). The library keeps the
 * card connection open, without a transaction, until step 2. Pending steps 1 are kept per
 * thread: a new step 1 on a thread replaces that thread's earlier one, and ends other threads'
 * pending steps 1 on the same card (the card keeps one challenge; their step 2 is -12 and
 * sends nothing). Any other call that sends the card a command between the two steps ends the
 * card's challenge: run the two steps back to back.
 */
long iReadCardBas_HSM_Step1(int iType, char *pOutInfo);

/*
 * Step 2: pKey = the encryption machine's answer to step 1's line,
 * internal-auth value|external-auth cryptogram| (cryptogram empty on 2.00 cards). Continues
 * the calling thread's step 1; when this thread has none and exactly one step 1 is pending in
 * the process (an async caller resumed on another thread), that one; else -12. Once: a
 * second step 2 needs a new step 1. A card reset since step 1 is -12. A value that is not the card's answer is -25 and nothing is sent; then
 * EXTERNAL AUTHENTICATE (3.00), EF06. pOutInfo is iReadCardBas's line.
 */
long iReadCardBas_HSM_Step2(char *pKey, char *pOutInfo);

/*
 * Reads the records pFileAddr names (e.g. "SSSEEF05|01|07|$SSSEEF06|08|09|4E|$"); pOutInfo
 * has the same layout with each record identifier replaced by its value. iAuthType 0: no
 * authentication (free files only; pCardInfo may be NULL); 1: internal authentication, then
 * what each file needs through the configured key source (pCardInfo required: NULL is -23).
 * pCardInfo "card identification code|card number|": another card -22.
 */
long iReadCard(int iType, int iAuthType, char *pCardInfo, char *pFileAddr, char *pOutInfo);

/*
 * Writes pWriteData (pFileAddr's layout with values) with line protection after checking
 * pCardInfo against the card (-22: nothing written). pOutInfo: empty on success.
 */
long iWriteCard(int iType, char *pCardInfo, char *pFileAddr, char *pWriteData, char *pOutInfo);

/*
 * VERIFY with the PIN entered on the reader's PIN pad (PC/SC part 10 FEATURE_VERIFY_PIN_DIRECT;
 * 5 or 6 digits), else on the controlling terminal without echo (Enter ends, Escape or Ctrl-C
 * cancels; a signal such as SIGINT interrupting the wait cancels too, -31, with the terminal
 * restored; a fatal signal leaves it without echo), within the configured pin_timeout. -35 after the initial PIN (terminal entry only:
 * a PIN pad never shows the PIN to the library).
 */
long iVerifyPIN(int iType, char *pOutInfo);

/*
 * CHANGE PIN: current PIN, new PIN, new PIN again, on the PIN pad
 * (FEATURE_MODIFY_PIN_DIRECT) or the terminal. -34 when the two new entries differ, -36 for a
 * new PIN 123456 (terminal entry).
 */
long iChangePIN(int iType, char *pOutInfo);

/* VERIFY with the PIN as text (2 to 6 digits, else -33); -35 for the initial PIN. */
long iVerifyPINK(int iType, char *pPIN, char *pOutInfo);

/* CHANGE PIN with the PINs as text; -36 for a new PIN 123456. */
long iChangePINK(int iType, char *pOldPIN, char *pNewPIN, char *pOutInfo);

/*
 * RELOAD PIN (agency) under RPK from the key source, after checking pCardInfo (-22): the new
 * PIN is entered twice on the controlling terminal (a PIN pad cannot take part: the library
 * computes the MAC over the new PIN). Restores the try counter.
 */
long iReloadPIN(int iType, char *pCardInfo, char *pOutInfo);

/* UNBLOCK PIN under UPK after checking pCardInfo (-22): the try counter is restored. */
long iUnblockPIN(int iType, char *pCardInfo, char *pOutInfo);

/*
 * pReaderSN: the card reader's serial number (PC/SC SCARD_ATTR_VENDOR_IFD_SERIAL_NO), else the
 * configured device_number, else empty; at least SSCARD_READER_SN_SIZE bytes. pPsamTermNo: the
 * PSAM's terminal number (EF16), empty when the key source is not a PSAM; at least
 * SSCARD_PSAM_TERM_NO_SIZE bytes. The card reader is the configured card_reader (any card in
 * it), else the reader of a social security card as for iType 3. Each half is written when
 * known, the other "": 0 when both are known, else the reader's error first (-2: no card and
 * no device_number), then the PSAM's (-2201). Either pointer NULL: -23 and nothing written.
 */
long iGetReaderInfo(char *pReaderSN, char *pPsamTermNo);

/*
 * The encryption machine's step of the two-step flow (not in vendor SDKs): pKey for a step-1
 * line from the configured key source (keys = test | soft:FILE | psam:READER |
 * pkcs11:MODULE:TOKEN-LABEL, the token PIN from SSCARD_PKCS11_PIN in the environment: the
 * library has no prompt; or remote:https://HOST:PORT, an sscard keyd, with remote_cert,
 * remote_key and remote_ca in the configuration): the IRK cryptogram over R
 * and, on 3.00 cards, the RKSSSE cryptogram over the challenge. pKey holds at least
 * SSCARD_KEY_SIZE bytes; on failure it holds the error text. Same as
 * `sscard hsm step2 --keys SOURCE 'STEP1-LINE'`.
 */
long iSscardHsmStep2(const char *pStep1, char *pKey);

#ifdef __cplusplus
}
#endif

#endif /* SSCARD_UNIFIED_H */
