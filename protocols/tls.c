/* tls.c — passive TLS handshake reader (RFC 5246, RFC 8446; SNI RFC 6066, ALPN RFC 7301):
 * record framing across any segment split, handshake messages reassembled across records
 * (bounded), ClientHello / ServerHello / Certificate / alerts decoded through a sticky
 * bounds-checked reader, and the outcome judged from what each side could be seen doing.
 * Certificates are read by x509.c. */
#include "protocols/tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/text.h"

enum { REC_CCS = 20, REC_ALERT = 21, REC_HANDSHAKE = 22, REC_APPDATA = 23, REC_HEARTBEAT = 24 };
enum { HS_CLIENT_HELLO = 1, HS_SERVER_HELLO = 2, HS_CERTIFICATE = 11 };
enum { EXT_SERVER_NAME = 0, EXT_ALPN = 16, EXT_SUPPORTED_VERSIONS = 43 };
enum { V_SSL2 = 0x0002, V_SSL3 = 0x0300, V_TLS10 = 0x0301, V_TLS11 = 0x0302,
       V_TLS12 = 0x0303, V_TLS13 = 0x0304 };
/* A TLS 1.3 client's first encrypted record shorter than this is an alert (2 bytes +
 * content type + AEAD tag), not its Finished (>= 32 bytes of verify_data alone). */
#define TLS13_ALERT_RECORD_MAX 31

/* ---- sticky bounds-checked reader: past the end it yields zeros and sets bad ---- */

struct rd {
    const uint8_t *p;
    size_t len, at;
    bool bad;
};

static bool rd_has(struct rd *r, size_t n)
{
    if (r->bad || n > r->len - r->at) {
        r->bad = true;
        return false;
    }
    return true;
}

static unsigned rd_u8(struct rd *r)
{
    return rd_has(r, 1) ? r->p[r->at++] : 0;
}

static unsigned rd_u16(struct rd *r)
{
    if (!rd_has(r, 2))
        return 0;
    unsigned v = (unsigned)r->p[r->at] << 8 | r->p[r->at + 1];
    r->at += 2;
    return v;
}

static size_t rd_u24(struct rd *r)
{
    if (!rd_has(r, 3))
        return 0;
    size_t v = (size_t)r->p[r->at] << 16 | (size_t)r->p[r->at + 1] << 8 | r->p[r->at + 2];
    r->at += 3;
    return v;
}

/* A sub-reader over the next n bytes (empty and bad when they are not there). */
static struct rd rd_sub(struct rd *r, size_t n)
{
    struct rd s = { NULL, 0, 0, true };
    if (rd_has(r, n)) {
        s = (struct rd){ r->p + r->at, n, 0, false };
        r->at += n;
    }
    return s;
}

static size_t rd_left(const struct rd *r)
{
    return r->bad ? 0 : r->len - r->at;
}

/* ---- parser state ---- */

struct tls_side {
    uint8_t hdr[5];
    size_t hdr_len;
    size_t body_left;          /* bytes of the current record still to come */
    uint8_t type;              /* current record's content type */
    size_t rec_len;
    bool in_record;
    bool valid;                /* at least one good record header */
    bool dead;                 /* not TLS / desynchronised: ignored from here on */
    bool encrypted;            /* sent ChangeCipherSpec (TLS <= 1.2): handshake opaque */
    uint8_t alert[2];
    size_t alert_len;
    uint8_t *hs;               /* handshake message assembly */
    size_t hs_len, hs_cap;
    size_t hs_skip;            /* bytes of an oversized message still to drop */
    uint64_t enc_records;      /* application_data records */
    size_t first_enc_len;
    uint64_t bytes;
};

struct tls_parser {
    struct tls_side side[2];
    struct tls_facts f;
    bool complete_at_alert;    /* handshake already complete when the stored alert came */
    struct x509_cert leaf;
    bool have_leaf;
    int64_t cert_ts_us;
    char sni_host[X509_NAME_MAX];   /* raw SNI when usable as a host name */
};

static const char *const event_names[] = {
    "not_tls", "desync", "handshake_too_big", "handshake_malformed", "cert_malformed",
    "truncated", "no_memory",
};

/* ---- name tables ---- */

struct code_name {
    uint16_t code;
    const char *name;
};

static const struct code_name cipher_table[] = {   /* IANA TLS Cipher Suites, common ones */
    { 0x0001, "TLS_RSA_WITH_NULL_MD5" },
    { 0x0002, "TLS_RSA_WITH_NULL_SHA" },
    { 0x0004, "TLS_RSA_WITH_RC4_128_MD5" },
    { 0x0005, "TLS_RSA_WITH_RC4_128_SHA" },
    { 0x0009, "TLS_RSA_WITH_DES_CBC_SHA" },
    { 0x000A, "TLS_RSA_WITH_3DES_EDE_CBC_SHA" },
    { 0x0013, "TLS_DHE_DSS_WITH_3DES_EDE_CBC_SHA" },
    { 0x0015, "TLS_DHE_RSA_WITH_DES_CBC_SHA" },
    { 0x0016, "TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA" },
    { 0x002F, "TLS_RSA_WITH_AES_128_CBC_SHA" },
    { 0x0032, "TLS_DHE_DSS_WITH_AES_128_CBC_SHA" },
    { 0x0033, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA" },
    { 0x0034, "TLS_DH_anon_WITH_AES_128_CBC_SHA" },
    { 0x0035, "TLS_RSA_WITH_AES_256_CBC_SHA" },
    { 0x0038, "TLS_DHE_DSS_WITH_AES_256_CBC_SHA" },
    { 0x0039, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA" },
    { 0x003A, "TLS_DH_anon_WITH_AES_256_CBC_SHA" },
    { 0x003B, "TLS_RSA_WITH_NULL_SHA256" },
    { 0x003C, "TLS_RSA_WITH_AES_128_CBC_SHA256" },
    { 0x003D, "TLS_RSA_WITH_AES_256_CBC_SHA256" },
    { 0x0040, "TLS_DHE_DSS_WITH_AES_128_CBC_SHA256" },
    { 0x0041, "TLS_RSA_WITH_CAMELLIA_128_CBC_SHA" },
    { 0x0045, "TLS_DHE_RSA_WITH_CAMELLIA_128_CBC_SHA" },
    { 0x0067, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256" },
    { 0x006A, "TLS_DHE_DSS_WITH_AES_256_CBC_SHA256" },
    { 0x006B, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256" },
    { 0x0084, "TLS_RSA_WITH_CAMELLIA_256_CBC_SHA" },
    { 0x0088, "TLS_DHE_RSA_WITH_CAMELLIA_256_CBC_SHA" },
    { 0x008C, "TLS_PSK_WITH_AES_128_CBC_SHA" },
    { 0x008D, "TLS_PSK_WITH_AES_256_CBC_SHA" },
    { 0x009C, "TLS_RSA_WITH_AES_128_GCM_SHA256" },
    { 0x009D, "TLS_RSA_WITH_AES_256_GCM_SHA384" },
    { 0x009E, "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256" },
    { 0x009F, "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384" },
    { 0x00A2, "TLS_DHE_DSS_WITH_AES_128_GCM_SHA256" },
    { 0x00A3, "TLS_DHE_DSS_WITH_AES_256_GCM_SHA384" },
    { 0x00A8, "TLS_PSK_WITH_AES_128_GCM_SHA256" },
    { 0x00A9, "TLS_PSK_WITH_AES_256_GCM_SHA384" },
    { 0x00FF, "TLS_EMPTY_RENEGOTIATION_INFO_SCSV" },
    { 0x1301, "TLS_AES_128_GCM_SHA256" },
    { 0x1302, "TLS_AES_256_GCM_SHA384" },
    { 0x1303, "TLS_CHACHA20_POLY1305_SHA256" },
    { 0x1304, "TLS_AES_128_CCM_SHA256" },
    { 0x1305, "TLS_AES_128_CCM_8_SHA256" },
    { 0x5600, "TLS_FALLBACK_SCSV" },
    { 0xC007, "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA" },
    { 0xC008, "TLS_ECDHE_ECDSA_WITH_3DES_EDE_CBC_SHA" },
    { 0xC009, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA" },
    { 0xC00A, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA" },
    { 0xC011, "TLS_ECDHE_RSA_WITH_RC4_128_SHA" },
    { 0xC012, "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA" },
    { 0xC013, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA" },
    { 0xC014, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA" },
    { 0xC023, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256" },
    { 0xC024, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384" },
    { 0xC027, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256" },
    { 0xC028, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384" },
    { 0xC02B, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" },
    { 0xC02C, "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" },
    { 0xC02F, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" },
    { 0xC030, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" },
    { 0xC035, "TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA" },
    { 0xC036, "TLS_ECDHE_PSK_WITH_AES_256_CBC_SHA" },
    { 0xC09C, "TLS_RSA_WITH_AES_128_CCM" },
    { 0xC09D, "TLS_RSA_WITH_AES_256_CCM" },
    { 0xC0AC, "TLS_ECDHE_ECDSA_WITH_AES_128_CCM" },
    { 0xC0AD, "TLS_ECDHE_ECDSA_WITH_AES_256_CCM" },
    { 0xCCA8, "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256" },
    { 0xCCA9, "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256" },
    { 0xCCAA, "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256" },
    { 0xCCAB, "TLS_PSK_WITH_CHACHA20_POLY1305_SHA256" },
    { 0xCCAC, "TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256" },
};

static const struct code_name alert_table[] = {   /* RFC 8446 §6, RFC 5246 §7.2 */
    { 0, "close_notify" }, { 10, "unexpected_message" }, { 20, "bad_record_mac" },
    { 21, "decryption_failed" }, { 22, "record_overflow" }, { 30, "decompression_failure" },
    { 40, "handshake_failure" }, { 41, "no_certificate" }, { 42, "bad_certificate" },
    { 43, "unsupported_certificate" }, { 44, "certificate_revoked" },
    { 45, "certificate_expired" }, { 46, "certificate_unknown" },
    { 47, "illegal_parameter" }, { 48, "unknown_ca" }, { 49, "access_denied" },
    { 50, "decode_error" }, { 51, "decrypt_error" }, { 60, "export_restriction" },
    { 70, "protocol_version" }, { 71, "insufficient_security" }, { 80, "internal_error" },
    { 86, "inappropriate_fallback" }, { 90, "user_canceled" }, { 100, "no_renegotiation" },
    { 109, "missing_extension" }, { 110, "unsupported_extension" },
    { 111, "certificate_unobtainable" }, { 112, "unrecognized_name" },
    { 113, "bad_certificate_status_response" }, { 114, "bad_certificate_hash_value" },
    { 115, "unknown_psk_identity" }, { 116, "certificate_required" },
    { 120, "no_application_protocol" },
};

static const struct code_name version_table[] = {
    { V_SSL2, "SSLv2" }, { V_SSL3, "SSLv3" }, { V_TLS10, "TLSv1.0" },
    { V_TLS11, "TLSv1.1" }, { V_TLS12, "TLSv1.2" }, { V_TLS13, "TLSv1.3" },
};

static const char *table_find(const struct code_name *t, size_t n, unsigned code)
{
    for (size_t i = 0; i < n; i++)
        if (t[i].code == code)
            return t[i].name;
    return NULL;
}

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

const char *tls_cipher_name(uint16_t suite)
{
    return table_find(cipher_table, COUNT(cipher_table), suite);
}

const char *tls_alert_name(uint8_t description)
{
    return table_find(alert_table, COUNT(alert_table), description);
}

const char *tls_version_name(uint16_t version)
{
    return table_find(version_table, COUNT(version_table), version);
}

const char *tls_event_name(unsigned bit)
{
    return bit < COUNT(event_names) ? event_names[bit] : NULL;
}

const char *tls_outcome_name(enum tls_outcome outcome)
{
    switch (outcome) {
    case TLS_OUTCOME_ENCRYPTED: return "encrypted";
    case TLS_OUTCOME_FAILED: return "failed";
    default: return "unknown";
    }
}

static uint32_t version_bit(unsigned v)
{
    for (size_t i = 0; i < COUNT(version_table); i++)
        if (version_table[i].code == v)
            return 1u << i;   /* same order as TLS_VBIT_* */
    return TLS_VBIT_OTHER;
}

static bool is_grease(unsigned v)
{
    return (v & 0x0F0F) == 0x0A0A && (v >> 8) == (v & 0xFF);
}

/* ---- parser life ---- */

struct tls_parser *tls_parser_new(void)
{
    return calloc(1, sizeof(struct tls_parser));
}

void tls_parser_free(struct tls_parser *p)
{
    if (!p)
        return;
    free(p->side[0].hs);
    free(p->side[1].hs);
    free(p);
}

static void side_drop_hs(struct tls_side *s)
{
    free(s->hs);
    s->hs = NULL;
    s->hs_len = s->hs_cap = s->hs_skip = 0;
}

/* Handshake complete as far as a passive observer can tell. */
static bool handshake_complete(const struct tls_parser *p)
{
    const struct tls_side *c = &p->side[MT_CLIENT], *s = &p->side[MT_SERVER];
    if (p->f.version == V_TLS13)
        return s->enc_records > 0 && c->enc_records > 0 &&
               c->first_enc_len > TLS13_ALERT_RECORD_MAX;
    if (p->f.ccs[MT_CLIENT] && p->f.ccs[MT_SERVER])
        return true;
    return c->enc_records > 0 && s->enc_records > 0;   /* joined mid-stream: data flows */
}

bool tls_done(const struct tls_parser *p)
{
    if (handshake_complete(p))
        return true;
    if (p->f.alert_seen && p->f.alert_fatal)
        return true;
    return p->side[0].dead && p->side[1].dead;
}

/* ---- handshake messages ---- */

static void parse_client_hello(struct tls_parser *p, struct rd *r)
{
    struct tls_facts *f = &p->f;
    bool first = !f->client_hello;
    f->client_hello = true;
    unsigned legacy = rd_u16(r);
    if (first)
        f->client_hello_version = (uint16_t)legacy;
    r->at += rd_has(r, 32) ? 32 : 0;                /* random */
    (void)rd_sub(r, rd_u8(r));                      /* session id */
    struct rd suites = rd_sub(r, rd_u16(r));
    f->cipher_suites_offered = (unsigned)(suites.len / 2);
    (void)rd_sub(r, rd_u8(r));                      /* compression methods */
    uint32_t versions = 0;
    if (rd_left(r) > 0) {
        struct rd exts = rd_sub(r, rd_u16(r));
        while (rd_left(&exts) >= 4) {
            unsigned type = rd_u16(&exts);
            struct rd e = rd_sub(&exts, rd_u16(&exts));
            if (type == EXT_SERVER_NAME && first) {
                struct rd list = rd_sub(&e, rd_u16(&e));
                while (rd_left(&list) >= 3) {
                    unsigned name_type = rd_u8(&list);
                    struct rd name = rd_sub(&list, rd_u16(&list));
                    if (name_type == 0 && !name.bad && f->sni[0] == '\0') {
                        text_sanitize(f->sni, sizeof f->sni, (const char *)name.p, name.len);
                        if (strlen(f->sni) == name.len && name.len < sizeof p->sni_host &&
                            !memchr(name.p, 0, name.len)) {   /* clean: usable for checks */
                            memcpy(p->sni_host, name.p, name.len);
                            p->sni_host[name.len] = '\0';
                        }
                    }
                }
            } else if (type == EXT_ALPN && first) {
                struct rd list = rd_sub(&e, rd_u16(&e));
                for (unsigned kept = 0; rd_left(&list) >= 1;) {
                    struct rd id = rd_sub(&list, rd_u8(&list));
                    if (id.bad || kept++ >= TLS_ALPN_KEEP)
                        continue;
                    char one[TLS_ALPN_TEXT_MAX];
                    text_sanitize(one, sizeof one, (const char *)id.p, id.len);
                    size_t used = strlen(f->alpn), add = strlen(one);
                    if (used + add + 2 <= sizeof f->alpn) {   /* "," + id + NUL */
                        if (used)
                            f->alpn[used++] = ',';
                        memcpy(f->alpn + used, one, add + 1);
                    }
                }
            } else if (type == EXT_SUPPORTED_VERSIONS) {
                struct rd list = rd_sub(&e, rd_u8(&e));
                while (rd_left(&list) >= 2) {
                    unsigned v = rd_u16(&list);
                    if (!is_grease(v))
                        versions |= version_bit(v);
                }
            }
        }
    }
    if (versions == 0 && first)
        versions = version_bit(legacy);
    f->client_versions |= versions;
    if (r->bad)
        f->events |= TLS_EV_HS_MALFORMED;
}

/* SHA-256("HelloRetryRequest"), the Random of a HelloRetryRequest (RFC 8446 §4.1.3). */
static const uint8_t hrr_random[32] = {
    0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65,
    0xB8, 0x91, 0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2,
    0xC8, 0xA8, 0x33, 0x9C,
};

static void parse_server_hello(struct tls_parser *p, struct rd *r)
{
    struct tls_facts *f = &p->f;
    unsigned version = rd_u16(r);
    if (rd_has(r, 32)) {
        if (memcmp(r->p + r->at, hrr_random, 32) == 0)
            f->hello_retry = true;
        r->at += 32;
    }
    (void)rd_sub(r, rd_u8(r));                      /* session id */
    unsigned cipher = rd_u16(r);
    (void)rd_u8(r);                                 /* compression */
    if (r->bad) {
        f->events |= TLS_EV_HS_MALFORMED;
        return;
    }
    f->server_hello = true;
    f->cipher = (uint16_t)cipher;
    if (rd_left(r) > 0) {
        struct rd exts = rd_sub(r, rd_u16(r));
        while (rd_left(&exts) >= 4) {
            unsigned type = rd_u16(&exts);
            struct rd e = rd_sub(&exts, rd_u16(&exts));
            if (type == EXT_SUPPORTED_VERSIONS && rd_left(&e) == 2) {
                version = rd_u16(&e);
            } else if (type == EXT_ALPN) {
                struct rd list = rd_sub(&e, rd_u16(&e));
                struct rd id = rd_sub(&list, rd_u8(&list));
                if (!id.bad)
                    text_sanitize(f->alpn_selected, sizeof f->alpn_selected,
                                  (const char *)id.p, id.len);
            }
        }
        if (exts.bad)
            f->events |= TLS_EV_HS_MALFORMED;
    }
    f->version = (uint16_t)version;
}

static void parse_certificate(struct tls_parser *p, struct rd *r, int64_t ts_us)
{
    if (p->have_leaf || p->f.version == V_TLS13)
        return;   /* renegotiation keeps the first; a 1.3 one is never in clear */
    struct rd list = rd_sub(r, rd_u24(r));
    unsigned n = 0;
    while (rd_left(&list) >= 3) {
        struct rd der = rd_sub(&list, rd_u24(&list));
        if (der.bad)
            break;
        if (n++ == 0) {
            p->have_leaf = true;
            p->cert_ts_us = ts_us;
            if (x509_parse(der.p, der.len, &p->leaf) != 0)
                p->f.events |= TLS_EV_CERT_MALFORMED;
        }
    }
    p->f.cert_chain_len = n;
    if (r->bad || list.bad)
        p->f.events |= TLS_EV_HS_MALFORMED;
}

static void handshake_message(struct tls_parser *p, enum mt_side side, const uint8_t *msg,
                              size_t len, int64_t ts_us)
{
    struct rd r = { msg + 4, len - 4, 0, false };
    if (side == MT_CLIENT && msg[0] == HS_CLIENT_HELLO)
        parse_client_hello(p, &r);
    else if (side == MT_SERVER && msg[0] == HS_SERVER_HELLO)
        parse_server_hello(p, &r);
    else if (side == MT_SERVER && msg[0] == HS_CERTIFICATE)
        parse_certificate(p, &r, ts_us);
}

static size_t hs_body_len(const struct tls_side *s)
{
    return (size_t)s->hs[1] << 16 | (size_t)s->hs[2] << 8 | s->hs[3];
}

/* Grows the assembly buffer to hold need bytes (need <= 4 + TLS_HANDSHAKE_MAX). */
static bool hs_reserve(struct tls_parser *p, struct tls_side *s, size_t need)
{
    size_t cap = s->hs_cap ? s->hs_cap : 1024;
    while (cap < need)
        cap *= 2;
    uint8_t *grown = realloc(s->hs, cap);
    if (!grown) {
        p->f.events |= TLS_EV_NO_MEMORY;
        side_drop_hs(s);
        s->dead = true;
        return false;
    }
    s->hs = grown;
    s->hs_cap = cap;
    return true;
}

/* Hands over the assembled message once it is whole (also a body-less one). */
static void hs_deliver(struct tls_parser *p, enum mt_side side, int64_t ts_us)
{
    struct tls_side *s = &p->side[side];
    if (s->hs_len >= 4 && hs_body_len(s) <= TLS_HANDSHAKE_MAX &&
        s->hs_len == 4 + hs_body_len(s)) {
        handshake_message(p, side, s->hs, s->hs_len, ts_us);
        s->hs_len = 0;
    }
}

/* Appends handshake-protocol bytes and handles every message completed by them. Messages
 * over TLS_HANDSHAKE_MAX are dropped as they pass (hs_skip) and flagged. */
static void handshake_bytes(struct tls_parser *p, enum mt_side side, const uint8_t *b,
                            size_t n, int64_t ts_us)
{
    struct tls_side *s = &p->side[side];
    while (n > 0) {
        if (s->hs_skip > 0) {
            size_t k = n < s->hs_skip ? n : s->hs_skip;
            s->hs_skip -= k;
            b += k;
            n -= k;
            continue;
        }
        size_t need = 4;   /* header first, then the whole message */
        if (s->hs_len >= 4) {
            size_t body = hs_body_len(s);
            if (body > TLS_HANDSHAKE_MAX) {
                p->f.events |= TLS_EV_HS_TOO_BIG;
                s->hs_skip = body;
                s->hs_len = 0;
                continue;
            }
            need = 4 + body;
        }
        if (s->hs_cap < need && !hs_reserve(p, s, need))
            return;
        size_t k = need - s->hs_len < n ? need - s->hs_len : n;
        memcpy(s->hs + s->hs_len, b, k);
        s->hs_len += k;
        b += k;
        n -= k;
        hs_deliver(p, side, ts_us);
    }
}

/* ---- alerts ---- */

static bool alert_is_fatal(uint8_t level, uint8_t desc)
{
    return level == 2 || (desc != 0 && desc != 90 && desc != 100);
}

static void alert_message(struct tls_parser *p, enum mt_side side, uint8_t level, uint8_t desc)
{
    struct tls_facts *f = &p->f;
    bool fatal = alert_is_fatal(level, desc);
    if (f->alert_seen && (f->alert_fatal || !fatal))
        return;   /* keep the first fatal alert, else the first alert */
    f->alert_seen = true;
    f->alert_level = level;
    f->alert_desc = desc;
    f->alert_side = side;
    f->alert_fatal = fatal;
    p->complete_at_alert = handshake_complete(p);
    const char *name = tls_alert_name(desc);
    if (name)
        snprintf(f->alert_name, sizeof f->alert_name, "%s", name);
    else
        snprintf(f->alert_name, sizeof f->alert_name, "unknown(%u)", desc);
}

/* ---- records ---- */

/* TLS 1.3 (chosen, or offered while the server has not answered) keeps ChangeCipherSpec
 * meaningless; before 1.3 it switches that side to encrypted. */
static bool ccs_encrypts(const struct tls_parser *p)
{
    if (p->f.version == V_TLS13)
        return false;
    return p->f.version != 0 || !(p->f.client_versions & TLS_VBIT_TLS13);
}

/* Checks a complete 5-byte header; false when it cannot be TLS. */
static bool record_start(struct tls_parser *p, enum mt_side side)
{
    struct tls_side *s = &p->side[side];
    const uint8_t *h = s->hdr;
    if (!s->valid && side == MT_CLIENT && (h[0] & 0x80) && h[2] == 1) {
        /* SSLv2-format ClientHello: 2-byte length, msg type 1, version (RFC 5246 E.2) */
        size_t len = ((size_t)(h[0] & 0x7F) << 8) | h[1];
        if (len < 9)
            return false;
        unsigned v = (unsigned)h[3] << 8 | h[4];
        p->f.client_hello = p->f.sslv2_hello = true;
        p->f.client_hello_version = (uint16_t)v;
        p->f.client_versions |= version_bit(v);
        s->type = 0;
        s->rec_len = len - 3;
        s->body_left = s->rec_len;
        return true;
    }
    unsigned version = (unsigned)h[1] << 8 | h[2];
    size_t len = (size_t)h[3] << 8 | h[4];
    if (h[0] < REC_CCS || h[0] > REC_HEARTBEAT || h[1] != 3 || h[2] > 4 || len > TLS_RECORD_MAX)
        return false;
    (void)version;
    s->type = h[0];
    s->rec_len = len;
    s->body_left = len;
    s->alert_len = 0;
    if (s->type == REC_APPDATA && s->enc_records++ == 0)
        s->first_enc_len = len;
    return true;
}

static void record_body(struct tls_parser *p, enum mt_side side, const uint8_t *b, size_t n,
                        int64_t ts_us)
{
    struct tls_side *s = &p->side[side];
    if (s->type == REC_HANDSHAKE && !s->encrypted) {
        handshake_bytes(p, side, b, n, ts_us);
    } else if (s->type == REC_ALERT && !s->encrypted) {
        for (size_t i = 0; i < n; i++) {
            s->alert[s->alert_len++] = b[i];
            if (s->alert_len == 2) {
                alert_message(p, side, s->alert[0], s->alert[1]);
                s->alert_len = 0;
            }
        }
    }
}

static void record_end(struct tls_parser *p, enum mt_side side)
{
    struct tls_side *s = &p->side[side];
    if (s->type == REC_CCS && s->rec_len > 0) {
        p->f.ccs[side] = true;
        if (ccs_encrypts(p) && !s->encrypted) {
            s->encrypted = true;
            side_drop_hs(s);
        }
    } else if (s->type == REC_ALERT && s->encrypted && !handshake_complete(p)) {
        p->f.encrypted_alert = true;   /* e.g. a bad Finished: unreadable, but an end */
    }
    if (side == MT_SERVER && p->f.version == V_TLS13 && s->hs && s->hs_len == 0)
        side_drop_hs(s);   /* nothing more in clear from a 1.3 server */
}

void tls_feed(struct tls_parser *p, enum mt_side side, const uint8_t *b, size_t n,
              int64_t ts_us)
{
    if (!p || side > MT_SERVER)
        return;
    struct tls_side *s = &p->side[side];
    s->bytes += n;
    while (n > 0 && !s->dead) {
        if (!s->in_record) {
            size_t k = 5 - s->hdr_len < n ? 5 - s->hdr_len : n;
            memcpy(s->hdr + s->hdr_len, b, k);
            s->hdr_len += k;
            b += k;
            n -= k;
            if (s->hdr_len < 5)
                break;
            s->hdr_len = 0;
            if (!record_start(p, side)) {
                s->dead = true;
                p->f.events |= s->valid ? TLS_EV_DESYNC : TLS_EV_NOT_TLS;
                side_drop_hs(s);
                break;
            }
            s->valid = true;
            s->in_record = true;
        }
        size_t k = s->body_left < n ? s->body_left : n;
        record_body(p, side, b, k, ts_us);
        s->body_left -= k;
        b += k;
        n -= k;
        if (s->body_left == 0) {
            s->in_record = false;
            record_end(p, side);
        }
    }
}

bool tls_looks_like_record(const uint8_t *p, size_t len)
{
    if (!p || len == 0)
        return false;
    if (p[0] & 0x80)   /* SSLv2-format ClientHello */
        return (len < 3 || p[2] == 1) && (len < 4 || p[3] <= 3) &&
               (len < 2 || (((size_t)(p[0] & 0x7F) << 8) | p[1]) >= 9);
    if (p[0] < REC_CCS || p[0] > REC_HEARTBEAT)
        return false;
    if (len >= 2 && p[1] != 3)
        return false;
    if (len >= 3 && p[2] > 4)
        return false;
    return len < 5 || (((size_t)p[3] << 8 | p[4]) <= TLS_RECORD_MAX);
}

/* ---- verdict ---- */

static void versions_text(char *dst, size_t cap, uint32_t mask)
{
    size_t used = 0;
    dst[0] = '\0';
    for (size_t i = 0; i <= COUNT(version_table); i++) {
        if (!(mask & (1u << i)))
            continue;
        const char *name = i < COUNT(version_table) ? version_table[i].name : "other";
        int w = snprintf(dst + used, cap - used, "%s%s", used ? "," : "", name);
        if (w < 0 || (size_t)w >= cap - used)
            break;
        used += (size_t)w;
    }
}

static void copy_cert(struct tls_facts *f, const struct x509_cert *c)
{
    f->have_cert = true;
    memcpy(f->subject_cn, c->subject_cn, sizeof f->subject_cn);
    memcpy(f->subject_o, c->subject_o, sizeof f->subject_o);
    memcpy(f->issuer_cn, c->issuer_cn, sizeof f->issuer_cn);
    memcpy(f->issuer_o, c->issuer_o, sizeof f->issuer_o);
    memcpy(f->sans, c->sans, sizeof f->sans);
    f->san_count = c->san_count;
    f->self_issued = c->self_issued;
    f->has_validity = c->has_validity;
    f->not_before = c->not_before;
    f->not_after = c->not_after;
}

static enum tls_outcome judge(struct tls_parser *p)
{
    struct tls_facts *f = &p->f;
    const struct tls_side *c = &p->side[MT_CLIENT], *s = &p->side[MT_SERVER];
    const char *who = f->alert_side == MT_CLIENT ? "client" : "server";
    /* Servers dropped TLS 1.0 and 1.1, and many just close on such a hello without a
     * protocol_version alert: then the offer is the reason, whatever the client said after. */
    f->offer_outdated = f->client_hello && f->client_versions &&
                        !(f->client_versions & (TLS_VBIT_TLS12 | TLS_VBIT_TLS13 | TLS_VBIT_OTHER));
    if (f->offer_outdated && !f->server_hello && c->valid && s->bytes == 0) {
        f->server_silent = true;
        snprintf(f->reason, sizeof f->reason, "no answer from the server to a ClientHello "
                 "offering only %s (no TLS version in common)", f->client_versions_text);
        return TLS_OUTCOME_FAILED;
    }
    if (f->alert_seen && f->alert_fatal && !p->complete_at_alert) {
        snprintf(f->reason, sizeof f->reason, "fatal alert %s from the %s", f->alert_name, who);
        return TLS_OUTCOME_FAILED;
    }
    if (f->handshake_complete)
        return TLS_OUTCOME_ENCRYPTED;
    if (!c->valid && !s->valid)
        return TLS_OUTCOME_UNKNOWN;
    if (f->version == V_TLS13 && s->enc_records > 0 && c->enc_records > 0) {
        f->encrypted_alert = true;   /* the client's first encrypted record is alert-sized */
        snprintf(f->reason, sizeof f->reason,
                 "the client answered the server's encrypted flight with an alert");
        return TLS_OUTCOME_FAILED;
    }
    if (f->encrypted_alert)
        snprintf(f->reason, sizeof f->reason, "encrypted alert during the handshake");
    else if (c->valid && !s->valid && s->bytes > 0)
        snprintf(f->reason, sizeof f->reason, "the server did not answer with TLS");
    else if ((f->server_silent = c->valid && s->bytes == 0))
        snprintf(f->reason, sizeof f->reason, "no answer from the server");
    else
        snprintf(f->reason, sizeof f->reason, "the handshake did not complete");
    return TLS_OUTCOME_FAILED;
}

enum tls_outcome tls_finish(struct tls_parser *p, int64_t capture_time,
                            const char *server_name, struct tls_facts *facts)
{
    struct tls_facts *f = &p->f;
    for (int i = 0; i < 2; i++) {
        const struct tls_side *s = &p->side[i];
        if (!s->dead && (s->in_record || s->hdr_len > 0 || s->hs_len > 0))
            f->events |= TLS_EV_TRUNCATED;
        f->app_records[i] = s->enc_records;
    }
    f->not_tls = (f->events & TLS_EV_NOT_TLS) && !p->side[0].valid && !p->side[1].valid;
    f->handshake_complete = handshake_complete(p);
    versions_text(f->client_versions_text, sizeof f->client_versions_text, f->client_versions);
    if (f->server_hello) {
        const char *v = tls_version_name(f->version), *c = tls_cipher_name(f->cipher);
        if (v)
            snprintf(f->version_name, sizeof f->version_name, "%s", v);
        else
            snprintf(f->version_name, sizeof f->version_name, "0x%04X", f->version);
        if (c)
            snprintf(f->cipher_name, sizeof f->cipher_name, "%s", c);
        else
            snprintf(f->cipher_name, sizeof f->cipher_name, "0x%04X", f->cipher);
        f->version_weak = f->version == V_SSL2 || f->version == V_SSL3 ||
                          f->version == V_TLS10 || f->version == V_TLS11;
    }
    if (p->have_leaf) {
        copy_cert(f, &p->leaf);
        int64_t now = capture_time > 0 ? capture_time : p->cert_ts_us / 1000000;
        f->expired = f->has_validity && now > f->not_after;
        f->not_yet_valid = f->has_validity && now < f->not_before;
        const char *name = p->sni_host[0] ? p->sni_host : server_name;
        f->name_checked[0] = '\0';
        f->name_mismatch = false;
        if (name && name[0]) {
            text_sanitize(f->name_checked, sizeof f->name_checked, name, strlen(name));
            /* names not all kept: "not found" is no finding (a hosting certificate may
             * carry a hundred names, Let's Encrypt's limit) */
            f->name_mismatch = !x509_name_matches(&p->leaf, name) &&
                               !p->leaf.match_incomplete && p->leaf.complete;
        }
    }
    f->reason[0] = '\0';
    enum tls_outcome outcome = judge(p);
    *facts = *f;
    return outcome;
}
