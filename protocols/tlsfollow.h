/* tlsfollow.h — follows the TLS part of a mail connection beside its protocol decoder:
 * notices where TLS starts on each side (after STARTTLS/STLS, or from the first byte on
 * 465/993/995), feeds those bytes to the handshake parser (tls.c), and when the connection
 * ends settles the session's TLS facts, a `tls_failed` status when the handshake died, and
 * the security findings (cleartext credentials, STARTTLS not used, old TLS, bad
 * certificate). The decoder never sees TLS bytes; this module never sees plaintext. */
#ifndef MAILTAP_TLSFOLLOW_H
#define MAILTAP_TLSFOLLOW_H

#include "protocols/session.h"

#include <stddef.h>
#include <stdint.h>

struct tls_follow;

struct tls_follow *tls_follow_new(void);
void tls_follow_free(struct tls_follow *follow);

/* The same bytes the decoder was just given. TLS is looked for only once the decoder has
 * set session->tls, or in the very first bytes of a side (implicit TLS). */
void tls_follow_data(struct tls_follow *follow, const struct mt_session *session,
                     enum mt_side from, const char *bytes, size_t len, int64_t ts_us);

/* The name the client looked up for the server's address (dns_watch_name_of()): a
 * certificate that names it is no name mismatch, whatever the greeting says (a relay
 * checks the MX host's name, which an internal greeting name often is not). */
void tls_follow_looked_up(struct tls_follow *follow, const char *name);

/* After the decoder's close: fills session->tls_info (allocated only when a handshake was
 * seen), may change the status to tls_failed, and sets the MT_FLAG_* security findings.
 * follow may be NULL (no TLS parser: findings only). */
void tls_follow_settle(struct tls_follow *follow, struct mt_session *session);

#endif
