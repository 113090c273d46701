/* fuzz_tls.c — libFuzzer target for protocols/tls.c (and x509.c through the Certificate
 * message): the input is two-sided chunks in the format of the decoder targets
 * (fuzz_check.h), the two byte streams of a connection after STARTTLS or on 465/993/995.
 *
 * The chunks are fed to tls_feed four ways, keeping the order between the sides:
 *   0. one tls_feed per chunk;
 *   1. each chunk split in two at a position taken from the input's last byte;
 *   2. byte by byte (inputs up to 16 KiB);
 *   3. consecutive chunks of one side joined into one tls_feed.
 * After way 0, tls_finish (capture time and server name picked by the input size) must
 * return a valid outcome, every string of the facts must be NUL-terminated and sanitized
 * (no control byte, valid UTF-8), the reason must be set exactly when the outcome is
 * "failed", events must be known bits, and a second tls_finish must give the same facts.
 * Then every way's tls_finish (fixed capture time) must give the same facts, as text.
 */
#include "fuzz_check.h"
#include "protocols/tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define BYTEWISE_MAX (16 * 1024)
#define COMPARE_TIME 1700000000LL   /* 2023-11-14 */
#define KNOWN_EVENTS 0x7fu

static void check_facts(const struct tls_facts *f, enum tls_outcome outcome)
{
    if ((int)outcome < TLS_OUTCOME_UNKNOWN || outcome > TLS_OUTCOME_FAILED)
        fuzz_fail("tls_finish returned outcome %d", (int)outcome);
    if (!tls_outcome_name(outcome))
        fuzz_fail("no name for outcome %d", (int)outcome);
#define STR(field) fuzz_check_string("tls " #field, f->field, sizeof f->field)
    STR(client_versions_text);
    STR(sni);
    STR(alpn);
    STR(version_name);
    STR(cipher_name);
    STR(alpn_selected);
    STR(subject_cn);
    STR(subject_o);
    STR(sans);
    STR(issuer_cn);
    STR(issuer_o);
    STR(name_checked);
    STR(alert_name);
    STR(reason);
#undef STR
    if ((outcome == TLS_OUTCOME_FAILED) != (f->reason[0] != '\0'))
        fuzz_fail("outcome %s with reason \"%s\"", tls_outcome_name(outcome), f->reason);
    if (f->events & ~KNOWN_EVENTS)
        fuzz_fail("unknown event bits 0x%x", f->events);
    for (unsigned bit = 0; bit < 32; bit++)
        if ((f->events & 1u << bit) && !tls_event_name(bit))
            fuzz_fail("no name for event bit %u", bit);
    if (f->client_versions & ~0x7fu)
        fuzz_fail("unknown client version bits 0x%x", f->client_versions);
    if (f->alert_seen && f->alert_side != MT_CLIENT && f->alert_side != MT_SERVER)
        fuzz_fail("alert side %d", (int)f->alert_side);
    if (f->alert_seen && f->alert_name[0] == '\0')
        fuzz_fail("an alert without a name");
    if (f->server_hello && (f->version_name[0] == '\0' || f->cipher_name[0] == '\0'))
        fuzz_fail("a ServerHello without version or cipher name");
    if (f->handshake_complete && outcome == TLS_OUTCOME_UNKNOWN)
        fuzz_fail("handshake complete, outcome unknown");
}

/* Every fact as text, for comparing the ways of feeding. */
static void facts_text(const struct tls_facts *f, enum tls_outcome outcome, char *out,
                       size_t cap)
{
    snprintf(out, cap,
             "outcome=%d ch=%d v2=%d chv=%u cv=%u cvt=%s sni=%s alpn=%s suites=%u sh=%d hrr=%d "
             "v=%u vn=%s weak=%d c=%u cn=%s alpnsel=%s cert=%d chain=%u scn=%s so=%s sans=%s "
             "nsans=%u icn=%s io=%s self=%d val=%d nb=%lld na=%lld exp=%d nyv=%d nc=%s nm=%d "
             "alert=%d %u %u %s side=%d fatal=%d encalert=%d ccs=%d,%d app=%llu,%llu "
             "complete=%d reason=%s events=%u not_tls=%d",
             (int)outcome, f->client_hello, f->sslv2_hello, f->client_hello_version,
             f->client_versions, f->client_versions_text, f->sni, f->alpn,
             f->cipher_suites_offered, f->server_hello, f->hello_retry, f->version,
             f->version_name, f->version_weak, f->cipher, f->cipher_name, f->alpn_selected,
             f->have_cert, f->cert_chain_len, f->subject_cn, f->subject_o, f->sans,
             f->san_count, f->issuer_cn, f->issuer_o, f->self_issued, f->has_validity,
             (long long)f->not_before, (long long)f->not_after, f->expired, f->not_yet_valid,
             f->name_checked, f->name_mismatch, f->alert_seen, f->alert_level, f->alert_desc,
             f->alert_name, (int)f->alert_side, f->alert_fatal, f->encrypted_alert, f->ccs[0],
             f->ccs[1], (unsigned long long)f->app_records[0],
             (unsigned long long)f->app_records[1], f->handshake_complete, f->reason,
             f->events, f->not_tls);
}

static uint8_t joined[65536 + 16];

static struct tls_parser *feed(const uint8_t *data, size_t size, int way)
{
    struct tls_parser *p = tls_parser_new();
    if (!p)
        abort();
    uint8_t cut = size ? data[size - 1] : 0;
    int64_t ts = 1700000000LL * 1000000;
    size_t pos = 0, joined_len = 0;
    int joined_side = MT_CLIENT;
    int64_t joined_ts = ts;
    struct fuzz_chunk c;
    while (fuzz_next_chunk(data, size, &pos, &c)) {
        ts += c.delta_us;
        if (c.len == 0)
            continue;   /* libnids never delivers zero bytes */
        (void)tls_looks_like_record(c.bytes, c.len);
        switch (way) {
        case 0:
            tls_feed(p, c.side, c.bytes, c.len, ts);
            break;
        case 1: {
            size_t at = c.len * cut / 256;
            tls_feed(p, c.side, c.bytes, at, ts);
            tls_feed(p, c.side, c.bytes + at, c.len - at, ts);
            break;
        }
        case 2:
            for (size_t i = 0; i < c.len; i++)
                tls_feed(p, c.side, c.bytes + i, 1, ts);
            break;
        case 3:
            if (joined_len > 0 && (c.side != joined_side || joined_len + c.len > sizeof joined)) {
                tls_feed(p, joined_side, joined, joined_len, joined_ts);
                joined_len = 0;
            }
            if (joined_len == 0) {
                joined_side = c.side;
                joined_ts = ts;
            }
            memcpy(joined + joined_len, c.bytes, c.len);
            joined_len += c.len;
            break;
        }
    }
    if (way == 3 && joined_len > 0)
        tls_feed(p, joined_side, joined, joined_len, joined_ts);
    (void)tls_done(p);
    return p;
}

static char text_a[8192], text_b[8192];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = { NULL, "mail.example.test", "", "MX.Example.Test." };
    static const int64_t times[] = { 0, COMPARE_TIME, 4102444800LL /* 2100 */ };
    const char *server_name = names[size % 4];
    int64_t capture_time = times[size / 4 % 3];

    struct tls_facts f1, f2;
    struct tls_parser *p = feed(data, size, 0);
    enum tls_outcome o1 = tls_finish(p, capture_time, server_name, &f1);
    check_facts(&f1, o1);
    enum tls_outcome o2 = tls_finish(p, capture_time, server_name, &f2);
    facts_text(&f1, o1, text_a, sizeof text_a);
    facts_text(&f2, o2, text_b, sizeof text_b);
    if (strcmp(text_a, text_b) != 0)
        fuzz_fail("tls_finish called again gives other facts:\n  %s\n  %s", text_a, text_b);
    o1 = tls_finish(p, COMPARE_TIME, server_name, &f1);
    check_facts(&f1, o1);
    facts_text(&f1, o1, text_a, sizeof text_a);
    tls_parser_free(p);

    static const char *const ways[] = { NULL, "split in two", "byte by byte", "joined" };
    for (int way = 1; way <= 3; way++) {
        if (way == 2 && size > BYTEWISE_MAX)
            continue;
        p = feed(data, size, way);
        o2 = tls_finish(p, COMPARE_TIME, server_name, &f2);
        check_facts(&f2, o2);
        facts_text(&f2, o2, text_b, sizeof text_b);
        tls_parser_free(p);
        if (strcmp(text_a, text_b) != 0)
            fuzz_fail("chunks fed %s give other facts than fed whole:\n  whole: %s\n  %s: %s",
                      ways[way], text_a, ways[way], text_b);
    }
    return 0;
}
