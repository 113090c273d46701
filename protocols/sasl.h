/* sasl.h — SASL (RFC 4422) as a passive listener needs it, shared by the SMTP, POP3 and
 * IMAP decoders.
 *
 * Owns: the table of mechanisms we can read (names to enum and back), the syntax of a
 * mechanism name, and finding the user name inside a decoded client response — never
 * any part of its secret (password, digest, token, proof). Holds no state.
 *
 * Not here, because they differ by protocol: the command syntax (AUTH, AUTHENTICATE,
 * initial responses, IMAP literals), "*" cancels and "=" empty responses, which response
 * of an exchange names the user (SMTP reads LOGIN's "Username:" / "Password:" prompts),
 * and what the transcript masks. */
#ifndef MAILTAP_SASL_H
#define MAILTAP_SASL_H

#include <stdbool.h>
#include <stddef.h>

enum sasl_mech {
    SASL_MECH_UNKNOWN,     /* any other mechanism: its responses are opaque */
    SASL_MECH_PLAIN,       /* RFC 4616: authzid \0 authcid \0 password */
    SASL_MECH_LOGIN,       /* draft-murchison-sasl-login: user, then password */
    SASL_MECH_CRAM_MD5,    /* RFC 2195: "user hexdigest" */
    SASL_MECH_XOAUTH2,     /* Google, Microsoft: "user=NAME\x01auth=Bearer TOKEN\x01\x01" */
    SASL_MECH_OAUTHBEARER, /* RFC 7628: GS2 header "n,a=NAME," then \x01 key=value pairs */
    SASL_MECH_EXTERNAL,    /* RFC 4422 appendix A: an authorization identity, or nothing */
    SASL_MECH_SCRAM,       /* RFC 5802, 7677: every SCRAM-*; "n,,n=NAME,r=NONCE" first */
    SASL_MECH_COUNT
};

/* The mechanism named by name[0..len), ASCII case-insensitively ("plain" is PLAIN, any
 * "SCRAM-..." is SASL_MECH_SCRAM). SASL_MECH_UNKNOWN for any other name. */
enum sasl_mech sasl_mech_from_name(const char *name, size_t len);

/* Upper-case name of a mechanism ("SCRAM-*" for the family); "unknown" otherwise.
 * Static storage. */
const char *sasl_mech_name(enum sasl_mech mech);

/* Whether name[0..len) has the syntax of a mechanism name (RFC 4422 section 3.1: 1 to
 * 20 of A-Z 0-9 - _; lower case is accepted, as clients send it). Anything else in that
 * place may be a credential typed by mistake. */
bool sasl_mech_name_valid(const char *name, size_t len);

/* Finds the user named by one decoded client response decoded[0..len) of `mech`:
 * PLAIN the authcid, else the authzid; LOGIN and EXTERNAL the whole value (none when it
 * holds a NUL); CRAM-MD5 what precedes the last space; XOAUTH2 the user= value ended by
 * \x01; OAUTHBEARER the GS2 authzid ended by ','; SCRAM the n= value ended by ','.
 * A value without its terminator is refused: the secret could follow. On success
 * *user points into decoded, *user_len > 0, and the span holds no secret byte. False
 * (outputs untouched) when the response names no user. Reads nothing past len.
 * LOGIN's value is a user only in the response to the user prompt: the caller knows. */
bool sasl_user_name(enum sasl_mech mech, const unsigned char *decoded, size_t len,
                    const unsigned char **user, size_t *user_len);

/* Decodes the base64 client response b64[0..len) into buf (capacity cap) and keeps only
 * the user it names: on return buf[0..n) holds the user (raw bytes, neither sanitized nor
 * NUL-terminated) and every other byte of buf is wiped, so no secret stays behind.
 * Returns n; 0 when there is no user, or the response is malformed or decodes to more
 * than cap bytes (buf then all zero). */
size_t sasl_response_user(enum sasl_mech mech, const char *b64, size_t len,
                          unsigned char *buf, size_t cap);

#endif
