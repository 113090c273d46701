/* smtp.h — SMTP decoder internals shared with tests/test_smtp.c. The decoder itself is
 * smtp_decoder, declared in decoder.h; nothing else in mailtap needs this header. */
#ifndef MAILTAP_SMTP_H
#define MAILTAP_SMTP_H

#include "session.h"

#include <stdbool.h>
#include <stddef.h>

/* RFC 3463 enhanced status code class.subject.detail, e.g. 5.1.1. */
struct smtp_enhanced {
    int cls, subject, detail;
};

/* Reads an enhanced status code at the start of text: the reply text after "NNN " or
 * "NNN-". Returns false (out untouched) when the text does not begin with one. */
bool smtp_enhanced_code(const char *text, size_t len, struct smtp_enhanced *out);

/* What a reply answers, for classification. DATA covers a refused DATA, the reply to
 * the final dot and replies to BDAT. */
enum smtp_phase { SMTP_PHASE_MAIL, SMTP_PHASE_RCPT, SMTP_PHASE_DATA };

/* The status a single-line reply such as "550 5.1.1 <x>: unknown user" means in phase;
 * MT_STATUS_UNKNOWN when it is not a reply or means nothing there. The decoder applies
 * the same table to multi-line replies (text patterns may match any of their lines). */
enum mt_status smtp_classify_line(enum smtp_phase phase, const char *line, size_t len);

#endif
