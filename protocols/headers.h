/* headers.h — the header section of a message, one line at a time (RFC 5322 §2.2): folded
 * lines joined, the first occurrence of each wanted field copied (encoded-words decoded
 * where the field is text, trimmed, sanitized) into a text member of a struct mt_message. Shared by SMTP (after DATA), POP3 (RETR/TOP) and
 * IMAP (FETCH). Callers feed lines with dot-stuffing undone and decide where the section
 * ends (blank line, ".", caps). */
#ifndef MAILTAP_HEADERS_H
#define MAILTAP_HEADERS_H

#include "protocols/session.h"

#include <stdbool.h>
#include <stddef.h>

/* A wanted field and where it goes in struct mt_message: the offset of a text member
 * (char *) and its cap (session.h: at most MT_STR_MAX). */
struct header_field {
    const char *name;
    size_t offset, max;
    bool encoded_words;   /* unstructured text: RFC 2047 encoded-words are decoded */
};

#define HEADER_FIELD(name, member, max) { name, offsetof(struct mt_message, member), max, false }
#define HEADER_TEXT_FIELD(name, member, max) \
    { name, offsetof(struct mt_message, member), max, true }

struct header_scan {
    int field;                 /* index of the field being read, -1 */
    unsigned fields_seen;
    size_t value_len, subject_len;
    bool value_cut;            /* the field was longer than value */
    char value[MT_TEXT_MAX];   /* raw, capped */
    char subject[MT_TEXT_MAX]; /* the trimmed Subject (encoded-words decoded, not
                                * sanitized), for summary lines */
};

void header_scan_init(struct header_scan *scan);

/* One header line (not the blank line). Returns false when it is not a header line: the
 * body has begun without a blank line. message may be NULL (nothing kept). */
bool header_scan_line(struct header_scan *scan, const struct header_field *fields,
                      size_t count, struct mt_message *message, const char *line, size_t len);

/* Ends the field being read, copying it into message (may be NULL). */
void header_scan_flush(struct header_scan *scan, const struct header_field *fields,
                       size_t count, struct mt_message *message);

#endif
