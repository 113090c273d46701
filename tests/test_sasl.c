/* test_sasl.c — cmocka tests for protocols/sasl.c: mechanism names, the user each
 * mechanism's client response names, malformed responses, and the rule that the user
 * never reaches into the secret. Every response is copied into a heap block of exactly
 * its length, so under `make SAN=1` AddressSanitizer catches any read past len. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "protocols/sasl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* One client response: its bytes, the user it names ("" for none), and where the secret
 * starts (len when there is none): no byte of the user may lie at or after it. */
struct response {
    enum sasl_mech mech;
    const char *bytes;
    size_t len;
    const char *user;
    size_t secret_at;
};

#define R(m, s, u, secret) { m, s, sizeof(s) - 1, u, secret }
#define NO_SECRET ((size_t)-1)

/* Well-formed responses, each with the offset of its secret part. */
static const struct response good[] = {
    R(SASL_MECH_PLAIN, "\0alice\0s3cret", "alice", 7),
    R(SASL_MECH_PLAIN, "admin\0alice\0s3cret", "alice", 12),
    R(SASL_MECH_PLAIN, "bob\0\0s3cret", "bob", 5),           /* empty authcid: authzid */
    R(SASL_MECH_PLAIN, "\0alice\0", "alice", NO_SECRET),       /* empty password */
    R(SASL_MECH_LOGIN, "alice@example.org", "alice@example.org", NO_SECRET),
    R(SASL_MECH_EXTERNAL, "alice", "alice", NO_SECRET),
    R(SASL_MECH_CRAM_MD5, "alice 0123456789abcdef0123456789abcdef", "alice", 6),
    R(SASL_MECH_CRAM_MD5, "al ice 0123456789abcdef", "al ice", 7),   /* digest: last word */
    R(SASL_MECH_XOAUTH2, "user=alice@example.org\x01" "auth=Bearer ya29.T0KEN\x01\x01",
      "alice@example.org", 23),
    R(SASL_MECH_XOAUTH2, "USER=alice\x01" "auth=Bearer T0KEN\x01\x01", "alice", 11),
    R(SASL_MECH_OAUTHBEARER, "n,a=alice@example.org,\x01host=mx\x01" "auth=Bearer T0KEN\x01\x01",
      "alice@example.org", 22),
    R(SASL_MECH_OAUTHBEARER, "y,a=alice,\x01" "auth=Bearer T0KEN\x01\x01", "alice", 10),
    R(SASL_MECH_SCRAM, "n,,n=alice,r=fyko+d2lbbFgONRv9qkxdawL", "alice", NO_SECRET),
    R(SASL_MECH_SCRAM, "n,a=admin,n=alice,r=fyko+d2lbbFgONRv9qkxdawL", "alice", NO_SECRET),
    R(SASL_MECH_SCRAM, "p=tls-unique,,n=alice,r=abc", "alice", NO_SECRET),
    R(SASL_MECH_SCRAM, "n,,m=ext,n=alice,r=abc", "alice", NO_SECRET),
};

/* Responses that name no user: malformed, truncated before a terminator, or of a
 * mechanism whose messages say nothing we read. */
static const struct response bad[] = {
    R(SASL_MECH_PLAIN, "", "", NO_SECRET),
    R(SASL_MECH_PLAIN, "alice", "", NO_SECRET),
    R(SASL_MECH_PLAIN, "alice\0s3cret", "", 6),              /* one NUL: which is which? */
    R(SASL_MECH_PLAIN, "\0\0s3cret", "", 2),                  /* no name at all */
    R(SASL_MECH_LOGIN, "", "", NO_SECRET),
    R(SASL_MECH_LOGIN, "\0alice\0s3cret", "", 7),             /* PLAIN's form sent to LOGIN */
    R(SASL_MECH_LOGIN, "alice\0", "", NO_SECRET),
    R(SASL_MECH_EXTERNAL, "al\0ice", "", NO_SECRET),
    R(SASL_MECH_CRAM_MD5, "0123456789abcdef", "", 0),          /* no user, only a digest */
    R(SASL_MECH_CRAM_MD5, " 0123456789abcdef", "", 1),
    R(SASL_MECH_XOAUTH2, "user=alice auth=Bearer T0KEN", "", 11),   /* no \x01: token follows */
    R(SASL_MECH_XOAUTH2, "user=\x01" "auth=Bearer T0KEN\x01\x01", "", 6),
    R(SASL_MECH_XOAUTH2, "usr=alice\x01" "auth=Bearer T0KEN\x01\x01", "", 10),
    R(SASL_MECH_XOAUTH2, "user=", "", NO_SECRET),
    R(SASL_MECH_XOAUTH2, "\x01", "", NO_SECRET),               /* the client's error ack */
    R(SASL_MECH_OAUTHBEARER, "n,,\x01" "auth=Bearer T0KEN\x01\x01", "", 4),   /* no authzid */
    R(SASL_MECH_OAUTHBEARER, "n,a=alice\x01" "auth=Bearer T0KEN,\x01", "", 10),
    R(SASL_MECH_OAUTHBEARER, "n,b=alice,\x01" "auth=Bearer T0KEN\x01\x01", "", 11),
    R(SASL_MECH_OAUTHBEARER, "n,A=alice,\x01" "auth=Bearer T0KEN\x01\x01", "", 11),
    R(SASL_MECH_OAUTHBEARER, "n,a,", "", NO_SECRET),
    R(SASL_MECH_OAUTHBEARER, "n,a=,", "", NO_SECRET),
    R(SASL_MECH_OAUTHBEARER, "n", "", NO_SECRET),
    R(SASL_MECH_OAUTHBEARER, "\x01", "", NO_SECRET),
    R(SASL_MECH_SCRAM, "n,,n=alice", "", NO_SECRET),            /* cut before ",r=" */
    R(SASL_MECH_SCRAM, "n,,n=,r=abc", "", NO_SECRET),
    R(SASL_MECH_SCRAM, "n,,r=abc,n=alice,", "", NO_SECRET),
    R(SASL_MECH_SCRAM, "c=biws,r=abc,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", "", 13),
    R(SASL_MECH_SCRAM, "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=", "", 0),
    R(SASL_MECH_SCRAM, "n,,m=ext", "", NO_SECRET),
    R(SASL_MECH_UNKNOWN, "\0alice\0s3cret", "", 7),
    R(SASL_MECH_COUNT, "alice", "", NO_SECRET),
    R((enum sasl_mech)99, "alice", "", NO_SECRET),
};

/* Calls sasl_user_name on an exact-size heap copy of r[0..len). Returns the user's
 * offset, or -1 for none, checking every span stays inside the block and off the secret. */
static long user_at(enum sasl_mech mech, const char *bytes, size_t len, size_t secret_at,
                    size_t *user_len)
{
    unsigned char *copy = malloc(len > 0 ? len : 1);
    assert_non_null(copy);
    memcpy(copy, bytes, len);
    const unsigned char *user = (const unsigned char *)"untouched";
    size_t n = 12345;
    long at = -1;
    if (sasl_user_name(mech, copy, len, &user, &n)) {
        assert_true(n > 0);
        assert_true(user >= copy && user + n <= copy + len);
        at = (long)(user - copy);
        if (secret_at != NO_SECRET)
            assert_true((size_t)at + n <= secret_at);
        *user_len = n;
    } else {
        assert_string_equal((const char *)user, "untouched");   /* outputs left alone */
        assert_int_equal(n, 12345);
    }
    free(copy);
    return at;
}

static void test_mech_from_name(void **unused)
{
    (void)unused;
    static const struct { const char *name; enum sasl_mech mech; } cases[] = {
        { "PLAIN", SASL_MECH_PLAIN },             { "plain", SASL_MECH_PLAIN },
        { "Login", SASL_MECH_LOGIN },             { "CRAM-MD5", SASL_MECH_CRAM_MD5 },
        { "cram-md5", SASL_MECH_CRAM_MD5 },       { "XOAUTH2", SASL_MECH_XOAUTH2 },
        { "OAUTHBEARER", SASL_MECH_OAUTHBEARER }, { "EXTERNAL", SASL_MECH_EXTERNAL },
        { "SCRAM-SHA-1", SASL_MECH_SCRAM },       { "scram-sha-256", SASL_MECH_SCRAM },
        { "SCRAM-SHA-256-PLUS", SASL_MECH_SCRAM },
        { "SCRAM-", SASL_MECH_UNKNOWN },          { "SCRAM", SASL_MECH_UNKNOWN },
        { "SCRAM-SHA-1 x", SASL_MECH_UNKNOWN },   { "SCRAM-*", SASL_MECH_UNKNOWN },
        { "SCRAM-SHA-256-PLUS-TOO-LONG", SASL_MECH_UNKNOWN },
        { "PLAI", SASL_MECH_UNKNOWN },            { "PLAINX", SASL_MECH_UNKNOWN },
        { "PLAIN ", SASL_MECH_UNKNOWN },          { "", SASL_MECH_UNKNOWN },
        { "GSSAPI", SASL_MECH_UNKNOWN },          { "NTLM", SASL_MECH_UNKNOWN },
        { "XOAUTH", SASL_MECH_UNKNOWN },          { "DIGEST-MD5", SASL_MECH_UNKNOWN },
    };
    for (size_t i = 0; i < COUNT(cases); i++) {
        size_t len = strlen(cases[i].name);
        char *copy = malloc(len > 0 ? len : 1);   /* not NUL-terminated */
        assert_non_null(copy);
        memcpy(copy, cases[i].name, len);
        if (sasl_mech_from_name(copy, len) != cases[i].mech)
            fail_msg("'%s' read as %s", cases[i].name,
                     sasl_mech_name(sasl_mech_from_name(copy, len)));
        free(copy);
    }
    /* Only len bytes count. */
    assert_int_equal(sasl_mech_from_name("PLAINTEXT", 5), SASL_MECH_PLAIN);
    assert_int_equal(sasl_mech_from_name("LOGIN", 4), SASL_MECH_UNKNOWN);
}

static void test_mech_name(void **unused)
{
    (void)unused;
    for (int m = SASL_MECH_PLAIN; m < SASL_MECH_SCRAM; m++) {
        const char *name = sasl_mech_name((enum sasl_mech)m);
        assert_int_equal(sasl_mech_from_name(name, strlen(name)), m);
    }
    assert_string_equal(sasl_mech_name(SASL_MECH_PLAIN), "PLAIN");
    assert_string_equal(sasl_mech_name(SASL_MECH_CRAM_MD5), "CRAM-MD5");
    assert_string_equal(sasl_mech_name(SASL_MECH_SCRAM), "SCRAM-*");
    assert_string_equal(sasl_mech_name(SASL_MECH_UNKNOWN), "unknown");
    assert_string_equal(sasl_mech_name(SASL_MECH_COUNT), "unknown");
    assert_string_equal(sasl_mech_name((enum sasl_mech)-1), "unknown");
}

static void test_mech_name_valid(void **unused)
{
    (void)unused;
    assert_true(sasl_mech_name_valid("PLAIN", 5));
    assert_true(sasl_mech_name_valid("plain", 5));
    assert_true(sasl_mech_name_valid("SCRAM-SHA-256-PLUS", 18));
    assert_true(sasl_mech_name_valid("X_Y-1", 5));
    assert_true(sasl_mech_name_valid("ABCDEFGHIJKLMNOPQRST", 20));
    assert_false(sasl_mech_name_valid("ABCDEFGHIJKLMNOPQRSTU", 21));
    assert_false(sasl_mech_name_valid("", 0));
    assert_false(sasl_mech_name_valid("dXNlcg==", 8));   /* base64 typed where a name goes */
    assert_false(sasl_mech_name_valid("a+b", 3));
    assert_false(sasl_mech_name_valid("PLAIN x", 7));
    assert_false(sasl_mech_name_valid("PL\0IN", 5));
}

static void test_every_mechanism(void **unused)
{
    (void)unused;
    for (size_t i = 0; i < COUNT(good); i++) {
        const struct response *r = &good[i];
        size_t n = 0;
        long at = user_at(r->mech, r->bytes, r->len, r->secret_at, &n);
        if (at < 0)
            fail_msg("good[%zu] (%s): no user", i, sasl_mech_name(r->mech));
        if (n != strlen(r->user) || memcmp(r->bytes + at, r->user, n) != 0)
            fail_msg("good[%zu] (%s): user '%.*s', expected '%s'", i, sasl_mech_name(r->mech),
                     (int)n, r->bytes + at, r->user);
    }
}

static void test_malformed(void **unused)
{
    (void)unused;
    for (size_t i = 0; i < COUNT(bad); i++) {
        size_t n = 0;
        long at = user_at(bad[i].mech, bad[i].bytes, bad[i].len, bad[i].secret_at, &n);
        if (at >= 0)
            fail_msg("bad[%zu] (%s): user '%.*s'", i, sasl_mech_name(bad[i].mech), (int)n,
                     bad[i].bytes + at);
    }
    const unsigned char *user = NULL;
    size_t n = 0;
    assert_false(sasl_user_name(SASL_MECH_LOGIN, NULL, 0, &user, &n));
}

/* Every good response cut at every length, as a capture may end anywhere: the user is
 * none, or the start of the full response's user (LOGIN's value, CRAM-MD5's words before
 * a cut digest), never a byte of the secret. */
static void test_every_truncation(void **unused)
{
    (void)unused;
    for (size_t i = 0; i < COUNT(good); i++) {
        const struct response *r = &good[i];
        size_t full_n = 0;
        long full_at = user_at(r->mech, r->bytes, r->len, r->secret_at, &full_n);
        for (size_t cut = 0; cut < r->len; cut++) {
            size_t n = 0;
            long at = user_at(r->mech, r->bytes, cut, r->secret_at, &n);
            if (at >= 0 && (at != full_at || n > full_n))
                fail_msg("good[%zu] cut at %zu: user '%.*s'", i, cut, (int)n, r->bytes + at);
        }
    }
}

/* Random bytes, weighted toward the separators the parsers look for: no crash, no read
 * past the block (ASan), and any user stays inside it. */
static void test_random_bytes(void **unused)
{
    (void)unused;
    static const char alphabet[] = { 0, 0, 1, 1, ',', ',', '=', ' ',
                                     'a', 'n', 'u', 's', 'e', 'r', 'm', 'x' };
    unsigned seed = 12345;
    char bytes[40];
    for (int round = 0; round < 20000; round++) {
        size_t len = (seed = seed * 1103515245u + 12345u) >> 16 & 31;
        for (size_t i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            bytes[i] = alphabet[(seed >> 16) % sizeof alphabet];
        }
        if (round % 3 == 0 && len >= 5)
            memcpy(bytes, round % 2 ? "user=" : "n,a=x", 5);
        for (int m = 0; m <= SASL_MECH_COUNT; m++) {
            size_t n = 0;
            user_at((enum sasl_mech)m, bytes, len, NO_SECRET, &n);
        }
    }
}

static size_t base64(char *out, const char *in, size_t len)
{
    static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = 0;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned char)in[i] << 16;
        v |= i + 1 < len ? (unsigned)(unsigned char)in[i + 1] << 8 : 0;
        v |= i + 2 < len ? (unsigned char)in[i + 2] : 0;
        out[n++] = digits[v >> 18 & 63];
        out[n++] = digits[v >> 12 & 63];
        out[n++] = i + 1 < len ? digits[v >> 6 & 63] : '=';
        out[n++] = i + 2 < len ? digits[v & 63] : '=';
    }
    return n;
}

static void assert_zero_from(const unsigned char *buf, size_t from, size_t cap)
{
    for (size_t i = from; i < cap; i++)
        if (buf[i] != 0)
            fail_msg("byte %zu of %zu left as 0x%02x", i, cap, buf[i]);
}

/* sasl_response_user: the user moved to the front, every other byte of buf wiped. */
static void test_response_user_wipes(void **unused)
{
    (void)unused;
    char b64[256];
    unsigned char buf[128];
    for (size_t i = 0; i < COUNT(good); i++) {
        size_t len = base64(b64, good[i].bytes, good[i].len);
        memset(buf, 0xAA, sizeof buf);
        size_t n = sasl_response_user(good[i].mech, b64, len, buf, sizeof buf);
        assert_int_equal(n, strlen(good[i].user));
        assert_memory_equal(buf, good[i].user, n);
        assert_zero_from(buf, n, sizeof buf);
    }
    for (size_t i = 0; i < COUNT(bad); i++) {
        size_t len = base64(b64, bad[i].bytes, bad[i].len);
        memset(buf, 0xAA, sizeof buf);
        assert_int_equal(sasl_response_user(bad[i].mech, b64, len, buf, sizeof buf), 0);
        assert_zero_from(buf, 0, sizeof buf);
    }
    static const char *const malformed[] = {
        "=", "", "AGFsaWNlAHMzY3JldA=x", "AGFs!aWNl", "====",
    };
    for (size_t i = 0; i < COUNT(malformed); i++) {
        memset(buf, 0xAA, sizeof buf);
        assert_int_equal(sasl_response_user(SASL_MECH_PLAIN, malformed[i], strlen(malformed[i]),
                                            buf, sizeof buf), 0);
        assert_zero_from(buf, 0, sizeof buf);
    }
    /* Decodes to more than cap: nothing, and what was decoded before it stopped is wiped. */
    size_t len = base64(b64, "\0alice\0s3cret", 13);
    memset(buf, 0xAA, sizeof buf);
    assert_int_equal(sasl_response_user(SASL_MECH_PLAIN, b64, len, buf, 12), 0);
    assert_zero_from(buf, 0, 12);
    assert_int_equal(buf[12], 0xAA);   /* nothing written past cap */
    /* Whitespace and missing padding are base64 the decoder accepts. */
    memset(buf, 0xAA, sizeof buf);
    static const char spaced[] = "AGFsaWNl AHMzY3JldA";   /* "\0alice\0s3cret" */
    assert_int_equal(sasl_response_user(SASL_MECH_PLAIN, spaced, strlen(spaced), buf, sizeof buf), 5);
    assert_memory_equal(buf, "alice", 5);
    assert_zero_from(buf, 5, sizeof buf);
}

/* The secrets of the good responses never appear in what sasl_response_user keeps. */
static void test_user_never_holds_secret(void **unused)
{
    (void)unused;
    char b64[256];
    unsigned char buf[128];
    for (size_t i = 0; i < COUNT(good); i++) {
        const struct response *r = &good[i];
        if (r->secret_at == NO_SECRET || r->secret_at >= r->len)
            continue;
        size_t len = base64(b64, r->bytes, r->len);
        size_t n = sasl_response_user(r->mech, b64, len, buf, sizeof buf);
        const char *secret = r->bytes + r->secret_at;
        size_t secret_len = r->len - r->secret_at;
        assert_null(memmem(buf, sizeof buf, secret, secret_len < 4 ? secret_len : 4));
        assert_true(n > 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mech_from_name),
        cmocka_unit_test(test_mech_name),
        cmocka_unit_test(test_mech_name_valid),
        cmocka_unit_test(test_every_mechanism),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_random_bytes),
        cmocka_unit_test(test_response_user_wipes),
        cmocka_unit_test(test_user_never_holds_secret),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
