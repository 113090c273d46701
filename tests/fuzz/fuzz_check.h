/* fuzz_check.h — invariants every decoded session must satisfy, checked by the fuzz
 * targets after each input; a violation prints what broke and aborts (a crash for
 * libFuzzer). Also the chunk format shared by the decoder targets and the seed script. */
#ifndef MAILTAP_FUZZ_CHECK_H
#define MAILTAP_FUZZ_CHECK_H

#include "protocols/session.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The marker password. See fuzz_secret_expected_hidden() for when it must not show. */
#define FUZZ_SECRET "S3cr3tPW"

/* Chunk format of the decoder targets (tests/fuzz/make_seeds.py writes the same):
 *   header byte h:  bit 0      side: 0 client, 1 server
 *                   bit 1      0: one length byte follows, 1: two (big-endian)
 *                   bits 2..7  milliseconds added to the clock before this chunk
 *   length (1 or 2 bytes), then that many bytes (fewer if the input ends first).
 * An empty chunk is skipped (libnids never delivers zero bytes). */
struct fuzz_chunk {
    int side;              /* MT_CLIENT or MT_SERVER */
    const uint8_t *bytes;
    size_t len;
    int64_t delta_us;
};

/* Reads the chunk at *pos; false when no complete header is left. */
bool fuzz_next_chunk(const uint8_t *data, size_t size, size_t *pos, struct fuzz_chunk *chunk);

/* Aborts with a message unless every invariant of a finished session holds: strings
 * NUL-terminated within their arrays, free of C0 controls and DEL, valid UTF-8 without
 * C1 controls; transcript well-formed; enums in range; counts within caps. */
void fuzz_check_session(const struct mt_session *session, enum mt_proto proto);

/* Aborts when FUZZ_SECRET appears anywhere in the session (fields or transcript). */
void fuzz_check_no_secret(const struct mt_session *session);

/* The password rule. client/server are the two byte streams as the decoder saw them.
 * True when FUZZ_SECRET occurs in the client stream, never in the server stream, and
 * every client line (split at LF) that holds it is a credential line:
 *   SMTP  "AUTH <mech> <...>"            marker after the mechanism word
 *   POP3  "PASS <...>"                   marker anywhere after the verb
 *         "AUTH <mech> <...>"            marker after the mechanism word
 *   IMAP  "<tag> LOGIN <user> <...>"     marker after the user word
 *         "<tag> AUTHENTICATE <mech> <...>"
 * where the verb is matched case-insensitively and starts the line (IMAP: after a tag
 * of letters, digits and '.'), words are separated by single spaces, and the words
 * before the marker (mechanism, user) are plain atoms: letters, digits, "-_.@".
 * Only then must the marker be absent from the session. */
bool fuzz_secret_expected_hidden(enum mt_proto proto, const uint8_t *client, size_t client_len,
                                 const uint8_t *server, size_t server_len);

/* Aborts unless array[0..cap) holds a NUL and the text before it is sanitized: no C0
 * control, no DEL, valid UTF-8 without C1 controls (for the DNS and TLS targets). */
void fuzz_check_string(const char *what, const char *array, size_t cap);

/* Aborts with "fuzz invariant: <what>" (printf-style). */
void fuzz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* A row dns_watch produced: a DNS lookup row, or an outbound dns_failed SMTP row. */
void fuzz_check_dns_row(const struct mt_session *row);

#endif
