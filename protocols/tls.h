/* tls.h — passive TLS handshake reader: feed it the two byte streams of a connection after
 * STARTTLS (or from the first byte on 465/993/995) and it tells what was negotiated (SNI,
 * offered and chosen versions, ALPN, cipher suite), who the server claimed to be (the
 * leaf certificate of TLS <= 1.2: names, issuer, validity) and how the handshake ended
 * (completed, fatal alert and from which side, or cut). Pure: no libnids, no store, no
 * OpenSSL; every buffer is bounded and hostile bytes are an event, never a crash.
 *
 * Use: p = tls_parser_new(); tls_feed(p, side, bytes, len, ts_us)...; outcome =
 * tls_finish(p, capture_time, server_name, &facts); tls_parser_free(p). */
#ifndef MAILTAP_TLS_H
#define MAILTAP_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocols/session.h"   /* enum mt_side */
#include "protocols/x509.h"

#define TLS_RECORD_MAX (16384 + 2048)   /* TLSCiphertext limit (RFC 5246 §6.2.3) */
#define TLS_HANDSHAKE_MAX (64 * 1024)   /* a longer handshake message is skipped, flagged */
#define TLS_ALPN_TEXT_MAX 64            /* first few ALPN ids, comma-joined */
#define TLS_ALPN_KEEP 4
#define TLS_CIPHER_NAME_MAX 56
#define TLS_REASON_MAX 256

enum tls_outcome {
    TLS_OUTCOME_UNKNOWN,     /* no TLS seen (nothing, or not TLS at all) */
    TLS_OUTCOME_ENCRYPTED,   /* the handshake completed, or encrypted data flowed both ways */
    TLS_OUTCOME_FAILED,      /* fatal alert, or the handshake stopped before completing */
};

/* Protocol versions as bits (client_versions). */
enum {
    TLS_VBIT_SSL2 = 1u << 0, TLS_VBIT_SSL3 = 1u << 1, TLS_VBIT_TLS10 = 1u << 2,
    TLS_VBIT_TLS11 = 1u << 3, TLS_VBIT_TLS12 = 1u << 4, TLS_VBIT_TLS13 = 1u << 5,
    TLS_VBIT_OTHER = 1u << 6,   /* drafts, DTLS or unknown numbers (GREASE is ignored) */
};

/* Things the parser noticed about the bytes themselves (tls_facts.events). */
enum {
    TLS_EV_NOT_TLS = 1u << 0,        /* a side's first bytes are not a TLS record */
    TLS_EV_DESYNC = 1u << 1,         /* a bad record header later on: side no longer read */
    TLS_EV_HS_TOO_BIG = 1u << 2,     /* handshake message over TLS_HANDSHAKE_MAX skipped */
    TLS_EV_HS_MALFORMED = 1u << 3,   /* a hello or certificate message did not parse */
    TLS_EV_CERT_MALFORMED = 1u << 4, /* the leaf certificate's DER did not parse fully */
    TLS_EV_TRUNCATED = 1u << 5,      /* a record or handshake message was cut by the end */
    TLS_EV_NO_MEMORY = 1u << 6,      /* handshake buffer allocation failed */
};

struct tls_facts {
    /* ClientHello */
    bool client_hello;               /* a ClientHello was seen */
    bool sslv2_hello;                /* ...in the SSLv2-compatible format */
    uint16_t client_hello_version;   /* legacy_version (or the SSLv2 hello's version) */
    uint32_t client_versions;        /* TLS_VBIT_*: supported_versions, else the hello version */
    char client_versions_text[64];   /* "TLSv1.2,TLSv1.3" */
    char sni[X509_NAME_MAX];         /* server_name (host_name), sanitized */
    char alpn[TLS_ALPN_TEXT_MAX];    /* offered, first TLS_ALPN_KEEP, "imap,pop3" */
    unsigned cipher_suites_offered;
    /* ServerHello */
    bool server_hello;
    bool hello_retry;                /* a TLS 1.3 HelloRetryRequest was seen */
    uint16_t version;                /* chosen: supported_versions, else legacy_version */
    char version_name[16];           /* "TLSv1.2", or "0x7F1C" */
    bool version_weak;               /* SSLv2/SSLv3/TLS 1.0/1.1 chosen */
    uint16_t cipher;
    char cipher_name[TLS_CIPHER_NAME_MAX];   /* IANA name, or "0xC0FF" */
    char alpn_selected[X509_NAME_MAX / 4];
    /* Certificate (TLS <= 1.2 only: TLS 1.3 encrypts it) */
    bool have_cert;
    unsigned cert_chain_len;         /* certificates in the message */
    char subject_cn[X509_NAME_MAX];
    char subject_o[X509_NAME_MAX];
    char sans[X509_SANS_MAX];
    unsigned san_count;
    char issuer_cn[X509_NAME_MAX];
    char issuer_o[X509_NAME_MAX];
    bool self_issued;
    bool has_validity;
    int64_t not_before, not_after;   /* epoch seconds */
    bool expired, not_yet_valid;     /* against the capture time given to tls_finish */
    char name_checked[X509_NAME_MAX];/* the SNI, else the server name given; "" if none */
    bool name_mismatch;              /* name_checked matches neither SANs nor CN */
    /* Alerts */
    bool alert_seen;                 /* a readable (plaintext) alert */
    uint8_t alert_level, alert_desc; /* the first fatal one, else the first one */
    char alert_name[32];             /* "handshake_failure", ... "unknown(77)" */
    enum mt_side alert_side;
    bool alert_fatal;
    bool encrypted_alert;            /* an alert we could not read ended the handshake */
    bool server_silent;              /* FAILED: a client hello, and not a byte back */
    bool offer_outdated;             /* the client offered nothing newer than TLS 1.1 */
    /* Progress */
    bool ccs[2];                     /* ChangeCipherSpec seen, by side (mt_side index) */
    uint64_t app_records[2];         /* application_data records, by side */
    bool handshake_complete;
    char reason[TLS_REASON_MAX];     /* why FAILED, in words; "" otherwise */
    uint32_t events;                 /* TLS_EV_* */
    bool not_tls;                    /* neither side spoke TLS */
};

struct tls_parser;

/* NULL when out of memory. The parser holds at most one record header and one handshake
 * message (<= TLS_HANDSHAKE_MAX) per side, allocated only while a message spans records. */
struct tls_parser *tls_parser_new(void);
void tls_parser_free(struct tls_parser *parser);

/* Feeds bytes sent by `side`, in order; any split is fine. Bytes after a side is
 * desynchronised are counted and ignored. */
void tls_feed(struct tls_parser *parser, enum mt_side side, const uint8_t *bytes, size_t len,
              int64_t ts_us);

/* True once nothing more can be learned (handshake complete, fatal alert, or both sides
 * unreadable): a decoder may stop feeding. */
bool tls_done(const struct tls_parser *parser);

/* Fills *facts and returns the outcome. capture_time (epoch seconds) decides expired /
 * not_yet_valid; 0 uses the time the certificate was seen. server_name (may be NULL) is
 * checked against the certificate when the client sent no SNI. May be called again. */
enum tls_outcome tls_finish(struct tls_parser *parser, int64_t capture_time,
                            const char *server_name, struct tls_facts *facts);

/* True when p[0..len) can be the start of a TLS record (or an SSLv2-format ClientHello):
 * judged on the bytes present, so 1..5 bytes may already say yes. */
bool tls_looks_like_record(const uint8_t *p, size_t len);

const char *tls_outcome_name(enum tls_outcome outcome);    /* "encrypted", "failed", "unknown" */
const char *tls_version_name(uint16_t version);            /* "TLSv1.2"; NULL if unknown */
const char *tls_cipher_name(uint16_t suite);               /* IANA name; NULL if not listed */
const char *tls_alert_name(uint8_t description);           /* "handshake_failure"; NULL */
/* Name of event bit `bit` (TLS_EV_* == 1u << bit), e.g. "not_tls"; NULL if none. */
const char *tls_event_name(unsigned bit);

#endif
