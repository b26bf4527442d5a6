/*
 * A deliberately broken vendor library for `sscard unified-test`: it exports the twelve
 * functions of PROFILE.md section 10, forwards each call to a real library (the path in
 * SSCARD_BROKEN_REAL, opened with dlopen at the first call) and breaks ONE thing, chosen by
 * SSCARD_BROKEN_MODE:
 *
 *   drop-name-extension  the name field of the iReadCardBas and Step2 lines keeps only what
 *                        fits the 30-byte name record (GBK, cut at a character boundary): the
 *                        name extension record (EF06 4E) is dropped, as a library that reads
 *                        record 09 alone does.
 *   whole-atr            the ATR field of the iReadCardBas, Step1 and Step2 lines carries the
 *                        whole ATR instead of the historical bytes (PROFILE v2's mistake): the
 *                        model SSC's ATR header 3B8801 is put before the historical bytes and
 *                        its TCK 9C after them. (Valid for the model's ATR only, which is what
 *                        unified-test serves; a general version would ask SCardStatus.)
 *
 * Any other mode (or none) forwards unchanged. Without SSCARD_BROKEN_REAL, or when a symbol
 * is missing there, a call returns -999 with an error text.
 *
 * Built by tests/tests/unified_test.rs: cc -shared -fPIC -o libbroken.so broken.c -ldl
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define OUT_MIN 2048
#define NAME_RECORD 30

typedef long (*fn_type)(int, char *);
typedef long (*fn_key)(char *, char *);
typedef long (*fn_read)(int, int, char *, char *, char *);
typedef long (*fn_write)(int, char *, char *, char *, char *);
typedef long (*fn_text)(int, char *, char *);
typedef long (*fn_two_texts)(int, char *, char *, char *);

static void *real;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void open_real(void) {
    const char *path = getenv("SSCARD_BROKEN_REAL");
    if (path != NULL) {
        real = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    }
}

static void *sym(const char *name) {
    pthread_once(&once, open_real);
    return real != NULL ? dlsym(real, name) : NULL;
}

static int mode(const char *m) {
    const char *e = getenv("SSCARD_BROKEN_MODE");
    return e != NULL && strcmp(e, m) == 0;
}

static long missing(const char *name, char *out) {
    if (out != NULL) {
        strcpy(out, "broken: no real library function ");
        strncat(out, name, 64);
    }
    return -999;
}

/* Start and length of field `index` of a '|'-terminated line; -1 when there is none. */
static long field(const char *line, int index, size_t *len) {
    const char *p = line;
    for (int i = 0; i < index; i++) {
        p = strchr(p, '|');
        if (p == NULL) {
            return -1;
        }
        p++;
    }
    const char *end = strchr(p, '|');
    if (end == NULL) {
        return -1;
    }
    *len = (size_t)(end - p);
    return p - line;
}

/* Replaces field `index` of `line` (an OUT_MIN buffer) with `value`. */
static void replace_field(char *line, int index, const char *value, size_t value_len) {
    size_t len;
    long at = field(line, index, &len);
    if (at < 0) {
        return;
    }
    size_t total = strlen(line);
    if (total - len + value_len + 1 > OUT_MIN) {
        return;
    }
    memmove(line + at + value_len, line + at + len, total - at - len + 1);
    memcpy(line + at, value, value_len);
}

/* The name field cut to the bytes of the 30-byte name record (GBK: lead bytes >= 0x81). */
static void drop_name_extension(char *line) {
    size_t len;
    long at = field(line, 4, &len);
    if (at < 0) {
        return;
    }
    const unsigned char *name = (const unsigned char *)line + at;
    size_t keep = 0;
    while (keep < len) {
        size_t n = name[keep] >= 0x81 ? 2 : 1;
        if (keep + n > NAME_RECORD) {
            break;
        }
        keep += n;
    }
    char copy[NAME_RECORD + 1];
    memcpy(copy, name, keep);
    replace_field(line, 4, copy, keep);
}

/* The ATR field (`index`) with the model's ATR header before it and its TCK after it. */
static void whole_atr(char *line, int index) {
    size_t len;
    long at = field(line, index, &len);
    if (at < 0 || len > 64) {
        return;
    }
    char atr[80] = "3B8801";
    memcpy(atr + 6, line + at, len);
    memcpy(atr + 6 + len, "9C", 2);
    replace_field(line, index, atr, len + 8);
}

/* Breaks a basic-info line (iReadCardBas, Step2) after a successful call. */
static long basic_line(long rc, char *out) {
    if (rc == 0 && out != NULL) {
        if (mode("drop-name-extension")) {
            drop_name_extension(out);
        } else if (mode("whole-atr")) {
            whole_atr(out, 5);
        }
    }
    return rc;
}

long iReadCardBas(int iType, char *pOutInfo) {
    fn_type f = (fn_type)sym("iReadCardBas");
    if (f == NULL) {
        return missing("iReadCardBas", pOutInfo);
    }
    return basic_line(f(iType, pOutInfo), pOutInfo);
}

long iReadCardBas_HSM_Step1(int iType, char *pOutInfo) {
    fn_type f = (fn_type)sym("iReadCardBas_HSM_Step1");
    if (f == NULL) {
        return missing("iReadCardBas_HSM_Step1", pOutInfo);
    }
    long rc = f(iType, pOutInfo);
    if (rc == 0 && pOutInfo != NULL && mode("whole-atr")) {
        whole_atr(pOutInfo, 1);
    }
    return rc;
}

long iReadCardBas_HSM_Step2(char *pKey, char *pOutInfo) {
    fn_key f = (fn_key)sym("iReadCardBas_HSM_Step2");
    if (f == NULL) {
        return missing("iReadCardBas_HSM_Step2", pOutInfo);
    }
    return basic_line(f(pKey, pOutInfo), pOutInfo);
}

long iReadCard(int iType, int iAuthType, char *pCardInfo, char *pFileAddr, char *pOutInfo) {
    fn_read f = (fn_read)sym("iReadCard");
    return f != NULL ? f(iType, iAuthType, pCardInfo, pFileAddr, pOutInfo)
                     : missing("iReadCard", pOutInfo);
}

long iWriteCard(int iType, char *pCardInfo, char *pFileAddr, char *pWriteData, char *pOutInfo) {
    fn_write f = (fn_write)sym("iWriteCard");
    return f != NULL ? f(iType, pCardInfo, pFileAddr, pWriteData, pOutInfo)
                     : missing("iWriteCard", pOutInfo);
}

long iVerifyPIN(int iType, char *pOutInfo) {
    fn_type f = (fn_type)sym("iVerifyPIN");
    return f != NULL ? f(iType, pOutInfo) : missing("iVerifyPIN", pOutInfo);
}

long iChangePIN(int iType, char *pOutInfo) {
    fn_type f = (fn_type)sym("iChangePIN");
    return f != NULL ? f(iType, pOutInfo) : missing("iChangePIN", pOutInfo);
}

long iVerifyPINK(int iType, char *pPIN, char *pOutInfo) {
    fn_text f = (fn_text)sym("iVerifyPINK");
    return f != NULL ? f(iType, pPIN, pOutInfo) : missing("iVerifyPINK", pOutInfo);
}

long iChangePINK(int iType, char *pOldPIN, char *pNewPIN, char *pOutInfo) {
    fn_two_texts f = (fn_two_texts)sym("iChangePINK");
    return f != NULL ? f(iType, pOldPIN, pNewPIN, pOutInfo) : missing("iChangePINK", pOutInfo);
}

long iReloadPIN(int iType, char *pCardInfo, char *pOutInfo) {
    fn_text f = (fn_text)sym("iReloadPIN");
    return f != NULL ? f(iType, pCardInfo, pOutInfo) : missing("iReloadPIN", pOutInfo);
}

long iUnblockPIN(int iType, char *pCardInfo, char *pOutInfo) {
    fn_text f = (fn_text)sym("iUnblockPIN");
    return f != NULL ? f(iType, pCardInfo, pOutInfo) : missing("iUnblockPIN", pOutInfo);
}

long iGetReaderInfo(char *pReaderSN, char *pPsamTermNo) {
    fn_key f = (fn_key)sym("iGetReaderInfo");
    return f != NULL ? f(pReaderSN, pPsamTermNo) : missing("iGetReaderInfo", pPsamTermNo);
}
