/* dialogue.h — the two-sided dialogues the decoder suites feed (test_pop3.c, test_imap.c),
 * and the run that ends with the capture going on a while after them. */
#ifndef MAILTAP_TESTS_DIALOGUE_H
#define MAILTAP_TESTS_DIALOGUE_H

#include "protocols/decoder.h"
#include "protocols/session.h"

#include <stdint.h>

struct dialogue_step {
    enum mt_side side;
    const char *bytes;
    size_t len;
};

/* Feeds steps[0..n) to decoder, step i at at_s[i] seconds, then ends the connection with
 * the capture (MT_END_EOF) at end_s seconds: whole, and byte by byte; both must decide the
 * same. Returns the session (the caller frees it). */
static struct mt_session *dialogue_until_end(const struct mt_decoder *decoder,
                                             const struct dialogue_step *steps,
                                             const int *at_s, size_t n, int end_s)
{
    struct mt_session *whole = NULL;
    for (int bytewise = 0; bytewise < 2; bytewise++) {
        struct mt_session *session = session_new(decoder->proto);
        void *state = decoder->open(session);
        assert_non_null(state);
        for (size_t i = 0; i < n; i++) {
            int64_t ts = (int64_t)at_s[i] * 1000000 + 1;
            for (size_t b = 0; bytewise && b < steps[i].len; b++)
                decoder->data(state, session, steps[i].side, steps[i].bytes + b, 1, ts);
            if (!bytewise)
                decoder->data(state, session, steps[i].side, steps[i].bytes, steps[i].len, ts);
        }
        session->end = MT_END_EOF;
        session->end_us = (int64_t)at_s[n - 1] * 1000000 + 1;
        session->input_end_us = (int64_t)end_s * 1000000 + 1;
        decoder->close(state, session);
        decoder->free(state);
        if (!whole) {
            whole = session;
            continue;
        }
        assert_int_equal(session->status, whole->status);
        assert_string_equal(session->status_line, whole->status_line);
        session_free(session);
    }
    return whole;
}

#endif
