/* dns.h — DNS message decoding (RFC 1035, 3596, 6891; MX/A/AAAA/TXT/PTR/CNAME/TLSA data as
 * text) and the 2-byte length-prefix reassembler for DNS over TCP (RFC 1035 4.2.2).
 * Pure: no I/O, no globals, no allocation. Every byte is read through a bounds-checked
 * reader; compressed names are followed iteratively, each pointer strictly backwards. */
#ifndef MAILTAP_DNS_H
#define MAILTAP_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DNS_HEADER_LEN 12
#define DNS_WIRE_NAME_MAX 255    /* RFC 1035 3.1: length octets + labels + root */
#define DNS_NAME_MAX 1024        /* a wire name as sanitized text (escapes grow it) */
#define DNS_DATA_MAX 1040        /* one answer's data as text */
#define DNS_ANSWERS_MAX 16       /* answers of kept types held per message */
#define DNS_TXT_KEEP 255         /* TXT: bytes kept (before sanitizing) */
#define DNS_TLSA_HEX_KEEP 64     /* TLSA: association data bytes shown in hex */
#define DNS_POINTER_HOPS_MAX 128 /* compression pointers followed in one name */

enum dns_type {
    DNS_TYPE_A = 1, DNS_TYPE_NS = 2, DNS_TYPE_CNAME = 5, DNS_TYPE_SOA = 6,
    DNS_TYPE_PTR = 12, DNS_TYPE_MX = 15, DNS_TYPE_TXT = 16, DNS_TYPE_AAAA = 28,
    DNS_TYPE_OPT = 41, DNS_TYPE_TLSA = 52,
};

enum dns_rcode {
    DNS_RCODE_NOERROR = 0, DNS_RCODE_FORMERR = 1, DNS_RCODE_SERVFAIL = 2,
    DNS_RCODE_NXDOMAIN = 3, DNS_RCODE_NOTIMP = 4, DNS_RCODE_REFUSED = 5,
};

/* dns_parse() results: 0, or one of these. */
enum dns_error {
    DNS_OK = 0,
    DNS_E_TRUNCATED = -1,     /* the message ends inside a header, name or record */
    DNS_E_LABEL = -2,         /* label type 01/10 (reserved / obsolete extended labels) */
    DNS_E_POINTER = -3,       /* compression pointer outside the message or into the header */
    DNS_E_POINTER_LOOP = -4,  /* pointer not strictly backwards (forward / loop), too many hops */
    DNS_E_NAME_TOO_LONG = -5, /* more than 255 octets on the wire */
    DNS_E_RDATA = -6,         /* record data inconsistent with its type or length */
    DNS_E_ARGUMENT = -7,      /* NULL message or output */
};

struct dns_answer {
    uint16_t type, rclass;
    uint32_t ttl;
    /* MX "10 mx.example.com", A/AAAA the address, TXT the strings concatenated (first 255
     * bytes, sanitized, "..." when cut), PTR/CNAME the name, TLSA "3 1 1 ab12..." */
    char data[DNS_DATA_MAX];
};

struct dns_message {
    /* header */
    bool has_header;
    uint16_t id;
    bool qr, aa, tc, rd, ra, ad, cd;
    uint8_t opcode;
    uint16_t rcode;                 /* 4 bits, or 12 with an OPT record */
    uint16_t qdcount, ancount, nscount, arcount;
    /* first question */
    bool has_question;
    char qname[DNS_NAME_MAX];       /* dotted, no final dot, sanitized; "." for the root */
    uint16_t qtype, qclass;
    /* EDNS (RFC 6891) */
    bool edns;
    uint16_t edns_udp_size;
    uint8_t edns_version;
    bool edns_do;
    /* answer section: records of the kept types, in order */
    unsigned answer_count;
    unsigned answers_other;         /* other types, or beyond DNS_ANSWERS_MAX */
    struct dns_answer answers[DNS_ANSWERS_MAX];
};

/* Decodes msg[0..len). Returns 0, or a negative enum dns_error for malformed input. Never
 * reads outside msg. On an error, what was decoded before it stays in *out (has_header,
 * has_question, answers so far), so a caller may still match a response by its id. */
int dns_parse(const uint8_t *msg, size_t len, struct dns_message *out);

/* True for the query types mailtap keeps: A, AAAA, MX, TXT, PTR, TLSA (and CNAME). */
bool dns_type_is_kept(uint16_t type);

const char *dns_strerror(int error);   /* "truncated", "pointer loop", ... */
/* "MX", "AAAA", ... or "TYPE<n>" written into buf (16 bytes) for unknown types. */
const char *dns_type_name(uint16_t type, char buf[16]);
/* "NOERROR", "NXDOMAIN", ... or "RCODE<n>" written into buf (16 bytes). */
const char *dns_rcode_name(unsigned rcode, char buf[16]);

/* --- DNS over TCP: 2-byte big-endian length, then the message; split anywhere. ---- */

#define DNS_TCP_BUF_MAX (65535 + 2)

/* Called once per whole message; msg is valid only during the call. */
typedef void (*dns_tcp_message_fn)(void *ctx, const uint8_t *msg, size_t len);

/* One per direction of a TCP connection. ~64 KiB: allocate it with the stream. */
struct dns_tcp_reasm {
    uint8_t buf[DNS_TCP_BUF_MAX];
    size_t have;                /* bytes in buf: length prefix + partial message */
    uint64_t messages;          /* whole messages delivered */
    uint64_t empty;             /* zero-length messages skipped */
};

void dns_tcp_init(struct dns_tcp_reasm *r);
/* Feeds the next len bytes of the stream; calls fn for each message completed. Messages
 * lying whole inside data are handed over without a copy. Returns messages delivered. */
size_t dns_tcp_feed(struct dns_tcp_reasm *r, const uint8_t *data, size_t len,
                    dns_tcp_message_fn fn, void *ctx);
/* Bytes of an unfinished message still waiting (0 between messages). */
size_t dns_tcp_pending(const struct dns_tcp_reasm *r);

#endif
