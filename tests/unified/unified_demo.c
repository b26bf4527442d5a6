/*
 * The unified interface from C: one call of each kind against the card and PSAM that
 * `sscard-model serve` presents, each printed as `<call>: rc=<return code> <pOutInfo>`.
 *
 * Built and run by tests/tests/unified_lib.rs (cc against unified/include/sscard_unified.h,
 * linked with -lsscard_unified); its output for both algorithms is in docs/unified.md,
 * "Tests and the benchmark".
 * pOutInfo is printed as the library wrote it: GBK text unless the configuration says UTF-8.
 */
#include <stdio.h>
#include <string.h>

#include "sscard_unified.h"

/* PROFILE section 10: pOutInfo is a caller buffer of at least 2048 bytes. */
#define OUT_SIZE 2048

static void show(const char *call, long rc, const char *out)
{
    printf("%s: rc=%ld %s\n", call, rc, out);
}

int main(void)
{
    char out[OUT_SIZE];
    char reader_sn[OUT_SIZE];
    char psam_terminal_no[OUT_SIZE];
    /* The served test card (PROFILE sections 2 and 9): identification code and card number. */
    char card_info[] = "110100D15600000599110145000000A1|A12345674|";
    char file_addr[] = "SSSEEF05|01|07|$SSSEEF06|08|09|$";
    char initial_pin[] = "123456";
    char wrong_pin[] = "654321";
    long rc;

    memset(out, 0, sizeof out);
    rc = iReadCardBas(1, out);
    show("iReadCardBas(1)", rc, out);

    memset(out, 0, sizeof out);
    rc = iReadCardBas_HSM_Step1(1, out);
    show("iReadCardBas_HSM_Step1(1)", rc, out);

    memset(reader_sn, 0, sizeof reader_sn);
    memset(psam_terminal_no, 0, sizeof psam_terminal_no);
    rc = iGetReaderInfo(reader_sn, psam_terminal_no);
    printf("iGetReaderInfo: rc=%ld reader_sn=%s psam_terminal_no=%s\n", rc, reader_sn,
           psam_terminal_no);

    memset(out, 0, sizeof out);
    rc = iReadCard(1, 1, card_info, file_addr, out);
    show("iReadCard(1, 1, EF05 01 07, EF06 08 09)", rc, out);

    memset(out, 0, sizeof out);
    rc = iVerifyPINK(1, initial_pin, out);
    show("iVerifyPINK(1, initial PIN)", rc, out);

    memset(out, 0, sizeof out);
    rc = iVerifyPINK(1, wrong_pin, out);
    show("iVerifyPINK(1, wrong PIN)", rc, out);

    memset(out, 0, sizeof out);
    rc = iReadCardBas(9, out);
    show("iReadCardBas(9)", rc, out);
    return 0;
}
