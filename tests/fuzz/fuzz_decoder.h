/* fuzz_decoder.h — the shared body of the SMTP, POP3 and IMAP fuzz targets. */
#ifndef MAILTAP_FUZZ_DECODER_H
#define MAILTAP_FUZZ_DECODER_H

#include "protocols/decoder.h"

#include <stddef.h>
#include <stdint.h>

/* Runs one input (chunk format: fuzz_check.h) through decoder open/data/close/free on a
 * fresh session, then checks the session invariants and the password rule. */
int fuzz_decoder_run(const struct mt_decoder *decoder, const uint8_t *data, size_t size);

#endif
