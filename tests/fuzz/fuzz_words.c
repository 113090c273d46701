/* fuzz_words.c — libFuzzer target for protocols/encoded_words.c (RFC 2047).
 *
 * The input is a header value. It is decoded into a buffer of exactly its cap (so that
 * AddressSanitizer sees any write past it) at the full size and at a cap taken from the
 * first byte, and the invariants are checked: the result is NUL-terminated within the cap,
 * and a smaller cap gives a prefix of the whole result, cut between UTF-8 characters where
 * the result is valid UTF-8.
 */
#include "protocols/encoded_words.h"
#include "protocols/text.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz invariant: %s\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4096)
        return 0;
    const char *in = (const char *)data + 1;
    size_t len = size - 1, whole_cap = 2 * len + 1, small_cap = (size_t)data[0] + 1;
    char *whole = malloc(whole_cap), *small = malloc(small_cap);
    if (!whole || !small) {
        free(whole);
        free(small);
        return 0;
    }
    size_t n = encoded_words_decode(whole, whole_cap, in, len);
    check(n < whole_cap && whole[n] == '\0', "whole: NUL-terminated within the cap");
    size_t m = encoded_words_decode(small, small_cap, in, len);
    check(m < small_cap && small[m] == '\0', "small: NUL-terminated within the cap");
    check(m <= n && memcmp(small, whole, m) == 0, "a smaller cap gives a prefix");
    /* Where the text is valid UTF-8, the cut never splits a character (raw 8-bit text
     * from the wire need not be). */
    bool valid = true;
    for (size_t i = 0, k; i < n && valid; i += k) {
        uint32_t cp;
        valid = (k = text_utf8_decode((const unsigned char *)whole + i, n - i, &cp)) > 0;
    }
    if (valid)
        check(text_utf8_cut(whole, n, m) == m, "the cut is between characters");
    if (n + 1 < small_cap)
        check(m == n, "a cap with room gives the whole");
    free(whole);
    free(small);
    return 0;
}
