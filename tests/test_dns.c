/* test_dns.c — unit tests for protocols/dns.c (message decoding, hostile names, every
 * truncation, the DNS-over-TCP reassembler at every split) and protocols/dnstrack.c
 * (matching, retransmissions, timeouts, eviction, the Postfix-style MX verdict with its
 * A/AAAA fallback, recent-recipient linking), plus the public capture kept in
 * tests/data/dns/ (README.md there says where it comes from). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "protocols/dns.h"
#include "protocols/dnstrack.h"
#include "protocols/dnswatch.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- a tiny message builder --------------------------------------------------------- */

struct builder {
    uint8_t buf[70000];
    size_t len;
    size_t rdlen_at;     /* where the open record's RDLENGTH goes */
};

static void b_u8(struct builder *b, unsigned v)
{
    assert_true(b->len < sizeof b->buf);
    b->buf[b->len++] = (uint8_t)v;
}

static void b_u16(struct builder *b, unsigned v)
{
    b_u8(b, v >> 8 & 0xFF);
    b_u8(b, v & 0xFF);
}

static void b_u32(struct builder *b, uint32_t v)
{
    b_u16(b, v >> 16);
    b_u16(b, v & 0xFFFF);
}

static void b_bytes(struct builder *b, const void *data, size_t n)
{
    assert_true(b->len + n <= sizeof b->buf);
    memcpy(b->buf + b->len, data, n);
    b->len += n;
}

/* Labels of a dotted name; ends with the root unless `then_ptr` >= 0 (a pointer). */
static void b_name_ptr(struct builder *b, const char *dotted, int then_ptr)
{
    while (*dotted) {
        const char *dot = strchr(dotted, '.');
        size_t n = dot ? (size_t)(dot - dotted) : strlen(dotted);
        b_u8(b, (unsigned)n);
        b_bytes(b, dotted, n);
        dotted += n + (dot ? 1 : 0);
    }
    if (then_ptr >= 0)
        b_u16(b, 0xC000u | (unsigned)then_ptr);
    else
        b_u8(b, 0);
}

static void b_name(struct builder *b, const char *dotted)
{
    b_name_ptr(b, dotted, -1);
}

enum { QR = 0x8000, AA = 0x0400, TC = 0x0200, RD = 0x0100, RA = 0x0080 };

static void b_header(struct builder *b, unsigned id, unsigned flags, unsigned qd,
                     unsigned an, unsigned ns, unsigned ar)
{
    b->len = 0;
    b_u16(b, id);
    b_u16(b, flags);
    b_u16(b, qd);
    b_u16(b, an);
    b_u16(b, ns);
    b_u16(b, ar);
}

static void b_question(struct builder *b, const char *name, unsigned type)
{
    b_name(b, name);
    b_u16(b, type);
    b_u16(b, 1);
}

/* Owner as a pointer to offset 12 (the question name): what servers send. */
static void b_rr_begin(struct builder *b, unsigned type, uint32_t ttl)
{
    b_u16(b, 0xC00C);
    b_u16(b, type);
    b_u16(b, 1);
    b_u32(b, ttl);
    b->rdlen_at = b->len;
    b_u16(b, 0);
}

static void b_rr_end(struct builder *b)
{
    size_t n = b->len - b->rdlen_at - 2;
    b->buf[b->rdlen_at] = (uint8_t)(n >> 8);
    b->buf[b->rdlen_at + 1] = (uint8_t)n;
}

static void b_opt(struct builder *b, unsigned udp, unsigned ext_rcode, unsigned version,
                  bool dnssec_ok)
{
    b_u8(b, 0);
    b_u16(b, DNS_TYPE_OPT);
    b_u16(b, udp);
    b_u32(b, (uint32_t)ext_rcode << 24 | (uint32_t)version << 16 | (dnssec_ok ? 0x8000u : 0));
    b_u16(b, 0);
}

/* A response for example.com MX with three compressed MX answers and an OPT. */
static void build_mx_response(struct builder *b)
{
    b_header(b, 0xBEEF, QR | RD | RA, 1, 3, 0, 1);
    b_question(b, "example.com", DNS_TYPE_MX);
    b_rr_begin(b, DNS_TYPE_MX, 300);                 /* mx1.example.com */
    b_u16(b, 10);
    b_name_ptr(b, "mx1", 12);
    b_rr_end(b);
    size_t mx1 = b->len - 6;                         /* "mx1" label of the first answer */
    b_rr_begin(b, DNS_TYPE_MX, 300);                 /* backup.mx1.example.com */
    b_u16(b, 20);
    b_name_ptr(b, "backup", (int)mx1);
    b_rr_end(b);
    b_rr_begin(b, DNS_TYPE_MX, 300);                 /* the same name, fully a pointer */
    b_u16(b, 30);
    b_u16(b, 0xC000u | (unsigned)mx1);
    b_rr_end(b);
    b_opt(b, 1232, 0, 0, false);
}

/* --- parsing: every record type ------------------------------------------------------ */

static void test_query_header_question_edns(void **state)
{
    (void)state;
    struct builder b;
    struct dns_message m;
    b_header(&b, 0x1234, RD, 1, 0, 0, 1);
    b_question(&b, "Example.COM", DNS_TYPE_MX);
    b_opt(&b, 4096, 0, 0, true);
    assert_int_equal(dns_parse(b.buf, b.len, &m), DNS_OK);
    assert_true(m.has_header && m.has_question);
    assert_int_equal(m.id, 0x1234);
    assert_false(m.qr);
    assert_true(m.rd);
    assert_false(m.tc);
    assert_int_equal(m.opcode, 0);
    assert_string_equal(m.qname, "Example.COM");     /* case kept (0x20 randomization) */
    assert_int_equal(m.qtype, DNS_TYPE_MX);
    assert_int_equal(m.qclass, 1);
    assert_true(m.edns);
    assert_int_equal(m.edns_udp_size, 4096);
    assert_true(m.edns_do);
    assert_int_equal(m.arcount, 1);
    assert_int_equal(m.answer_count, 0);
}

static void test_mx_compressed(void **state)
{
    (void)state;
    struct builder b;
    struct dns_message m;
    build_mx_response(&b);
    assert_int_equal(dns_parse(b.buf, b.len, &m), DNS_OK);
    assert_true(m.qr && m.ra);
    assert_int_equal(m.rcode, DNS_RCODE_NOERROR);
    assert_int_equal(m.ancount, 3);
    assert_int_equal(m.answer_count, 3);
    assert_int_equal(m.answers[0].type, DNS_TYPE_MX);
    assert_int_equal(m.answers[0].ttl, 300);
    assert_string_equal(m.answers[0].data, "10 mx1.example.com");
    assert_string_equal(m.answers[1].data, "20 backup.mx1.example.com");
    assert_string_equal(m.answers[2].data, "30 mx1.example.com");
    assert_true(m.edns);
    assert_int_equal(m.edns_udp_size, 1232);
}

static void test_a_aaaa(void **state)
{
    (void)state;
    struct builder b;
    struct dns_message m;
    static const uint8_t v4[4] = { 192, 0, 2, 25 };
    static const uint8_t v6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 0x19 };
    b_header(&b, 7, QR | RA, 1, 2, 0, 0);
    b_question(&b, "mail.example.org", DNS_TYPE_A);
    b_rr_begin(&b, DNS_TYPE_A, 60);
    b_bytes(&b, v4, 4);
    b_rr_end(&b);
    b_rr_begin(&b, DNS_TYPE_AAAA, 60);
    b_bytes(&b, v6, 16);
    b_rr_end(&b);
    assert_int_equal(dns_parse(b.buf, b.len, &m), DNS_OK);
    assert_int_equal(m.answer_count, 2);
    assert_string_equal(m.answers[0].data, "192.0.2.25");
    assert_string_equal(m.answers[1].data, "2001:db8::19");

    /* An A record with 5 bytes of data is malformed. */
    b_header(&b, 7, QR, 1, 1, 0, 0);
    b_question(&b, "x.org", DNS_TYPE_A);
    b_rr_begin(&b, DNS_TYPE_A, 60);
    b_bytes(&b, "\1\2\3\4\5", 5);
    b_rr_end(&b);
    assert_int_equal(dns_parse(b.buf, b.len, &m), DNS_E_RDATA);
    assert_true(m.has_question);                     /* still usable for matching */
    assert_int_equal(m.id, 7);
}

static void test_txt_spf_dmarc(void **state)
{
    (void)state;
    struct builder b;
    struct dns_message m;
    b_header(&b, 9, QR, 1, 2, 0, 0);
    b_question(&b, "_dmarc.example.com", DNS_TYPE_TXT);
    b_rr_begin(&b, DNS_TYPE_TXT, 60);              /* SPF split in two strings (RFC 7208 3.3) */
    b_u8(&b, 13);
    b_bytes(&b, "v=spf1 mx a ", 12);
    b_u8(&b, ' ');
    b_u8(&b, 4);
    b_bytes(&b, "-all", 4);
    b_rr_end(&b);
    b_rr_begin(&b, DNS_TYPE_TXT, 60);              /* control bytes are escaped */
    b_u8(&b, 12);
    b_bytes(&b, "v=DMARC1\x1b[2J", 12);
    b_rr_end(&b);
    assert_int_equal(dns_parse(b.buf, b.len, &m), DNS_OK);
    assert_string_equal(m.answers[0].data, "v=spf1 mx a  -all");
    assert_string_equal(m.answers[1].data, "v=DMARC1\\x1b[2J");

    /* Over 255 bytes: the first 255 are kept, then "...". */
    b_header(&b, 9, QR, 1, 1, 0, 0);
    b_question(&b, "example.com", DNS_TYPE_TXT);
    b_rr_begin(&b, DNS_TYPE_TXT, 60);
    for (int s = 0; s < 3; s++) {
        b_u8(&b, 200);
        for (int i = 0; i < 200; i++)
            b_u8(&b, 'a' + s);
    }
    b_rr_end(&b);
    assert_int_equal(dns_parse(b.buf, b.len, &m), DNS_OK);
    assert_int_equal(strlen(m.answers[0].data), 255 + 3);
    assert_memory_equal(m.answers[0].data + 198, "aabbb", 5);
    assert_string_equal(m.answers[0].data + 255, "...");

    /* A string length running past the record data is malformed. */
    b_header(&b, 9, QR, 1, 1, 0, 0);
    b_question(&b, "example.com", DNS_TYPE_TXT);
    b_rr_begin(&b, DNS_TYPE_TXT, 60);
    b_u8(&b, 10);
    b_bytes(&b, "short", 5);
    b_rr_end(&b);
    assert_int_equal(dns_parse(b.buf, b.len, &m), DNS_E_RDATA);
}

static void test_ptr_cname(void **state)
{
    (void)state;
    struct builder b;
    struct dns_message m;
    b_header(&b, 11, QR, 1, 1, 0, 0);
    b_question(&b, "25.2.0.192.in-addr.arpa", DNS_TYPE_PTR);
    b_rr_begin(&b, DNS_TYPE_PTR, 60);
    b_name(&b, "mail.example.net");
    b_rr_end(&b);
    assert_int_equal(dns_parse(b.buf, b.len, &m), DNS_OK);
    assert_string_equal(m.qname, "25.2.0.192.in-addr.arpa");
    assert_string_equal(m.answers[0].data, "mail.example.net");

    b_header(&b, 12, QR, 1, 2, 0, 0);
    b_question(&b, "www.example.net", DNS_TYPE_A);
    b_rr_begin(&b, DNS_TYPE_CNAME, 60);
    b_name_ptr(&b, "web", 16);                       /* -> example.net in the question */
    b_rr_end(&b);
    b_rr_begin(&b, DNS_TYPE_A, 60);
    b_bytes(&b, "\xc6\x33\x64\x01", 4);
    b_rr_end(&b);
    assert_int_equal(dns_parse(b.buf, b.len, &m), DNS_OK);
    assert_int_equal(m.answer_count, 2);
    assert_string_equal(m.answers[0].data, "web.example.net");
    assert_string_equal(m.answers[1].data, "198.51.100.1");

    /* A name in record data must end inside the record data. */
    b_header(&b, 13, QR, 1, 1, 0, 0);
    b_question(&b, "x.net", DNS_TYPE_PTR);
    b_rr_begin(&b, DNS_TYPE_PTR, 60);
    b_name(&b, "host.x.net");
    b_rr_end(&b);
    b.buf[b.rdlen_at + 1] -= 3;                      /* claims 3 bytes less */
    b_u16(&b, 0);                                    /* keep the message long enough */
    assert_int_equal(dns_parse(b.buf, b.len, &m), DNS_E_RDATA);
}

static void test_tlsa(void **state)
{
    (void)state;
    struct builder b;
    struct dns_message m;
    b_header(&b, 14, QR, 1, 2, 0, 0);
    b_question(&b, "_25._tcp.mx.example.com", DNS_TYPE_TLSA);
    b_rr_begin(&b, DNS_TYPE_TLSA, 60);
    b_u8(&b, 3);
    b_u8(&b, 1);
    b_u8(&b, 1);
    for (int i = 0; i < 32; i++)
        b_u8(&b, (unsigned)(0xA0 + i));
    b_rr_end(&b);
    b_rr_begin(&b, DNS_TYPE_TLSA, 60);               /* a full certificate: cut */
    b_u8(&b, 3);
    b_u8(&b, 0);
    b_u8(&b, 0);
    for (int i = 0; i < 300; i++)
        b_u8(&b, 0xAB);
    b_rr_end(&b);
    assert_int_equal(dns_parse(b.buf, b.len, &m), DNS_OK);
    assert_int_equal(m.answer_count, 2);
    assert_memory_equal(m.answers[0].data, "3 1 1 a0a1a2a3", 14);
    assert_int_equal(strlen(m.answers[0].data), 6 + 64);
    assert_memory_equal(m.answers[1].data, "3 0 0 abab", 10);
    assert_int_equal(strlen(m.answers[1].data), 6 + 2 * DNS_TLSA_HEX_KEEP + 3);
    assert_string_equal(m.answers[1].data + 6 + 2 * DNS_TLSA_HEX_KEEP, "...");
}

static void test_answer_cap_and_other_types(void **state)
{
    (void)state;
    struct builder b;
    struct dns_message m;
    b_header(&b, 15, QR, 1, 21, 1, 0);
    b_question(&b, "many.example", DNS_TYPE_A);
    b_rr_begin(&b, DNS_TYPE_NS, 60);                 /* not kept: counted */
    b_name(&b, "ns.example");
    b_rr_end(&b);
    for (unsigned i = 0; i < 20; i++) {
        b_rr_begin(&b, DNS_TYPE_A, 60);
        b_u8(&b, 10);
        b_u8(&b, 0);
        b_u8(&b, 0);
        b_u8(&b, i);
        b_rr_end(&b);
    }
    b_u16(&b, 0xC00C);                               /* authority: an SOA, skipped */
    b_u16(&b, DNS_TYPE_SOA);
    b_u16(&b, 1);
    b_u32(&b, 60);
    b_u16(&b, 3);
    b_bytes(&b, "xyz", 3);
    assert_int_equal(dns_parse(b.buf, b.len, &m), DNS_OK);
    assert_int_equal(m.answer_count, DNS_ANSWERS_MAX);
    assert_int_equal(m.answers_other, 1 + 20 - DNS_ANSWERS_MAX);
    assert_string_equal(m.answers[0].data, "10.0.0.0");
    assert_string_equal(m.answers[15].data, "10.0.0.15");
}

static void test_edns_extended_rcode_and_tc(void **state)
{
    (void)state;
    struct builder b;
    struct dns_message m;
    char buf[16];
    b_header(&b, 16, QR | 0x0000, 1, 0, 0, 1);       /* header rcode 0 */
    b_question(&b, "example.com", DNS_TYPE_MX);
    b_opt(&b, 1232, 1, 0, false);                    /* upper 8 bits 1: rcode 16 */
    assert_int_equal(dns_parse(b.buf, b.len, &m), DNS_OK);
    assert_int_equal(m.rcode, 16);
    assert_string_equal(dns_rcode_name(m.rcode, buf), "BADVERS");

    b_header(&b, 17, QR | TC | 3, 1, 0, 0, 1);       /* NXDOMAIN, truncated */
    b_question(&b, "example.com", DNS_TYPE_TXT);
    b_opt(&b, 512, 0, 0, true);
    assert_int_equal(dns_parse(b.buf, b.len, &m), DNS_OK);
    assert_true(m.tc);
    assert_int_equal(m.rcode, DNS_RCODE_NXDOMAIN);
    assert_true(m.edns_do);
    assert_string_equal(dns_rcode_name(m.rcode, buf), "NXDOMAIN");
    assert_string_equal(dns_rcode_name(99, buf), "RCODE99");
    assert_string_equal(dns_type_name(DNS_TYPE_TLSA, buf), "TLSA");
    assert_string_equal(dns_type_name(65, buf), "TYPE65");

    b_header(&b, 18, QR | 3, 1, 0, 0, 1);            /* OPT upper bits on NXDOMAIN: 0x13 */
    b_question(&b, "example.com", DNS_TYPE_MX);
    b_opt(&b, 512, 1, 0, false);
    assert_int_equal(dns_parse(b.buf, b.len, &m), DNS_OK);
    assert_int_equal(m.rcode, 0x13);
}

/* --- parsing: hostile names ---------------------------------------------------------- */

/* A query whose question name is the given raw bytes. */
static int parse_raw_qname(const uint8_t *name, size_t n, struct dns_message *m)
{
    struct builder b;
    b_header(&b, 1, 0, 1, 0, 0, 0);
    b_bytes(&b, name, n);
    b_u16(&b, DNS_TYPE_MX);
    b_u16(&b, 1);
    return dns_parse(b.buf, b.len, m);
}

static void test_pointer_attacks(void **state)
{
    (void)state;
    struct dns_message m;
    static const uint8_t self_loop[] = { 0xC0, 12 };                  /* points at itself */
    static const uint8_t into_header[] = { 0xC0, 4 };
    static const uint8_t out_of_bounds[] = { 0xFF, 0xFF };
    static const uint8_t forward[] = { 0xC0, 18, 0, 0, 0, 0, 1, 'a', 0 };
    static const uint8_t bad_type_40[] = { 0x41, 'a', 0 };
    static const uint8_t bad_type_80[] = { 0x81, 'a', 0 };
    static const uint8_t label_past_end[] = { 63, 'a', 'b' };
    assert_int_equal(parse_raw_qname(self_loop, sizeof self_loop, &m), DNS_E_POINTER_LOOP);
    assert_int_equal(parse_raw_qname(into_header, sizeof into_header, &m), DNS_E_POINTER);
    assert_int_equal(parse_raw_qname(out_of_bounds, sizeof out_of_bounds, &m),
                     DNS_E_POINTER);
    assert_int_equal(parse_raw_qname(forward, sizeof forward, &m), DNS_E_POINTER_LOOP);
    assert_int_equal(parse_raw_qname(bad_type_40, sizeof bad_type_40, &m), DNS_E_LABEL);
    assert_int_equal(parse_raw_qname(bad_type_80, sizeof bad_type_80, &m), DNS_E_LABEL);
    assert_false(m.has_question);

    /* Label length past the end of the message. */
    struct builder b;
    b_header(&b, 1, 0, 1, 0, 0, 0);
    b_bytes(&b, label_past_end, sizeof label_past_end);
    assert_int_equal(dns_parse(b.buf, b.len, &m), DNS_E_TRUNCATED);

    /* Two names pointing at each other, in answers: A -> B -> A. */
    b_header(&b, 2, QR, 1, 2, 0, 0);
    b_question(&b, "x.example", DNS_TYPE_CNAME);
    size_t at1 = b.len;
    b_rr_begin(&b, DNS_TYPE_CNAME, 1);
    size_t name1 = b.len;
    b_u16(&b, 0);                                    /* patched below */
    b_rr_end(&b);
    b_rr_begin(&b, DNS_TYPE_CNAME, 1);
    size_t name2 = b.len;
    b_u16(&b, 0xC000u | (unsigned)name1);
    b_rr_end(&b);
    b.buf[name1] = (uint8_t)(0xC0 | name2 >> 8);
    b.buf[name1 + 1] = (uint8_t)name2;
    (void)at1;
    assert_int_equal(dns_parse(b.buf, b.len, &m), DNS_E_POINTER_LOOP);
    assert_true(m.has_question);

    assert_string_equal(dns_strerror(DNS_E_POINTER_LOOP), "compression pointer loop");
    assert_int_equal(dns_parse(NULL, 0, &m), DNS_E_ARGUMENT);
}

static void test_name_length_limits(void **state)
{
    (void)state;
    struct dns_message m;
    uint8_t name[400];
    size_t n = 0;
    /* 4 labels of 63 = 256 octets with the root: one too many. */
    for (int l = 0; l < 4; l++) {
        name[n++] = 63;
        memset(name + n, 'a' + l, 63);
        n += 63;
    }
    name[n++] = 0;
    assert_int_equal(parse_raw_qname(name, n, &m), DNS_E_NAME_TOO_LONG);
    /* 3 x 63 + 61 = 255 octets: the longest legal name. */
    n = 3 * 64;
    name[n++] = 61;
    memset(name + n, 'z', 61);
    n += 61;
    name[n++] = 0;
    assert_int_equal(n, 255);
    assert_int_equal(parse_raw_qname(name, n, &m), DNS_OK);
    assert_int_equal(strlen(m.qname), 255 - 2);

    /* Short in place but over 255 once pointers are followed. */
    struct builder b;
    b_header(&b, 3, QR, 1, 2, 0, 0);
    b_bytes(&b, name, 255);                          /* the question: 255 octets */
    b_u16(&b, DNS_TYPE_PTR);
    b_u16(&b, 1);
    b_rr_begin(&b, DNS_TYPE_PTR, 1);
    b_name_ptr(&b, "a", 12);                         /* "a." + 255 = 257 */
    b_rr_end(&b);
    assert_int_equal(dns_parse(b.buf, b.len, &m), DNS_E_NAME_TOO_LONG);

    /* Root name, dot and backslash inside labels. */
    static const uint8_t root[] = { 0 };
    assert_int_equal(parse_raw_qname(root, 1, &m), DNS_OK);
    assert_string_equal(m.qname, ".");
    static const uint8_t odd[] = { 3, 'a', '.', 'b', 2, '\\', 0x07, 0 };
    assert_int_equal(parse_raw_qname(odd, sizeof odd, &m), DNS_OK);
    assert_string_equal(m.qname, "a\\x2eb.\\\\\\x07");
}

/* Question "end" at 12; an unknown-type answer whose data is k pointers, each to the one
 * before (the first to 12); then a CNAME owned by a pointer to the last of them, so its
 * owner takes k + 1 hops. */
static int parse_pointer_chain(int k, struct dns_message *m)
{
    struct builder b;
    b_header(&b, 5, QR, 1, 2, 0, 0);
    b_question(&b, "end", DNS_TYPE_CNAME);
    b_rr_begin(&b, 99, 1);
    size_t first = b.len;
    b_u16(&b, 0xC00C);
    for (int i = 1; i < k; i++)
        b_u16(&b, 0xC000u | (unsigned)(first + 2 * (size_t)(i - 1)));
    b_rr_end(&b);
    b_u16(&b, 0xC000u | (unsigned)(first + 2 * (size_t)(k - 1)));
    b_u16(&b, DNS_TYPE_CNAME);
    b_u16(&b, 1);
    b_u32(&b, 1);
    b_u16(&b, 2);
    b_u16(&b, 0xC00C);
    return dns_parse(b.buf, b.len, m);
}

/* A legal chain: each name is one label plus a pointer to the previous one. */
static void test_long_pointer_chain(void **state)
{
    (void)state;
    struct builder b;
    struct dns_message m;
    enum { N = 100 };
    b_header(&b, 4, QR, 1, N, 0, 0);
    b_question(&b, "z", DNS_TYPE_CNAME);            /* "z" at 12 */
    size_t prev = 12;
    for (int i = 0; i < N; i++) {
        b_rr_begin(&b, DNS_TYPE_CNAME, 1);
        size_t here = b.len;
        b_name_ptr(&b, "a", (int)prev);
        b_rr_end(&b);
        prev = here;
    }
    assert_int_equal(dns_parse(b.buf, b.len, &m), DNS_OK);
    assert_int_equal(m.answer_count, DNS_ANSWERS_MAX);
    assert_string_equal(m.answers[2].data, "a.a.a.z");

    /* Pointer to pointer to ...: strictly backwards, allowed up to the hop cap. */
    assert_int_equal(parse_pointer_chain(DNS_POINTER_HOPS_MAX - 1, &m), DNS_OK);
    assert_string_equal(m.answers[0].data, "end");
    assert_int_equal(parse_pointer_chain(DNS_POINTER_HOPS_MAX, &m), DNS_E_POINTER_LOOP);
}

/* --- parsing: every truncation, every byte flipped ----------------------------------- */

static void build_rich_response(struct builder *b)
{
    b_header(b, 0xABCD, QR | AA | RD | RA, 1, 6, 1, 1);
    b_question(b, "example.com", DNS_TYPE_MX);
    b_rr_begin(b, DNS_TYPE_MX, 60);
    b_u16(b, 10);
    b_name_ptr(b, "mx", 12);
    b_rr_end(b);
    b_rr_begin(b, DNS_TYPE_A, 60);
    b_bytes(b, "\xc0\x00\x02\x01", 4);
    b_rr_end(b);
    b_rr_begin(b, DNS_TYPE_AAAA, 60);
    b_bytes(b, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\1", 16);
    b_rr_end(b);
    b_rr_begin(b, DNS_TYPE_TXT, 60);
    b_u8(b, 6);
    b_bytes(b, "v=spf1", 6);
    b_rr_end(b);
    b_rr_begin(b, DNS_TYPE_TLSA, 60);
    b_bytes(b, "\3\1\1\xde\xad\xbe\xef", 7);
    b_rr_end(b);
    b_rr_begin(b, DNS_TYPE_PTR, 60);
    b_name_ptr(b, "host", 12);
    b_rr_end(b);
    b_rr_begin(b, DNS_TYPE_SOA, 60);                 /* authority */
    b_name_ptr(b, "ns", 12);
    b_name_ptr(b, "hostmaster", 12);
    b_bytes(b, "\0\0\0\1\0\0\0\2\0\0\0\3\0\0\0\4\0\0\0\5", 20);
    b_rr_end(b);
    b_opt(b, 1232, 0, 0, true);
}

static void test_every_truncation(void **state)
{
    (void)state;
    struct builder b;
    struct dns_message m;
    build_rich_response(&b);
    assert_int_equal(dns_parse(b.buf, b.len, &m), DNS_OK);
    assert_int_equal(m.answer_count, 6);
    assert_true(m.edns);
    for (size_t n = 0; n < b.len; n++) {
        /* A heap copy of exactly n bytes: ASan catches any read past it. */
        uint8_t *copy = malloc(n ? n : 1);
        memcpy(copy, b.buf, n);
        int e = dns_parse(copy, n, &m);
        assert_true(e < 0);
        assert_int_equal(m.has_header, n >= DNS_HEADER_LEN);
        free(copy);
    }
}

static void test_every_byte_flipped(void **state)
{
    (void)state;
    struct builder b;
    struct dns_message m;
    static const uint8_t values[] = { 0x00, 0x01, 0x3F, 0x40, 0x80, 0xC0, 0xC0 | 0x0C, 0xFF };
    build_rich_response(&b);
    uint8_t *copy = malloc(b.len);
    for (size_t i = 0; i < b.len; i++)
        for (size_t v = 0; v < sizeof values; v++) {
            memcpy(copy, b.buf, b.len);
            copy[i] = values[v];
            int e = dns_parse(copy, b.len, &m);
            assert_true(e <= 0 && e >= DNS_E_RDATA);
            if (e == 0)
                assert_true(m.answer_count <= DNS_ANSWERS_MAX);
        }
    free(copy);
}

/* --- DNS over TCP ---------------------------------------------------------------------- */

struct collected {
    uint8_t data[3][70000];
    size_t len[3];
    int count;
};

static void collect(void *ctx, const uint8_t *msg, size_t len)
{
    struct collected *c = ctx;
    assert_true(c->count < 3);
    memcpy(c->data[c->count], msg, len);
    c->len[c->count++] = len;
}

static void test_tcp_every_split(void **state)
{
    (void)state;
    static struct builder one, two;
    static uint8_t stream[2000];
    static struct dns_tcp_reasm r;
    static struct collected got;
    build_mx_response(&one);
    build_rich_response(&two);
    size_t n = 0;
    stream[n++] = (uint8_t)(one.len >> 8);
    stream[n++] = (uint8_t)one.len;
    memcpy(stream + n, one.buf, one.len);
    n += one.len;
    stream[n++] = 0;                                 /* an empty message: skipped */
    stream[n++] = 0;
    stream[n++] = (uint8_t)(two.len >> 8);
    stream[n++] = (uint8_t)two.len;
    memcpy(stream + n, two.buf, two.len);
    n += two.len;

    for (size_t i = 0; i <= n; i++)
        for (size_t j = i; j <= n; j++) {            /* three pieces: [0,i) [i,j) [j,n) */
            dns_tcp_init(&r);
            got.count = 0;
            size_t delivered = dns_tcp_feed(&r, stream, i, collect, &got);
            delivered += dns_tcp_feed(&r, stream + i, j - i, collect, &got);
            delivered += dns_tcp_feed(&r, stream + j, n - j, collect, &got);
            assert_int_equal(delivered, 2);
            assert_int_equal(got.count, 2);
            assert_int_equal(got.len[0], one.len);
            assert_memory_equal(got.data[0], one.buf, one.len);
            assert_int_equal(got.len[1], two.len);
            assert_memory_equal(got.data[1], two.buf, two.len);
            assert_int_equal(r.empty, 1);
            assert_int_equal(dns_tcp_pending(&r), 0);
        }

    dns_tcp_init(&r);                                /* byte by byte, with a leftover */
    got.count = 0;
    for (size_t i = 0; i < n - 3; i++)
        dns_tcp_feed(&r, stream + i, 1, collect, &got);
    assert_int_equal(got.count, 1);
    assert_int_equal(dns_tcp_pending(&r), 2 + two.len - 3);
}

static void test_tcp_largest_message(void **state)
{
    (void)state;
    static uint8_t stream[65535 + 2];
    static struct dns_tcp_reasm r;
    static struct collected got;
    memset(stream, 0x5A, sizeof stream);
    stream[0] = 0xFF;
    stream[1] = 0xFF;
    dns_tcp_init(&r);
    got.count = 0;
    assert_int_equal(dns_tcp_feed(&r, stream, 30000, collect, &got), 0);
    assert_int_equal(dns_tcp_feed(&r, stream + 30000, sizeof stream - 30000, collect, &got), 1);
    assert_int_equal(got.len[0], 65535);
    assert_int_equal(got.data[0][65534], 0x5A);
}

/* --- tracker ----------------------------------------------------------------------------- */

struct seen {
    struct dns_lookup lookups[16];
    int n;
    char mx_detail[8][DNS_DETAIL_MAX];
    char mx_name[8][DNS_NAME_MAX];
    int mx_failed;
};

static void on_lookup(void *ctx, const struct dns_lookup *l)
{
    struct seen *s = ctx;
    assert_true(s->n < 16);
    s->lookups[s->n++] = *l;
}

static void on_mx_failed(void *ctx, const struct dns_lookup *mx, const char *detail)
{
    struct seen *s = ctx;
    assert_true(s->mx_failed < 8);
    snprintf(s->mx_detail[s->mx_failed], DNS_DETAIL_MAX, "%s", detail);
    snprintf(s->mx_name[s->mx_failed], DNS_NAME_MAX, "%s", mx->qname);
    s->mx_failed++;
}

static struct dnstrack *tracker(struct seen *s, uint32_t capacity)
{
    memset(s, 0, sizeof *s);
    struct dnstrack_config config = { .capacity = capacity, .on_lookup = on_lookup,
                                      .on_mx_failed = on_mx_failed, .ctx = s };
    struct dnstrack *t = dnstrack_new(&config);
    assert_non_null(t);
    return t;
}

static struct flow flow4(const char *client, unsigned cport, const char *server)
{
    struct flow f;
    memset(&f, 0, sizeof f);
    f.client.family = strchr(client, ':') ? 6 : 4;
    f.server.family = strchr(server, ':') ? 6 : 4;
    inet_pton(f.client.family == 6 ? AF_INET6 : AF_INET, client, f.client.bytes);
    inet_pton(f.server.family == 6 ? AF_INET6 : AF_INET, server, f.server.bytes);
    f.client_port = (uint16_t)cport;
    f.server_port = 53;
    return f;
}

static void build_query(struct builder *b, unsigned id, const char *name, unsigned type)
{
    b_header(b, id, RD, 1, 0, 0, 0);
    b_question(b, name, type);
}

static struct dns_message *query(unsigned id, const char *name, unsigned type)
{
    static struct builder b;
    static struct dns_message m;
    build_query(&b, id, name, type);
    assert_int_equal(dns_parse(b.buf, b.len, &m), DNS_OK);
    return &m;
}

/* A response; answers "A:1.2.3.4", "AAAA:2001:db8::1", "MX:10 mx.example.com". */
static void build_response(struct builder *b, unsigned id, const char *name, unsigned type,
                           unsigned rcode, bool tc, const char *const *answers, unsigned n);

static struct dns_message *response(unsigned id, const char *name, unsigned type,
                                    unsigned rcode, bool tc, const char *const *answers,
                                    unsigned n)
{
    static struct builder b;
    static struct dns_message m;
    build_response(&b, id, name, type, rcode, tc, answers, n);
    assert_int_equal(dns_parse(b.buf, b.len, &m), DNS_OK);
    return &m;
}

static void build_response(struct builder *b, unsigned id, const char *name, unsigned type,
                           unsigned rcode, bool tc, const char *const *answers, unsigned n)
{
    b_header(b, id, QR | RD | RA | (tc ? TC : 0) | rcode, 1, n, 0, 0);
    b_question(b, name, type);
    for (unsigned i = 0; i < n; i++) {
        const char *a = answers[i];
        if (strncmp(a, "A:", 2) == 0 || strncmp(a, "AAAA:", 5) == 0) {
            bool v6 = a[1] == 'A';
            uint8_t bytes[16];
            assert_int_equal(inet_pton(v6 ? AF_INET6 : AF_INET, strchr(a, ':') + 1, bytes), 1);
            b_rr_begin(b, v6 ? DNS_TYPE_AAAA : DNS_TYPE_A, 60);
            b_bytes(b, bytes, v6 ? 16 : 4);
        } else {
            assert_true(strncmp(a, "MX:", 3) == 0);
            char *end;
            unsigned long pref = strtoul(a + 3, &end, 10);
            b_rr_begin(b, DNS_TYPE_MX, 60);
            b_u16(b, (unsigned)pref);
            b_name(b, end + 1);
        }
        b_rr_end(b);
    }
}

static void test_track_match(void **state)
{
    (void)state;
    struct seen s;
    struct dnstrack *t = tracker(&s, 0);
    struct flow f = flow4("10.0.0.5", 40000, "192.0.2.53");
    static const char *const mx[] = { "MX:10 mx1.example.com", "MX:20 mx2.example.com" };
    dnstrack_query(t, query(0x1111, "example.com", DNS_TYPE_MX), &f, 1000000);
    assert_int_equal(s.n, 0);
    /* A response for another name, another port or another id does not match. */
    dnstrack_response(t, response(0x1111, "example.org", DNS_TYPE_MX, 0, false, mx, 2), &f,
                      1010000);
    struct flow other = f;
    other.client_port = 40001;
    dnstrack_response(t, response(0x1111, "example.com", DNS_TYPE_MX, 0, false, mx, 2), &other,
                      1010000);
    dnstrack_response(t, response(0x1112, "example.com", DNS_TYPE_MX, 0, false, mx, 2), &f,
                      1010000);
    assert_int_equal(s.n, 0);
    assert_int_equal(dnstrack_stats(t)->unmatched_responses, 3);
    /* Case differs (0x20 randomization echoed differently): still the same question. */
    dnstrack_response(t, response(0x1111, "EXAMPLE.com", DNS_TYPE_MX, 0, false, mx, 2), &f,
                      1025000);
    assert_int_equal(s.n, 1);
    const struct dns_lookup *l = &s.lookups[0];
    assert_int_equal(l->status, DNS_LOOKUP_ANSWERED);
    assert_int_equal(l->rcode, 0);
    assert_int_equal(l->id, 0x1111);
    assert_string_equal(l->qname, "example.com");
    assert_int_equal(l->qtype, DNS_TYPE_MX);
    assert_int_equal(l->response_us, 25000);
    assert_int_equal(l->ts_us, 1000000);
    assert_true(l->has_mx);
    assert_false(l->has_address);
    assert_int_equal(l->ancount, 2);
    assert_string_equal(l->answers, "10 mx1.example.com,20 mx2.example.com");
    assert_int_equal(l->flow.client_port, 40000);
    assert_int_equal(s.mx_failed, 0);

    /* IPv6 resolver, NS query ignored. */
    struct flow f6 = flow4("2001:db8::5", 5353, "2001:db8::53");
    static const char *const aaaa[] = { "AAAA:2001:db8::25" };
    dnstrack_query(t, query(7, "mx1.example.com", DNS_TYPE_AAAA), &f6, 2000000);
    dnstrack_query(t, query(8, "example.com", DNS_TYPE_NS), &f6, 2000000);
    dnstrack_response(t, response(7, "mx1.example.com", DNS_TYPE_AAAA, 0, false, aaaa, 1), &f6,
                      2000300);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.lookups[1].answers, "2001:db8::25");
    assert_true(s.lookups[1].has_address);
    assert_int_equal(dnstrack_stats(t)->ignored, 1);
    dnstrack_free(t);
}

static void test_track_retransmission(void **state)
{
    (void)state;
    struct seen s;
    struct dnstrack *t = tracker(&s, 0);
    struct flow f = flow4("10.0.0.5", 40000, "192.0.2.53");
    static const char *const a[] = { "A:192.0.2.25" };
    /* q, q (retry), r, r (answer to the retry), q (late copy): one lookup. */
    dnstrack_query(t, query(5, "mx.example.com", DNS_TYPE_A), &f, 0);
    dnstrack_query(t, query(5, "mx.example.com", DNS_TYPE_A), &f, 1000000);
    dnstrack_response(t, response(5, "mx.example.com", DNS_TYPE_A, 0, false, a, 1), &f, 1000500);
    dnstrack_response(t, response(5, "mx.example.com", DNS_TYPE_A, 0, false, a, 1), &f, 1000600);
    dnstrack_query(t, query(5, "mx.example.com", DNS_TYPE_A), &f, 1000700);
    dnstrack_expire(t, 3000000, 5000000);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.lookups[0].retransmits, 1);
    assert_int_equal(s.lookups[0].response_us, 1000500);   /* from the first query */
    assert_int_equal(dnstrack_stats(t)->retransmits, 2);
    assert_int_equal(dnstrack_stats(t)->duplicate_responses, 1);
    dnstrack_expire(t, 10000000, 5000000);                 /* the answered entry goes */
    dnstrack_flush(t);
    assert_int_equal(s.n, 1);
    assert_int_equal(dnstrack_stats(t)->timeouts, 0);
    /* After the timeout the same id may be a new lookup. */
    dnstrack_query(t, query(5, "mx.example.com", DNS_TYPE_A), &f, 20000000);
    dnstrack_flush(t);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.lookups[1].status, DNS_LOOKUP_TIMEOUT);
    assert_true(s.lookups[1].at_end);
    dnstrack_free(t);
}

static void test_track_timeout(void **state)
{
    (void)state;
    struct seen s;
    struct dnstrack *t = tracker(&s, 0);
    struct flow f = flow4("10.0.0.5", 40000, "192.0.2.53");
    dnstrack_query(t, query(1, "slow.example", DNS_TYPE_MX), &f, 0);
    dnstrack_query(t, query(2, "later.example", DNS_TYPE_TXT), &f, 3000000);
    dnstrack_expire(t, 4999999, 5000000);
    assert_int_equal(s.n, 0);
    dnstrack_expire(t, 5000000, 5000000);
    assert_int_equal(s.n, 1);
    const struct dns_lookup *l = &s.lookups[0];
    assert_int_equal(l->status, DNS_LOOKUP_TIMEOUT);
    assert_int_equal(l->rcode, -1);
    assert_int_equal(l->response_us, -1);
    assert_false(l->evicted || l->at_end);
    assert_int_equal(s.mx_failed, 1);
    assert_string_equal(s.mx_detail[0],
                        "Name service error for name=slow.example type=MX: "
                        "Host not found, try again");
    /* A response after the timeout matches nothing. */
    dnstrack_response(t, response(1, "slow.example", DNS_TYPE_MX, 0, false, NULL, 0), &f,
                      6000000);
    assert_int_equal(dnstrack_stats(t)->unmatched_responses, 1);
    dnstrack_expire(t, 8000000, 5000000);
    assert_int_equal(s.n, 2);
    assert_int_equal(dnstrack_stats(t)->timeouts, 2);
    dnstrack_free(t);
}

static void test_track_capacity(void **state)
{
    (void)state;
    struct seen s;
    struct dnstrack *t = tracker(&s, 4);
    struct flow f = flow4("10.0.0.5", 40000, "192.0.2.53");
    static const char *const a[] = { "A:192.0.2.1" };
    char name[32];
    for (unsigned i = 0; i < 6; i++) {
        snprintf(name, sizeof name, "h%u.example", i);
        dnstrack_query(t, query(100 + i, name, DNS_TYPE_A), &f, (int64_t)i * 1000);
    }
    assert_int_equal(s.n, 2);                        /* h0, h1 evicted as timeouts */
    assert_string_equal(s.lookups[0].qname, "h0.example");
    assert_true(s.lookups[0].evicted);
    assert_int_equal(s.lookups[0].status, DNS_LOOKUP_TIMEOUT);
    assert_string_equal(s.lookups[1].qname, "h1.example");
    assert_int_equal(dnstrack_stats(t)->evicted, 2);
    /* Answered entries are evicted silently. */
    for (unsigned i = 2; i < 6; i++) {
        snprintf(name, sizeof name, "h%u.example", i);
        dnstrack_response(t, response(100 + i, name, DNS_TYPE_A, 0, false, a, 1), &f, 10000);
    }
    assert_int_equal(s.n, 6);
    dnstrack_query(t, query(200, "new.example", DNS_TYPE_A), &f, 20000);
    assert_int_equal(s.n, 6);
    assert_int_equal(dnstrack_stats(t)->evicted, 2);
    /* A full table drops an answered entry before timing out a waiting query. */
    struct seen s2;
    struct dnstrack *t2 = tracker(&s2, 3);
    dnstrack_query(t2, query(1, "wait.example", DNS_TYPE_A), &f, 0);
    dnstrack_query(t2, query(2, "done.example", DNS_TYPE_A), &f, 1);
    dnstrack_response(t2, response(2, "done.example", DNS_TYPE_A, 0, false, a, 1), &f, 2);
    dnstrack_query(t2, query(3, "more.example", DNS_TYPE_A), &f, 3);
    dnstrack_query(t2, query(4, "most.example", DNS_TYPE_A), &f, 4);
    assert_int_equal(s2.n, 1);
    assert_int_equal(dnstrack_stats(t2)->evicted, 0);
    dnstrack_response(t2, response(1, "wait.example", DNS_TYPE_A, 0, false, a, 1), &f, 5);
    assert_int_equal(s2.n, 2);
    assert_int_equal(s2.lookups[1].status, DNS_LOOKUP_ANSWERED);
    dnstrack_free(t2);
    dnstrack_flush(t);
    assert_int_equal(s.n, 7);
    dnstrack_free(t);
}

/* --- the MX verdict ---------------------------------------------------------------------- */

static struct dns_lookup mx_lookup(int rcode, bool answered)
{
    struct dns_lookup l;
    memset(&l, 0, sizeof l);
    snprintf(l.qname, sizeof l.qname, "example.com");
    l.qtype = DNS_TYPE_MX;
    l.status = answered ? DNS_LOOKUP_ANSWERED : DNS_LOOKUP_TIMEOUT;
    l.rcode = answered ? rcode : -1;
    return l;
}

static void test_mx_verdict_every_rcode(void **state)
{
    (void)state;
    char d[DNS_DETAIL_MAX];
    static const struct { int rcode; const char *text; } cases[] = {
        { DNS_RCODE_NXDOMAIN, "Host not found" },
        { DNS_RCODE_SERVFAIL, "Host not found, try again" },
        { DNS_RCODE_REFUSED, "Host not found, try again" },
        { DNS_RCODE_FORMERR, "Non-recoverable error" },
        { DNS_RCODE_NOTIMP, "Non-recoverable error" },
        { 9, "Non-recoverable error" },
        { 16, "Non-recoverable error" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct dns_lookup l = mx_lookup(cases[i].rcode, true);
        char want[DNS_DETAIL_MAX];
        snprintf(want, sizeof want, "Name service error for name=example.com type=MX: %s",
                 cases[i].text);
        assert_true(dns_lookup_failed_mx(&l, d, sizeof d));
        assert_string_equal(d, want);
    }
    struct dns_lookup l = mx_lookup(0, false);       /* timeout */
    assert_int_equal(dns_mx_classify(&l, d, sizeof d), DNS_MX_FAILED);
    assert_string_equal(d, "Name service error for name=example.com type=MX: "
                           "Host not found, try again");

    l = mx_lookup(0, true);                          /* NOERROR with MX */
    l.has_mx = true;
    assert_int_equal(dns_mx_classify(&l, d, sizeof d), DNS_MX_OK);
    assert_false(dns_lookup_failed_mx(&l, d, sizeof d));
    l.null_mx = true;                                /* RFC 7505 */
    assert_true(dns_lookup_failed_mx(&l, d, sizeof d));
    assert_string_equal(d, "Domain example.com does not accept mail (nullMX)");
    l = mx_lookup(0, true);                          /* NOERROR, no MX */
    assert_int_equal(dns_mx_classify(&l, d, sizeof d), DNS_MX_NODATA);
    assert_false(dns_lookup_failed_mx(&l, d, sizeof d));
    l.tc = true;                                     /* truncated: the TCP retry decides */
    assert_int_equal(dns_mx_classify(&l, d, sizeof d), DNS_MX_OK);
    l = mx_lookup(DNS_RCODE_NXDOMAIN, true);
    l.qtype = DNS_TYPE_A;
    assert_int_equal(dns_mx_classify(&l, d, sizeof d), DNS_MX_NOT_MX);
    assert_true(dns_fallback_failed(&l, d, sizeof d));
    assert_string_equal(d, "Name service error for name=example.com type=A: Host not found");
    l = mx_lookup(0, true);
    l.qtype = DNS_TYPE_AAAA;
    assert_true(dns_fallback_failed(&l, d, sizeof d));
    assert_string_equal(d, "Name service error for name=example.com type=AAAA: "
                           "Host found but no data record of requested type");
    l.has_address = true;
    assert_false(dns_fallback_failed(&l, d, sizeof d));
    /* A tiny buffer is never overrun. */
    char tiny[8];
    l = mx_lookup(DNS_RCODE_NXDOMAIN, true);
    assert_true(dns_lookup_failed_mx(&l, tiny, sizeof tiny));
    assert_string_equal(tiny, "Name se");
}

static void test_mx_failed_through_tracker(void **state)
{
    (void)state;
    struct seen s;
    struct dnstrack *t = tracker(&s, 0);
    struct flow f = flow4("10.0.0.5", 40000, "192.0.2.53");
    dnstrack_query(t, query(1, "nosuch.example", DNS_TYPE_MX), &f, 0);
    dnstrack_response(t, response(1, "nosuch.example", DNS_TYPE_MX, DNS_RCODE_NXDOMAIN, false,
                                  NULL, 0), &f, 30000);
    /* Postfix asks for A/AAAA after NXDOMAIN too: the verdict waits for them. */
    assert_int_equal(s.mx_failed, 0);
    dnstrack_expire(t, 30000 + 6000000, 5000000);
    assert_int_equal(s.mx_failed, 1);
    assert_string_equal(s.mx_detail[0],
                        "Name service error for name=nosuch.example type=MX: Host not found");
    dnstrack_query(t, query(2, "broken.example", DNS_TYPE_MX), &f, 0);
    dnstrack_response(t, response(2, "broken.example", DNS_TYPE_MX, DNS_RCODE_SERVFAIL, false,
                                  NULL, 0), &f, 30000);
    assert_int_equal(s.mx_failed, 2);
    assert_string_equal(s.mx_name[1], "broken.example");
    dnstrack_free(t);
}

/* Domain without MX: Postfix falls back to A/AAAA of the same name. */
static void test_mx_nodata_fallback(void **state)
{
    (void)state;
    struct seen s;
    struct flow f = flow4("10.0.0.5", 40000, "192.0.2.53");
    struct flow f2 = flow4("10.0.0.5", 40002, "192.0.2.53");
    struct flow f3 = flow4("10.0.0.5", 40003, "192.0.2.53");
    static const char *const a[] = { "A:192.0.2.77" };

    /* 1. No MX, then A and AAAA without data: failed, named after the last lookup. */
    struct dnstrack *t = tracker(&s, 0);
    dnstrack_query(t, query(1, "nomx.example", DNS_TYPE_MX), &f, 0);
    dnstrack_response(t, response(1, "nomx.example", DNS_TYPE_MX, 0, false, NULL, 0), &f, 1000);
    dnstrack_query(t, query(2, "nomx.example", DNS_TYPE_A), &f2, 2000);
    dnstrack_response(t, response(2, "nomx.example", DNS_TYPE_A, 0, false, NULL, 0), &f2, 3000);
    dnstrack_query(t, query(3, "NoMX.example", DNS_TYPE_AAAA), &f3, 4000);
    dnstrack_response(t, response(3, "NoMX.example", DNS_TYPE_AAAA, 0, false, NULL, 0), &f3,
                      5000);
    assert_int_equal(s.mx_failed, 0);                /* settled after the timeout */
    dnstrack_expire(t, 5000000, 5000000);
    assert_int_equal(s.mx_failed, 0);
    dnstrack_expire(t, 5004000, 5000000);
    assert_int_equal(s.mx_failed, 1);
    assert_string_equal(s.mx_name[0], "nomx.example");
    assert_string_equal(s.mx_detail[0], "Name service error for name=NoMX.example type=AAAA: "
                                         "Host found but no data record of requested type");
    dnstrack_free(t);

    /* 2. No MX, but an address: delivered to it, no failure. */
    t = tracker(&s, 0);
    dnstrack_query(t, query(1, "nomx.example", DNS_TYPE_MX), &f, 0);
    dnstrack_response(t, response(1, "nomx.example", DNS_TYPE_MX, 0, false, NULL, 0), &f, 1000);
    dnstrack_query(t, query(2, "nomx.example", DNS_TYPE_AAAA), &f2, 2000);
    dnstrack_response(t, response(2, "nomx.example", DNS_TYPE_AAAA, 0, false, NULL, 0), &f2,
                      3000);
    dnstrack_query(t, query(3, "nomx.example", DNS_TYPE_A), &f3, 4000);
    dnstrack_response(t, response(3, "nomx.example", DNS_TYPE_A, 0, false, a, 1), &f3, 5000);
    dnstrack_flush(t);
    assert_int_equal(s.mx_failed, 0);
    dnstrack_free(t);

    /* 3. No MX and no fallback seen (the address came from a cache): not reported. */
    t = tracker(&s, 0);
    dnstrack_query(t, query(1, "nomx.example", DNS_TYPE_MX), &f, 0);
    dnstrack_response(t, response(1, "nomx.example", DNS_TYPE_MX, 0, false, NULL, 0), &f, 1000);
    dnstrack_expire(t, 60000000, 5000000);
    assert_int_equal(s.mx_failed, 0);
    dnstrack_free(t);

    /* 4. No MX, the A lookup times out: failed, "try again"; the A query kept the verdict
     *    open past the MX's own deadline. */
    t = tracker(&s, 0);
    dnstrack_query(t, query(1, "nomx.example", DNS_TYPE_MX), &f, 0);
    dnstrack_response(t, response(1, "nomx.example", DNS_TYPE_MX, 0, false, NULL, 0), &f, 1000);
    dnstrack_query(t, query(2, "nomx.example", DNS_TYPE_A), &f2, 3000000);
    dnstrack_expire(t, 6000000, 5000000);
    assert_int_equal(s.mx_failed, 0);
    dnstrack_expire(t, 8000000, 5000000);
    assert_int_equal(s.mx_failed, 1);
    assert_string_equal(s.mx_detail[0], "Name service error for name=nomx.example type=A: "
                                         "Host not found, try again");
    dnstrack_free(t);

    /* 5. The A lookup answered before the MX one (parallel lookups) still counts. */
    t = tracker(&s, 0);
    dnstrack_query(t, query(1, "nomx.example", DNS_TYPE_MX), &f, 0);
    dnstrack_query(t, query(2, "nomx.example", DNS_TYPE_A), &f2, 10);
    dnstrack_response(t, response(2, "nomx.example", DNS_TYPE_A, 0, false, a, 1), &f2, 500);
    dnstrack_response(t, response(1, "nomx.example", DNS_TYPE_MX, 0, false, NULL, 0), &f, 1000);
    dnstrack_flush(t);
    assert_int_equal(s.mx_failed, 0);
    dnstrack_free(t);

    /* 6. Another client's A lookup does not count for this one. */
    t = tracker(&s, 0);
    struct flow other = flow4("10.0.0.6", 40000, "192.0.2.53");
    dnstrack_query(t, query(1, "nomx.example", DNS_TYPE_MX), &f, 0);
    dnstrack_response(t, response(1, "nomx.example", DNS_TYPE_MX, 0, false, NULL, 0), &f, 1000);
    dnstrack_query(t, query(2, "nomx.example", DNS_TYPE_A), &other, 2000);
    dnstrack_response(t, response(2, "nomx.example", DNS_TYPE_A, 0, false, NULL, 0), &other,
                      3000);
    dnstrack_flush(t);
    assert_int_equal(s.mx_failed, 0);
    dnstrack_free(t);
}

/* --- linking to the inbound message ------------------------------------------------------ */

static void test_recent_recipients(void **state)
{
    (void)state;
    struct recent_rcpts *r = recent_rcpt_new(3);
    assert_non_null(r);
    assert_null(recent_rcpt_find(r, "example.com", 0, 1000));
    recent_rcpt_add(r, "alice@local.test", "bob@Example.COM", "", 1000000);
    recent_rcpt_add(r, "carol@local.test", "dave@example.com", "<m2@local.test>", 2000000);
    recent_rcpt_add(r, "x@local.test", "no-at-sign", "", 2100000);     /* ignored */
    recent_rcpt_add(r, "erin@local.test", "frank@other.org", "", 2500000);
    const struct recent_rcpt *e = recent_rcpt_find(r, "EXAMPLE.com.", 2600000, 5000000);
    assert_non_null(e);                              /* the newest one at that domain */
    assert_string_equal(e->sender, "carol@local.test");
    assert_string_equal(e->recipient, "dave@example.com");
    assert_string_equal(e->message_id, "<m2@local.test>");
    assert_string_equal(e->domain, "example.com");
    /* Outside the window, or recorded after `now`: no link. */
    assert_null(recent_rcpt_find(r, "example.com", 9000000, 5000000));
    assert_null(recent_rcpt_find(r, "other.org", 2400000, 5000000));
    e = recent_rcpt_find(r, "example.com", 1500000, 5000000);
    assert_non_null(e);
    assert_string_equal(e->recipient, "bob@Example.COM");
    /* The ring keeps the last 3: adding two more pushes the example.com ones out. */
    recent_rcpt_add(r, "g@local.test", "h@third.net", "", 2700000);
    recent_rcpt_add(r, "i@local.test", "j@third.net", "", 2800000);
    assert_null(recent_rcpt_find(r, "example.com", 2900000, 5000000));
    assert_string_equal(recent_rcpt_find(r, "third.net", 2900000, 5000000)->recipient, "j@third.net");
    assert_string_equal(recent_rcpt_find(r, "other.org", 2900000, 5000000)->recipient, "frank@other.org");
    recent_rcpt_free(r);
}

/* The whole chain the lead wires: inbound recipient, failed MX lookup, linked row. */
static void test_failed_mx_linked(void **state)
{
    (void)state;
    struct seen s;
    struct dnstrack *t = tracker(&s, 0);
    struct recent_rcpts *r = recent_rcpt_new(0);
    struct flow f = flow4("10.0.0.25", 33000, "10.0.0.53");
    recent_rcpt_add(r, "alice@corp.test", "bob@typo-domain.example", "", 10000000);
    dnstrack_query(t, query(9, "typo-domain.example", DNS_TYPE_MX), &f, 10200000);
    dnstrack_response(t, response(9, "typo-domain.example", DNS_TYPE_MX, DNS_RCODE_NXDOMAIN,
                                  false, NULL, 0), &f, 10230000);
    dnstrack_expire(t, 10230000 + 6000000, 5000000);
    assert_int_equal(s.mx_failed, 1);
    const struct recent_rcpt *e = recent_rcpt_find(r, s.mx_name[0], 10230000, 60000000);
    assert_non_null(e);
    assert_string_equal(e->sender, "alice@corp.test");
    assert_string_equal(e->recipient, "bob@typo-domain.example");
    assert_string_equal(s.mx_detail[0], "Name service error for name=typo-domain.example "
                                         "type=MX: Host not found");
    recent_rcpt_free(r);
    dnstrack_free(t);
}

/* --- the watch: which name a client meant by an address ------------------------------- */

static void count_row(void *ctx, struct mt_session *row)
{
    (*(int *)ctx)++;
    session_free(row);
}

static void watch_lookup(struct dns_watch *w, const struct flow *f, unsigned id,
                         const char *name, unsigned type, const char *const *answers,
                         unsigned n, int64_t ts_us)
{
    struct builder b;
    build_query(&b, id, name, type);
    dns_watch_datagram(w, f, true, b.buf, b.len, ts_us);
    build_response(&b, id, name, type, 0, false, answers, n);
    dns_watch_datagram(w, f, false, b.buf, b.len, ts_us + 1000);
}

/* An MX answer, then an A answer for one of its hosts: a mail session from that client to
 * that address is to that host, an MX of the domain. Another client, a time before the
 * answer, or an hour later: unknown. An address looked up for itself: no MX. */
static void test_watch_names_servers(void **state)
{
    (void)state;
    int rows = 0;
    char name[MT_NAME_MAX], of[MT_NAME_MAX];
    static const char *const mx[] = { "MX:10 mx1.example.com", "MX:20 mx2.example.com" };
    static const char *const mx1[] = { "A:192.0.2.10" };
    static const char *const mx2[] = { "AAAA:2001:db8::20" };
    static const char *const www[] = { "A:192.0.2.99" };
    const int64_t t = 1000000000;
    struct dns_watch *w = dns_watch_new(count_row, &rows);
    assert_non_null(w);
    struct flow f = flow4("10.0.0.25", 33000, "10.0.0.53");
    watch_lookup(w, &f, 1, "example.com", DNS_TYPE_MX, mx, 2, t);
    watch_lookup(w, &f, 2, "MX1.example.com", DNS_TYPE_A, mx1, 1, t + 5000);
    watch_lookup(w, &f, 3, "mx2.example.com.", DNS_TYPE_AAAA, mx2, 1, t + 6000);
    watch_lookup(w, &f, 4, "www.example.net", DNS_TYPE_A, www, 1, t + 7000);
    assert_int_equal(rows, 4);   /* each lookup is a row as well */
    assert_true(dns_watch_name_of(w, "10.0.0.25", "192.0.2.10", t + 20000, name, sizeof name,
                                  of, sizeof of));
    assert_string_equal(name, "MX1.example.com");   /* as asked */
    assert_string_equal(of, "example.com");
    assert_true(dns_watch_name_of(w, "10.0.0.25", "2001:db8::20", t + 20000, name, sizeof name,
                                  of, sizeof of));
    assert_string_equal(name, "mx2.example.com");
    assert_string_equal(of, "example.com");
    assert_true(dns_watch_name_of(w, "10.0.0.25", "192.0.2.99", t + 20000, name, sizeof name,
                                  of, sizeof of));
    assert_string_equal(name, "www.example.net");
    assert_string_equal(of, "");
    assert_false(dns_watch_name_of(w, "10.0.0.26", "192.0.2.10", t + 20000, name, sizeof name,
                                   of, sizeof of));
    assert_false(dns_watch_name_of(w, "10.0.0.25", "192.0.2.10", t + 1000, name, sizeof name,
                                   of, sizeof of));
    assert_false(dns_watch_name_of(w, "10.0.0.25", "192.0.2.10", t + 3601LL * 1000000, name,
                                   sizeof name, of, sizeof of));
    assert_false(dns_watch_name_of(w, "10.0.0.25", "192.0.2.11", t + 20000, name, sizeof name,
                                   of, sizeof of));
    dns_watch_free(w);
}

/* --- the public capture ---------------------------------------------------------------- */

static size_t hex_decode(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = 0;
    for (; hex[0] && hex[1] && hex[0] != '\n' && n < cap; hex += 2) {
        unsigned v;
        assert_int_equal(sscanf(hex, "%2x", &v), 1);
        out[n++] = (uint8_t)v;
    }
    return n;
}

static void test_suricata_capture(void **state)
{
    (void)state;
    const char *dir = getenv("MAILTAP_TEST_DATA");
    char path[512], line[8192];
    snprintf(path, sizeof path, "%s/dns/suricata_dns-google-a-aaaa-mx.udp",
             dir ? dir : "tests/data");
    FILE *fp = fopen(path, "r");
    if (!fp)
        fail_msg("cannot open %s (run from the repository root or set MAILTAP_TEST_DATA)", path);
    struct seen s;
    struct dnstrack *t = tracker(&s, 0);
    static struct dns_message m, mx_response;
    int packets = 0;
    while (fgets(line, sizeof line, fp)) {
        long long ts;
        char src[64], dst[64], hex[4096];
        unsigned sport, dport;
        assert_int_equal(sscanf(line, "%lld %63s %u %63s %u %4095s", &ts, src, &sport, dst,
                                &dport, hex), 6);
        uint8_t msg[2048];
        size_t len = hex_decode(hex, msg, sizeof msg);
        assert_int_equal(dns_parse(msg, len, &m), DNS_OK);
        assert_true(m.edns);
        assert_string_equal(m.qname, "google.com");
        bool is_query = dport == 53;
        assert_int_equal(m.qr, !is_query);
        struct flow f = is_query ? flow4(src, sport, dst) : flow4(dst, dport, src);
        if (is_query)
            dnstrack_query(t, &m, &f, ts);
        else
            dnstrack_response(t, &m, &f, ts);
        if (m.qr && m.qtype == DNS_TYPE_MX)
            mx_response = m;
        if (m.qr && m.qtype == DNS_TYPE_A) {
            assert_int_equal(m.answer_count, 12);
            assert_string_equal(m.answers[0].data, "216.197.242.244");
            assert_int_equal(m.answers[0].ttl, 299);
        }
        if (m.qr && m.qtype == DNS_TYPE_AAAA)
            assert_string_equal(m.answers[0].data, "2607:f8b0:400f:801::200e");
        packets++;
    }
    fclose(fp);
    assert_int_equal(packets, 6);

    /* The MX answer list, as the MANIFEST describes it. */
    static const char *const want[] = {
        "10 aspmx.l.google.com", "20 alt1.aspmx.l.google.com", "30 alt2.aspmx.l.google.com",
        "40 alt3.aspmx.l.google.com", "50 alt4.aspmx.l.google.com",
    };
    assert_int_equal(mx_response.id, 0x5616);
    assert_int_equal(mx_response.ancount, 5);
    assert_int_equal(mx_response.answer_count, 5);
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(mx_response.answers[i].type, DNS_TYPE_MX);
        assert_string_equal(mx_response.answers[i].data, want[i]);
    }
    assert_int_equal(mx_response.edns_udp_size, 512);

    assert_int_equal(s.n, 3);
    const struct dns_lookup *mx = &s.lookups[2];
    assert_int_equal(mx->qtype, DNS_TYPE_MX);
    assert_int_equal(mx->flow.client_port, 54380);
    assert_int_equal(mx->response_us, 1494364064210977LL - 1494364064147422LL);
    assert_string_equal(mx->answers, "10 aspmx.l.google.com,20 alt1.aspmx.l.google.com,"
                                     "30 alt2.aspmx.l.google.com,40 alt3.aspmx.l.google.com,"
                                     "50 alt4.aspmx.l.google.com");
    assert_int_equal(s.mx_failed, 0);
    assert_int_equal(s.lookups[0].qtype, DNS_TYPE_A);
    assert_int_equal(s.lookups[0].response_us, 65260);
    dnstrack_flush(t);
    assert_int_equal(dnstrack_stats(t)->timeouts, 0);
    assert_int_equal(dnstrack_stats(t)->lookups, 3);
    dnstrack_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query_header_question_edns),
        cmocka_unit_test(test_mx_compressed),
        cmocka_unit_test(test_a_aaaa),
        cmocka_unit_test(test_txt_spf_dmarc),
        cmocka_unit_test(test_ptr_cname),
        cmocka_unit_test(test_tlsa),
        cmocka_unit_test(test_answer_cap_and_other_types),
        cmocka_unit_test(test_edns_extended_rcode_and_tc),
        cmocka_unit_test(test_pointer_attacks),
        cmocka_unit_test(test_name_length_limits),
        cmocka_unit_test(test_long_pointer_chain),
        cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_every_byte_flipped),
        cmocka_unit_test(test_tcp_every_split),
        cmocka_unit_test(test_tcp_largest_message),
        cmocka_unit_test(test_track_match),
        cmocka_unit_test(test_track_retransmission),
        cmocka_unit_test(test_track_timeout),
        cmocka_unit_test(test_track_capacity),
        cmocka_unit_test(test_mx_verdict_every_rcode),
        cmocka_unit_test(test_mx_failed_through_tracker),
        cmocka_unit_test(test_mx_nodata_fallback),
        cmocka_unit_test(test_recent_recipients),
        cmocka_unit_test(test_failed_mx_linked),
        cmocka_unit_test(test_watch_names_servers),
        cmocka_unit_test(test_suricata_capture),
    };
    return cmocka_run_group_tests_name("dns", tests, NULL, NULL);
}
