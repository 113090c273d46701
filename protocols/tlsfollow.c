/* tlsfollow.c — TLS beside the mail decoders, and the security findings. */
#include "protocols/tlsfollow.h"

#include "protocols/text.h"
#include "protocols/tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tls_follow {
    struct tls_parser *parser;     /* created when TLS is first seen */
    bool feeding[2];               /* this side's TLS has started */
    uint64_t seen[2];              /* bytes of each side so far */
    char looked_up[MT_NAME_MAX];   /* tls_follow_looked_up() */
};

struct tls_follow *tls_follow_new(void)
{
    return calloc(1, sizeof(struct tls_follow));
}

void tls_follow_looked_up(struct tls_follow *follow, const char *name)
{
    if (follow)
        snprintf(follow->looked_up, sizeof follow->looked_up, "%s", name);
}

void tls_follow_free(struct tls_follow *follow)
{
    if (!follow)
        return;
    tls_parser_free(follow->parser);
    free(follow);
}

/* Where TLS starts in this chunk, or -1. After STARTTLS's positive reply each side's next
 * bytes begin a new segment (the client waits for the reply; the server answers the
 * ClientHello), so the record starts the chunk; if libnids joined segments, it follows a
 * line end. */
static long tls_start_in(const char *bytes, size_t len, bool first_bytes)
{
    const uint8_t *p = (const uint8_t *)bytes;
    if (tls_looks_like_record(p, len))
        return 0;
    if (first_bytes)
        return -1;
    for (size_t i = 1; i + 1 < len; i++)
        if (p[i - 1] == '\n' && p[i] == 0x16 && p[i + 1] == 0x03)
            return (long)i;
    return -1;
}

void tls_follow_data(struct tls_follow *follow, const struct mt_session *session,
                     enum mt_side from, const char *bytes, size_t len, int64_t ts_us)
{
    bool first_bytes = follow->seen[from] == 0;
    follow->seen[from] += len;
    if (!follow->feeding[from]) {
        /* Implicit TLS shows in the first bytes; STARTTLS only once the decoder says so. */
        if (!first_bytes && !session->tls)
            return;
        long start = tls_start_in(bytes, len, first_bytes && !session->tls);
        /* The other side opened with TLS and this one answers in plaintext (an SMTP banner
         * on port 465, a "421 TLS not available" to the ClientHello after STARTTLS): the
         * parser must see it, to tell "not TLS" from a cut capture. */
        if (start < 0 && (first_bytes || session->tls) &&
            follow->feeding[from == MT_CLIENT ? MT_SERVER : MT_CLIENT])
            start = 0;
        if (start < 0)
            return;
        if (!follow->parser && !(follow->parser = tls_parser_new()))
            return;
        follow->feeding[from] = true;
        bytes += start;
        len -= (size_t)start;
    }
    if (!tls_done(follow->parser))
        tls_feed(follow->parser, from, (const uint8_t *)bytes, len, ts_us);
}

static void copy_facts(struct mt_tls_info *info, const struct tls_facts *facts,
                       enum tls_outcome outcome)
{
    snprintf(info->version, sizeof info->version, "%s", facts->version_name);
    snprintf(info->client_versions, sizeof info->client_versions, "%s",
             facts->client_versions_text);
    snprintf(info->cipher, sizeof info->cipher, "%s", facts->cipher_name);
    snprintf(info->sni, sizeof info->sni, "%s", facts->sni);
    snprintf(info->subject, sizeof info->subject, "%s", facts->subject_cn);
    snprintf(info->issuer, sizeof info->issuer, "%s",
             facts->issuer_cn[0] ? facts->issuer_cn : facts->issuer_o);
    snprintf(info->sans, sizeof info->sans, "%s", facts->sans);
    info->not_before = facts->has_validity ? facts->not_before : 0;
    info->not_after = facts->has_validity ? facts->not_after : 0;
    if (facts->alert_seen)   /* which side sent it is in the status line (facts->reason) */
        snprintf(info->alert, sizeof info->alert, "%s", facts->alert_name);
    snprintf(info->outcome, sizeof info->outcome, "%s", tls_outcome_name(outcome));
}

/* A handshake that died for a reason the capture shows (an alert, a server that did not
 * speak TLS) is a failure even at the end of the capture; one merely cut by the end of
 * the capture is not. */
static bool handshake_failed(const struct tls_facts *facts, const struct mt_session *session)
{
    if (facts->alert_fatal || facts->encrypted_alert || (facts->events & TLS_EV_NOT_TLS))
        return true;
    return session->end == MT_END_CLOSE || session->end == MT_END_RESET;
}

static void settle_tls(struct tls_follow *follow, struct mt_session *session)
{
    struct tls_facts facts;
    const char *name = session->server_name[0] ? session->server_name : NULL;
    enum tls_outcome outcome = tls_finish(follow->parser, session->start_us / 1000000, name,
                                          &facts);
    /* No SNI, and the greeting's name not on the certificate: the name the client looked
     * up for this address may be (checked the same way: tls_finish() again). It only ever
     * clears a mismatch, which then names the greeting. */
    struct tls_facts by_lookup;
    if (facts.name_mismatch && follow->looked_up[0] && !facts.sni[0] &&
        tls_finish(follow->parser, session->start_us / 1000000, follow->looked_up,
                   &by_lookup) == outcome && !by_lookup.name_mismatch)
        facts = by_lookup;
    /* "no answer" from the parser, which does not see how the connection ended: a server
     * that reset or closed at once did answer, in its way (a TLS library that failed to
     * load its key or certificate does so) */
    char offer[128] = "";
    if (facts.offer_outdated)
        snprintf(offer, sizeof offer, ", which offered only %s (no TLS version in common)",
                 facts.client_versions_text);
    if (facts.server_silent && session->end == MT_END_RESET)
        snprintf(facts.reason, sizeof facts.reason, "%s instead of an answer to the ClientHello%s",
                 session->reset_by == MT_SERVER ? "the server reset the connection"
                 : session->reset_by == MT_CLIENT ? "the client reset the connection"
                                                  : "the connection was reset", offer);
    else if (facts.server_silent && session->end == MT_END_CLOSE)
        snprintf(facts.reason, sizeof facts.reason, "the connection was closed instead of an"
                 " answer to the ClientHello%s", offer);
    struct mt_tls_info *info = session_tls_alloc(session);
    if (info)   /* out of memory: the facts are lost, the findings below are not */
        copy_facts(info, &facts, outcome);
    session->tls = true;
    if (facts.version_weak)
        session->flags |= MT_FLAG_WEAK_TLS;
    /* the client's certificate_expired alert (45) says so where TLS 1.3 hides the
     * certificate itself */
    bool client_says_expired = facts.alert_seen && facts.alert_desc == 45 &&
                               facts.alert_side == MT_CLIENT;
    if (facts.expired || facts.not_yet_valid || client_says_expired)
        session->flags |= MT_FLAG_CERT_EXPIRED;
    if (facts.name_mismatch)
        session->flags |= MT_FLAG_CERT_NAME_MISMATCH;
    bool undecided = session->status == MT_STATUS_ENCRYPTED ||
                     session->status == MT_STATUS_INCOMPLETE ||
                     session->status == MT_STATUS_RESET || session->status == MT_STATUS_NO_MAIL;
    if (outcome == TLS_OUTCOME_FAILED && undecided && handshake_failed(&facts, session)) {
        char line[MT_TEXT_MAX];
        int n = snprintf(line, sizeof line, "TLS handshake failed: %s",
                         facts.reason[0] ? facts.reason : "the handshake did not complete");
        int index = session_transcript_add(session, session->end_us, 'I', line, (size_t)n);
        session_decide(session, MT_STATUS_TLS_FAILED, line, (size_t)n, index);
    }
}

void tls_follow_settle(struct tls_follow *follow, struct mt_session *session)
{
    if (follow && follow->parser)
        settle_tls(follow, session);
    /* Credentials seen in the clear: unless the capture was decrypted (then they may have
     * gone inside TLS), what a passive listener can read was readable by anyone. */
    if (session->auth_attempts > 0 && !(session->flags & MT_FLAG_DECRYPTED))
        session->flags |= MT_FLAG_CLEARTEXT_AUTH;
    if (session->starttls_offered && !session->tls && !session->starttls_refused &&
        session->bytes_c2s > 0)
        session->flags |= MT_FLAG_STARTTLS_UNUSED;
}
