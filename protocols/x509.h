/* x509.h — bounded DER reading of one X.509 certificate (RFC 5280) as it crosses the wire
 * in a TLS Certificate message: subject CN, issuer CN/O, validity, subjectAltName, and the
 * host name rules of RFC 6125 (wildcards). Hostile input is expected: every read is
 * checked against what remains, nothing recurses, nothing is allocated. No OpenSSL. */
#ifndef MAILTAP_X509_H
#define MAILTAP_X509_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define X509_NAME_MAX 256      /* a sanitized CN / O / DNS name */
#define X509_SANS_MAX 512      /* the joined, sanitized SAN list ("a, b, IP:1.2.3.4") */
#define X509_MATCH_POOL 4096   /* raw DNS / IP SANs kept for name checks */
#define X509_MATCH_MAX 1024    /* at most this many SANs are checked (the pool bounds too) */

struct x509_cert {
    char subject_cn[X509_NAME_MAX];   /* sanitized; "" when absent */
    char subject_o[X509_NAME_MAX];
    char issuer_cn[X509_NAME_MAX];
    char issuer_o[X509_NAME_MAX];
    char sans[X509_SANS_MAX];         /* dNSName and iPAddress entries, ", "-joined, capped */
    unsigned san_count;               /* every SAN entry seen, kept or not */
    bool has_validity;                /* both dates parsed */
    int64_t not_before, not_after;    /* epoch seconds (UTC) */
    bool self_issued;                 /* issuer name == subject name (bytes) */
    bool complete;                    /* the whole TBSCertificate parsed without error */
    /* For x509_name_matches: NUL-separated lower-case names; the CN as a fallback. */
    char match_pool[X509_MATCH_POOL];
    size_t match_pool_len;
    unsigned match_count;             /* entries in match_pool */
    bool match_incomplete;            /* a SAN did not fit: a name not found may be there */
    bool has_dns_san;                 /* then the CN is not used for matching (RFC 6125) */
    char match_cn[X509_NAME_MAX];     /* lower-case CN when usable as a host name, else "" */
};

/* Parses the DER certificate der[0..len). Fills what could be read even when the input is
 * truncated or malformed (then cert->complete is false and -1 is returned); 0 when the
 * TBSCertificate parsed completely. Never reads outside der[0..len). */
int x509_parse(const uint8_t *der, size_t len, struct x509_cert *cert);

/* True when host matches one of the certificate's DNS (or, for an IP literal, iPAddress)
 * SANs, or its CN when there is no DNS SAN. Case-insensitive, one trailing dot ignored. */
bool x509_name_matches(const struct x509_cert *cert, const char *host);

/* RFC 6125 §6.4.3 for one presented identifier: exact match, or "*." followed by at
 * least two labels matching exactly one whole non-empty left-most label of host.
 * Partial-label wildcards ("mx*.example.com") and wildcards on IP literals never match. */
bool x509_hostname_match(const char *pattern, const char *host);

/* UTCTime (tag 0x17, YYMMDDHHMMSSZ, YY < 50 → 20YY) or GeneralizedTime (0x18,
 * YYYYMMDDHHMMSSZ) to epoch seconds. False when not exactly that form. */
bool x509_time_parse(uint8_t tag, const uint8_t *s, size_t len, int64_t *out);

#endif
