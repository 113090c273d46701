/* test_tls.c — cmocka tests for the TLS handshake reader (protocols/tls.c) and the X.509
 * reader under it (protocols/x509.c). Real OpenSSL handshakes recorded on 127.0.0.1 and
 * four public captures (tests/data/tls, see make_fixtures.sh there) are fed whole, split
 * at every byte boundary and byte by byte: the facts must be identical. Then hostile
 * bytes: truncated and mutated certificates, overflowing lengths, deep nesting, a huge
 * OID, oversized handshake messages, garbage and an SSLv2-format hello. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "protocols/text.h"
#include "protocols/session.h"
#include "protocols/tls.h"
#include "protocols/tlsfollow.h"
#include "protocols/x509.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define CAPTURE_2026 1767225600   /* 2026-01-01T00:00:00Z */
#define T_2020_01_01 1577836800
#define T_2021_01_01 1609459200
#define T_2024_01_01 1704067200
#define T_2044_01_01 2335219200

/* ---- fixtures: records "C|S <len>\n<bytes>\n" ---- */

struct chunk {
    enum mt_side side;
    const uint8_t *bytes;
    size_t len;
};

struct fixture {
    struct chunk *chunks;
    size_t n;
    uint8_t *data;
};

static void fixture_load(struct fixture *f, const char *name)
{
    const char *dir = getenv("MAILTAP_TEST_DATA");
    char path[512];
    snprintf(path, sizeof path, "%s/tls/%s", dir ? dir : "tests/data", name);
    FILE *fp = fopen(path, "rb");
    if (!fp)
        fail_msg("cannot open %s (run from the repository root or set MAILTAP_TEST_DATA)", path);
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    f->data = malloc((size_t)size + 1);
    assert_non_null(f->data);
    assert_int_equal(fread(f->data, 1, (size_t)size, fp), (size_t)size);
    fclose(fp);
    f->data[size] = 0;
    f->chunks = NULL;
    f->n = 0;
    size_t cap = 0;
    for (size_t at = 0; at < (size_t)size;) {
        char side = (char)f->data[at], *end;
        assert_true(side == 'C' || side == 'S');
        size_t len = strtoul((char *)f->data + at + 2, &end, 10);
        assert_true(*end == '\n');
        at = (size_t)((uint8_t *)end + 1 - f->data);
        assert_true(at + len < (size_t)size);
        if (f->n == cap) {
            cap = cap ? cap * 2 : 32;
            f->chunks = realloc(f->chunks, cap * sizeof *f->chunks);
            assert_non_null(f->chunks);
        }
        f->chunks[f->n++] = (struct chunk){ side == 'S' ? MT_SERVER : MT_CLIENT,
                                            f->data + at, len };
        at += len + 1;
    }
}

static void fixture_free(struct fixture *f)
{
    free(f->chunks);
    free(f->data);
}

/* Drops the plaintext before STARTTLS: everything before the first client chunk that
 * tls_looks_like_record() accepts. */
static void fixture_skip_plaintext(struct fixture *f)
{
    size_t i = 0;
    while (i < f->n && !(f->chunks[i].side == MT_CLIENT &&
                         tls_looks_like_record(f->chunks[i].bytes, f->chunks[i].len)))
        i++;
    assert_true(i < f->n);
    memmove(f->chunks, f->chunks + i, (f->n - i) * sizeof *f->chunks);
    f->n -= i;
}

/* ---- feeding ---- */

enum feed_mode { FEED_WHOLE, FEED_SPLIT, FEED_BYTES };

struct run_result {
    enum tls_outcome outcome;
    struct tls_facts facts;
    char text[4096];
};

/* Everything a caller can see, as one string, so runs compare exactly. */
static void facts_text(char *dst, size_t cap, enum tls_outcome o, const struct tls_facts *f)
{
    snprintf(dst, cap,
             "outcome=%s ch=%d v2=%d chv=%04x cv=%x cvt=%s sni=%s alpn=%s offered=%u "
             "sh=%d hrr=%d v=%04x vn=%s weak=%d cipher=%04x cn=%s alpnsel=%s "
             "cert=%d chain=%u scn=%s so=%s sans=%s nsans=%u icn=%s io=%s self=%d val=%d "
             "nb=%lld na=%lld exp=%d nyv=%d checked=%s mism=%d "
             "alert=%d lvl=%u desc=%u an=%s aside=%d fatal=%d encalert=%d "
             "ccs=%d%d app=%llu/%llu done=%d reason=%s ev=%x nottls=%d",
             tls_outcome_name(o), f->client_hello, f->sslv2_hello, f->client_hello_version,
             f->client_versions, f->client_versions_text, f->sni, f->alpn,
             f->cipher_suites_offered, f->server_hello, f->hello_retry, f->version,
             f->version_name, f->version_weak, f->cipher, f->cipher_name, f->alpn_selected,
             f->have_cert, f->cert_chain_len, f->subject_cn, f->subject_o, f->sans,
             f->san_count, f->issuer_cn, f->issuer_o, f->self_issued, f->has_validity,
             (long long)f->not_before, (long long)f->not_after, f->expired, f->not_yet_valid,
             f->name_checked, f->name_mismatch, f->alert_seen, f->alert_level, f->alert_desc,
             f->alert_name, (int)f->alert_side, f->alert_fatal, f->encrypted_alert,
             f->ccs[0], f->ccs[1], (unsigned long long)f->app_records[0],
             (unsigned long long)f->app_records[1], f->handshake_complete, f->reason,
             f->events, f->not_tls);
}

/* Feeds the chunks (chunk i at time (i + 1) ms) and finishes. FEED_SPLIT cuts the chunk
 * holding stream offset split_at in two; FEED_BYTES feeds one byte at a time. */
static void run(const struct fixture *f, enum feed_mode mode, size_t split_at,
                int64_t capture_time, const char *server_name, struct run_result *r)
{
    struct tls_parser *p = tls_parser_new();
    assert_non_null(p);
    size_t offset = 0;
    for (size_t i = 0; i < f->n; i++) {
        const struct chunk *c = &f->chunks[i];
        int64_t ts = (int64_t)(i + 1) * 1000;
        if (mode == FEED_BYTES) {
            for (size_t b = 0; b < c->len; b++)
                tls_feed(p, c->side, c->bytes + b, 1, ts);
        } else if (mode == FEED_SPLIT && split_at > offset && split_at < offset + c->len) {
            size_t cut = split_at - offset;
            tls_feed(p, c->side, c->bytes, cut, ts);
            tls_feed(p, c->side, c->bytes + cut, c->len - cut, ts);
        } else {
            tls_feed(p, c->side, c->bytes, c->len, ts);
        }
        offset += c->len;
    }
    r->outcome = tls_finish(p, capture_time, server_name, &r->facts);
    facts_text(r->text, sizeof r->text, r->outcome, &r->facts);
    tls_parser_free(p);
}

static size_t fixture_bytes(const struct fixture *f)
{
    size_t total = 0;
    for (size_t i = 0; i < f->n; i++)
        total += f->chunks[i].len;
    return total;
}

/* Whole, byte by byte and split at every byte boundary: identical facts. */
static void check_fixture(const char *name, bool starttls, int64_t capture_time,
                          const char *server_name, struct run_result *whole)
{
    struct fixture f;
    fixture_load(&f, name);
    if (starttls)
        fixture_skip_plaintext(&f);
    run(&f, FEED_WHOLE, 0, capture_time, server_name, whole);
    struct run_result *other = malloc(sizeof *other);
    assert_non_null(other);
    run(&f, FEED_BYTES, 0, capture_time, server_name, other);
    if (strcmp(whole->text, other->text) != 0)
        fail_msg("%s byte by byte differs:\n%s\n%s", name, whole->text, other->text);
    size_t total = fixture_bytes(&f);
    for (size_t at = 1; at < total; at++) {
        run(&f, FEED_SPLIT, at, capture_time, server_name, other);
        if (strcmp(whole->text, other->text) != 0)
            fail_msg("%s split at %zu differs:\n%s\n%s", name, at, whole->text, other->text);
    }
    /* every prefix of the stream, cut anywhere: no crash, never "encrypted" too early */
    for (size_t cut = 0; cut < total; cut += 1) {
        struct fixture g = f;
        size_t left = cut, n = 0;
        struct chunk *copy = malloc((f.n ? f.n : 1) * sizeof *copy);
        assert_non_null(copy);
        for (size_t i = 0; i < f.n && left > 0; i++) {
            copy[n] = f.chunks[i];
            if (copy[n].len > left)
                copy[n].len = left;
            left -= copy[n].len;
            n++;
        }
        g.chunks = copy;
        g.n = n;
        run(&g, FEED_WHOLE, 0, capture_time, server_name, other);
        if (cut > 0 && whole->outcome != TLS_OUTCOME_ENCRYPTED)
            assert_int_not_equal(other->outcome, TLS_OUTCOME_ENCRYPTED);
        free(copy);
    }
    free(other);
    fixture_free(&f);
}

/* ---- the recorded OpenSSL handshakes ---- */

static void assert_test_cert(const struct tls_facts *f)
{
    assert_true(f->have_cert);
    assert_int_equal(f->cert_chain_len, 1);
    assert_string_equal(f->subject_cn, "mail.example.test");
    assert_string_equal(f->subject_o, "Example Mail");
    assert_string_equal(f->issuer_cn, "Mailtap Test Root");
    assert_string_equal(f->issuer_o, "Mailtap Test CA");
    assert_string_equal(f->sans, "mail.example.test, *.mx.example.test, IP:127.0.0.1");
    assert_int_equal(f->san_count, 3);
    assert_false(f->self_issued);
    assert_true(f->has_validity);
}

static void test_tls12_expired(void **unused)
{
    (void)unused;
    struct run_result r;
    check_fixture("tls12_expired.chunks", false, CAPTURE_2026, NULL, &r);
    const struct tls_facts *f = &r.facts;
    assert_int_equal(r.outcome, TLS_OUTCOME_ENCRYPTED);
    assert_true(f->client_hello);
    assert_false(f->sslv2_hello);
    assert_int_equal(f->client_hello_version, 0x0303);
    assert_int_equal(f->client_versions, TLS_VBIT_TLS12);
    assert_string_equal(f->client_versions_text, "TLSv1.2");
    assert_string_equal(f->sni, "mail.example.test");
    assert_int_equal(f->cipher_suites_offered, 28);
    assert_int_equal(f->version, 0x0303);
    assert_string_equal(f->version_name, "TLSv1.2");
    assert_false(f->version_weak);
    assert_int_equal(f->cipher, 0xC030);
    assert_string_equal(f->cipher_name, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384");
    assert_test_cert(f);
    assert_int_equal(f->not_before, T_2020_01_01);
    assert_int_equal(f->not_after, T_2021_01_01);
    assert_true(f->expired);
    assert_false(f->not_yet_valid);
    assert_string_equal(f->name_checked, "mail.example.test");
    assert_false(f->name_mismatch);
    assert_true(f->ccs[MT_CLIENT] && f->ccs[MT_SERVER]);
    assert_true(f->handshake_complete);
    assert_false(f->alert_seen);   /* the close_notify alerts are encrypted */
    assert_string_equal(f->reason, "");
    assert_int_equal(f->events, 0);

    /* the same stream seen in 2020-06: valid; in 2019: not yet valid */
    struct fixture fx;
    fixture_load(&fx, "tls12_expired.chunks");
    run(&fx, FEED_WHOLE, 0, T_2020_01_01 + 86400 * 150, NULL, &r);
    assert_false(r.facts.expired);
    assert_false(r.facts.not_yet_valid);
    run(&fx, FEED_WHOLE, 0, T_2020_01_01 - 1, NULL, &r);
    assert_true(r.facts.not_yet_valid);
    /* capture_time 0: judged at the time the certificate was seen (1970 here) */
    run(&fx, FEED_WHOLE, 0, 0, NULL, &r);
    assert_true(r.facts.not_yet_valid);
    fixture_free(&fx);
}

static void test_tls12_expired_rejected(void **unused)
{
    (void)unused;
    struct run_result r;
    check_fixture("tls12_expired_rejected.chunks", false, CAPTURE_2026, NULL, &r);
    const struct tls_facts *f = &r.facts;
    assert_int_equal(r.outcome, TLS_OUTCOME_FAILED);
    assert_true(f->alert_seen);
    assert_true(f->alert_fatal);
    assert_int_equal(f->alert_level, 2);
    assert_int_equal(f->alert_desc, 45);
    assert_string_equal(f->alert_name, "certificate_expired");
    assert_int_equal(f->alert_side, MT_CLIENT);
    assert_string_equal(f->reason, "fatal alert certificate_expired from the client");
    assert_test_cert(f);
    assert_true(f->expired);
    assert_false(f->handshake_complete);
}

static void test_tls13_ok(void **unused)
{
    (void)unused;
    struct run_result r;
    check_fixture("tls13_ok.chunks", false, CAPTURE_2026, NULL, &r);
    const struct tls_facts *f = &r.facts;
    assert_int_equal(r.outcome, TLS_OUTCOME_ENCRYPTED);
    assert_int_equal(f->client_versions, TLS_VBIT_TLS13);
    assert_string_equal(f->client_versions_text, "TLSv1.3");
    assert_string_equal(f->sni, "mail.example.test");
    assert_string_equal(f->alpn, "imap,pop3");
    assert_int_equal(f->version, 0x0304);
    assert_string_equal(f->version_name, "TLSv1.3");
    assert_int_equal(f->cipher, 0x1302);
    assert_string_equal(f->cipher_name, "TLS_AES_256_GCM_SHA384");
    assert_string_equal(f->alpn_selected, "");   /* in EncryptedExtensions */
    assert_false(f->have_cert);                  /* encrypted in TLS 1.3 */
    assert_false(f->expired);
    assert_false(f->name_mismatch);
    assert_false(f->hello_retry);
    assert_true(f->handshake_complete);
    assert_false(f->alert_seen);
    assert_int_equal(f->events, 0);
}

static void test_tls13_rejected(void **unused)
{
    (void)unused;
    struct run_result r;
    check_fixture("tls13_rejected.chunks", false, CAPTURE_2026, NULL, &r);
    const struct tls_facts *f = &r.facts;
    /* OpenSSL's client still writes in clear when it rejects the server's flight */
    assert_int_equal(r.outcome, TLS_OUTCOME_FAILED);
    assert_int_equal(f->version, 0x0304);
    assert_string_equal(f->alert_name, "certificate_expired");
    assert_int_equal(f->alert_side, MT_CLIENT);
    assert_false(f->have_cert);
}

static void test_version_mismatch(void **unused)
{
    (void)unused;
    struct run_result r;
    check_fixture("version_mismatch.chunks", false, CAPTURE_2026, NULL, &r);
    const struct tls_facts *f = &r.facts;
    assert_int_equal(r.outcome, TLS_OUTCOME_FAILED);
    assert_int_equal(f->client_versions, TLS_VBIT_TLS13);
    assert_false(f->server_hello);
    assert_string_equal(f->version_name, "");
    assert_string_equal(f->alert_name, "protocol_version");
    assert_int_equal(f->alert_desc, 70);
    assert_int_equal(f->alert_side, MT_SERVER);
    assert_string_equal(f->reason, "fatal alert protocol_version from the server");
}

static void test_cipher_mismatch(void **unused)
{
    (void)unused;
    struct run_result r;
    check_fixture("cipher_mismatch.chunks", false, CAPTURE_2026, NULL, &r);
    const struct tls_facts *f = &r.facts;
    assert_int_equal(r.outcome, TLS_OUTCOME_FAILED);
    assert_int_equal(f->cipher_suites_offered, 2);   /* AES128-SHA + the SCSV */
    assert_string_equal(f->alert_name, "handshake_failure");
    assert_int_equal(f->alert_side, MT_SERVER);
    assert_false(f->have_cert);
}

static void test_name_mismatch(void **unused)
{
    (void)unused;
    struct run_result r;
    check_fixture("name_mismatch.chunks", false, CAPTURE_2026, NULL, &r);
    const struct tls_facts *f = &r.facts;
    assert_int_equal(r.outcome, TLS_OUTCOME_ENCRYPTED);
    assert_string_equal(f->sni, "smtp.other.example");
    assert_test_cert(f);
    assert_int_equal(f->not_before, T_2024_01_01);
    assert_int_equal(f->not_after, T_2044_01_01);
    assert_false(f->expired);
    assert_string_equal(f->name_checked, "smtp.other.example");
    assert_true(f->name_mismatch);
    /* the SNI wins over the server name given by the caller */
    struct fixture fx;
    fixture_load(&fx, "name_mismatch.chunks");
    run(&fx, FEED_WHOLE, 0, CAPTURE_2026, "mail.example.test", &r);
    assert_true(r.facts.name_mismatch);
    run(&fx, FEED_WHOLE, 0, T_2024_01_01 - 1, NULL, &r);
    assert_true(r.facts.not_yet_valid);
    fixture_free(&fx);
}

static void test_tls10(void **unused)
{
    (void)unused;
    struct run_result r;
    check_fixture("tls10_ok.chunks", false, CAPTURE_2026, NULL, &r);
    const struct tls_facts *f = &r.facts;
    assert_int_equal(r.outcome, TLS_OUTCOME_ENCRYPTED);
    assert_int_equal(f->client_versions, TLS_VBIT_TLS10);
    assert_int_equal(f->version, 0x0301);
    assert_string_equal(f->version_name, "TLSv1.0");
    assert_true(f->version_weak);
    assert_int_equal(f->cipher, 0xC014);
    assert_string_equal(f->cipher_name, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA");
    assert_false(f->name_mismatch);
}

/* ---- the public captures ---- */

static void test_public_ndpi_smtps(void **unused)
{
    (void)unused;
    struct run_result r;
    /* port 465, but the server greets in plain SMTP: a ClientHello into the void */
    check_fixture("public_ndpi_smtps.chunks", false, 0, NULL, &r);
    const struct tls_facts *f = &r.facts;
    assert_int_equal(r.outcome, TLS_OUTCOME_FAILED);
    assert_true(f->client_hello);
    assert_int_equal(f->client_hello_version, 0x0303);
    assert_int_equal(f->client_versions, TLS_VBIT_TLS12);
    assert_string_equal(f->sni, "");
    assert_false(f->server_hello);
    assert_true(f->events & TLS_EV_NOT_TLS);
    assert_false(f->not_tls);   /* the client did speak TLS */
    assert_string_equal(f->reason, "the server did not answer with TLS");
}

static void test_public_zeek_smtp_starttls(void **unused)
{
    (void)unused;
    struct run_result r;
    check_fixture("public_zeek_smtp-starttls.chunks", true, 1400168396, "mx.google.com", &r);
    const struct tls_facts *f = &r.facts;
    assert_int_equal(r.outcome, TLS_OUTCOME_ENCRYPTED);
    assert_int_equal(f->client_versions, TLS_VBIT_TLS12);
    assert_string_equal(f->sni, "");
    assert_int_equal(f->version, 0x0303);
    assert_int_equal(f->cipher, 0xC02F);
    assert_string_equal(f->cipher_name, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256");
    assert_true(f->have_cert);
    assert_int_equal(f->cert_chain_len, 3);
    assert_string_equal(f->subject_cn, "mx.google.com");
    assert_string_equal(f->issuer_cn, "Google Internet Authority G2");
    assert_non_null(strstr(f->sans, "aspmx.l.google.com"));
    assert_false(f->expired);
    assert_string_equal(f->name_checked, "mx.google.com");
    assert_true(f->handshake_complete);
    assert_int_equal(f->events, 0);
}

static void test_public_zeek_imap_pop3_starttls(void **unused)
{
    (void)unused;
    struct run_result r;
    check_fixture("public_zeek_imap-starttls.chunks", true, 1437584567, "imap.gmx.net", &r);
    assert_int_equal(r.outcome, TLS_OUTCOME_ENCRYPTED);
    assert_int_equal(r.facts.cipher, 0xC030);
    assert_string_equal(r.facts.subject_cn, "imap.gmx.net");
    assert_false(r.facts.name_mismatch);
    assert_false(r.facts.expired);
    check_fixture("public_zeek_pop3-starttls.chunks", true, 1400173552, "mail.example.org", &r);
    assert_int_equal(r.outcome, TLS_OUTCOME_ENCRYPTED);
    assert_int_equal(r.facts.cipher, 0x009F);
    assert_string_equal(r.facts.subject_cn, "chimaera.lilawelt.de");
    assert_string_equal(r.facts.issuer_cn, "Lilawelt");   /* OU is "Lilawelt CA" */
    assert_string_equal(r.facts.issuer_o, "Lilawelt");
    assert_int_equal(r.facts.not_before, 1178385788);   /* 2007-05-05 17:23:08 */
    assert_true(r.facts.name_mismatch);
    assert_false(r.facts.expired);   /* 2007..2017, judged at the capture's own time */
    assert_false(r.facts.not_yet_valid);
}

/* A certificate that does not name the greeting's host but names the host the client
 * looked up for the address (the MX host: dns_watch_name_of()) is no mismatch; one that
 * names neither still is, and so without a lookup. */
static void test_name_looked_up(void **unused)
{
    (void)unused;
    static const char *const looked_up[] = { "chimaera.lilawelt.de", "CHIMAERA.lilawelt.de",
                                             "other.example", "" };
    static const bool mismatch[] = { false, false, true, true };
    struct fixture fx;
    fixture_load(&fx, "public_zeek_pop3-starttls.chunks");
    fixture_skip_plaintext(&fx);
    for (size_t i = 0; i < sizeof looked_up / sizeof looked_up[0]; i++) {
        struct mt_session *s = session_new(MT_PROTO_POP3);
        struct tls_follow *follow = tls_follow_new();
        assert_non_null(s);
        assert_non_null(follow);
        snprintf(s->server_name, sizeof s->server_name, "mail.example.org");
        s->start_us = 1400173552LL * 1000000;
        s->tls = true;
        for (size_t c = 0; c < fx.n; c++)
            tls_follow_data(follow, s, fx.chunks[c].side, (const char *)fx.chunks[c].bytes,
                            fx.chunks[c].len, s->start_us);
        if (looked_up[i][0])
            tls_follow_looked_up(follow, looked_up[i]);
        s->end = MT_END_CLOSE;
        tls_follow_settle(follow, s);
        assert_string_equal(session_tls(s)->subject, "chimaera.lilawelt.de");
        if (mismatch[i] != ((s->flags & MT_FLAG_CERT_NAME_MISMATCH) != 0))
            fail_msg("looked up \"%s\": mismatch %d", looked_up[i], !mismatch[i]);
        tls_follow_free(follow);
        session_free(s);
    }
    fixture_free(&fx);
}

/* ---- synthetic streams ---- */

static struct tls_facts feed_bytes(const uint8_t *b, size_t n, enum tls_outcome *o)
{
    struct tls_parser *p = tls_parser_new();
    assert_non_null(p);
    tls_feed(p, MT_CLIENT, b, n, 1);
    struct tls_facts f;
    *o = tls_finish(p, CAPTURE_2026, NULL, &f);
    tls_parser_free(p);
    return f;
}

static void test_garbage(void **unused)
{
    (void)unused;
    enum tls_outcome o;
    const char *smtp = "220 mail.example.com ESMTP\r\n";
    struct tls_facts f = feed_bytes((const uint8_t *)smtp, strlen(smtp), &o);
    assert_int_equal(o, TLS_OUTCOME_UNKNOWN);
    assert_true(f.not_tls);
    /* a handshake record claiming more than 16 KB + 2048 */
    const uint8_t big[] = { 0x16, 0x03, 0x03, 0xFF, 0xFF, 1, 2, 3 };
    f = feed_bytes(big, sizeof big, &o);
    assert_true(f.not_tls);
    /* nothing at all */
    f = feed_bytes(big, 0, &o);
    assert_int_equal(o, TLS_OUTCOME_UNKNOWN);
    assert_false(f.not_tls);
    /* random bytes, seeded: never a crash */
    uint8_t buf[4096];
    unsigned seed = 12345;
    for (int round = 0; round < 200; round++) {
        for (size_t i = 0; i < sizeof buf; i++) {
            seed = seed * 1103515245u + 12345u;
            buf[i] = (uint8_t)(seed >> 16);
        }
        buf[0] = 0x16, buf[1] = 3, buf[2] = 1;   /* a plausible first header */
        struct tls_parser *p = tls_parser_new();
        tls_feed(p, MT_CLIENT, buf, sizeof buf, 1);
        tls_feed(p, MT_SERVER, buf, sizeof buf, 2);
        (void)tls_finish(p, 0, "x", &f);
        tls_parser_free(p);
    }
}

static void test_sslv2_hello(void **unused)
{
    (void)unused;
    /* SSLv2-format ClientHello offering TLS 1.0: 3 cipher specs, no session id,
     * a 16-byte challenge (RFC 5246 appendix E.2) */
    uint8_t hello[] = { 0x80, 0x22, 0x01, 0x03, 0x01, 0x00, 0x09, 0x00, 0x00, 0x00, 0x10,
                        0x00, 0x00, 0x2F, 0x00, 0x00, 0x35, 0x01, 0x00, 0x80,
                        1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
    assert_int_equal(sizeof hello, 2 + 0x22);
    assert_true(tls_looks_like_record(hello, sizeof hello));
    enum tls_outcome o;
    struct tls_facts f = feed_bytes(hello, sizeof hello, &o);
    assert_true(f.client_hello);
    assert_true(f.sslv2_hello);
    assert_int_equal(f.client_hello_version, 0x0301);
    assert_int_equal(f.client_versions, TLS_VBIT_TLS10);
    assert_int_equal(o, TLS_OUTCOME_FAILED);
    assert_true(f.offer_outdated);
    assert_string_equal(f.reason, "no answer from the server to a ClientHello offering only "
                                  "TLSv1.0 (no TLS version in common)");
    /* cut anywhere: no crash */
    for (size_t n = 0; n < sizeof hello; n++)
        (void)feed_bytes(hello, n, &o);
}

/* A server that drops the ClientHello at once did answer, in its way: the reason says how
 * the connection ended (a TLS library that could not load its key resets). */
static void test_hello_dropped(void **unused)
{
    (void)unused;
    uint8_t hello[] = { 0x80, 0x22, 0x01, 0x03, 0x01, 0x00, 0x09, 0x00, 0x00, 0x00, 0x10,
                        0x00, 0x00, 0x2F, 0x00, 0x00, 0x35, 0x01, 0x00, 0x80,
                        1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
    static const struct { enum mt_end end; int8_t by; const char *want; } cases[] = {
        { MT_END_RESET, MT_SERVER, "TLS handshake failed: the server reset the connection"
                                   " instead of an answer to the ClientHello" },
        { MT_END_RESET, -1, "TLS handshake failed: the connection was reset instead" },
        { MT_END_CLOSE, -1, "TLS handshake failed: the connection was closed instead" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct mt_session *s = session_new(MT_PROTO_SMTP);
        struct tls_follow *follow = tls_follow_new();
        assert_non_null(s);
        assert_non_null(follow);
        tls_follow_data(follow, s, MT_CLIENT, (const char *)hello, sizeof hello, 1000000);
        s->end = cases[i].end;
        s->reset_by = cases[i].by;
        s->status = MT_STATUS_RESET;
        tls_follow_settle(follow, s);
        assert_int_equal(s->status, MT_STATUS_TLS_FAILED);
        assert_true(strncmp(s->status_line, cases[i].want, strlen(cases[i].want)) == 0);
        /* a hello offering nothing newer than TLS 1.0: that is the likely reason */
        assert_non_null(strstr(s->status_line, "ClientHello, which offered only TLSv1.0 (no TLS "
                                               "version in common)"));
        tls_follow_free(follow);
        session_free(s);
    }
}

/* A current ClientHello (TLS 1.2 and 1.3 offered) the server never answers: no claim about
 * versions, the server's silence is all there is. Also an outdated one the server answered
 * with an alert of its own: the alert says it. */
static void test_hello_unanswered_current(void **unused)
{
    (void)unused;
    struct fixture fx;
    fixture_load(&fx, "tls12_expired.chunks");
    struct tls_parser *p = tls_parser_new();
    assert_non_null(p);
    size_t i = 0;
    while (i < fx.n && fx.chunks[i].side != MT_CLIENT)
        i++;
    assert_true(i < fx.n);
    tls_feed(p, MT_CLIENT, fx.chunks[i].bytes, fx.chunks[i].len, 1);
    struct tls_facts f;
    assert_int_equal(tls_finish(p, CAPTURE_2026, NULL, &f), TLS_OUTCOME_FAILED);
    assert_true(f.client_versions & TLS_VBIT_TLS12);
    assert_false(f.offer_outdated);
    assert_true(f.server_silent);
    assert_string_equal(f.reason, "no answer from the server");
    tls_parser_free(p);
    fixture_free(&fx);
}

/* A handshake message of 16 MB spanning records is skipped; the next message parses. */
static void test_oversized_handshake(void **unused)
{
    (void)unused;
    struct tls_parser *p = tls_parser_new();
    uint8_t rec[5 + 16384];
    memset(rec, 0xAB, sizeof rec);
    rec[0] = 0x16, rec[1] = 3, rec[2] = 3, rec[3] = 0x40, rec[4] = 0x00;
    rec[5] = 11, rec[6] = 0xFF, rec[7] = 0xFF, rec[8] = 0xFF;   /* Certificate, 16 MB */
    size_t left = 0xFFFFFF + 4;
    while (left > 0) {   /* the message in 16 KB records */
        size_t n = left < 16384 ? left : 16384;
        rec[3] = (uint8_t)(n >> 8), rec[4] = (uint8_t)n;
        tls_feed(p, MT_SERVER, rec, 5 + n, 1);
        left -= n;
        rec[5] = 0xAB, rec[6] = 0xAB, rec[7] = 0xAB, rec[8] = 0xAB;
    }
    /* then a ServerHello, TLS 1.2, cipher 0xC02F, no extensions */
    uint8_t sh[5 + 4 + 38] = { 0x16, 3, 3, 0, 42, 2, 0, 0, 38, 3, 3 };
    sh[5 + 4 + 34] = 0;   /* session id length */
    sh[5 + 4 + 35] = 0xC0, sh[5 + 4 + 36] = 0x2F, sh[5 + 4 + 37] = 0;
    tls_feed(p, MT_SERVER, sh, sizeof sh, 2);
    struct tls_facts f;
    (void)tls_finish(p, 0, NULL, &f);
    assert_true(f.events & TLS_EV_HS_TOO_BIG);
    assert_true(f.server_hello);
    assert_int_equal(f.cipher, 0xC02F);
    assert_string_equal(f.cipher_name, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256");
    assert_false(f.have_cert);
    tls_parser_free(p);
}

static void test_unknown_names(void **unused)
{
    (void)unused;
    struct tls_parser *p = tls_parser_new();
    /* ServerHello with an unknown version and cipher, then an unknown alert */
    uint8_t sh[5 + 4 + 38] = { 0x16, 3, 3, 0, 42, 2, 0, 0, 38, 0x7F, 0x1C };
    sh[5 + 4 + 35] = 0x12, sh[5 + 4 + 36] = 0x34;
    tls_feed(p, MT_SERVER, sh, sizeof sh, 1);
    const uint8_t alert[] = { 0x15, 3, 3, 0, 2, 2, 77 };
    tls_feed(p, MT_SERVER, alert, sizeof alert, 2);
    struct tls_facts f;
    assert_int_equal(tls_finish(p, 0, NULL, &f), TLS_OUTCOME_FAILED);
    assert_string_equal(f.version_name, "0x7F1C");
    assert_string_equal(f.cipher_name, "0x1234");
    assert_string_equal(f.alert_name, "unknown(77)");
    assert_true(tls_done(p));
    tls_parser_free(p);
    assert_string_equal(tls_cipher_name(0xC02F), "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256");
    assert_null(tls_cipher_name(0xFFFF));
    assert_string_equal(tls_alert_name(48), "unknown_ca");
    assert_string_equal(tls_alert_name(42), "bad_certificate");
    assert_string_equal(tls_version_name(0x0302), "TLSv1.1");
    assert_string_equal(tls_event_name(0), "not_tls");
    assert_null(tls_event_name(31));
}

static void test_looks_like_record(void **unused)
{
    (void)unused;
    const uint8_t hello[] = { 0x16, 0x03, 0x01, 0x02, 0x00, 0x01 };
    for (size_t n = 1; n <= sizeof hello; n++)
        assert_true(tls_looks_like_record(hello, n));
    const uint8_t alert[] = { 0x15, 0x03, 0x03, 0x00, 0x02 };
    assert_true(tls_looks_like_record(alert, sizeof alert));
    assert_false(tls_looks_like_record(hello, 0));
    assert_false(tls_looks_like_record((const uint8_t *)"220 ok", 6));
    assert_false(tls_looks_like_record((const uint8_t *)"* OK", 4));
    assert_false(tls_looks_like_record((const uint8_t *)"+OK", 3));
    const uint8_t badver[] = { 0x16, 0x04, 0x01 }, toolong[] = { 0x17, 3, 3, 0xFF, 0xFF };
    assert_false(tls_looks_like_record(badver, sizeof badver));
    assert_false(tls_looks_like_record(toolong, sizeof toolong));
}

/* ---- X.509 ---- */

/* DER of a PEM file in tests/data/tls (base64 between the armour lines). */
static size_t load_pem(const char *name, uint8_t *der, size_t cap)
{
    const char *dir = getenv("MAILTAP_TEST_DATA");
    char path[512];
    snprintf(path, sizeof path, "%s/tls/%s", dir ? dir : "tests/data", name);
    FILE *fp = fopen(path, "rb");
    if (!fp)
        fail_msg("cannot open %s", path);
    char text[8192];
    size_t n = fread(text, 1, sizeof text - 1, fp);
    fclose(fp);
    text[n] = 0;
    char *begin = strstr(text, "-----\n"), *end = strstr(text, "-----END");
    assert_non_null(begin);
    assert_non_null(end);
    begin += 6;
    long len = text_base64_decode(der, cap, begin, (size_t)(end - begin));
    assert_true(len > 0);
    return (size_t)len;
}

static void test_x509_pem(void **unused)
{
    (void)unused;
    uint8_t der[4096];
    size_t len = load_pem("valid.pem", der, sizeof der);
    struct x509_cert *c = malloc(sizeof *c);
    assert_int_equal(x509_parse(der, len, c), 0);
    assert_true(c->complete);
    assert_string_equal(c->subject_cn, "mail.example.test");
    assert_int_equal(c->not_before, T_2024_01_01);
    assert_true(x509_name_matches(c, "mail.example.test"));
    assert_true(x509_name_matches(c, "MAIL.Example.Test."));
    assert_true(x509_name_matches(c, "mx1.mx.example.test"));
    assert_false(x509_name_matches(c, "a.b.mx.example.test"));
    assert_false(x509_name_matches(c, "mx.example.test"));
    assert_false(x509_name_matches(c, "example.test"));
    assert_true(x509_name_matches(c, "127.0.0.1"));
    assert_false(x509_name_matches(c, "127.0.0.2"));
    assert_false(x509_name_matches(c, ""));

    /* every truncation: no crash, never "complete" */
    for (size_t n = 0; n < len; n++) {
        assert_int_equal(x509_parse(der, n, c), -1);
        assert_false(c->complete);
    }
    /* every byte replaced by 0x00, 0xFF, 0x80, 0x84: no crash (ASan watches) */
    static const uint8_t values[] = { 0x00, 0xFF, 0x80, 0x84, 0x1F };
    uint8_t *copy = malloc(len);
    for (size_t i = 0; i < len; i++) {
        for (size_t v = 0; v < COUNT(values); v++) {
            memcpy(copy, der, len);
            copy[i] = values[v];
            (void)x509_parse(copy, len, c);
            (void)x509_name_matches(c, "mail.example.test");
        }
    }
    free(copy);
    free(c);
}

/* A tiny DER writer for hand-made certificates. */
struct dbuf {
    uint8_t b[70000];
    size_t n;
};

static void dput(struct dbuf *d, uint8_t tag, const void *content, size_t len)
{
    assert_true(d->n + len + 6 <= sizeof d->b);
    d->b[d->n++] = tag;
    if (len < 128) {
        d->b[d->n++] = (uint8_t)len;
    } else if (len < 256) {
        d->b[d->n++] = 0x81, d->b[d->n++] = (uint8_t)len;
    } else if (len < 65536) {
        d->b[d->n++] = 0x82, d->b[d->n++] = (uint8_t)(len >> 8), d->b[d->n++] = (uint8_t)len;
    } else {
        d->b[d->n++] = 0x83, d->b[d->n++] = (uint8_t)(len >> 16);
        d->b[d->n++] = (uint8_t)(len >> 8), d->b[d->n++] = (uint8_t)len;
    }
    memmove(d->b + d->n, content, len);
    d->n += len;
}

static void dwrap(struct dbuf *out, uint8_t tag, const struct dbuf *in)
{
    dput(out, tag, in->b, in->n);
}

/* Name with one AVA per (oid, tag, value). */
static void make_name(struct dbuf *out, const uint8_t *oid, size_t oid_len, uint8_t vtag,
                      const void *value, size_t vlen)
{
    struct dbuf *atv = calloc(1, sizeof *atv), *set = calloc(1, sizeof *set),
                *seq = calloc(1, sizeof *seq);
    dput(atv, 0x06, oid, oid_len);
    dput(atv, vtag, value, vlen);
    dwrap(seq, 0x30, atv);
    dwrap(set, 0x31, seq);
    dwrap(out, 0x30, set);
    free(atv), free(set), free(seq);
}

/* A certificate: subject given as a Name, validity as two times, optional SAN DER. */
static size_t make_cert(uint8_t *dst, size_t cap, const struct dbuf *subject, uint8_t t1tag,
                        const char *t1, uint8_t t2tag, const char *t2, const struct dbuf *san)
{
    struct dbuf *tbs = calloc(1, sizeof *tbs), *tmp = calloc(1, sizeof *tmp),
                *cert = calloc(1, sizeof *cert), *out = calloc(1, sizeof *out);
    const uint8_t serial[] = { 1 }, alg[] = { 0x06, 0x03, 0x2A, 0x03, 0x04 };
    const uint8_t cn[] = { 0x55, 0x04, 0x03 };
    dput(tbs, 0x02, serial, 1);
    dput(tbs, 0x30, alg, sizeof alg);
    make_name(tbs, cn, 3, 0x13, "Issuer", 6);
    tmp->n = 0;
    dput(tmp, t1tag, t1, strlen(t1));
    dput(tmp, t2tag, t2, strlen(t2));
    dwrap(tbs, 0x30, tmp);
    memcpy(tbs->b + tbs->n, subject->b, subject->n);
    tbs->n += subject->n;
    dput(tbs, 0x30, alg, sizeof alg);   /* stands in for the key */
    if (san) {
        const uint8_t oid[] = { 0x55, 0x1D, 0x11 };
        struct dbuf *ext = calloc(1, sizeof *ext), *exts = calloc(1, sizeof *exts);
        tmp->n = 0;
        dput(tmp, 0x06, oid, 3);
        dput(tmp, 0x04, san->b, san->n);
        dwrap(ext, 0x30, tmp);
        dwrap(exts, 0x30, ext);
        dwrap(tbs, 0xA3, exts);
        free(ext), free(exts);
    }
    dwrap(cert, 0x30, tbs);
    dput(cert, 0x30, alg, sizeof alg);
    dput(cert, 0x03, "\0", 1);
    dwrap(out, 0x30, cert);
    assert_true(out->n <= cap);
    memcpy(dst, out->b, out->n);
    size_t n = out->n;
    free(tbs), free(tmp), free(cert), free(out);
    return n;
}

static void test_x509_handmade(void **unused)
{
    (void)unused;
    static uint8_t der[70000];
    struct x509_cert *c = malloc(sizeof *c);
    struct dbuf *name = calloc(1, sizeof *name), *san = calloc(1, sizeof *san),
                *names = calloc(1, sizeof *names);
    const uint8_t cn[] = { 0x55, 0x04, 0x03 };

    /* no SAN: the CN is used; GeneralizedTime after 2049; UTCTime 50 = 1950 */
    make_name(name, cn, 3, 0x0C, "*.Example.COM", 13);
    size_t n = make_cert(der, sizeof der, name, 0x17, "500101000000Z", 0x18,
                         "20510101000000Z", NULL);
    assert_int_equal(x509_parse(der, n, c), 0);
    assert_string_equal(c->subject_cn, "*.Example.COM");
    assert_int_equal(c->not_before, -631152000);
    assert_int_equal(c->not_after, 2556143999 + 1);
    assert_true(x509_name_matches(c, "mx.example.com"));
    assert_false(x509_name_matches(c, "example.com"));

    /* a DNS SAN present: the CN no longer counts */
    names->n = 0;
    dput(names, 0x82, "other.example.net", 17);
    dput(names, 0x81, "postmaster@example.net", 22);
    san->n = 0;
    dwrap(san, 0x30, names);
    n = make_cert(der, sizeof der, name, 0x17, "240101000000Z", 0x17, "250101000000Z", san);
    assert_int_equal(x509_parse(der, n, c), 0);
    assert_string_equal(c->sans, "other.example.net");
    assert_int_equal(c->san_count, 2);
    assert_false(x509_name_matches(c, "mx.example.com"));
    assert_true(x509_name_matches(c, "other.example.net"));

    /* hostile SAN text is sanitized for display and never matches */
    names->n = 0;
    dput(names, 0x82, "evil\x1b[31m.example.net", 21);
    san->n = 0;
    dwrap(san, 0x30, names);
    n = make_cert(der, sizeof der, name, 0x17, "240101000000Z", 0x17, "250101000000Z", san);
    assert_int_equal(x509_parse(der, n, c), 0);
    assert_null(strchr(c->sans, 0x1b));
    assert_false(x509_name_matches(c, "evil\x1b[31m.example.net"));

    /* many SANs: the display list is capped with "..." */
    names->n = 0;
    for (int i = 0; i < 250; i++) {
        char host[32];
        int w = snprintf(host, sizeof host, "host%03d.example.org", i);
        dput(names, 0x82, host, (size_t)w);
    }
    san->n = 0;
    dwrap(san, 0x30, names);
    n = make_cert(der, sizeof der, name, 0x17, "240101000000Z", 0x17, "250101000000Z", san);
    assert_int_equal(x509_parse(der, n, c), 0);
    assert_int_equal(c->san_count, 250);
    assert_true(strlen(c->sans) < X509_SANS_MAX);
    assert_non_null(strstr(c->sans, "..."));
    /* 250 names of 20 bytes overflow the 4 KiB kept for checks: the 150th is checked, the
     * last is not, and the certificate says its names were not all kept (a name not
     * found is then no mismatch finding: tls.c) */
    assert_true(x509_name_matches(c, "host150.example.org"));
    assert_false(x509_name_matches(c, "host249.example.org"));
    assert_true(c->match_incomplete);
    /* 81 names, the server's the last (a hosting certificate): all kept */
    names->n = 0;
    for (int i = 0; i < 81; i++) {
        char host[64];
        int w = snprintf(host, sizeof host, "mx%d.customer-domain-number-%d.hosting.test", i, i);
        dput(names, 0x82, host, (size_t)w);
    }
    san->n = 0;
    dwrap(san, 0x30, names);
    n = make_cert(der, sizeof der, name, 0x17, "240101000000Z", 0x17, "250101000000Z", san);
    assert_int_equal(x509_parse(der, n, c), 0);
    assert_false(c->match_incomplete);
    assert_true(x509_name_matches(c, "mx80.customer-domain-number-80.hosting.test"));

    /* BMPString CN */
    const uint8_t bmp[] = { 0x00, 'm', 0x00, 'x', 0x00, 0xE9 };
    name->n = 0;
    make_name(name, cn, 3, 0x1E, bmp, sizeof bmp);
    n = make_cert(der, sizeof der, name, 0x17, "240101000000Z", 0x17, "250101000000Z", NULL);
    assert_int_equal(x509_parse(der, n, c), 0);
    assert_string_equal(c->subject_cn, "mx\xC3\xA9");

    /* a huge OID (60 000 bytes) in the subject: just a name that matches nothing */
    uint8_t *oid = malloc(60000);
    memset(oid, 0x81, 60000);
    oid[59999] = 0x01;
    name->n = 0;
    make_name(name, oid, 60000, 0x0C, "x", 1);
    n = make_cert(der, sizeof der, name, 0x17, "240101000000Z", 0x17, "250101000000Z", NULL);
    assert_int_equal(x509_parse(der, n, c), 0);
    assert_string_equal(c->subject_cn, "");
    free(oid);

    /* bad times: has_validity false, the rest still parses */
    name->n = 0;
    make_name(name, cn, 3, 0x0C, "a.example", 9);
    n = make_cert(der, sizeof der, name, 0x17, "241301000000Z", 0x17, "2501010000Z", NULL);
    assert_int_equal(x509_parse(der, n, c), 0);
    assert_false(c->has_validity);
    assert_string_equal(c->subject_cn, "a.example");

    free(name), free(san), free(names), free(c);
}

static void test_x509_hostile_lengths(void **unused)
{
    (void)unused;
    struct x509_cert *c = malloc(sizeof *c);
    /* lengths pointing past the end, 5+ length bytes, indefinite, high tag numbers */
    const uint8_t cases[][12] = {
        { 0x30, 0x84, 0xFF, 0xFF, 0xFF, 0xFF, 0x30, 0x00 },
        { 0x30, 0x88, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x30, 0 },
        { 0x30, 0x80, 0x30, 0x80, 0x00, 0x00, 0x00, 0x00 },
        { 0x30, 0x06, 0x30, 0x04, 0xBF, 0x81, 0x01, 0x00 },
        { 0x30, 0x82, 0xFF, 0xFF },
        { 0x30 },
    };
    for (size_t i = 0; i < COUNT(cases); i++)
        assert_int_equal(x509_parse(cases[i], sizeof cases[i], c), -1);
    /* deep nesting: 20 000 SEQUENCEs inside each other */
    size_t depth = 20000, len = depth * 4;
    uint8_t *deep = malloc(len);
    for (size_t i = 0; i < depth; i++) {
        size_t inner = len - (i + 1) * 4;
        deep[i * 4] = 0x30, deep[i * 4 + 1] = 0x83;
        deep[i * 4 + 2] = (uint8_t)(inner >> 8), deep[i * 4 + 3] = (uint8_t)inner;
    }
    (void)x509_parse(deep, len, c);   /* bounded: the walk has a fixed depth */
    free(deep);
    free(c);
}

static void test_hostname_rules(void **unused)
{
    (void)unused;
    static const struct {
        const char *pattern, *host;
        bool match;
    } cases[] = {
        { "mail.example.com", "mail.example.com", true },
        { "mail.example.com", "MAIL.EXAMPLE.COM.", true },
        { "mail.example.com.", "mail.example.com", true },
        { "mail.example.com", "mail.example.co", false },
        { "*.example.com", "mx.example.com", true },
        { "*.example.com", "a.b.example.com", false },
        { "*.example.com", "example.com", false },
        { "*.example.com", ".example.com", false },
        { "*.com", "example.com", false },
        { "*", "example", false },
        { "mx*.example.com", "mx1.example.com", false },
        { "*.*.example.com", "a.b.example.com", false },
        { "a.*.example.com", "a.b.example.com", false },
        { "*.0.0.1", "127.0.0.1", false },
        { "", "", false },
    };
    for (size_t i = 0; i < COUNT(cases); i++)
        if (x509_hostname_match(cases[i].pattern, cases[i].host) != cases[i].match)
            fail_msg("'%s' vs '%s': expected %d", cases[i].pattern, cases[i].host,
                     cases[i].match);
}

static void test_time_parse(void **unused)
{
    (void)unused;
    int64_t t;
    assert_true(x509_time_parse(0x17, (const uint8_t *)"700101000000Z", 13, &t));
    assert_int_equal(t, 0);
    assert_true(x509_time_parse(0x17, (const uint8_t *)"491231235959Z", 13, &t));
    assert_int_equal(t, 2524607999);
    assert_true(x509_time_parse(0x18, (const uint8_t *)"20240229120000Z", 15, &t));
    assert_int_equal(t, 1709208000);
    assert_false(x509_time_parse(0x17, (const uint8_t *)"700101000000", 12, &t));
    assert_false(x509_time_parse(0x17, (const uint8_t *)"70010100000aZ", 13, &t));
    assert_false(x509_time_parse(0x17, (const uint8_t *)"700132000000Z", 13, &t));
    assert_false(x509_time_parse(0x18, (const uint8_t *)"700101000000Z", 13, &t));
    assert_false(x509_time_parse(0x0C, (const uint8_t *)"700101000000Z", 13, &t));
}

/* A Certificate message carrying a mutated certificate, fed through the whole parser. */
static void test_certificate_message_mutations(void **unused)
{
    (void)unused;
    uint8_t der[4096];
    size_t len = load_pem("expired.pem", der, sizeof der);
    size_t msg_len = 4 + 3 + 3 + len;
    uint8_t *rec = malloc(5 + msg_len);
    for (size_t i = 0; i < len + 10; i += 3) {
        size_t at = 0;
        rec[at++] = 0x16, rec[at++] = 3, rec[at++] = 3;
        rec[at++] = (uint8_t)(msg_len >> 8), rec[at++] = (uint8_t)msg_len;
        rec[at++] = 11;
        rec[at++] = 0, rec[at++] = (uint8_t)((msg_len - 4) >> 8),
        rec[at++] = (uint8_t)(msg_len - 4);
        rec[at++] = 0, rec[at++] = (uint8_t)((len + 3) >> 8), rec[at++] = (uint8_t)(len + 3);
        rec[at++] = 0, rec[at++] = (uint8_t)(len >> 8), rec[at++] = (uint8_t)len;
        memcpy(rec + at, der, len);
        if (i < 10)
            rec[5 + i] ^= 0xFF;   /* the message's own lengths */
        else
            rec[at + i - 10] ^= 0x5A;
        struct tls_parser *p = tls_parser_new();
        tls_feed(p, MT_SERVER, rec, 5 + msg_len, 1);
        struct tls_facts f;
        (void)tls_finish(p, CAPTURE_2026, "mail.example.test", &f);
        tls_parser_free(p);
    }
    free(rec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tls12_expired),
        cmocka_unit_test(test_tls12_expired_rejected),
        cmocka_unit_test(test_tls13_ok),
        cmocka_unit_test(test_tls13_rejected),
        cmocka_unit_test(test_version_mismatch),
        cmocka_unit_test(test_cipher_mismatch),
        cmocka_unit_test(test_name_mismatch),
        cmocka_unit_test(test_name_looked_up),
        cmocka_unit_test(test_tls10),
        cmocka_unit_test(test_public_ndpi_smtps),
        cmocka_unit_test(test_public_zeek_smtp_starttls),
        cmocka_unit_test(test_public_zeek_imap_pop3_starttls),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_sslv2_hello),
        cmocka_unit_test(test_hello_dropped),
        cmocka_unit_test(test_hello_unanswered_current),
        cmocka_unit_test(test_oversized_handshake),
        cmocka_unit_test(test_unknown_names),
        cmocka_unit_test(test_looks_like_record),
        cmocka_unit_test(test_x509_pem),
        cmocka_unit_test(test_x509_handmade),
        cmocka_unit_test(test_x509_hostile_lengths),
        cmocka_unit_test(test_hostname_rules),
        cmocka_unit_test(test_time_parse),
        cmocka_unit_test(test_certificate_message_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
