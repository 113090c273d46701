/* fuzz_smtp.c — libFuzzer target: the SMTP decoder on interleaved client/server chunks
 * (format: fuzz_check.h), with the session invariants and the password rule checked. */
#include "fuzz_decoder.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_decoder_run(&smtp_decoder, data, size);
}
