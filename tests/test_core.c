/* test_core.c — unit tests for the shared pieces under the decoders: text sanitizing, the
 * sessions' heap text and the decoders' saved lines, base64, the line reader (every split
 * point), link-layer decoding, address formatting, overlapping segments, local networks,
 * the SYN tracker, the IPv6 address map and idle streams. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "capture/linklayer.h"
#include "cli/localnets.h"
#include "protocols/connection.h"
#include "protocols/encoded_words.h"
#include "protocols/linereader.h"
#include "protocols/session.h"
#include "protocols/text.h"
#include "reassembly/attempts.h"
#include "reassembly/flow.h"
#include "cli/attempt_limit.h"
#include "reassembly/ipv6map.h"
#include "reassembly/overlap.h"
#include "reassembly/reassembly.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- text ---------------------------------------------------------------------- */

static void test_sanitize_escapes_controls(void **state)
{
    (void)state;
    char out[128];
    const char input[] = "a\x1b[31mb\x07\\c\0d\x7f";
    text_sanitize(out, sizeof out, input, sizeof input - 1);
    assert_string_equal(out, "a\\x1b[31mb\\x07\\\\c\\x00d\\x7f");
}

static void test_sanitize_keeps_utf8_rejects_c1_and_invalid(void **state)
{
    (void)state;
    char out[128];
    text_sanitize(out, sizeof out, "caf\xc3\xa9 \xe4\xbd\xa0", 9);
    assert_string_equal(out, "caf\xc3\xa9 \xe4\xbd\xa0");
    text_sanitize(out, sizeof out, "\xc2\x9b" "2J", 4);   /* C1 CSI */
    assert_string_equal(out, "\\xc2\\x9b2J");
    text_sanitize(out, sizeof out, "\xff\xc0\x80", 3);     /* invalid, overlong */
    assert_string_equal(out, "\\xff\\xc0\\x80");
}

static void test_sanitize_never_overflows(void **state)
{
    (void)state;
    char out[8];
    size_t n = text_sanitize(out, sizeof out, "\x01\x02\x03", 3);
    assert_true(n < sizeof out);
    assert_string_equal(out, "\\x01");   /* cut at an escape boundary */
    n = text_sanitize(out, sizeof out, "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 8);
    assert_int_equal(n, 6);
}

/* The definition of text_find_ci(): the first offset where the needle matches, ASCII
 * letters in either case. */
static long find_ci_reference(const char *s, size_t len, const char *needle)
{
    size_t nl = strlen(needle);
    for (size_t i = 0; i + nl <= len; i++) {
        size_t k = 0;
        while (k < nl) {
            unsigned char a = (unsigned char)s[i + k], b = (unsigned char)needle[k];
            if (a >= 'A' && a <= 'Z')
                a = (unsigned char)(a + 32);
            if (b >= 'A' && b <= 'Z')
                b = (unsigned char)(b + 32);
            if (a != b)
                break;
            k++;
        }
        if (k == nl)
            return (long)i;
    }
    return -1;
}

/* Haystacks and needles from a small alphabet (both cases of two letters, a digit, a
 * bracket, a byte above 0x7f: C0 and its lowercase-looking neighbour), so that near misses
 * and repeated first bytes abound; every result equals the reference. */
static void test_find_ci_matches_reference(void **state)
{
    (void)state;
    static const char alphabet[] = "aAbB1[\xc0\xe0";
    unsigned seed = 12345;
    char hay[64], needle[8];
    for (int round = 0; round < 200000; round++) {
        seed = seed * 1103515245u + 12345u;
        size_t len = (seed >> 16) % sizeof hay;
        seed = seed * 1103515245u + 12345u;
        size_t nl = (seed >> 16) % (sizeof needle - 1);
        for (size_t i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            hay[i] = alphabet[(seed >> 16) % (sizeof alphabet - 1)];
        }
        for (size_t i = 0; i < nl; i++) {
            seed = seed * 1103515245u + 12345u;
            needle[i] = alphabet[(seed >> 16) % (sizeof alphabet - 1)];
        }
        needle[nl] = '\0';
        long want = nl == 0 ? 0 : find_ci_reference(hay, len, needle);
        long got = text_find_ci(hay, len, needle);
        if (got != want)
            fail_msg("round %d: '%.*s' in '%.*s': %ld, expected %ld", round, (int)nl, needle,
                     (int)len, hay, got, want);
    }
    assert_int_equal(text_find_ci("Relay access DENIED", 19, "denied"), 13);
    assert_int_equal(text_find_ci("xx", 2, "xxx"), -1);
}

/* The definition, a byte (or a valid non-C1 UTF-8 character) at a time, as text_sanitize()
 * was before its ASCII runs were copied whole: the two agree on every input and cap. */
static size_t sanitize_reference_prefix(char *dst, size_t cap, const unsigned char *s, size_t len,
                                        bool *cut)
{
    static const char hex[] = "0123456789abcdef";
    size_t out = 0, i = 0;
    while (i < len) {
        uint32_t cp;
        size_t seq = text_utf8_decode(s + i, len - i, &cp);
        if (seq > 1 && (cp <= 0x9f || (cp >= 0x202a && cp <= 0x202e) ||
                        (cp >= 0x2066 && cp <= 0x2069) || cp == 0x061c || cp == 0x200e ||
                        cp == 0x200f || cp == 0x2028 || cp == 0x2029))
            seq = 0;   /* C1 and bidi controls are escaped byte by byte */
        const char *piece;
        char buf[5];
        size_t n;
        if (seq == 1 && s[i] >= 0x20 && s[i] != 0x7f && s[i] != '\\') {
            buf[0] = (char)s[i], n = 1, piece = buf;
        } else if (seq == 1 && s[i] == '\\') {
            piece = "\\\\", n = 2;
        } else if (seq > 1) {
            piece = (const char *)s + i, n = seq;
        } else {
            buf[0] = '\\', buf[1] = 'x', buf[2] = hex[s[i] >> 4], buf[3] = hex[s[i] & 0xf];
            piece = buf, n = 4, seq = 1;
        }
        if (out + n >= cap)
            break;
        memcpy(dst + out, piece, n);
        out += n;
        i += seq;
    }
    dst[out] = '\0';
    *cut = i < len;
    return out;
}

/* A cut output (from a capacity of 16) ends in "...", within the capacity. */
static size_t sanitize_reference(char *dst, size_t cap, const unsigned char *s, size_t len)
{
    bool cut;
    size_t out = sanitize_reference_prefix(dst, cap, s, len, &cut);
    if (!cut || cap < 16)
        return out;
    out = sanitize_reference_prefix(dst, cap - 3, s, len, &cut);
    strcpy(dst + out, "...");
    return out + 3;
}

static void test_sanitize_matches_reference(void **state)
{
    (void)state;
    static const char *const pieces[] = { "abc", "x", "\\", "\x1b[2J", "\xc3\xa9", "\x7f",
                                          "\xe5\xa0\xb1", "\xc2\x9b", "\xff", " ", "\0",
                                          "\xf0\x9f\x93\xa7", "~", "\xe5\xa0",
                                          "\xe2\x80\xae", "\xe2\x81\xa6", "\xe2\x80\x8f",
                                          "\xe2\x80\xa8" };
    unsigned char raw[200];
    char got[1000], want[1000];
    unsigned seed = 11;
    for (int round = 0; round < 3000; round++) {
        size_t len = 0, target = (size_t)round % 150;
        while (len < target) {
            seed = seed * 1103515245u + 12345u;
            size_t k = (seed >> 16) % (sizeof pieces / sizeof pieces[0]);
            size_t plen = k == 10 ? 1 : strlen(pieces[k]);   /* "\0": one NUL byte */
            memcpy(raw + len, pieces[k], plen);
            len += plen;
        }
        for (size_t cap = 1; cap < 4 * len + 8; cap += 1 + (size_t)round % 3) {
            size_t n = text_sanitize(got, cap, (const char *)raw, len);
            size_t m = sanitize_reference(want, cap, raw, len);
            assert_int_equal(n, m);
            assert_memory_equal(got, want, n + 1);
        }
    }
}

/* Each transcript line starts "USEC DIR " (as "%lld %c " would write it). */
static void test_transcript_prefix(void **state)
{
    (void)state;
    static const int64_t stamps[] = { 0, 7, 1780000000020185LL, -1, -1234567,
                                      INT64_MAX, INT64_MIN };
    for (size_t i = 0; i < sizeof stamps / sizeof stamps[0]; i++) {
        struct mt_session *s = session_new(MT_PROTO_SMTP);
        char want[64];
        assert_non_null(s);
        assert_int_equal(session_transcript_add(s, stamps[i], 'C', "EHLO x", 6), 0);
        snprintf(want, sizeof want, "%lld C EHLO x\n", (long long)stamps[i]);
        assert_string_equal(s->transcript, want);
        session_free(s);
    }
}

/* RFC 2047: what is decoded, what is left as it is. */
static void test_encoded_words(void **state)
{
    (void)state;
    static const struct { const char *in, *want; } cases[] = {
        { "plain text, no words", "plain text, no words" },
        { "=?utf-8?B?w6lt?=", "\xc3\xa9m" },
        { "=?UTF-8?q?a_b=3Fc=3d?=", "a b?c=" },
        { "=?iso-8859-1?Q?caf=E9?= au lait", "caf\xc3\xa9 au lait" },
        { "=?GB2312?B?xOO6ww==?=", "\xe4\xbd\xa0\xe5\xa5\xbd" },
        { "=?ISO-2022-JP?B?GyRCJEskWyRzGyhC?=", "\xe3\x81\xab\xe3\x81\xbb\xe3\x82\x93" },
        { "=?utf-8*en?q?hi?=", "hi" },                       /* RFC 2231 language */
        /* blanks between two words go, around text they stay */
        { "=?utf-8?q?a?= \t =?utf-8?q?b?=", "ab" },
        { "x =?utf-8?q?a?= y", "x a y" },
        { "=?utf-8?q?a?=  =?x-unknown?q?b?=", "a  =?x-unknown?q?b?=" },
        /* not decoded: malformed, unknown charset, bytes invalid in the charset */
        { "=?utf-8?q?a b?=", "=?utf-8?q?a b?=" },
        { "=?utf-8?x?abc?=", "=?utf-8?x?abc?=" },
        { "=?utf-8?q?=4?=", "=?utf-8?q?=4?=" },
        { "=?utf-8?b?!!!!?=", "=?utf-8?b?!!!!?=" },
        { "=?utf-8?q?open", "=?utf-8?q?open" },
        { "=??q?x?=", "=??q?x?=" },
        { "=?x-no-such-charset?q?abc?=", "=?x-no-such-charset?q?abc?=" },
        { "=?GB2312?B?xOP//w==?=", "=?GB2312?B?xOP//w==?=" },
        { "=?utf-8?q?" "?=", "" },   /* (split: "??=" is a trigraph) */
        { "a=?b", "a=?b" },
        { "==?utf-8?q?x?==", "=x=" },
    };
    char out[256];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = encoded_words_decode(out, sizeof out, cases[i].in, strlen(cases[i].in));
        if (strcmp(out, cases[i].want) != 0 || n != strlen(cases[i].want))
            fail_msg("\"%s\": got \"%s\", want \"%s\"", cases[i].in, out, cases[i].want);
    }
    /* a control character inside a word is only decoded: the caller sanitizes */
    assert_int_equal(encoded_words_decode(out, sizeof out, "=?utf-8?B?G1sySg==?=", 20), 4);
    assert_memory_equal(out, "\x1b[2J", 4);
}

/* Every cap: a prefix of the whole result cut between UTF-8 characters, NUL-terminated,
 * nothing written past the cap. */
static void test_encoded_words_caps(void **state)
{
    (void)state;
    const char *in = "Re: =?GB2312?B?xOO6ww==?= =?UTF-8?Q?Fran=C3=A7ois?= and =?utf-8?q?more?=";
    char whole[256], out[256];
    size_t total = encoded_words_decode(whole, sizeof whole, in, strlen(in));
    for (size_t cap = 1; cap <= total + 2; cap++) {
        memset(out, 'Z', sizeof out);
        size_t n = encoded_words_decode(out, cap, in, strlen(in));
        assert_true(n < cap);
        assert_int_equal(out[n], '\0');
        assert_int_equal(out[cap], 'Z');
        assert_memory_equal(out, whole, n);
        assert_int_equal(text_utf8_cut(whole, total, n), n);   /* a character boundary */
        if (cap > total)
            assert_int_equal(n, total);
    }
    /* a word whose last byte begins a character the raw 8-bit text after it continues
     * (fuzz_words): a cut between the two pieces leaves none of it */
    const char joined[] = "=?utf-8?B?G+s=?=\x83\xaf.";
    total = encoded_words_decode(whole, sizeof whole, joined, strlen(joined));
    assert_int_equal(total, 5);
    for (size_t cap = 1; cap <= total + 1; cap++) {
        size_t n = encoded_words_decode(out, cap, joined, strlen(joined));
        assert_memory_equal(out, whole, n);
        assert_int_equal(text_utf8_cut(whole, total, n), n);
    }
}

/* A heap text member holds exactly what a char array of its cap held: the same sanitizing,
 * the same cut at a character boundary, for every length around the caps; NULL for "". */
static void test_session_text(void **state)
{
    (void)state;
    static const char *const pieces[] = { "a", "\xe5\xa0\xb1", "\\", "\x1b", "\xc3\xa9",
                                          "\xf0\x9f\x93\xa7", "\xff", " " };
    static const size_t caps[] = { 1, 2, 5, MT_NAME_MAX, MT_ADDR_MAX, MT_TEXT_MAX };
    char raw[1400], array[MT_STR_MAX];
    unsigned seed = 7;
    for (int round = 0; round < 400; round++) {
        size_t len = 0, want = (size_t)round * 3 % 1300;
        while (len < want) {
            seed = seed * 1103515245u + 12345u;
            const char *p = pieces[(seed >> 16) % (sizeof pieces / sizeof pieces[0])];
            memcpy(raw + len, p, strlen(p));
            len += strlen(p);
        }
        for (size_t c = 0; c < sizeof caps / sizeof caps[0]; c++) {
            char *field = NULL;
            size_t n = text_sanitize(array, caps[c], raw, len);
            assert_true(session_text_set(&field, caps[c], raw, len));
            if (n == 0) {
                assert_null(field);
            } else {
                assert_non_null(field);
                assert_string_equal(field, array);
            }
            /* text already sanitized, longer than the cap: cut between characters */
            char clean[4 * sizeof raw];
            size_t clean_len = text_sanitize(clean, sizeof clean, raw, len);
            assert_true(session_text_copy(&field, caps[c], clean, clean_len));
            size_t cut = text_utf8_cut(clean, clean_len, caps[c] - 1);
            assert_int_equal(strlen(mt_str(field)), cut);
            assert_memory_equal(mt_str(field), clean, cut);
            free(field);
        }
    }
    char *field = NULL;
    assert_true(session_text_setf(&field, 16, "retrieved by %s %d", "RETR", 12345));
    assert_string_equal(field, "retrieved by RE");   /* snprintf's cut */
    assert_true(session_text_setf(&field, MT_TEXT_MAX, "%s", ""));
    assert_null(field);
    assert_string_equal(mt_str(field), "");
}

/* A saved line: grown in steps of MT_LINE_BUF_ROUND, cut at MT_TEXT_MAX, its buffer kept
 * for a shorter line; an empty line needs no buffer; copying onto itself changes nothing. */
/* A hidden line's echo is masked whole, by any of its words, in any case; other words
 * of the reply stay. */
static void test_mask_echo(void **state)
{
    (void)state;
    static const struct { const char *line, *hidden, *want; } cases[] = {
        { "-ERR Unknown command: HUNTER2!X", "Hunter2!x", "-ERR Unknown command: *****" },
        { "-ERR Unknown command: TR0UB4DOR", "Tr0ub4dor and3 more", "-ERR Unknown command: *****" },
        { "Hunter2!x BAD Error in IMAP command.", "Hunter2!x", "***** BAD Error in IMAP command." },
        { "-ERR Unknown command: MYPASS", "my", "-ERR Unknown command: MYPASS" },   /* a part */
        { "-ERR nothing echoed", "s3cr3t", "-ERR nothing echoed" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[128];
        size_t n = text_mask_echo(out, sizeof out, cases[i].line, strlen(cases[i].line),
                                  cases[i].hidden, strlen(cases[i].hidden), "*****");
        out[n] = '\0';
        assert_string_equal(out, cases[i].want);
    }
    char tiny[4];   /* never past its capacity */
    assert_int_equal(text_mask_echo(tiny, sizeof tiny, "-ERR x", 6, "x", 1, "*****"), 4);
}

static void test_line_buf(void **state)
{
    (void)state;
    char raw[MT_TEXT_MAX + 100];
    for (size_t i = 0; i < sizeof raw; i++)
        raw[i] = (char)('a' + i % 26);
    struct mt_line_buf b = { 0 };
    assert_string_equal(line_buf_text(&b), "");
    line_buf_set(&b, raw, 0);   /* empty: nothing allocated */
    assert_null(b.text);
    assert_int_equal(b.len, 0);
    assert_string_equal(line_buf_text(&b), "");

    static const size_t lens[] = { 1, 63, 64, 65, 128, 129, MT_TEXT_MAX - 1, MT_TEXT_MAX,
                                   MT_TEXT_MAX + 1, sizeof raw };
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        size_t want = lens[i] < MT_TEXT_MAX ? lens[i] : MT_TEXT_MAX;
        size_t cap = (want + MT_LINE_BUF_ROUND - 1) / MT_LINE_BUF_ROUND * MT_LINE_BUF_ROUND;
        line_buf_set(&b, raw + 1, lens[i] < sizeof raw - 1 ? lens[i] : sizeof raw - 1);
        assert_int_equal(b.len, want);
        assert_int_equal(b.cap, cap < MT_TEXT_MAX ? cap : MT_TEXT_MAX);
        assert_memory_equal(line_buf_text(&b), raw + 1, want);
    }
    /* a shorter line reuses the buffer; so does an empty one */
    const char *kept = b.text;
    line_buf_set(&b, "250 ok", 6);
    assert_ptr_equal(b.text, kept);
    assert_int_equal(b.cap, MT_TEXT_MAX);
    assert_int_equal(b.len, 6);
    assert_memory_equal(line_buf_text(&b), "250 ok", 6);
    line_buf_set(&b, "", 0);
    assert_ptr_equal(b.text, kept);
    assert_int_equal(b.len, 0);

    /* copies own their buffer; a copy onto itself is a no-op */
    line_buf_set(&b, "221 bye", 7);
    struct mt_line_buf c = { 0 };
    line_buf_copy(&c, &b);
    assert_ptr_not_equal(c.text, b.text);
    assert_int_equal(c.len, 7);
    assert_int_equal(c.cap, MT_LINE_BUF_ROUND);
    assert_memory_equal(c.text, "221 bye", 7);
    line_buf_copy(&c, &c);
    assert_int_equal(c.len, 7);
    assert_memory_equal(c.text, "221 bye", 7);
    struct mt_line_buf empty = { 0 };
    line_buf_copy(&c, &empty);   /* from no buffer at all */
    assert_int_equal(c.len, 0);
    assert_int_equal(c.cap, MT_LINE_BUF_ROUND);

    line_buf_free(&b);
    line_buf_free(&c);
    assert_null(b.text);
    assert_int_equal(b.len + b.cap, 0);
    assert_string_equal(line_buf_text(&b), "");
    line_buf_free(&b);   /* freeing an empty one is harmless */
}

static void test_base64(void **state)
{
    (void)state;
    unsigned char out[64];
    long n = text_base64_decode(out, sizeof out, "AGFsaWNlAHNlY3JldA==", 20);
    assert_int_equal(n, 13);
    assert_memory_equal(out, "\0alice\0secret", 13);
    assert_int_equal(text_base64_decode(out, sizeof out, "a$b=", 4), -1);
    assert_int_equal(text_base64_decode(out, 2, "YWxpY2U=", 8), -1);
}

static void test_extract_path(void **state)
{
    (void)state;
    char out[64];
    const char *arg = "FROM:<alice@example.test> SIZE=100";
    text_extract_path(out, sizeof out, arg, strlen(arg));
    assert_string_equal(out, "alice@example.test");
    arg = "TO: bob@example.test";
    text_extract_path(out, sizeof out, arg, strlen(arg));
    assert_string_equal(out, "bob@example.test");
    arg = "FROM:<>";
    text_extract_path(out, sizeof out, arg, strlen(arg));
    assert_string_equal(out, "");
}

/* --- connection: the protocol of a bare --port --------------------------------------- */

/* Runs one connection on a guessed port: client bytes (maybe before the greeting, split
 * anywhere), then the server's, then more of the client's; returns the closed session. */
static struct mt_session *guessed_connection(const char *early, const char *greeting,
                                             const char *late)
{
    struct flow flow = { .client = { .family = 4, .bytes = { 10, 0, 0, 1 } },
                         .server = { .family = 4, .bytes = { 10, 0, 0, 2 } },
                         .client_port = 40000, .server_port = 1110 };
    struct mt_connection conn;
    assert_true(connection_open(&conn, MT_PROTO_SMTP, true, &flow, true, 1000000));
    for (size_t i = 0; early[i]; i++)   /* a byte at a time: held, in order */
        connection_data(&conn, NULL, STREAM_FROM_CLIENT, early + i, 1, 1000001);
    if (greeting[0])
        connection_data(&conn, NULL, STREAM_FROM_SERVER, greeting, strlen(greeting), 1000002);
    if (late[0])
        connection_data(&conn, NULL, STREAM_FROM_CLIENT, late, strlen(late), 1000003);
    struct mt_session *s = connection_close(&conn, STREAM_CLOSED, false, 1000004);
    assert_non_null(s);
    return s;
}

/* A server silent only because the input ended moments after the connection is no
 * server down: incomplete; silent for longer, or at a real close, it is no_response. */
static void test_connection_silence_cut_by_the_end(void **state)
{
    (void)state;
    struct flow flow = { .client = { .family = 4, .bytes = { 10, 0, 0, 1 } },
                         .server = { .family = 4, .bytes = { 10, 0, 0, 2 } },
                         .client_port = 40000, .server_port = 25 };
    static const struct { enum stream_end how; int64_t end_us; enum mt_status want; } cases[] = {
        { STREAM_END_OF_INPUT, 1000156, MT_STATUS_INCOMPLETE },
        { STREAM_END_OF_INPUT, 1000000 + 60LL * 1000000, MT_STATUS_NO_RESPONSE },
        { STREAM_CLOSED, 1000156, MT_STATUS_NO_RESPONSE },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct mt_connection conn;
        assert_true(connection_open(&conn, MT_PROTO_SMTP, false, &flow, true, 1000000));
        struct mt_session *s = connection_close(&conn, cases[i].how, false, cases[i].end_us);
        assert_non_null(s);
        assert_int_equal(s->status, cases[i].want);
        if (cases[i].want == MT_STATUS_INCOMPLETE)
            assert_non_null(strstr(s->status_line, "the capture ended 0.0 s after the connection"));
        session_free(s);
    }
}

/* A RST libnids did not take (at the right edge of a full window: a server killed while a
 * slow client reads) that nothing followed is how the connection ended: reset by the
 * server in the middle of RETR, not a login that went well; one that bytes followed is not.
 * A server's FIN says who closed, also when the capture missed the client's. */
static void test_connection_reset_libnids_left(void **state)
{
    (void)state;
    struct flow flow = { .client = { .family = 4, .bytes = { 10, 0, 0, 1 } },
                         .server = { .family = 4, .bytes = { 10, 0, 0, 2 } },
                         .client_port = 40000, .server_port = 110 };
    static const char *const server[] = { "+OK ready\r\n", "+OK\r\n", "+OK Logged in.\r\n",
                                          "+OK 900 octets\r\nSubject: x\r\n\r\nbody" };
    static const char *const client[] = { "USER a\r\n", "PASS b\r\n", "RETR 1\r\n" };
    for (int after = 0; after < 4; after++) {
        struct mt_connection conn;
        int64_t t = 1000000;
        assert_true(connection_open(&conn, MT_PROTO_POP3, false, &flow, true, t));
        for (int i = 0; i < 4; i++) {
            connection_data(&conn, NULL, STREAM_FROM_SERVER, server[i], strlen(server[i]), ++t);
            if (i < 3)
                connection_data(&conn, NULL, STREAM_FROM_CLIENT, client[i], strlen(client[i]), ++t);
        }
        if (after < 2)
            connection_reset_by(&conn, STREAM_FROM_SERVER, ++t);
        else   /* the server's FIN; the client's is not captured (2), or comes (3) */
            connection_fin_by(&conn, STREAM_FROM_SERVER, ++t);
        if (after == 1)   /* the connection went on: that RST ended nothing */
            connection_data(&conn, NULL, STREAM_FROM_SERVER, "more", 4, ++t);
        if (after == 3)
            connection_fin_by(&conn, STREAM_FROM_CLIENT, ++t);
        struct mt_session *s = connection_close(&conn, after == 3 ? STREAM_CLOSED
                                                                  : STREAM_END_OF_INPUT,
                                                false, t + 5000000);
        assert_non_null(s);
        if (after >= 2) {   /* who closed first is said */
            assert_int_equal(s->end, MT_END_CLOSE);
            assert_int_equal(s->status, MT_STATUS_INTERRUPTED);
            assert_string_equal(s->status_line, "[connection closed by the server during RETR: "
                                                "the message cut after 18 of 900 bytes]");
        } else if (!after) {
            assert_int_equal(s->end, MT_END_RESET);
            assert_int_equal(s->status, MT_STATUS_INTERRUPTED);
            assert_string_equal(s->status_line, "[connection reset by the server during RETR: the "
                                                "message cut after 18 of 900 bytes]");
        } else {
            assert_int_equal(s->end, MT_END_EOF);
            assert_int_equal(s->status, MT_STATUS_INCOMPLETE);
        }
        session_free(s);
    }
}

/* Each transcript line's time is no earlier than the one before it. */
static void assert_transcript_in_time_order(const struct mt_session *s)
{
    long long last = 0;
    for (const char *line = s->transcript; line && *line; line = strchr(line, '\n') + 1) {
        long long at = strtoll(line, NULL, 10);
        if (at < last)
            fail_msg("transcript out of time order at \"%.*s\":\n%s",
                     (int)strcspn(line, "\n"), line, s->transcript);
        last = at;
    }
}

/* Both texts are in text, the first before the second. */
static void assert_in_order(const char *text, const char *first, const char *second)
{
    const char *a = strstr(text, first), *b = strstr(text, second);
    assert_non_null(a);
    assert_non_null(b);
    assert_true(a < b);
}

/* A server silent longer than the idle timeout: the connection is let go, and the command
 * it never answered says so, as at the capture's end (walkthrough 12: it read login_ok,
 * "nothing wrong", past 31 minutes). A running IMAP IDLE is waiting by design. */
static void test_silence_past_the_idle_timeout(void **state)
{
    (void)state;
    struct flow flow = { .client = { .family = 4, .bytes = { 10, 0, 0, 1 } },
                         .server = { .family = 4, .bytes = { 10, 0, 0, 2 } },
                         .client_port = 40000, .server_port = 110 };
    static const struct { enum mt_proto proto; const char *server, *client, *want; } cases[] = {
        { MT_PROTO_POP3, "+OK ready\r\n+OK\r\n+OK logged in\r\n",
          "USER bob\r\nPASS pw\r\nSTAT\r\n",
          "[no reply to STAT for 1900 s when the idle connection was let go]" },
        { MT_PROTO_IMAP, "* OK ready\r\na1 OK logged in\r\n", "a1 LOGIN bob pw\r\na2 NOOP\r\n",
          "[no reply to NOOP for 1900 s when the idle connection was let go]" },
        { MT_PROTO_SMTP, "220 mx\r\n250 ok\r\n", "EHLO c\r\nMAIL FROM:<a@b>\r\n",
          "no reply to MAIL for 1900 s when the idle connection was let go" },
        { MT_PROTO_IMAP, "* OK ready\r\na1 OK logged in\r\n+ idling\r\n",
          "a1 LOGIN bob pw\r\na2 IDLE\r\n", NULL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct mt_connection conn;
        int64_t t = 1000000;
        assert_true(connection_open(&conn, cases[i].proto, false, &flow, true, t));
        /* a server line, a client line, and so on, as they would come */
        const char *sp = cases[i].server, *cp = cases[i].client;
        while (*sp || *cp) {
            if (*sp) {
                const char *end = strstr(sp, "\r\n") + 2;
                connection_data(&conn, NULL, STREAM_FROM_SERVER, sp, (size_t)(end - sp), ++t);
                sp = end;
            }
            if (*cp) {
                const char *end = strstr(cp, "\r\n") + 2;
                connection_data(&conn, NULL, STREAM_FROM_CLIENT, cp, (size_t)(end - cp), ++t);
                cp = end;
            }
        }
        struct mt_session *s = connection_close(&conn, STREAM_IDLE_TIMEOUT, false,
                                                t + 1900LL * 1000000);
        assert_non_null(s);
        if (cases[i].want) {
            assert_int_equal(s->status, MT_STATUS_NO_RESPONSE);
            assert_string_equal(s->status_line, cases[i].want);
        } else {
            assert_int_not_equal(s->status, MT_STATUS_NO_RESPONSE);
        }
        session_free(s);
    }
}

/* A download the client reset two seconds after its last bytes came (curl --max-time): the
 * cut FETCH line, stamped when it began, comes before the note on the reset, and the
 * deciding note after both, however the bytes were cut (walkthrough 10). */
static void test_connection_reset_after_cut_line(void **state)
{
    (void)state;
    struct flow flow = { .client = { .family = 4, .bytes = { 10, 0, 0, 1 } },
                         .server = { .family = 4, .bytes = { 10, 0, 0, 2 } },
                         .client_port = 40000, .server_port = 143 };
    static const char *const server[] = { "* OK ready\r\n", "a1 OK Logged in\r\n",
                                          "* 4 EXISTS\r\na2 OK done\r\n",
                                          "* 4 FETCH (BODY[] {900}\r\nSubject: x\r\n\r\nbody" };
    static const char *const client[] = { "a1 LOGIN bob pw\r\n", "a2 SELECT INBOX\r\n",
                                          "a3 FETCH 4 BODY[]\r\n" };
    size_t last_len = strlen(server[3]);
    for (size_t split = 0; split < last_len; split++) {
        struct mt_connection conn;
        int64_t t = 1000000;
        assert_true(connection_open(&conn, MT_PROTO_IMAP, false, &flow, true, t));
        for (int i = 0; i < 4; i++) {
            size_t len = strlen(server[i]);
            size_t first = i == 3 ? split : len;
            connection_data(&conn, NULL, STREAM_FROM_SERVER, server[i], first, ++t);
            if (first < len)
                connection_data(&conn, NULL, STREAM_FROM_SERVER, server[i] + first, len - first, ++t);
            if (i < 3)
                connection_data(&conn, NULL, STREAM_FROM_CLIENT, client[i], strlen(client[i]), ++t);
        }
        connection_reset_by(&conn, STREAM_FROM_CLIENT, t + 2000000);
        struct mt_session *s = connection_close(&conn, STREAM_RESET, false, t + 2000000);
        assert_non_null(s);
        assert_int_equal(s->status, MT_STATUS_INTERRUPTED);
        assert_transcript_in_time_order(s);
        assert_in_order(s->transcript, "S * 4 FETCH (BODY[] [literal 900 bytes",
                        "I [connection reset by the client]");
        session_free(s);
    }
}

/* Captures of different times read together: the silence seen after a connection's last
 * bytes ends where its file did, not at the end of a later file. */
static void test_silence_ends_at_a_file_jump(void **state)
{
    (void)state;
    struct mt_session *s = session_new(MT_PROTO_IMAP);
    s->end = MT_END_EOF;
    s->input_end_us = 1000LL * 1000000;
    assert_int_equal(session_silent_at_end_s(s, 100LL * 1000000), 900);
    s->input_gap_us = 130LL * 1000000;   /* the first file ended 30 s after the last bytes */
    assert_int_equal(session_silent_at_end_s(s, 100LL * 1000000), 0);
    s->input_gap_us = 190LL * 1000000;   /* 90 s after them: that silence was seen */
    assert_int_equal(session_silent_at_end_s(s, 100LL * 1000000), 90);
    s->input_gap_us = 50LL * 1000000;    /* a jump before the bytes: the end counts */
    assert_int_equal(session_silent_at_end_s(s, 100LL * 1000000), 900);
    session_free(s);
}

static void test_connection_guesses_from_greeting(void **state)
{
    (void)state;
    struct mt_session *s = guessed_connection("", "+OK ready\r\n", "USER carol\r\nPASS pw1\r\n");
    assert_int_equal(s->proto, MT_PROTO_POP3);
    assert_string_equal(s->user, "carol");
    assert_null(strstr(s->transcript, "pw1"));
    session_free(s);
    s = guessed_connection("", "* OK IMAP ready\r\n", "a1 LOGIN dave pw2\r\n");
    assert_int_equal(s->proto, MT_PROTO_IMAP);
    assert_null(strstr(s->transcript, "pw2"));
    session_free(s);
    s = guessed_connection("", "220 mx ESMTP\r\n", "EHLO x\r\n");
    assert_int_equal(s->proto, MT_PROTO_SMTP);
    assert_string_equal(s->helo, "x");
    session_free(s);
    /* a client that speaks first: its bytes reach the decoder, before the greeting */
    s = guessed_connection("USER eve\r\nPASS pw3\r\n", "-ERR no\r\n", "");
    assert_int_equal(s->proto, MT_PROTO_POP3);
    assert_string_equal(s->user, "eve");
    assert_null(strstr(s->transcript, "pw3"));
    assert_in_order(s->transcript, " C USER eve", " S -ERR");
    session_free(s);
    /* a server that never speaks: what the port was taken for */
    s = guessed_connection("EHLO y\r\n", "", "");
    assert_int_equal(s->proto, MT_PROTO_SMTP);
    assert_string_equal(s->helo, "y");
    session_free(s);
}

/* --- line reader ---------------------------------------------------------------- */

/* Records events as text so that two runs can be compared. */
struct recorder {
    struct line_reader *reader;
    char log[8192];
    size_t len;
};

static void record(void *ctx, const struct lr_event *event)
{
    struct recorder *rec = ctx;
    char line[600];
    int n = 0;
    switch (event->kind) {
    case LR_EVENT_LINE:
        n = snprintf(line, sizeof line, "L[%.*s]%s%s|", (int)(event->len > 500 ? 500 : event->len),
                     event->line, event->truncated ? "T" : "", event->unterminated ? "U" : "");
        /* The recorded protocol: "DATA" starts a dot body, "SKIP n" a counted block. */
        if (event->len == 4 && memcmp(event->line, "DATA", 4) == 0)
            lr_expect_dot_body(rec->reader);
        if (event->len > 5 && memcmp(event->line, "SKIP ", 5) == 0)
            lr_skip(rec->reader, strtoull(event->line + 5, NULL, 10));
        /* "BLOCK n" reads the next n bytes as lines; "STOP" in one skips its rest */
        if (event->len > 6 && memcmp(event->line, "BLOCK ", 6) == 0)
            lr_read_block(rec->reader, strtoull(event->line + 6, NULL, 10));
        if (event->len == 4 && memcmp(event->line, "STOP", 4) == 0)
            lr_skip_rest(rec->reader);
        break;
    case LR_EVENT_BODY_END:
        n = snprintf(line, sizeof line, "B%llu|", (unsigned long long)event->body_bytes);
        break;
    case LR_EVENT_SKIP_DONE:
        n = snprintf(line, sizeof line, "S|");
        break;
    }
    if (n > 0 && rec->len + (size_t)n < sizeof rec->log) {
        memcpy(rec->log + rec->len, line, (size_t)n);
        rec->len += (size_t)n;
        rec->log[rec->len] = '\0';
    }
}

static void run_split(const char *input, size_t len, size_t cut1, size_t cut2, struct recorder *rec)
{
    struct line_reader reader;
    lr_init(&reader);
    memset(rec, 0, sizeof *rec);
    rec->reader = &reader;
    size_t cuts[] = { 0, cut1, cut2, len };
    for (int i = 0; i < 3; i++)
        lr_feed(&reader, input + cuts[i], cuts[i + 1] - cuts[i], record, rec);
    lr_finish(&reader, record, rec);
    lr_free(&reader);
}

static void test_linereader_every_split(void **state)
{
    (void)state;
    static const char input[] =
        "EHLO x\r\nDATA\r\nSubject: hi\r\n..stuffed\r\n.x\r\n\r\nend.\r\n.\r\n"
        "SKIP 7\r\nab\r\n.\r\nQUIT\r\nlast";
    size_t len = sizeof input - 1;
    struct recorder whole, split;
    run_split(input, len, 0, 0, &whole);
    assert_string_equal(whole.log,
                        "L[EHLO x]|L[DATA]|B36|L[SKIP 7]|S|L[QUIT]|L[last]U|");
    for (size_t a = 0; a <= len; a++)
        for (size_t b = a; b <= len; b++) {
            run_split(input, len, a, b, &split);
            if (strcmp(whole.log, split.log) != 0)
                fail_msg("split at %zu/%zu: %s != %s", a, b, split.log, whole.log);
        }
}

/* Dot bodies of random lines (dots, stuffed dots, ".\r" that is no terminator, bare LFs)
 * put "\n." at every offset of the decoder's 16-byte scan: the body ends exactly where a
 * byte-by-byte reading of RFC 5321's rule says, however the stream is cut. */
static void test_linereader_dot_body_scan(void **state)
{
    (void)state;
    static const char *const starts[] = { "", "x", ".", "..", ".x", ".\ry", "\n" };
    uint32_t seed = 12345;
    for (int round = 0; round < 60; round++) {
        char input[2048];
        size_t len = (size_t)snprintf(input, sizeof input, "DATA\r\n");
        size_t body_start = len;
        while (len < 1200) {
            seed = seed * 1103515245u + 12345u;
            const char *start = starts[(seed >> 16) % 7];
            size_t fill = (seed >> 8) % 40 + (strcmp(start, ".") == 0);   /* not ".\r\n" */
            len += (size_t)snprintf(input + len, sizeof input - len, "%s%.*s\r\n", start,
                                    (int)fill, "abcdefghijklmnopqrstuvwxyz.0123456789.abcdef");
        }
        len += (size_t)snprintf(input + len, sizeof input - len, ".\r\nQUIT\r\n");
        /* the reference: the first line start holding "." then CR LF or LF */
        size_t end = body_start;
        for (size_t p = body_start; p < len; p++) {
            bool line_start = p == body_start || input[p - 1] == '\n';
            if (line_start && input[p] == '.' &&
                (input[p + 1] == '\n' || (input[p + 1] == '\r' && input[p + 2] == '\n'))) {
                end = p;
                break;
            }
        }
        char want[64];
        snprintf(want, sizeof want, "L[DATA]|B%zu|L[QUIT]|", end - body_start);
        struct recorder rec;
        for (size_t cut = 0; cut <= len; cut += 1 + (size_t)round % 3) {
            run_split(input, len, cut, cut + (cut * 7) % 37 > len ? len : cut + (cut * 7) % 37,
                      &rec);
            if (strcmp(rec.log, want) != 0)
                fail_msg("round %d, cut at %zu: %s != %s", round, cut, rec.log, want);
        }
    }
}

/* Counted blocks read as lines: lines never run past the block, a last line without LF
 * ends with it, lr_skip_rest() skips the remainder, and the same events come whatever
 * the segmentation. */
static void test_linereader_blocks_every_split(void **state)
{
    (void)state;
    static const char input[] =
        "BLOCK 12\r\nh1\r\nh2\r\nbodyQUIT\r\n"          /* last line ends with the block */
        "BLOCK 24\r\nh3\r\nSTOP\r\nSKIP ignored\r\nNEXT\r\n" /* skipped after STOP */
        "BLOCK 6\r\nSTOP\r\nA\r\n"                       /* STOP at the block's very end */
        "BLOCK 4\r\nab\r\n"                                /* CR LF ending exactly at the end */
        "BLOCK 12\r\ncut in th";                             /* the stream ends inside */
    size_t len = sizeof input - 1;
    struct recorder whole, split;
    run_split(input, len, 0, 0, &whole);
    assert_string_equal(whole.log,
                        "L[BLOCK 12]|L[h1]|L[h2]|L[body]|S|L[QUIT]|"
                        "L[BLOCK 24]|L[h3]|L[STOP]|S|L[NEXT]|"
                        "L[BLOCK 6]|L[STOP]|S|L[A]|"
                        "L[BLOCK 4]|L[ab]|S|"
                        "L[BLOCK 12]|L[cut in th]U|");
    for (size_t a = 0; a <= len; a++)
        for (size_t b = a; b <= len; b++) {
            run_split(input, len, a, b, &split);
            if (strcmp(whole.log, split.log) != 0)
                fail_msg("split at %zu/%zu: %s != %s", a, b, split.log, whole.log);
        }
}

static void test_linereader_overlong_line(void **state)
{
    (void)state;
    size_t big = 3 * LR_LINE_MAX;
    char *input = malloc(big + 16);
    memset(input, 'x', big);
    memcpy(input + big, "\r\nNEXT\r\n", 8);
    struct recorder rec;
    for (size_t step = 1000; step <= big + 8; step += 7919) {
        struct line_reader reader;
        lr_init(&reader);
        memset(&rec, 0, sizeof rec);
        rec.reader = &reader;
        for (size_t off = 0; off < big + 8; off += step)
            lr_feed(&reader, input + off, off + step > big + 8 ? big + 8 - off : step, record, &rec);
        assert_true(reader.pending_cap <= LR_LINE_MAX + 1);
        assert_non_null(strstr(rec.log, "]T|L[NEXT]|"));
        lr_free(&reader);
    }
    free(input);
}

static void test_linereader_bare_lf_terminator(void **state)
{
    (void)state;
    struct recorder rec;
    const char *input = "DATA\nbody\n.\nQUIT\n";
    run_split(input, strlen(input), 3, 9, &rec);
    assert_string_equal(rec.log, "L[DATA]|B5|L[QUIT]|");
}

/* --- link layer ------------------------------------------------------------------- */

static void test_linklayer_types(void **state)
{
    (void)state;
    uint8_t frame[64] = { 0 };
    struct ip_frame ip;
    /* Ethernet + 802.1Q + 802.1ad (QinQ) + IPv6 */
    frame[12] = 0x88; frame[13] = 0xa8; frame[16] = 0x81; frame[17] = 0x00;
    frame[20] = 0x86; frame[21] = 0xdd; frame[22] = 0x60;
    assert_int_equal(link_find_ip(1, frame, 60, &ip), 1);
    assert_int_equal(ip.version, 6);
    assert_ptr_equal(ip.ip, frame + 22);
    /* truncated inside the VLAN tags */
    assert_int_equal(link_find_ip(1, frame, 17, &ip), -1);
    /* ARP */
    memset(frame, 0, sizeof frame);
    frame[12] = 0x08; frame[13] = 0x06;
    assert_int_equal(link_find_ip(1, frame, 60, &ip), 0);
    /* Linux SLL: protocol at 14 */
    memset(frame, 0, sizeof frame);
    frame[14] = 0x08; frame[16] = 0x45;
    assert_int_equal(link_find_ip(113, frame, 40, &ip), 1);
    assert_int_equal(ip.version, 4);
    /* SLL2: protocol first */
    memset(frame, 0, sizeof frame);
    frame[0] = 0x08; frame[20] = 0x45;
    assert_int_equal(link_find_ip(276, frame, 40, &ip), 1);
    /* BSD null, raw */
    memset(frame, 0, sizeof frame);
    frame[0] = 2; frame[4] = 0x45;
    assert_int_equal(link_find_ip(0, frame, 40, &ip), 1);
    assert_int_equal(link_find_ip(12, frame + 4, 36, &ip), 1);
    assert_int_equal(link_find_ip(0, frame, 3, &ip), -1);
    assert_false(link_type_supported(189));
}

/* --- local networks ------------------------------------------------------------- */

static struct ip_address address(const char *text)
{
    struct ip_address a;
    memset(&a, 0, sizeof a);
    if (inet_pton(AF_INET, text, a.bytes) == 1)
        a.family = 4;
    else if (inet_pton(AF_INET6, text, a.bytes) == 1)
        a.family = 6;
    return a;
}

static void test_localnets(void **state)
{
    (void)state;
    struct localnets nets;
    localnets_defaults(&nets);
    struct ip_address a = address("192.168.4.1");
    assert_true(localnets_contains(&nets, &a));
    a = address("172.32.0.1");
    assert_false(localnets_contains(&nets, &a));
    a = address("fd00::1");
    assert_true(localnets_contains(&nets, &a));
    a = address("2001:db8::1");
    assert_false(localnets_contains(&nets, &a));
    assert_true(localnets_add(&nets, "2001:db8::/33"));
    assert_true(localnets_contains(&nets, &a));
    assert_false(localnets_add(&nets, "10.0.0.0/33"));
    assert_false(localnets_add(&nets, "nonsense"));
    assert_false(localnets_add(&nets, "10.0.0.0/"));
}

/* --- SYN tracker ------------------------------------------------------------------ */

struct settled_log {
    int refused, unanswered, one_sided, not_established, server_only, cut;
    uint64_t one_sided_bytes;
    char kept[128];               /* a one-sided attempt's kept client data, joined */
    size_t kept_len;
    bool kept_gap;
};

static void on_settled(void *ctx, const struct attempt *attempt, enum attempt_outcome outcome,
                       int64_t now)
{
    (void)now;
    struct settled_log *log = ctx;
    if (outcome == ATTEMPT_ONE_SIDED) {
        log->one_sided_bytes += attempt->client_bytes;
        size_t pos = 0;
        int64_t ts;
        const uint8_t *bytes;
        uint32_t len;
        while (attempts_data_next(attempt, &pos, &ts, &bytes, &len) &&
               log->kept_len + len <= sizeof log->kept) {
            memcpy(log->kept + log->kept_len, bytes, len);
            log->kept_len += len;
        }
        log->kept_gap = attempt->data_gap;
    }
    if (outcome == ATTEMPT_REFUSED) log->refused++;
    else if (outcome == ATTEMPT_ONE_SIDED) log->one_sided++;
    else if (outcome == ATTEMPT_NOT_ESTABLISHED) log->not_established++;
    else if (outcome == ATTEMPT_SERVER_ONLY) log->server_only++;
    else if (outcome == ATTEMPT_CUT) log->cut++;
    else log->unanswered++;
}

static void test_attempts(void **state)
{
    (void)state;
    struct settled_log log = { 0 };
    struct attempts *attempts = attempts_new(4, on_settled, &log);
    struct attempt_key k[6];
    for (int i = 0; i < 6; i++)
        k[i] = (struct attempt_key){ .client = 1, .server = 2, .client_port = (uint16_t)(1000 + i),
                                     .server_port = 25 };
    attempts_on_syn(attempts, &k[0], 0, NULL, 0);
    attempts_on_syn(attempts, &k[0], 1000000, NULL, 0);              /* retransmission */
    attempts_on_server_packet(attempts, &k[0], true, false, 1500000, NULL);
    attempts_on_syn(attempts, &k[0], 2000000, NULL, 0);              /* retry after the RST */
    attempts_on_server_packet(attempts, &k[0], true, false, 2000500, NULL);
    assert_int_equal(log.refused, 0);
    attempts_expire(attempts, 4000000, 30000000, 3000000);   /* retried at 2.0 s: not quiet */
    assert_int_equal(log.refused, 0);
    attempts_expire(attempts, 5100000, 30000000, 3000000);   /* 3 s quiet: one refused row */
    assert_int_equal(log.refused, 1);
    assert_int_equal(attempts_pending(attempts), 0);
    attempts_expire(attempts, 31000000, 30000000, 3000000);
    assert_int_equal(log.refused, 1);
    attempts_on_syn(attempts, &k[1], 2000000, NULL, 0);
    attempts_on_server_packet(attempts, &k[1], false, true, 2000100, NULL);  /* SYN-ACK */
    attempts_on_client_packet(attempts, &k[1], false, NULL, 0, 0, 2000200);              /* its ACK */
    attempts_on_established(attempts, &k[1]);                                /* forgotten */
    attempts_on_syn(attempts, &k[2], 3000000, NULL, 0);
    /* What it sent is kept in order: a resend skipped, an overlapping one's new tail taken. */
    static const char ehlo[] = "EHLO client.example\r\n";   /* 21 bytes at 1000 */
    attempts_on_client_packet(attempts, &k[2], false, (const uint8_t *)ehlo, 21, 1000, 3100000);
    attempts_on_client_packet(attempts, &k[2], false, (const uint8_t *)ehlo, 21, 1000, 3150000);
    attempts_on_client_packet(attempts, &k[2], false, (const uint8_t *)"le\r\nQUIT", 8, 1017,
                              3200000);
    attempts_expire(attempts, 40000000, 30000000, 3000000);
    assert_int_equal(log.one_sided, 1);
    assert_int_equal(log.one_sided_bytes, 50);   /* what the client sent: the row's traffic */
    assert_int_equal(log.kept_len, 25);
    assert_memory_equal(log.kept, "EHLO client.example\r\nQUIT", 25);
    assert_false(log.kept_gap);
    for (int i = 0; i < 6; i++)                              /* over capacity */
        attempts_on_syn(attempts, &k[i], 50000000 + i, NULL, 0);
    assert_int_equal(log.unanswered, 2);
    assert_int_equal(attempts_pending(attempts), 4);
    attempts_flush(attempts, 90000000, 30000000);   /* 40 s after the SYNs: unanswered */
    assert_int_equal(log.unanswered, 6);
    assert_int_equal(attempts_pending(attempts), 0);
    assert_int_equal(log.not_established, 0);
    /* the end of the input within the SYN timeout: cut, not unanswered (a SYN 2 µs before
     * the end of a rotated file is no server down); refused and one-sided stay what they are */
    attempts_on_syn(attempts, &k[0], 95000000, NULL, 0);
    attempts_on_syn(attempts, &k[1], 129999998, NULL, 0);
    attempts_on_syn(attempts, &k[2], 129999999, NULL, 0);
    attempts_on_server_packet(attempts, &k[2], true, false, 129999999, NULL);   /* its RST */
    attempts_flush(attempts, 130000000, 30000000);
    assert_int_equal(log.unanswered, 7);   /* k[0]: 30 s without an answer */
    assert_int_equal(log.cut, 1);
    assert_int_equal(log.refused, 2);   /* with the first one above */
    attempts_free(attempts);
}

/* A SYN-ACK answering no SYN seen: the client's side is missing from the capture. Its
 * retransmissions and the server's data are the same attempt; a client packet (the capture
 * began mid-handshake) or a SYN after all makes it no such case. */
static void test_attempts_server_only(void **state)
{
    (void)state;
    struct settled_log log = { 0 };
    struct attempts *attempts = attempts_new(8, on_settled, &log);
    struct attempt_key k[3];
    for (int i = 0; i < 3; i++)
        k[i] = (struct attempt_key){ .client = 1, .server = 2, .client_port = (uint16_t)(3000 + i),
                                     .server_port = 25 };
    uint8_t out[ATTEMPT_SYN_MAX];
    for (int i = 0; i < 3; i++) {
        assert_false(attempts_known(attempts, &k[i]));
        attempts_on_orphan_syn_ack(attempts, &k[i], 1000000);
        assert_true(attempts_known(attempts, &k[i]));
    }
    attempts_on_orphan_syn_ack(attempts, &k[0], 2000000);   /* retransmitted: the same one */
    assert_int_equal(attempts_on_server_packet(attempts, &k[0], false, false, 2100000, out), 0);
    attempts_on_client_packet(attempts, &k[1], false, NULL, 0, 0, 2200000);   /* the client is there */
    assert_false(attempts_on_syn(attempts, &k[2], 2300000, NULL, 0));  /* a SYN after all */
    assert_int_equal(attempts_pending(attempts), 2);
    attempts_flush(attempts, 60000000, 30000000);
    assert_int_equal(log.server_only, 1);
    assert_int_equal(log.unanswered, 1);   /* k[2]: an ordinary SYN never answered */
    attempts_free(attempts);
}

/* A SYN-ACK hands the held SYN over once; the attempt then waits for "established". One
 * that never comes (libnids dropped the half-open stream, or the client never ACKed) is
 * reported, not lost; a RST after the SYN-ACK just forgets it. */
static void test_attempts_handshake(void **state)
{
    (void)state;
    struct settled_log log = { 0 };
    struct attempts *attempts = attempts_new(8, on_settled, &log);
    struct attempt_key k[4];
    for (int i = 0; i < 4; i++)
        k[i] = (struct attempt_key){ .client = 1, .server = 2, .client_port = (uint16_t)(2000 + i),
                                     .server_port = 143 };
    uint8_t syn[ATTEMPT_SYN_MAX] = { 0x45 }, out[ATTEMPT_SYN_MAX];
    for (int i = 0; i < 4; i++)
        assert_true(attempts_on_syn(attempts, &k[i], 1000000, syn, 40));
    assert_int_equal(attempts_on_server_packet(attempts, &k[0], false, true, 1000100, out), 40);
    assert_int_equal(out[0], 0x45);
    /* a retransmitted SYN-ACK or SYN: libnids has the stream now, nothing is held */
    assert_int_equal(attempts_on_server_packet(attempts, &k[0], false, true, 1000200, out), 0);
    assert_false(attempts_on_syn(attempts, &k[0], 1000300, syn, 40));
    assert_int_equal(attempts_on_server_packet(attempts, &k[1], false, true, 1000100, out), 40);
    attempts_on_server_packet(attempts, &k[1], true, false, 1000400, NULL);   /* RST: forgotten */
    assert_int_equal(attempts_on_server_packet(attempts, &k[2], false, true, 1000100, out), 40);
    attempts_on_client_packet(attempts, &k[2], true, NULL, 0, 0, 1000500);                 /* client RST */
    assert_int_equal(attempts_on_server_packet(attempts, &k[3], false, true, 1000100, out), 40);
    attempts_on_established(attempts, &k[3]);
    assert_int_equal(attempts_pending(attempts), 1);                           /* k[0] waits */
    attempts_expire(attempts, 40000000, 30000000, 3000000);
    assert_int_equal(log.not_established, 1);
    assert_int_equal(log.refused + log.unanswered + log.one_sided, 0);
    assert_int_equal(attempts_pending(attempts), 0);
    attempts_free(attempts);
    /* A full table gives up an answered attempt first, silently (libnids has its stream
     * and reports it), before settling a pending SYN early. */
    struct settled_log full = { 0 };
    attempts = attempts_new(2, on_settled, &full);
    attempts_on_syn(attempts, &k[0], 1000000, syn, 40);
    attempts_on_server_packet(attempts, &k[0], false, true, 1000100, out);
    attempts_on_syn(attempts, &k[1], 1000200, syn, 40);
    attempts_on_syn(attempts, &k[2], 1000300, syn, 40);
    assert_int_equal(full.not_established + full.unanswered, 0);
    attempts_on_syn(attempts, &k[3], 1000400, syn, 40);   /* now a pending SYN must go */
    assert_int_equal(full.unanswered, 1);
    assert_int_equal(attempts_pending(attempts), 2);
    attempts_free(attempts);
}

/* --- IPv6 map ------------------------------------------------------------------- */

/* --- attempt limit: a flood becomes one row a minute ----------------------------- */

struct summaries {
    struct attempt_summary items[8], last;
    int count;
};

static void on_summary(void *ctx, const struct attempt_summary *summary)
{
    struct summaries *s = ctx;
    if (s->count < 8)
        s->items[s->count] = *summary;
    s->last = *summary;
    s->count++;
}

static struct flow attempt_flow(uint32_t client, uint8_t server_last, uint16_t port)
{
    struct flow flow;
    memset(&flow, 0xAA, sizeof flow);   /* unset address bytes must not matter */
    flow.client.family = flow.server.family = 4;
    memcpy(flow.client.bytes, &client, 4);
    const uint8_t server[4] = { 10, 1, 0, server_last };
    memcpy(flow.server.bytes, server, 4);
    flow.client_port = 40000;
    flow.server_port = port;
    return flow;
}

static void test_attempt_limit(void **state)
{
    (void)state;
    static struct attempt_limit limit;
    attempt_limit_init(&limit, ATTEMPT_ROWS_PER_MINUTE);
    struct summaries got = { .count = 0 };
    int admitted = 0;
    for (uint32_t i = 0; i < 250; i++) {   /* 250 sources flooding 10.1.0.10:25 */
        struct flow flow = attempt_flow(0x0A000000u + i * 7919u, 10, 25);
        flow.client.bytes[4] = (uint8_t)i;   /* garbage past an IPv4 address */
        admitted += attempt_limit_admit(&limit, &flow, STREAM_UNANSWERED, 1000000 + i * 1000);
    }
    assert_int_equal(admitted, ATTEMPT_ROWS_PER_MINUTE);
    for (uint32_t i = 0; i < 5; i++) {     /* another server, and refusals: their own limits */
        struct flow other = attempt_flow(i, 11, 25), same = attempt_flow(i, 10, 25);
        assert_true(attempt_limit_admit(&limit, &other, STREAM_UNANSWERED, 2000000));
        assert_true(attempt_limit_admit(&limit, &same, STREAM_REFUSED, 2000000));
    }
    attempt_limit_flush(&limit, 30000000, false, on_summary, &got);
    assert_int_equal(got.count, 0);        /* the minute is not over */
    attempt_limit_flush(&limit, 62000000, false, on_summary, &got);
    assert_int_equal(got.count, 1);
    assert_int_equal(got.items[0].counted, 150);
    assert_int_equal(got.items[0].how, STREAM_UNANSWERED);
    assert_int_equal(got.items[0].flow.server.bytes[3], 10);
    assert_false(got.items[0].pooled);
    assert_true(got.items[0].sources >= 140 && got.items[0].sources <= 160);
    assert_int_equal(got.items[0].first_us, 1000000 + 100 * 1000);
    assert_int_equal(got.items[0].last_us, 1000000 + 249 * 1000);
    struct flow again = attempt_flow(1, 10, 25);   /* a new minute: rows again */
    assert_true(attempt_limit_admit(&limit, &again, STREAM_UNANSWERED, 63000000));
    /* more servers than slots: the rest share one pooled window */
    attempt_limit_init(&limit, ATTEMPT_ROWS_PER_MINUTE);
    got.count = 0;
    for (int server = 0; server < ATTEMPT_ENDPOINTS + 10; server++)
        for (int i = 0; i < ATTEMPT_ROWS_PER_MINUTE + 1; i++) {
            struct flow flow = attempt_flow((uint32_t)i, (uint8_t)server, 25);
            attempt_limit_admit(&limit, &flow, STREAM_UNANSWERED, 1000000);
        }
    attempt_limit_flush(&limit, 0, true, on_summary, &got);
    /* 62 own windows, one over each; the pooled unanswered one: 12 servers x 101 - its
     * 100 rows; the pooled refused one is unused */
    assert_int_equal(got.count, ATTEMPT_ENDPOINTS - 1);
    assert_true(got.last.pooled);
    assert_int_equal(got.last.how, STREAM_UNANSWERED);
    assert_int_equal(got.last.counted, 12 * (ATTEMPT_ROWS_PER_MINUTE + 1) - ATTEMPT_ROWS_PER_MINUTE);
    /* --attempt-rows: another limit, and 0 = every attempt its own row */
    attempt_limit_init(&limit, 3);
    admitted = 0;
    for (uint32_t i = 0; i < 10; i++) {
        struct flow flow = attempt_flow(i, 10, 25);
        admitted += attempt_limit_admit(&limit, &flow, STREAM_REFUSED, 1000000);
    }
    assert_int_equal(admitted, 3);
    got.count = 0;
    attempt_limit_flush(&limit, 0, true, on_summary, &got);
    assert_int_equal(got.count, 1);
    assert_int_equal(got.last.counted, 7);
    attempt_limit_init(&limit, 0);
    for (uint32_t i = 0; i < 1000; i++) {
        struct flow flow = attempt_flow(i, 10, 25);
        assert_true(attempt_limit_admit(&limit, &flow, STREAM_UNANSWERED, 1000000));
    }
    got.count = 0;
    attempt_limit_flush(&limit, 0, true, on_summary, &got);
    assert_int_equal(got.count, 0);
}

static void test_ipv6map_round_trip(void **state)
{
    (void)state;
    struct ipv6map *map = ipv6map_new();
    assert_non_null(map);
    uint8_t a[16] = { 0x20, 0x01, 0x0d, 0xb8 }, b[16] = { 0x20, 0x01, 0x0d, 0xb8, 1 }, back[16];
    uint32_t va, vb, again;
    assert_true(ipv6map_to_v4(map, a, &va));
    assert_true(ipv6map_to_v4(map, b, &vb));
    assert_true(ipv6map_to_v4(map, a, &again));
    assert_int_equal(va, again);
    assert_int_not_equal(va, vb);
    assert_true(ipv6map_is_synthetic(va));
    assert_true(ipv6map_from_v4(map, vb, back));
    assert_memory_equal(back, b, 16);
    assert_false(ipv6map_from_v4(map, 0x0a000001u, back));
    ipv6map_free(map);
}

/* --- idle streams ---------------------------------------------------------------- */

struct closed_log {
    int count;
    uint16_t port[8];
    enum stream_end how[8];
    int64_t ts_us[8];
};

static void *on_stream_opened(void *ctx, const struct flow *flow, int64_t ts_us)
{
    (void)ctx; (void)ts_us;
    return (void *)(uintptr_t)flow->client_port;
}

static void on_stream_data(void *ctx, void *stream, enum stream_side from, const char *bytes,
                           size_t len, int64_t ts_us)
{
    (void)ctx; (void)stream; (void)from; (void)bytes; (void)len; (void)ts_us;
}

static void on_stream_closed(void *ctx, void *stream, enum stream_end how, bool data_lost,
                             int64_t ts_us)
{
    struct closed_log *log = ctx;
    (void)data_lost;
    assert_true(log->count < 8);
    log->port[log->count] = (uint16_t)(uintptr_t)stream;
    log->how[log->count] = how;
    log->ts_us[log->count++] = ts_us;
}

static void on_stream_attempt(void *ctx, const struct flow *flow, enum stream_end how,
                              const struct attempt *attempt)
{
    (void)ctx; (void)flow; (void)how; (void)attempt;
}

/* One IPv4 TCP segment between 10.0.0.1:port and 10.0.0.2:25 into reassembly at ts_us. */
static void tcp_segment(bool from_client, uint16_t port, uint32_t seq, uint32_t ack,
                        uint8_t flags, const char *payload, int64_t ts_us)
{
    uint8_t packet[128] = { 0 };
    size_t len = 40 + strlen(payload);
    assert_true(len <= sizeof packet);
    packet[0] = 0x45;
    packet[2] = (uint8_t)(len >> 8), packet[3] = (uint8_t)len;
    packet[8] = 64, packet[9] = 6;
    uint8_t client[4] = { 10, 0, 0, 1 }, server[4] = { 10, 0, 0, 2 };
    memcpy(packet + 12, from_client ? client : server, 4);
    memcpy(packet + 16, from_client ? server : client, 4);
    uint32_t sum = 0;
    for (int i = 0; i < 20; i += 2)
        sum += (uint32_t)(packet[i] << 8 | packet[i + 1]);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    packet[10] = (uint8_t)(~sum >> 8), packet[11] = (uint8_t)~sum;
    uint8_t *tcp = packet + 20;
    uint16_t sport = from_client ? port : 25, dport = from_client ? 25 : port;
    tcp[0] = (uint8_t)(sport >> 8), tcp[1] = (uint8_t)sport;
    tcp[2] = (uint8_t)(dport >> 8), tcp[3] = (uint8_t)dport;
    for (int i = 0; i < 4; i++) {
        tcp[4 + i] = (uint8_t)(seq >> (24 - 8 * i));
        tcp[8 + i] = (uint8_t)(ack >> (24 - 8 * i));
    }
    tcp[12] = 5 << 4, tcp[13] = flags;
    tcp[14] = 0xff, tcp[15] = 0xff;
    memcpy(tcp + 20, payload, strlen(payload));
    struct ip_frame frame = { .version = 4, .ip = packet, .len = len };
    reassembly_ip_packet(&frame, ts_us);
}

enum { SYN = 0x02, RST = 0x04, ACK = 0x10, PSH = 0x08 };

static void handshake(uint16_t port, int64_t ts_us)
{
    tcp_segment(true, port, 1000, 0, SYN, "", ts_us);
    tcp_segment(false, port, 5000, 1001, SYN | ACK, "", ts_us);
    tcp_segment(true, port, 1001, 5001, ACK, "", ts_us);
}

#define SEC 1000000LL

/* Reassembly of port 25 alone, streams idle after idle_timeout_us (0: never). */
static void start_port25(const struct reassembly_events *events, int64_t idle_timeout_us)
{
    struct reassembly_config config;
    char err[256];
    reassembly_config_defaults(&config);
    memset(config.ports, 0, sizeof config.ports);
    reassembly_config_add_port(&config, 25);
    config.idle_timeout_us = idle_timeout_us;
    assert_int_equal(reassembly_start(&config, events, err, sizeof err), 0);
}

/* Idle streams time out never early and at most a second late (the idle list is kept in
 * order only to the second: IDLE_LIST_MOVE_US); a stream that had data is not idle. */
static void test_idle_streams(void **state)
{
    (void)state;
    struct closed_log log = { 0 };
    struct reassembly_events events = {
        .ctx = &log, .opened = on_stream_opened, .data = on_stream_data,
        .closed = on_stream_closed, .attempt = on_stream_attempt,
    };
    start_port25(&events, 10 * SEC);
    handshake(1111, 0);
    handshake(2222, SEC / 5);
    tcp_segment(true, 1111, 1001, 5001, ACK | PSH, "NOOP\r\n", SEC * 9 / 10);
    reassembly_tick(10 * SEC + SEC / 10);   /* 2222 is idle from 10.2 s, 1111 from 10.9 s */
    assert_int_equal(log.count, 0);
    reassembly_tick(10 * SEC + SEC / 2);
    for (int i = 0; i < log.count; i++)
        assert_int_equal(log.port[i], 2222);
    reassembly_tick(11 * SEC + SEC / 4);
    assert_int_equal(log.count, 2);
    for (int i = 0; i < 2; i++)
        assert_int_equal(log.how[i], STREAM_IDLE_TIMEOUT);
    assert_int_not_equal(log.port[0], log.port[1]);
    struct reassembly_stats stats;
    reassembly_finish(12 * SEC, &stats);
    assert_int_equal(stats.streams_idle, 2);
    assert_int_equal(stats.streams_opened, 2);
}

/* The hand-written IPv4 form is inet_ntop()'s, for every value of each byte. */
static void test_address_format(void **state)
{
    (void)state;
    char got[INET6_ADDRSTRLEN], want[INET6_ADDRSTRLEN];
    struct ip_address a = { .family = 4 };
    for (unsigned v = 0; v < 256; v++) {
        for (int pos = 0; pos < 4; pos++) {
            uint8_t bytes[4] = { 10, 0, 200, 9 };
            bytes[pos] = (uint8_t)v;
            memcpy(a.bytes, bytes, 4);
            inet_ntop(AF_INET, bytes, want, sizeof want);
            assert_string_equal(ip_address_format(&a, got, sizeof got), want);
        }
    }
    memset(a.bytes, 0xff, 4);
    ip_address_format(&a, got, INET_ADDRSTRLEN);   /* the longest form fits exactly */
    assert_string_equal(got, "255.255.255.255");
    assert_string_equal(ip_address_format(&a, got, 4), "");   /* too small: empty */
    struct ip_address v6 = { .family = 6, .bytes = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 } };
    assert_string_equal(ip_address_format(&v6, got, sizeof got), "2001:db8::1");
}

/* --- overlapping segments ------------------------------------------------------------ */

/* Port 25 followed, a connection from port 1111 established and its greeting delivered
 * (client seq 1001, server seq 5009 next). */
static void start_greeted(const struct reassembly_events *events)
{
    start_port25(events, 0);
    handshake(1111, 0);
    tcp_segment(false, 1111, 5001, 1001, ACK | PSH, "220 hi\r\n", SEC / 10);
}

static void test_overlap_table(void **state)
{
    (void)state;
    struct overlap_table *t = overlap_new();
    assert_non_null(t);
    struct overlap_flow ab = { .src = 1, .dst = 2, .sport = 40000, .dport = 25 };
    struct overlap_flow ba = { .src = 2, .dst = 1, .sport = 25, .dport = 40000 };
    struct overlap_flow other = { .src = 1, .dst = 3, .sport = 40000, .dport = 25 };
    const uint8_t first[] = "MAIL FROM:<alice@example.com> SIZE=1000\r\n";
    uint8_t forged[sizeof first];
    memcpy(forged, first, sizeof first);
    forged[sizeof first - 8] ^= 1;   /* a byte past the first 32: the lanes' tail */
    assert_false(overlap_conflicts(t, &ab, 7, first, sizeof first - 1));
    assert_false(overlap_conflicts(t, &ab, 7, first, sizeof first - 1));    /* same again */
    assert_true(overlap_conflicts(t, &ab, 7, forged, sizeof first - 1));
    assert_false(overlap_conflicts(t, &ba, 7, forged, sizeof first - 1));   /* other way */
    assert_false(overlap_conflicts(t, &other, 7, forged, sizeof first - 1));
    assert_false(overlap_conflicts(t, &ab, 7, forged, 10));   /* shorter: not compared */
    /* A longer resend that agrees replaces the record: its new part is compared next. */
    uint8_t longer[64];
    memcpy(longer, first, sizeof first - 1);
    memcpy(longer + sizeof first - 1, "RCPT TO:<b@x>\r\n", 16);
    size_t longer_len = sizeof first - 1 + 16;
    assert_false(overlap_conflicts(t, &ab, 7, longer, longer_len));
    longer[longer_len - 3] = 'y';
    assert_true(overlap_conflicts(t, &ab, 7, longer, longer_len));
    assert_false(overlap_conflicts(t, &ab, 7, first, 0));   /* no data: nothing */
    /* A body segment: sampled, its first 64 bytes and its last word always. */
    uint8_t body[1400], edited[1400];
    for (size_t i = 0; i < sizeof body; i++)
        body[i] = (uint8_t)('a' + i % 26);
    assert_false(overlap_conflicts(t, &ab, 90000, body, sizeof body));
    memcpy(edited, body, sizeof body);
    edited[40] = '!';
    assert_true(overlap_conflicts(t, &ab, 90000, edited, sizeof body));
    memcpy(edited, body, sizeof body);
    edited[sizeof body - 1] = '!';
    assert_true(overlap_conflicts(t, &ab, 90000, edited, sizeof body));
    assert_false(overlap_conflicts(t, &ab, 90000, body, sizeof body));
    overlap_free(t);
}

struct conflict_log {
    int conflicts;
    enum stream_side from[4];
    char client_data[256];
    size_t client_len;
};

static void on_conflict_data(void *ctx, void *stream, enum stream_side from, const char *bytes,
                             size_t len, int64_t ts_us)
{
    struct conflict_log *log = ctx;
    (void)stream; (void)ts_us;
    if (from == STREAM_FROM_CLIENT && log->client_len + len < sizeof log->client_data) {
        memcpy(log->client_data + log->client_len, bytes, len);
        log->client_len += len;
    }
}

static void on_conflict_closed(void *ctx, void *stream, enum stream_end how, bool data_lost,
                               int64_t ts_us)
{
    (void)ctx; (void)stream; (void)how; (void)data_lost; (void)ts_us;
}

static void on_conflict(void *ctx, void *stream, enum stream_side from, int64_t ts_us)
{
    struct conflict_log *log = ctx;
    (void)ts_us;
    assert_int_equal((uintptr_t)stream, 1111);
    assert_true(log->conflicts < 4);
    log->from[log->conflicts++] = from;
}

/* A resend with other bytes is reported on its stream and side; libnids decodes the first
 * copy; an identical resend is nothing. */
static void test_overlap_conflicts_reported(void **state)
{
    (void)state;
    struct conflict_log log = { 0 };
    struct reassembly_events events = {
        .ctx = &log, .opened = on_stream_opened, .data = on_conflict_data,
        .closed = on_conflict_closed, .attempt = on_stream_attempt, .conflict = on_conflict,
    };
    start_greeted(&events);
    tcp_segment(true, 1111, 1001, 5009, ACK | PSH, "RCPT TO:<a@x>\r\n", SEC / 5);
    tcp_segment(true, 1111, 1001, 5009, ACK | PSH, "RCPT TO:<a@x>\r\n", SEC / 4);
    assert_int_equal(log.conflicts, 0);
    tcp_segment(true, 1111, 1001, 5009, ACK | PSH, "RCPT TO:<b@x>\r\n", SEC / 3);
    assert_int_equal(log.conflicts, 1);
    assert_int_equal(log.from[0], STREAM_FROM_CLIENT);
    tcp_segment(false, 1111, 5001, 1016, ACK | PSH, "554 no\r\n", SEC / 2);
    assert_int_equal(log.conflicts, 2);
    assert_int_equal(log.from[1], STREAM_FROM_SERVER);
    tcp_segment(true, 1111, 1016, 5009, ACK | PSH, "QUIT\r\n", SEC);
    struct reassembly_stats stats;
    reassembly_finish(2 * SEC, &stats);
    assert_int_equal(stats.overlap_conflicts, 2);
    log.client_data[log.client_len] = '\0';
    assert_string_equal(log.client_data, "RCPT TO:<a@x>\r\nQUIT\r\n");
}

struct reset_log {
    int resets, closes;
    enum stream_side from;
    enum stream_end how;
};

static void on_reset_seen(void *ctx, void *stream, enum stream_side from, int64_t ts_us)
{
    struct reset_log *log = ctx;
    (void)stream; (void)ts_us;
    assert_int_equal(log->closes, 0);   /* before the stream closes */
    log->resets++;
    log->from = from;
}

static void on_reset_closed(void *ctx, void *stream, enum stream_end how, bool data_lost,
                            int64_t ts_us)
{
    struct reset_log *log = ctx;
    (void)stream; (void)data_lost; (void)ts_us;
    log->closes++;
    log->how = how;
}

/* libnids reports a reset, never its sender: the RST's side is told before the close. */
static void test_reset_side_reported(void **state)
{
    (void)state;
    for (int server = 0; server < 2; server++) {
        struct reset_log log = { 0 };
        struct reassembly_events events = {
            .ctx = &log, .opened = on_stream_opened, .data = on_stream_data,
            .closed = on_reset_closed, .attempt = on_stream_attempt, .reset = on_reset_seen,
        };
        start_greeted(&events);
        if (server)
            tcp_segment(false, 1111, 5009, 1001, RST | ACK, "", SEC / 5);
        else
            tcp_segment(true, 1111, 1001, 5009, RST | ACK, "", SEC / 5);
        struct reassembly_stats stats;
        reassembly_finish(SEC, &stats);
        assert_int_equal(log.resets, 1);
        assert_int_equal(log.from, server ? STREAM_FROM_SERVER : STREAM_FROM_CLIENT);
        assert_int_equal(log.closes, 1);
        assert_int_equal(log.how, STREAM_RESET);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_address_format),
        cmocka_unit_test(test_overlap_table),
        cmocka_unit_test(test_overlap_conflicts_reported),
        cmocka_unit_test(test_reset_side_reported),
        cmocka_unit_test(test_sanitize_escapes_controls),
        cmocka_unit_test(test_find_ci_matches_reference),
        cmocka_unit_test(test_sanitize_keeps_utf8_rejects_c1_and_invalid),
        cmocka_unit_test(test_sanitize_never_overflows),
        cmocka_unit_test(test_sanitize_matches_reference),
        cmocka_unit_test(test_transcript_prefix),
        cmocka_unit_test(test_encoded_words),
        cmocka_unit_test(test_encoded_words_caps),
        cmocka_unit_test(test_session_text),
        cmocka_unit_test(test_mask_echo),
        cmocka_unit_test(test_line_buf),
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_extract_path),
        cmocka_unit_test(test_connection_silence_cut_by_the_end),
        cmocka_unit_test(test_connection_reset_libnids_left),
        cmocka_unit_test(test_silence_ends_at_a_file_jump),
        cmocka_unit_test(test_connection_guesses_from_greeting),
        cmocka_unit_test(test_linereader_every_split),
        cmocka_unit_test(test_linereader_dot_body_scan),
        cmocka_unit_test(test_linereader_blocks_every_split),
        cmocka_unit_test(test_linereader_overlong_line),
        cmocka_unit_test(test_linereader_bare_lf_terminator),
        cmocka_unit_test(test_linklayer_types),
        cmocka_unit_test(test_localnets),
        cmocka_unit_test(test_attempts),
        cmocka_unit_test(test_attempts_server_only),
        cmocka_unit_test(test_attempts_handshake),
        cmocka_unit_test(test_attempt_limit),
        cmocka_unit_test(test_ipv6map_round_trip),
        cmocka_unit_test(test_idle_streams),
        cmocka_unit_test(test_connection_reset_after_cut_line),
        cmocka_unit_test(test_silence_past_the_idle_timeout),
    };
    return cmocka_run_group_tests_name("core", tests, NULL, NULL);
}
