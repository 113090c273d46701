/* test_pop3.c — cmocka tests for the POP3 decoder. Every scripted two-sided dialogue is
 * fed whole, split at every byte boundary and byte by byte: the sessions must be identical.
 * Then hostile input, and the real public captures kept in tests/data/pop3/ (see
 * extract.py there for where they come from and how they were made). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "protocols/decoder.h"
#include "protocols/explain.h"
#include "tests/dialogue.h"
#include "protocols/session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define C(s) { MT_CLIENT, s, sizeof(s) - 1 }
#define S(s) { MT_SERVER, s, sizeof(s) - 1 }
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

enum feed_mode { FEED_WHOLE, FEED_SPLIT, FEED_BYTES };

/* Runs a dialogue: each step is one segment (time 1000 * its number), except the one
 * holding byte offset split_at (FEED_SPLIT), which is cut there, and FEED_BYTES, where
 * every byte is a segment of its own. */
static struct mt_session *run(const struct dialogue_step *steps, size_t n, enum mt_end end,
                              enum feed_mode mode, size_t split_at)
{
    struct mt_session *session = session_new(MT_PROTO_POP3);
    assert_non_null(session);
    void *state = pop3_decoder.open(session);
    assert_non_null(state);
    size_t offset = 0;
    for (size_t i = 0; i < n; i++) {
        const char *bytes = steps[i].bytes;
        size_t len = steps[i].len;
        int64_t ts = 1000 * (int64_t)(i + 1);
        if (mode == FEED_BYTES) {
            for (size_t b = 0; b < len; b++)
                pop3_decoder.data(state, session, steps[i].side, bytes + b, 1, ts);
        } else if (mode == FEED_SPLIT && split_at > offset && split_at < offset + len) {
            size_t cut = split_at - offset;
            pop3_decoder.data(state, session, steps[i].side, bytes, cut, ts);
            pop3_decoder.data(state, session, steps[i].side, bytes + cut, len - cut, ts);
        } else if (len > 0) {
            pop3_decoder.data(state, session, steps[i].side, bytes, len, ts);
        }
        offset += len;
    }
    session->end = end;
    session->end_us = 1000 * (int64_t)(n + 1);
    pop3_decoder.close(state, session);
    pop3_decoder.free(state);
    return session;
}

static void assert_same_session(const struct mt_session *a, const struct mt_session *b,
                                const char *how, size_t where)
{
    bool same = a->status == b->status && strcmp(a->status_line, b->status_line) == 0 &&
                a->status_transcript_line == b->status_transcript_line &&
                strcmp(a->user, b->user) == 0 && strcmp(a->banner, b->banner) == 0 &&
                strcmp(a->server_name, b->server_name) == 0 && a->tls == b->tls &&
                a->auth_attempts == b->auth_attempts && a->auth_failures == b->auth_failures &&
                a->flags == b->flags && a->stats.retr_count == b->stats.retr_count &&
                a->stats.retr_bytes == b->stats.retr_bytes &&
                a->stats.top_count == b->stats.top_count &&
                a->stats.dele_count == b->stats.dele_count &&
                a->stats.stat_messages == b->stats.stat_messages &&
                a->stats.stat_bytes == b->stats.stat_bytes &&
                a->transcript_lines == b->transcript_lines &&
                a->transcript_dropped == b->transcript_dropped &&
                a->transcript_len == b->transcript_len &&
                (a->transcript_len == 0 ||
                 memcmp(a->transcript, b->transcript, a->transcript_len) == 0);
    if (!same) {
        print_error("sessions differ (%s %zu): status %s/%s line '%s'/'%s' user '%s'/'%s' "
                    "flags %x/%x\n--- whole:\n%.*s--- %s:\n%.*s", how, where,
                    status_name(a->status), status_name(b->status), a->status_line,
                    b->status_line, a->user, b->user, a->flags, b->flags,
                    (int)a->transcript_len, a->transcript ? a->transcript : "", how,
                    (int)b->transcript_len, b->transcript ? b->transcript : "");
        fail();
    }
}

static size_t total_bytes(const struct dialogue_step *steps, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += steps[i].len;
    return total;
}

/* Feeds the dialogue whole, byte by byte and split at every `stride`-th byte boundary;
 * returns the whole-fed session after checking the others are identical to it. */
static struct mt_session *check_strided(const struct dialogue_step *steps, size_t n, enum mt_end end,
                                        size_t stride)
{
    struct mt_session *whole = run(steps, n, end, FEED_WHOLE, 0);
    struct mt_session *other = run(steps, n, end, FEED_BYTES, 0);
    assert_same_session(whole, other, "byte by byte", 0);
    session_free(other);
    size_t total = total_bytes(steps, n);
    for (size_t at = 1; at < total; at += stride) {
        other = run(steps, n, end, FEED_SPLIT, at);
        assert_same_session(whole, other, "split at", at);
        session_free(other);
    }
    return whole;
}

static struct mt_session *check(const struct dialogue_step *steps, size_t n, enum mt_end end)
{
    return check_strided(steps, n, end, 1);
}

/* True when the transcript has the line "DIR TEXT" (any time stamp). */
static bool has_line(const struct mt_session *s, char dir, const char *text)
{
    char needle[MT_TRANSCRIPT_LINE_MAX + 8];
    int n = snprintf(needle, sizeof needle, " %c %s\n", dir, text);
    return s->transcript && memmem(s->transcript, s->transcript_len, needle, (size_t)n) != NULL;
}

static int count_lines(const struct mt_session *s, char dir)
{
    int count = 0;
    char tag[4] = { ' ', dir, ' ', 0 };
    for (size_t i = 0; i < s->transcript_len;) {
        const char *end = memchr(s->transcript + i, '\n', s->transcript_len - i);
        const char *space = memchr(s->transcript + i, ' ', s->transcript_len - i);
        if (space && space < end && memcmp(space, tag, 3) == 0)
            count++;
        i = (size_t)(end - s->transcript) + 1;
    }
    return count;
}

static bool contains(const char *hay, size_t len, const char *needle)
{
    return hay && memmem(hay, len, needle, strlen(needle)) != NULL;
}

/* No field of the session may hold the secret. */
static void assert_no_secret(const struct mt_session *s, const char *secret)
{
    const char *fields[] = { s->status_line, s->user, s->banner, s->server_name, s->helo,
                             s->stats.mailboxes };
    for (size_t i = 0; i < COUNT(fields); i++)
        if (contains(fields[i], strlen(fields[i]), secret))
            fail_msg("secret '%s' in field %zu: '%s'", secret, i, fields[i]);
    if (contains(s->transcript, s->transcript_len, secret))
        fail_msg("secret '%s' in transcript:\n%.*s", secret, (int)s->transcript_len, s->transcript);
}

/* ---- scripted dialogues ---- */

#define GREETING S("+OK Dovecot ready.\r\n")
#define BODY "From: bob@example.com\r\nSubject: hi\r\n\r\n..leading dot, stuffed\r\n" \
             "+OK not a reply\r\n-ERR not a reply either\r\n.\r\n"
#define BODY_BYTES (sizeof(BODY) - 1 - 3) /* the terminating ".\r\n" is not counted */

static const struct dialogue_step dialogue_user_pass[] = {
    GREETING,
    C("CAPA\r\n"),
    S("+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nUSER\r\nSASL PLAIN LOGIN\r\n"
      "STLS\r\n.\r\n"),
    C("USER alice\r\n"),
    S("+OK\r\n"),
    C("PASS s3cr3t-Pw with spaces\r\n"),
    S("+OK Logged in.\r\n"),
    C("STAT\r\n"),
    S("+OK 2 320\r\n"),
    C("LIST\r\n"),
    S("+OK 2 messages:\r\n1 120\r\n2 200\r\n.\r\n"),
    C("LANG\r\n"),   /* RFC 6856: a listing too */
    S("+OK Language listing follows:\r\nen English\r\nde Deutsch\r\n.\r\n"),
    C("RETR 1\r\n"),
    S("+OK 120 octets\r\n"),
    S(BODY),
    C("DELE 1\r\n"),
    S("+OK Marked to be deleted.\r\n"),
    C("QUIT\r\n"),
    S("+OK Logging out, messages deleted.\r\n"),
};

static void test_user_pass_retr_counters(void **unused)
{
    (void)unused;
    struct mt_session *s = check(dialogue_user_pass, COUNT(dialogue_user_pass), MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_LOGIN_OK);
    assert_string_equal(s->status_line, "+OK Logged in.");
    assert_true(has_line(s, 'S', "+OK Logged in."));
    assert_string_equal(s->user, "alice");
    assert_string_equal(s->banner, "+OK Dovecot ready.");
    assert_int_equal(s->auth_attempts, 1);
    assert_int_equal(s->auth_failures, 0);
    assert_int_equal(s->stats.stat_messages, 2);
    assert_int_equal(s->stats.stat_bytes, 320);
    assert_int_equal(s->stats.retr_count, 1);
    assert_int_equal(s->stats.retr_bytes, BODY_BYTES);
    assert_int_equal(s->stats.dele_count, 1);
    assert_int_equal(s->stats.top_count, 0);
    assert_int_equal(s->flags, 0);
    assert_false(s->tls);
    assert_true(has_line(s, 'C', "PASS *****"));
    assert_true(has_line(s, 'S', "SASL PLAIN LOGIN"));
    assert_true(has_line(s, 'S', "2 200"));
    assert_true(has_line(s, 'S', "de Deutsch"));
    char note[64];
    snprintf(note, sizeof note, "[message %zu bytes]", BODY_BYTES);
    assert_true(has_line(s, 'I', note));
    /* the body is skipped: its lines never reach the transcript or the reply matching */
    assert_false(contains(s->transcript, s->transcript_len, "not a reply"));
    assert_false(contains(s->transcript, s->transcript_len, "Subject"));
    assert_no_secret(s, "s3cr3t");
    session_free(s);
}

static const struct dialogue_step dialogue_bad_password[] = {
    GREETING,
    C("USER bob\r\n"),
    S("+OK\r\n"),
    C("PASS wrong-pw-1\r\n"),
    S("-ERR [AUTH] Authentication failed.\r\n"),
    C("QUIT\r\n"),
    S("+OK Logging out\r\n"),
};

static void test_bad_password(void **unused)
{
    (void)unused;
    struct mt_session *s = check(dialogue_bad_password, COUNT(dialogue_bad_password),
                                 MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_AUTH_FAILED);
    assert_string_equal(s->status_line, "-ERR [AUTH] Authentication failed.");
    assert_int_equal(s->status_transcript_line, 4);
    assert_string_equal(s->user, "bob");
    assert_int_equal(s->auth_attempts, 1);
    assert_int_equal(s->auth_failures, 1);
    assert_no_secret(s, "wrong-pw-1");
    session_free(s);
}

static const struct dialogue_step dialogue_fail_then_ok[] = {
    GREETING,
    C("USER bob\r\n"),
    S("+OK\r\n"),
    C("PASS wrong-pw-2\r\n"),
    S("-ERR [AUTH] Authentication failed.\r\n"),
    C("USER bob\r\n"),
    S("+OK\r\n"),
    C("PASS right-pw-2\r\n"),
    S("+OK Logged in.\r\n"),
    C("QUIT\r\n"),
    S("+OK Logging out\r\n"),
};

static void test_fail_then_succeed(void **unused)
{
    (void)unused;
    struct mt_session *s = check(dialogue_fail_then_ok, COUNT(dialogue_fail_then_ok),
                                 MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_LOGIN_OK);
    assert_string_equal(s->status_line, "+OK Logged in.");
    assert_int_equal(s->auth_attempts, 2);
    assert_int_equal(s->auth_failures, 1);
    assert_true(has_line(s, 'S', "-ERR [AUTH] Authentication failed."));
    assert_no_secret(s, "wrong-pw-2");
    assert_no_secret(s, "right-pw-2");
    session_free(s);
}

/* "\0alice\0pw-plain-123" */
static const struct dialogue_step dialogue_plain_ok[] = {
    GREETING,
    C("AUTH PLAIN AGFsaWNlAHB3LXBsYWluLTEyMw==\r\n"),
    S("+OK Logged in.\r\n"),
    C("QUIT\r\n"),
    S("+OK Logging out\r\n"),
};

/* "admin\0frank\0pw-plain-456", sent after an empty "+ " challenge */
static const struct dialogue_step dialogue_plain_failed[] = {
    GREETING,
    C("AUTH PLAIN\r\n"),
    S("+ \r\n"),
    C("YWRtaW4AZnJhbmsAcHctcGxhaW4tNDU2\r\n"),
    S("-ERR [AUTH] Authentication failed.\r\n"),
};

/* "grace\0\0pw-plain-789": empty authcid, the authzid names the user */
static const struct dialogue_step dialogue_plain_authzid[] = {
    GREETING,
    C("AUTH PLAIN Z3JhY2UAAHB3LXBsYWluLTc4OQ==\r\n"),
    S("+OK Logged in.\r\n"),
};

static void test_auth_plain(void **unused)
{
    (void)unused;
    struct mt_session *s = check(dialogue_plain_ok, COUNT(dialogue_plain_ok), MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_LOGIN_OK);
    assert_string_equal(s->user, "alice");
    assert_int_equal(s->auth_attempts, 1);
    assert_true(has_line(s, 'C', "AUTH PLAIN *****"));
    assert_no_secret(s, "AGFsaWNlAHB3LXBsYWluLTEyMw");
    assert_no_secret(s, "pw-plain-123");
    session_free(s);

    s = check(dialogue_plain_failed, COUNT(dialogue_plain_failed), MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_AUTH_FAILED);
    assert_string_equal(s->status_line, "-ERR [AUTH] Authentication failed.");
    assert_string_equal(s->user, "frank");
    assert_int_equal(s->auth_attempts, 1);
    assert_int_equal(s->auth_failures, 1);
    assert_true(has_line(s, 'C', "AUTH PLAIN"));
    assert_true(has_line(s, 'C', "*****"));
    assert_no_secret(s, "YWRtaW4AZnJhbmsAcHctcGxhaW4tNDU2");
    assert_no_secret(s, "pw-plain-456");
    session_free(s);

    s = check(dialogue_plain_authzid, COUNT(dialogue_plain_authzid), MT_END_EOF);
    assert_int_equal(s->status, MT_STATUS_LOGIN_OK);
    assert_string_equal(s->user, "grace");
    assert_no_secret(s, "pw-plain-789");
    session_free(s);
}

/* "carol" / "pw-login-321" */
static const struct dialogue_step dialogue_login[] = {
    GREETING,
    C("AUTH LOGIN\r\n"),
    S("+ VXNlcm5hbWU6\r\n"),
    C("Y2Fyb2w=\r\n"),
    S("+ UGFzc3dvcmQ6\r\n"),
    C("cHctbG9naW4tMzIx\r\n"),
    S("+OK Logged in.\r\n"),
    C("STAT\r\n"),
    S("+OK 0 0\r\n"),
    C("QUIT\r\n"),
    S("+OK Logging out\r\n"),
};

static void test_auth_login(void **unused)
{
    (void)unused;
    struct mt_session *s = check(dialogue_login, COUNT(dialogue_login), MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_LOGIN_OK);
    assert_string_equal(s->user, "carol");
    assert_int_equal(s->auth_attempts, 1);
    assert_int_equal(count_lines(s, 'C'), 5); /* AUTH LOGIN, *****, *****, STAT, QUIT */
    assert_true(has_line(s, 'C', "STAT"));
    assert_no_secret(s, "Y2Fyb2w");
    assert_no_secret(s, "cHctbG9naW4tMzIx");
    assert_no_secret(s, "pw-login-321");
    session_free(s);
}

/* CRAM-MD5 (the RFC 2195 example), XOAUTH2 refused (error challenge, empty answer),
 * OAUTHBEARER accepted. */
static const struct dialogue_step dialogue_cram_md5[] = {
    S("+OK POP3 server ready\r\n"),
    C("AUTH CRAM-MD5\r\n"),
    S("+ PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+\r\n"),
    C("dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw\r\n"),
    S("+OK CRAM authentication successful\r\n"),
};

static const struct dialogue_step dialogue_xoauth2[] = {
    GREETING,
    C("AUTH XOAUTH2 dXNlcj1kYXZlQGV4YW1wbGUuY29tAWF1dGg9QmVhcmVyIHlhMjkuc2VjcmV0LXRva2VuAQE=\r\n"),
    S("+ eyJzdGF0dXMiOiI0MDEifQ==\r\n"),
    C("\r\n"),
    S("-ERR [AUTH] Invalid credentials\r\n"),
    C("QUIT\r\n"),
    S("+OK bye\r\n"),
};

static const struct dialogue_step dialogue_oauthbearer[] = {
    GREETING,
    C("AUTH OAUTHBEARER bixhPW9sZ2FAZXhhbXBsZS5jb20sAWhvc3Q9bWFpbAFhdXRoPUJlYXJlciBvYXV0aC1zZWNyZXQteHl6AQE=\r\n"),
    S("+OK Logged in\r\n"),
};

static void test_auth_other_mechanisms(void **unused)
{
    (void)unused;
    struct mt_session *s = check(dialogue_cram_md5, COUNT(dialogue_cram_md5), MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_LOGIN_OK);
    assert_string_equal(s->user, "tim");
    assert_no_secret(s, "b913a602c7eda7a495b4e6e7334d3890");
    session_free(s);

    s = check(dialogue_xoauth2, COUNT(dialogue_xoauth2), MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_AUTH_FAILED);
    assert_string_equal(s->status_line, "-ERR [AUTH] Invalid credentials");
    assert_string_equal(s->user, "dave@example.com");
    assert_int_equal(s->auth_attempts, 1);
    assert_true(has_line(s, 'C', "QUIT"));
    assert_false(has_line(s, 'C', ""));
    assert_no_secret(s, "secret-token");
    assert_no_secret(s, "dXNlcj1kYXZl");
    session_free(s);

    s = check(dialogue_oauthbearer, COUNT(dialogue_oauthbearer), MT_END_CLOSE);
    assert_string_equal(s->user, "olga@example.com");
    assert_no_secret(s, "oauth-secret-xyz");
    session_free(s);
}

static const struct dialogue_step dialogue_auth_cancel[] = {
    GREETING,
    C("AUTH\r\n"),
    S("+OK\r\nPLAIN\r\nLOGIN\r\n.\r\n"),
    C("AUTH LOGIN\r\n"),
    S("+ VXNlcm5hbWU6\r\n"),
    C("*\r\n"),
    S("-ERR Authentication aborted\r\n"),
    C("AUTH\r\n"),
    S("-ERR 1 argument required\r\n"),
    C("QUIT\r\n"),
    S("+OK bye\r\n"),
};

static const struct dialogue_step dialogue_auth_unsupported[] = {
    GREETING,
    C("AUTH GSSAPI\r\n"),
    S("-ERR Unsupported authentication mechanism.\r\n"),
    C("AUTH PLAIN\r\n"),
    S("-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.\r\n"),
};

static void test_auth_list_and_cancel(void **unused)
{
    (void)unused;
    struct mt_session *s = check(dialogue_auth_cancel, COUNT(dialogue_auth_cancel),
                                 MT_END_CLOSE);
    assert_int_equal(s->auth_attempts, 0);
    assert_int_equal(s->status, MT_STATUS_NO_MAIL);
    assert_string_equal(s->status_line, "+OK bye");
    assert_true(has_line(s, 'S', "LOGIN"));
    assert_true(has_line(s, 'C', "*"));
    assert_int_equal(s->flags, 0);
    session_free(s);

    /* a mechanism refused before any credential: no attempt, unless for want of TLS */
    s = check(dialogue_auth_unsupported, COUNT(dialogue_auth_unsupported), MT_END_CLOSE);
    assert_int_equal(s->auth_attempts, 1);
    assert_int_equal(s->status, MT_STATUS_LOGIN_DISABLED);
    session_free(s);
    s = check(dialogue_auth_unsupported, 3, MT_END_CLOSE);
    assert_int_equal(s->auth_attempts, 0);
    assert_int_equal(s->status, MT_STATUS_NO_MAIL);
    session_free(s);
}

static const struct dialogue_step dialogue_apop[] = {
    S("+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>\r\n"),
    C("APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n"),
    S("+OK mrose's maildrop has 2 messages (320 octets)\r\n"),
    C("QUIT\r\n"),
    S("+OK dewey POP3 server signing off\r\n"),
};

static void test_apop(void **unused)
{
    (void)unused;
    struct mt_session *s = check(dialogue_apop, COUNT(dialogue_apop), MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_LOGIN_OK);
    assert_string_equal(s->user, "mrose");
    assert_true(has_line(s, 'C', "APOP mrose *****"));
    assert_no_secret(s, "c4c9334bac560ecc979e58001b3e22fb");
    assert_string_equal(s->server_name, "");
    session_free(s);
}

static const struct dialogue_step dialogue_stls_tls[] = {
    S("+OK mail.example.org POP3 ready\r\n"),
    C("CAPA\r\n"),
    S("+OK\r\nSTLS\r\nUSER\r\n.\r\n"),
    C("STLS\r\n"),
    S("+OK Begin TLS negotiation\r\n"),
    C("\x16\x03\x01\x00\x05hello"),
    S("\x16\x03\x03\x00\x02hi"),
    C("\x17\x03\x03\x00\x20USER secret-user\r\nPASS secret-pw\r\n"),
    S("\x17\x03\x03\x00\x10+OK Logged in.\r\n"),
};

static void test_stls_then_tls(void **unused)
{
    (void)unused;
    struct mt_session *s = check(dialogue_stls_tls, COUNT(dialogue_stls_tls), MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_ENCRYPTED);
    assert_string_equal(s->status_line, "+OK Begin TLS negotiation");
    assert_int_equal(s->status_transcript_line, 6);
    assert_true(s->tls);
    assert_string_equal(s->server_name, "mail.example.org");
    assert_int_equal(s->flags & MT_FLAG_DECRYPTED, 0);
    assert_int_equal(s->auth_attempts, 0);
    assert_no_secret(s, "secret-user");
    assert_no_secret(s, "secret-pw");
    session_free(s);
}

/* The client's side comes first, STLS and hello in one segment: still TLS. */
static const struct dialogue_step dialogue_stls_client_ahead[] = {
    S("+OK ready\r\n"),
    C("STLS\r\n\x16\x03\x01\x00\x05hello"),
    S("+OK Begin TLS\r\n\x16\x03\x03\x00\x02hi"),
};

/* A refused plaintext login, then STLS: what follows is encrypted, whatever it was. */
static const struct dialogue_step dialogue_disabled_then_stls[] = {
    S("+OK Dovecot ready.\r\n"),
    C("USER zoe\r\n"),
    S("-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.\r\n"),
    C("STLS\r\n"),
    S("+OK Begin TLS negotiation now.\r\n"),
};

static void test_stls_client_ahead(void **unused)
{
    (void)unused;
    struct mt_session *s = check(dialogue_stls_client_ahead, COUNT(dialogue_stls_client_ahead),
                                 MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_ENCRYPTED);
    assert_true(s->tls);
    assert_true(has_line(s, 'I', "[TLS from here on: the handshake and what follows are not shown]"));
    session_free(s);

    s = check(dialogue_disabled_then_stls, COUNT(dialogue_disabled_then_stls), MT_END_RESET);
    assert_int_equal(s->status, MT_STATUS_ENCRYPTED);
    assert_string_equal(s->status_line, "+OK Begin TLS negotiation now.");
    assert_int_equal(s->auth_failures, 0);   /* refused at USER: no password was judged */
    session_free(s);
}

static const struct dialogue_step dialogue_stls_plain[] = {
    GREETING,
    C("STLS\r\n"),
    S("+OK Begin TLS negotiation now.\r\n"),
    C("CAPA\r\n"),
    S("+OK\r\nUSER\r\n.\r\n"),
    C("USER erin\r\n"),
    S("+OK\r\n"),
    C("PASS decrypted-pw\r\n"),
    S("+OK Logged in.\r\n"),
    C("QUIT\r\n"),
    S("+OK Logging out.\r\n"),
};

/* The client never began TLS; the server (OpenSSL: "wrong version number") drops it. */
static const struct dialogue_step dialogue_stls_client_plain[] = {
    GREETING,
    C("STLS\r\n"),
    S("+OK Begin TLS negotiation now.\r\n"),
    C("USER erin\r\n"),
};

/* ... and one whose server answers the plaintext with a TLS alert: no plaintext answer. */
static const struct dialogue_step dialogue_stls_client_plain_alert[] = {
    GREETING,
    C("STLS\r\n"),
    S("+OK Begin TLS negotiation now.\r\n"),
    C("USER erin\r\n"),
    S("\x15\x03\x01\x00\x02\x02\x46"),
};

static void test_stls_then_plaintext(void **unused)
{
    (void)unused;
    struct mt_session *s = check(dialogue_stls_plain, COUNT(dialogue_stls_plain), MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_LOGIN_OK);
    assert_true(s->tls);
    assert_int_equal(s->flags, MT_FLAG_DECRYPTED);
    assert_string_equal(s->user, "erin");
    assert_no_secret(s, "decrypted-pw");
    session_free(s);

    s = check(dialogue_stls_client_plain, COUNT(dialogue_stls_client_plain), MT_END_RESET);
    assert_int_equal(s->status, MT_STATUS_TLS_FAILED);
    assert_string_equal(s->status_line,
                        "the client sent plaintext after STLS's +OK instead of starting TLS");
    assert_int_equal(s->flags & MT_FLAG_DECRYPTED, 0);
    assert_true(has_line(s, 'I', "[plaintext after STLS]"));
    session_free(s);
    s = check(dialogue_stls_client_plain_alert, COUNT(dialogue_stls_client_plain_alert),
              MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_TLS_FAILED);
    assert_int_equal(s->flags & MT_FLAG_DECRYPTED, 0);
    session_free(s);
    s = check(dialogue_stls_client_plain, COUNT(dialogue_stls_client_plain), MT_END_EOF);
    assert_int_equal(s->status, MT_STATUS_INCOMPLETE);   /* cut by the capture's end */
    session_free(s);
}

static const struct dialogue_step dialogue_stls_refused[] = {
    GREETING,
    C("STLS\r\n"),
    S("-ERR TLS support isn't enabled.\r\n"),
    C("USER frank\r\n"),
    S("+OK\r\n"),
    C("PASS plain-pw\r\n"),
    S("+OK Logged in.\r\n"),
};

static const struct dialogue_step dialogue_stls_refused_quit[] = {
    GREETING,
    C("CAPA\r\n"),
    S("+OK\r\nSTLS\r\nUSER\r\n.\r\n"),
    C("STLS\r\n"),
    S("-ERR TLS support isn't enabled.\r\n"),
    C("QUIT\r\n"),
    S("+OK Logging out.\r\n"),
};

static void test_stls_refused(void **unused)
{
    (void)unused;
    struct mt_session *s = check(dialogue_stls_refused, COUNT(dialogue_stls_refused),
                                 MT_END_EOF);
    assert_int_equal(s->status, MT_STATUS_LOGIN_OK);
    assert_false(s->tls);
    assert_true(s->starttls_refused);   /* the client asked: no starttls_unused */
    assert_int_equal(s->flags, 0);
    session_free(s);

    /* ... and a client that gives up then: the refusal is why (Dovecot without TLS) */
    s = check(dialogue_stls_refused_quit, COUNT(dialogue_stls_refused_quit), MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_TLS_FAILED);
    assert_string_equal(s->status_line, "-ERR TLS support isn't enabled.");
    assert_int_equal(s->status_transcript_line, 6);
    assert_true(s->starttls_refused);
    session_free(s);
}

static const struct dialogue_step dialogue_login_disabled[] = {
    S("+OK Dovecot (Ubuntu) ready.\r\n"),
    C("USER www-data\r\n"),
    S("-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.\r\n"),
    C("QUIT\r\n"),
    S("+OK Logging out\r\n"),
};

static const struct dialogue_step dialogue_login_disabled_auth[] = {
    S("+OK ready\r\n"),
    C("AUTH PLAIN AGFsaWNlAHB3LXBsYWluLTEyMw==\r\n"),
    S("-ERR Must issue a STARTTLS command first.\r\n"),
};

static void test_login_disabled(void **unused)
{
    (void)unused;
    struct mt_session *s = check(dialogue_login_disabled, COUNT(dialogue_login_disabled),
                                 MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_LOGIN_DISABLED);
    assert_string_equal(s->status_line, "-ERR [AUTH] Plaintext authentication disallowed on "
                                        "non-secure (SSL/TLS) connections.");
    assert_string_equal(s->user, "www-data");
    assert_int_equal(s->auth_attempts, 0);   /* refused at USER: no password crossed */
    assert_int_equal(s->auth_failures, 0);
    session_free(s);

    s = check(dialogue_login_disabled_auth, COUNT(dialogue_login_disabled_auth), MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_LOGIN_DISABLED);
    assert_string_equal(s->user, "alice");
    assert_no_secret(s, "pw-plain-123");
    session_free(s);
}

static const struct dialogue_step dialogue_err_greeting[] = {
    S("-ERR [SYS/TEMP] Too many connections, try again later\r\n"),
    C("QUIT\r\n"),
};

static void test_err_greeting(void **unused)
{
    (void)unused;
    struct mt_session *s = check(dialogue_err_greeting, COUNT(dialogue_err_greeting),
                                 MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_SERVER_REJECTED);
    assert_string_equal(s->status_line, "-ERR [SYS/TEMP] Too many connections, try again later");
    assert_string_equal(s->banner, s->status_line);
    assert_int_equal(s->status_transcript_line, 0);
    session_free(s);
}

/* The server's own trouble at login (RFC 3206 codes) is not a wrong password; after a
 * login, a mailbox command it fails is the session's failure. */
static const struct dialogue_step dialogue_locked[] = {
    GREETING,
    C("USER carol\r\n"), S("+OK\r\n"),
    C("PASS locked-pw\r\n"), S("-ERR [IN-USE] Unable to lock maildrop\r\n"),
    C("QUIT\r\n"), S("+OK bye\r\n"),
};

/* Dovecot's pop3-login over mail_max_userip_connections: no response code */
static const struct dialogue_step dialogue_limit[] = {
    GREETING,
    C("USER carol\r\n"), S("+OK\r\n"),
    C("PASS limit-pw\r\n"),
    S("-ERR Maximum number of connections from user+IP exceeded "
      "(mail_max_userip_connections=10)\r\n"),
};

static const struct dialogue_step dialogue_sys_perm[] = {
    GREETING,
    C("USER carol\r\n"), S("+OK\r\n"),
    C("PASS perm-pw\r\n"), S("-ERR [SYS/PERM] Mailbox is corrupted\r\n"),
    C("QUIT\r\n"), S("+OK bye\r\n"),
};

static const struct dialogue_step dialogue_retr_fails[] = {
    GREETING,
    C("USER carol\r\n"), S("+OK\r\n"),
    C("PASS retr-pw\r\n"), S("+OK Logged in.\r\n"),
    C("STAT\r\n"), S("+OK 1 300\r\n"),
    C("RETR 1\r\n"), S("-ERR Error reading message from disk\r\n"),
    C("RETR 2\r\n"), S("-ERR There's no message 2.\r\n"),
    C("QUIT\r\n"), S("+OK bye\r\n"),
};

static const struct dialogue_step dialogue_quit_fails[] = {
    S("+OK Dovecot ready.\r\n"), C("USER kim\r\n"), S("+OK\r\n"), C("PASS quit-pw\r\n"),
    S("+OK Logged in.\r\n"), C("DELE 1\r\n"), S("+OK Marked to be deleted.\r\n"),
    C("QUIT\r\n"), S("-ERR [SYS/TEMP] Failed to delete messages: Internal error occurred.\r\n"),
};

static void test_server_trouble(void **unused)
{
    (void)unused;
    struct mt_session *s = check(dialogue_locked, COUNT(dialogue_locked), MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_TEMP_FAILED);
    assert_string_equal(s->status_line, "-ERR [IN-USE] Unable to lock maildrop");
    assert_int_equal(s->auth_attempts, 1);
    assert_int_equal(s->auth_failures, 0);   /* not a rejected password */
    assert_no_secret(s, "locked-pw");
    session_free(s);
    s = check(dialogue_sys_perm, COUNT(dialogue_sys_perm), MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_MAILBOX_FAILED);
    session_free(s);
    /* a connection limit is not a wrong password either (walkthrough 12) */
    s = check(dialogue_limit, COUNT(dialogue_limit), MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_TEMP_FAILED);
    assert_int_equal(s->auth_failures, 0);
    assert_true(explain_blames_other_sessions(s->status_line, strlen(s->status_line)));
    assert_non_null(strstr(explain_reason(s->status, s->status_line), "connection limit"));
    session_free(s);
    s = check(dialogue_retr_fails, COUNT(dialogue_retr_fails), MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_MAILBOX_FAILED);
    assert_string_equal(s->status_line, "-ERR Error reading message from disk");
    assert_true(s->status_transcript_line >= 0);
    session_free(s);
    /* The deletions are done at QUIT: refused then, the mail was not deleted (the client
     * downloads it again next time). */
    s = check(dialogue_quit_fails, COUNT(dialogue_quit_fails), MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_MAILBOX_FAILED);
    assert_string_equal(s->status_line,
                        "-ERR [SYS/TEMP] Failed to delete messages: Internal error occurred.");
    session_free(s);
}

static const struct dialogue_step dialogue_client_only[] = {
    C("CAPA\r\n"),
    C("USER x\r\n"),
};

static const struct dialogue_step dialogue_tls_hello_only[] = {
    C("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"),
};

static const struct dialogue_step dialogue_implicit_tls[] = {
    C("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"),
    S("\x16\x03\x03\x00\x5a\x02\x00\x00\x56"),
    C("\x17\x03\x03\x00\x20USER x\r\n"),
};

static void test_no_server_bytes_and_implicit_tls(void **unused)
{
    (void)unused;
    struct mt_session *s = check(dialogue_client_only, COUNT(dialogue_client_only), MT_END_EOF);
    assert_int_equal(s->status, MT_STATUS_NO_RESPONSE);
    assert_int_equal(s->status_transcript_line, -1);
    session_free(s);

    s = run(NULL, 0, MT_END_UNANSWERED, FEED_WHOLE, 0);
    assert_int_equal(s->status, MT_STATUS_NO_RESPONSE);
    assert_int_equal(s->transcript_len, 0);
    session_free(s);

    s = run(NULL, 0, MT_END_REFUSED, FEED_WHOLE, 0);
    assert_int_equal(s->status, MT_STATUS_REFUSED);
    session_free(s);

    s = check(dialogue_tls_hello_only, COUNT(dialogue_tls_hello_only), MT_END_RESET);
    assert_int_equal(s->status, MT_STATUS_NO_RESPONSE);
    session_free(s);

    s = check(dialogue_implicit_tls, COUNT(dialogue_implicit_tls), MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_ENCRYPTED);
    assert_string_equal(s->status_line, "[TLS from the first byte: implicit TLS]");
    assert_true(s->tls);
    assert_int_equal(count_lines(s, 'C'), 0);
    session_free(s);
}

static const struct dialogue_step dialogue_reset[] = {
    GREETING,
    C("CAPA\r\n"),
    S("+OK\r\nUSER\r\n.\r\n"),
};

static const struct dialogue_step dialogue_incomplete[] = {
    GREETING,
    C("USER x\r\n"),
    S("+OK\r\n"),
};

static void test_reset_and_incomplete(void **unused)
{
    (void)unused;
    struct mt_session *s = check(dialogue_reset, COUNT(dialogue_reset), MT_END_RESET);
    assert_int_equal(s->status, MT_STATUS_RESET);
    session_free(s);

    enum mt_end ends[] = { MT_END_EOF, MT_END_TIMEOUT, MT_END_EVICTED };
    for (size_t i = 0; i < COUNT(ends); i++) {
        s = check(dialogue_incomplete, COUNT(dialogue_incomplete), ends[i]);
        assert_int_equal(s->status, MT_STATUS_INCOMPLETE);
        assert_int_equal(s->auth_attempts, 0);
        session_free(s);
    }
    /* a login, then a reset: still login_ok */
    s = check(dialogue_plain_ok, 3, MT_END_RESET);
    assert_int_equal(s->status, MT_STATUS_LOGIN_OK);
    session_free(s);

    /* closed (a FIN seen, not the capture's end) while a command awaited its reply, or in
     * the middle of a message: interrupted, whatever was decided before, but a failure */
    const struct dialogue_step after_user[] = { GREETING, C("USER dropme\r\n") };
    s = check(after_user, COUNT(after_user), MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_INTERRUPTED);
    assert_string_equal(s->status_line, "[connection closed while USER awaited its reply]");
    session_free(s);
    s = check(after_user, COUNT(after_user), MT_END_EOF);
    assert_int_equal(s->status, MT_STATUS_INCOMPLETE);
    session_free(s);
    const struct dialogue_step mid_message[] = {
        dialogue_plain_ok[0], dialogue_plain_ok[1], dialogue_plain_ok[2],
        C("RETR 1\r\n"), S("+OK 500 octets\r\nSubject: cut\r\n\r\nfirst line\r\n"),
    };
    s = check(mid_message, COUNT(mid_message), MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_INTERRUPTED);
    assert_string_equal(s->status_line, "[connection closed during RETR: the message cut after 28"
                                        " of 500 bytes]");
    assert_string_equal(mt_str(s->messages[0].reply), "RETR 1 cut after 28 of 500 bytes");
    session_free(s);
    /* a client that gives up (curl --max-time) resets; the capture's end cuts it too */
    s = check(mid_message, COUNT(mid_message), MT_END_RESET);
    assert_int_equal(s->status, MT_STATUS_INTERRUPTED);
    assert_string_equal(s->status_line, "[connection reset during RETR: the message cut after 28"
                                        " of 500 bytes]");
    session_free(s);
    s = check(mid_message, COUNT(mid_message), MT_END_EOF);
    assert_int_equal(s->status, MT_STATUS_INCOMPLETE);
    assert_string_equal(s->status_line, "[capture ended during RETR: the message cut after 28 of"
                                        " 500 bytes]");
    session_free(s);
    const struct dialogue_step failed_then_closed[] = {
        GREETING, C("USER x\r\n"), S("+OK\r\n"), C("PASS y\r\n"),
        S("-ERR [AUTH] Authentication failed.\r\n"), C("USER x\r\n"),
    };
    s = check(failed_then_closed, COUNT(failed_then_closed), MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_AUTH_FAILED);
    session_free(s);
}

/* CAPA and QUIT pipelined, as in the zeek capture: a probe, never a login. */
static const struct dialogue_step dialogue_probe[] = {
    S("+OK POP server ready\r\n"),
    C("CAPA\r\nQUIT\r\n"),
    S("+OK Capability list follows\r\nTOP\r\nUSER\r\n.\r\n"),
    S("+OK POP server signing off\r\n"),
};

/* The capture went on a minute or more after the server fell silent owing an answer: no
 * cut, a silence (no_response), said with the command and how long. A shorter one is the
 * cut it was; a client that owed the next word, or a failure already decided, keep theirs. */
/* A -ERR to a command the client malformed ("TOP 1", "RETR 1 2") is the client's mistake,
 * not the mailbox failing; the same -ERR to a well-formed command is. DELE marks; only a
 * QUIT answered +OK deletes: a session that ends without one deleted nothing, and says so. */
static void test_client_errors_and_unfinished_deletes(void **unused)
{
    (void)unused;
    const struct dialogue_step malformed[] = {
        GREETING, C("USER bob\r\n"), S("+OK\r\n"), C("PASS pw\r\n"), S("+OK Logged in.\r\n"),
        C("TOP 1\r\n"), S("-ERR Noise after message number: \r\n"),
        C("RETR 1 2\r\n"), S("-ERR Noise after message number:  2\r\n"),
        C("TOP 1 x\r\n"), S("-ERR Invalid size: x\r\n"), C("QUIT\r\n"), S("+OK Bye\r\n"),
    };
    struct mt_session *s = check(malformed, COUNT(malformed), MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_LOGIN_OK);
    session_free(s);
    const struct dialogue_step failing[] = {
        GREETING, C("USER bob\r\n"), S("+OK\r\n"), C("PASS pw\r\n"), S("+OK Logged in.\r\n"),
        C("TOP 1 0\r\n"), S("-ERR Noise after message number: \r\n"),
    };
    s = check(failing, COUNT(failing), MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_MAILBOX_FAILED);
    session_free(s);

    const struct dialogue_step deletes[] = {
        GREETING, C("USER bob\r\n"), S("+OK\r\n"), C("PASS pw\r\n"), S("+OK Logged in.\r\n"),
        C("DELE 1\r\n"), S("+OK Marked to be deleted.\r\n"),
        C("DELE 2\r\n"), S("+OK Marked to be deleted.\r\n"),
    };
    s = check(deletes, COUNT(deletes), MT_END_RESET);
    assert_int_equal(s->stats.dele_count, 0);
    assert_true(has_line(s, 'I', "[2 messages marked for deletion stay on the server: the "
                                 "session ended without QUIT]"));
    session_free(s);
    s = check(deletes, COUNT(deletes), MT_END_EOF);
    assert_int_equal(s->stats.dele_count, 0);
    assert_true(has_line(s, 'I', "[2 messages marked for deletion when the capture ended: "
                                 "deleted only if a QUIT came after]"));
    session_free(s);
}

/* The server's last word before it closed decides what a bare "closed" would not: a
 * client cut off for too many invalid commands before any login (reset or closed), a
 * logged-in user the server hung up on ("Server shutting down": interrupted); not a
 * client that sat idle. */
static void test_server_goodbye(void **unused)
{
    (void)unused;
    const struct dialogue_step scanner[] = {
        GREETING, C("FROB1\r\n"), S("-ERR Unknown command.\r\n"), C("FROB2\r\n"),
        S("-ERR Too many invalid bad commands.\r\n"),
    };
    enum mt_end ends[] = { MT_END_CLOSE, MT_END_RESET };
    for (size_t i = 0; i < COUNT(ends); i++) {
        struct mt_session *s = check(scanner, COUNT(scanner), ends[i]);
        assert_int_equal(s->status, MT_STATUS_NO_MAIL);
        assert_string_equal(s->status_line, "-ERR Too many invalid bad commands.");
        assert_non_null(strstr(explain_reason(s->status, s->status_line), "invalid commands"));
        session_free(s);
    }
    const struct dialogue_step kicked[] = {
        GREETING, C("USER a\r\n"), S("+OK\r\n"), C("PASS b\r\n"), S("+OK Logged in.\r\n"),
        C("STAT\r\n"), S("+OK 2 320\r\n"), S("-ERR [SYS/TEMP] Server shutting down.\r\n"),
    };
    struct mt_session *s = check(kicked, COUNT(kicked), MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_INTERRUPTED);
    assert_string_equal(s->status_line, "-ERR [SYS/TEMP] Server shutting down.");
    /* no command was cut: the server ended the session, and its words say why */
    assert_non_null(strstr(explain_decision(s->status, s->status_line)->meaning,
                           "the server ended the session of a logged-in user and said why"));
    assert_null(strstr(explain_decision(s->status, s->status_line)->meaning, "middle of a command"));
    assert_non_null(strstr(explain_reason(s->status, s->status_line), "stopped or restarted"));
    session_free(s);
    const struct dialogue_step bad_commands[] = {   /* the next command gets the RST */
        GREETING, C("USER a\r\n"), S("+OK\r\n"), C("PASS b\r\n"), S("+OK Logged in.\r\n"),
        C("FROB\r\n"), S("-ERR Too many bad commands.\r\n"), C("NOOP\r\n"),
    };
    s = check(bad_commands, COUNT(bad_commands), MT_END_RESET);
    assert_int_equal(s->status, MT_STATUS_INTERRUPTED);
    assert_string_equal(s->status_line, "-ERR Too many bad commands.");
    assert_non_null(strstr(explain_decision(s->status, s->status_line)->meaning, "said why"));
    session_free(s);
    const struct dialogue_step idle[] = {
        GREETING, C("USER a\r\n"), S("+OK\r\n"), C("PASS b\r\n"), S("+OK Logged in.\r\n"),
        S("-ERR Disconnected for inactivity.\r\n"),
    };
    s = check(idle, COUNT(idle), MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_LOGIN_OK);
    session_free(s);
}

/* A line hidden as a possible password (a password typed at the wrong prompt) stays
 * hidden when the server echoes it back in its error, in any case. */
static void test_hidden_line_echo_masked(void **unused)
{
    (void)unused;
    const struct dialogue_step echo[] = {
        GREETING, C("USER a\r\n"), S("+OK\r\n"), C("PASS b\r\n"), S("+OK Logged in.\r\n"),
        C("Hunter2!x\r\n"), S("-ERR Unknown command: HUNTER2!X\r\n"),
        C("QUIT\r\n"), S("+OK Logging out.\r\n"),
    };
    struct mt_session *s = check(echo, COUNT(echo), MT_END_CLOSE);
    assert_true(has_line(s, 'C', "[unknown command, 9 bytes]"));
    assert_true(has_line(s, 'S', "-ERR Unknown command: *****"));
    assert_null(memmem(s->transcript, s->transcript_len, "UNTER2", 6));
    assert_null(memmem(s->transcript, s->transcript_len, "unter2", 6));
    session_free(s);
    const struct dialogue_step words[] = {   /* Dovecot echoes the first word only */
        GREETING, C("USER a\r\n"), S("+OK\r\n"), C("PASS b\r\n"), S("+OK Logged in.\r\n"),
        C("Tr0ub4dor and3\r\n"), S("-ERR Unknown command: TR0UB4DOR\r\n"),
    };
    s = check(words, COUNT(words), MT_END_CLOSE);
    assert_true(has_line(s, 'S', "-ERR Unknown command: *****"));
    session_free(s);
}

static void test_silence_at_the_end(void **unused)
{
    (void)unused;
    const struct dialogue_step login[] = {
        S("+OK ready\r\n"), C("USER bob\r\n"), S("+OK\r\n"), C("PASS secret\r\n"),
        S("+OK logged in\r\n"), C("RETR 1\r\n"),
    };
    const int at[] = { 0, 1, 1, 2, 2, 3, 4 };
    struct mt_session *s = dialogue_until_end(&pop3_decoder, login, at, COUNT(login), 8);   /* 5 s: a cut */
    /* the capture ended before the reply could come: incomplete, said so (walkthrough 11) */
    assert_int_equal(s->status, MT_STATUS_INCOMPLETE);
    assert_string_equal(s->status_line, "[capture ended before RETR's reply, 5 s after the last bytes]");
    assert_int_equal(s->end_us, 3000001);   /* its last bytes */
    session_free(s);
    s = dialogue_until_end(&pop3_decoder, login, at, COUNT(login), 3);   /* at once */
    assert_int_equal(s->status, MT_STATUS_INCOMPLETE);
    assert_string_equal(s->status_line, "[capture ended before RETR's reply]");
    session_free(s);
    /* a listing that stops halfway is a reply unfinished too (walkthrough 12) */
    const struct dialogue_step listing[] = {
        S("+OK ready\r\n"), C("USER bob\r\n"), S("+OK\r\n"), C("PASS secret\r\n"),
        S("+OK logged in\r\n"), C("UIDL\r\n"), S("+OK\r\n1 a\r\n2 b\r\n"),
    };
    const int listing_at[] = { 0, 1, 1, 2, 2, 3, 3 };
    s = dialogue_until_end(&pop3_decoder, listing, listing_at, COUNT(listing), 33);
    assert_int_equal(s->status, MT_STATUS_INCOMPLETE);
    assert_string_equal(s->status_line, "[capture ended during UIDL, 30 s after the last bytes]");
    session_free(s);
    s = dialogue_until_end(&pop3_decoder, listing, listing_at, COUNT(listing), 120);
    assert_int_equal(s->status, MT_STATUS_NO_RESPONSE);
    assert_string_equal(s->status_line, "[UIDL unfinished: nothing more from the server for "
                                        "117 s when the capture ended]");
    session_free(s);
    s = dialogue_until_end(&pop3_decoder, login, at, COUNT(login), 303);
    assert_int_equal(s->status, MT_STATUS_NO_RESPONSE);
    assert_string_equal(s->status_line, "[no reply to RETR for 300 s when the capture ended]");
    /* it waited until then: the session's time covers the silence (walkthrough 10) */
    assert_int_equal(s->end_us, 303000001);
    assert_true(contains(s->transcript, s->transcript_len, "303000001 I [no reply to RETR for 300 s"));
    assert_non_null(strstr(explain_reason(s->status, s->status_line), "mailbox locked"));
    session_free(s);

    /* the message began, then stopped */
    const struct dialogue_step body[] = {
        S("+OK ready\r\n"), C("USER bob\r\n"), S("+OK\r\n"), C("PASS secret\r\n"),
        S("+OK logged in\r\n"), C("RETR 1\r\n"), S("+OK 5000 octets\r\nSubject: x\r\n\r\nab"),
    };
    s = dialogue_until_end(&pop3_decoder, body, at, COUNT(body), 124);
    assert_int_equal(s->status, MT_STATUS_NO_RESPONSE);
    assert_string_equal(s->status_line, "[RETR stopped after 16 bytes: nothing more from the "
                                        "server for 120 s when the capture ended]");
    assert_non_null(strstr(explain_reason(s->status, s->status_line), "stopped reading"));
    session_free(s);

    /* a password never answered: the authentication backend; it went out all the same
     * (an attempt, in plaintext) */
    s = dialogue_until_end(&pop3_decoder, login, at, 4, 95);
    assert_int_equal(s->status, MT_STATUS_NO_RESPONSE);
    assert_string_equal(s->status_line, "[no reply to PASS for 93 s when the capture ended]");
    assert_int_equal(s->auth_attempts, 1);
    assert_int_equal(s->auth_failures, 0);
    assert_non_null(strstr(explain_reason(s->status, s->status_line), "authentication backend"));
    session_free(s);

    /* the client owed the answer to a SASL challenge: not the server's silence */
    const struct dialogue_step sasl[] = { S("+OK ready\r\n"), C("AUTH PLAIN\r\n"), S("+ \r\n") };
    s = dialogue_until_end(&pop3_decoder, sasl, at, COUNT(sasl), 400);
    assert_int_not_equal(s->status, MT_STATUS_NO_RESPONSE);
    session_free(s);

    /* a failure decided stays */
    const struct dialogue_step failed[] = {
        S("+OK ready\r\n"), C("USER bob\r\n"), S("+OK\r\n"), C("PASS wrong\r\n"),
        S("-ERR [AUTH] Authentication failed.\r\n"), C("USER bob\r\n"),
    };
    s = dialogue_until_end(&pop3_decoder, failed, at, COUNT(failed), 400);
    assert_int_equal(s->status, MT_STATUS_AUTH_FAILED);
    session_free(s);
}

static void test_capa_quit_probe(void **unused)
{
    (void)unused;
    struct mt_session *s = check(dialogue_probe, COUNT(dialogue_probe), MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_NO_MAIL);
    assert_string_equal(s->status_line, "+OK POP server signing off");
    assert_true(s->status_transcript_line > 0);
    assert_int_equal(s->auth_attempts, 0);
    assert_int_equal(s->flags, 0);
    session_free(s);
}

static const struct dialogue_step dialogue_top[] = {
    GREETING,
    C("USER a\r\n"),
    S("+OK\r\n"),
    C("PASS b-pw\r\n"),
    S("+OK Logged in.\r\n"),
    C("TOP 1 0\r\n"),
    S("+OK\r\nSubject: one\r\n..dotted\r\n\r\n.\r\n"),
    C("TOP 2 5\r\n"),
    S("-ERR There's no message 2.\r\n"),
    C("RSET\r\n"),
    S("+OK\r\n"),
};

static void test_top(void **unused)
{
    (void)unused;
    struct mt_session *s = check(dialogue_top, COUNT(dialogue_top), MT_END_EOF);
    assert_int_equal(s->status, MT_STATUS_LOGIN_OK);
    assert_int_equal(s->stats.top_count, 1);
    assert_int_equal(s->stats.retr_count, 0);
    assert_int_equal(s->stats.retr_bytes, 0);
    assert_true(has_line(s, 'I', "[message top 26 bytes]"));
    assert_true(has_line(s, 'S', "-ERR There's no message 2."));
    assert_int_equal(s->flags, 0);
    session_free(s);
}

/* Retrieved messages: Message-ID and Subject read from the header lines of RETR/TOP
 * bodies, however the segments cut them; the body itself is still skipped. */
#define RETR_HEADERS "Return-Path: <bob@example.com>\r\n"                              \
                     "Subject: quarterly\r\n  report\r\n"                              \
                     "..X-Stuffed: .dot\r\n"                                           \
                     "message-id :\r\n <20240101.42@mail.example.com>\r\n"             \
                     "Subject: a second one is ignored\r\n"                            \
                     "\r\n"
#define RETR_BODY RETR_HEADERS "Message-ID: <not-a-header@body>\r\n+OK body line\r\n"
#define RETR_BODY_BYTES (sizeof(RETR_BODY) - 1)

static const struct dialogue_step dialogue_retr_headers[] = {
    GREETING,
    C("USER a\r\n"),
    S("+OK\r\n"),
    C("PASS b-pw\r\n"),
    S("+OK Logged in.\r\n"),
    C("RETR 7\r\n"),
    S("+OK message follows\r\n" RETR_BODY ".\r\n"),
    C("TOP 2 0\r\n"),
    S("+OK\r\nSubject: only headers\r\nMessage-Id: <top@x>\r\n.\r\n"),
    C("RETR 3\r\n"),
    S("+OK\r\nno header here\r\nSubject: not a header any more\r\n.\r\n"),
    C("QUIT\r\n"),
    S("+OK bye\r\n"),
};

static void assert_retr_messages(const struct mt_session *s)
{
    assert_int_equal(s->message_count, 3);
    const struct mt_message *m = &s->messages[0];
    assert_string_equal(mt_str(m->message_id), "<20240101.42@mail.example.com>");
    assert_string_equal(mt_str(m->subject), "quarterly report");
    assert_string_equal(mt_str(m->mail_from), "");
    assert_string_equal(mt_str(m->reply), "retrieved by RETR 7");
    assert_int_equal(m->status, MT_STATUS_UNKNOWN);
    assert_int_equal(m->size, RETR_BODY_BYTES);
    m = &s->messages[1];
    assert_string_equal(mt_str(m->message_id), "<top@x>");
    assert_string_equal(mt_str(m->subject), "only headers");
    assert_string_equal(mt_str(m->reply), "retrieved by TOP 2");
    assert_int_equal(m->size, sizeof("Subject: only headers\r\nMessage-Id: <top@x>\r\n") - 1);
    m = &s->messages[2];
    assert_string_equal(mt_str(m->message_id), "");
    assert_string_equal(mt_str(m->subject), "");
    assert_string_equal(mt_str(m->reply), "retrieved by RETR 3");
}

static void test_retr_headers(void **unused)
{
    (void)unused;
    struct mt_session *s = check(dialogue_retr_headers, COUNT(dialogue_retr_headers),
                                 MT_END_CLOSE);
    assert_retr_messages(s);
    assert_int_equal(s->stats.retr_count, 2);
    assert_int_equal(s->stats.top_count, 1);
    assert_int_equal(s->stats.retr_bytes,
                     RETR_BODY_BYTES + sizeof("no header here\r\nSubject: not a header any more\r\n") - 1);
    char note[64];
    snprintf(note, sizeof note, "[message %zu bytes]", RETR_BODY_BYTES);
    assert_true(has_line(s, 'I', note));
    assert_false(contains(s->transcript, s->transcript_len, "quarterly"));
    assert_false(contains(s->transcript, s->transcript_len, "+OK body line"));
    assert_true(has_line(s, 'S', "+OK bye"));
    assert_int_equal(s->flags, 0);
    session_free(s);

    /* the same messages, whatever the segment boundaries (check() compares transcripts
     * and counters only): byte by byte and split at every byte */
    size_t total = total_bytes(dialogue_retr_headers, COUNT(dialogue_retr_headers));
    s = run(dialogue_retr_headers, COUNT(dialogue_retr_headers), MT_END_CLOSE, FEED_BYTES, 0);
    assert_retr_messages(s);
    session_free(s);
    for (size_t at = 1; at < total; at++) {
        s = run(dialogue_retr_headers, COUNT(dialogue_retr_headers), MT_END_CLOSE, FEED_SPLIT, at);
        assert_retr_messages(s);
        session_free(s);
    }
}

/* A capture ending inside the headers, or inside the body: the message is kept, cut, and
 * counted with what came, as IMAP counts a cut FETCH (walkthrough 10: retr=0/0 beside
 * IMAP's fetch=1/242658 for the same download cut the same way). */
static const struct dialogue_step dialogue_retr_cut_headers[] = {
    GREETING,
    C("USER a\r\nPASS b\r\nRETR 1\r\n"),
    S("+OK\r\n+OK in\r\n+OK\r\nSubject: cut\r\nMessage-ID: <cut@x"),
};

static void test_retr_cut(void **unused)
{
    (void)unused;
    struct mt_session *s = check(dialogue_retr_cut_headers, COUNT(dialogue_retr_cut_headers),
                                 MT_END_EOF);
    assert_int_equal(s->message_count, 1);
    assert_string_equal(mt_str(s->messages[0].subject), "cut");
    assert_string_equal(mt_str(s->messages[0].message_id), "<cut@x");
    assert_int_equal(s->messages[0].size, sizeof("Subject: cut\r\nMessage-ID: <cut@x") - 1);
    assert_int_equal(s->stats.retr_count, 1);
    assert_int_equal(s->stats.retr_bytes, sizeof("Subject: cut\r\nMessage-ID: <cut@x") - 1);
    char note[64];
    snprintf(note, sizeof note, "[message cut after %zu bytes]",
             sizeof("Subject: cut\r\nMessage-ID: <cut@x") - 1);
    assert_true(has_line(s, 'I', note));
    session_free(s);
    /* cut by the client's reset: counted too, and its line says how much came of how much */
    const struct dialogue_step reset[] = {
        GREETING, C("USER a\r\n"), S("+OK\r\n"), C("PASS b\r\n"), S("+OK in\r\n"),
        C("RETR 4\r\n"), S("+OK 900 octets\r\nSubject: cut\r\n\r\nbody"),
    };
    s = check(reset, COUNT(reset), MT_END_RESET);
    assert_int_equal(s->status, MT_STATUS_INTERRUPTED);
    assert_int_equal(s->stats.retr_count, 1);
    assert_int_equal(s->stats.retr_bytes, 20);
    assert_int_equal(s->message_count, 1);
    assert_string_equal(mt_str(s->messages[0].reply), "RETR 4 cut after 20 of 900 bytes");
    session_free(s);
}

/* PIPELINING: a batch of commands in one segment, the replies in one segment. */
static const struct dialogue_step dialogue_pipelined[] = {
    GREETING,
    C("USER pat\r\nPASS pipe-pw\r\nSTAT\r\nLIST\r\nRETR 1\r\nUIDL\r\nTOP 2 0\r\nDELE 1\r\n"
      "DELE 2\r\nNOOP\r\nLIST 2\r\nQUIT\r\n"),
    S("+OK\r\n+OK Logged in.\r\n+OK 2 320\r\n+OK\r\n1 120\r\n2 200\r\n.\r\n"
      "+OK 120 octets\r\n" BODY "+OK\r\n1 uid-a\r\n2 uid-b\r\n.\r\n+OK\r\nSubject: x\r\n\r\n.\r\n"
      "+OK deleted\r\n-ERR no such message\r\n+OK\r\n+OK 2 200\r\n+OK bye\r\n"),
};

static void test_pipelined_batch(void **unused)
{
    (void)unused;
    struct mt_session *s = check(dialogue_pipelined, COUNT(dialogue_pipelined), MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_LOGIN_OK);
    assert_string_equal(s->user, "pat");
    assert_int_equal(s->stats.stat_messages, 2);
    assert_int_equal(s->stats.retr_count, 1);
    assert_int_equal(s->stats.retr_bytes, BODY_BYTES);
    assert_int_equal(s->stats.top_count, 1);
    assert_int_equal(s->stats.dele_count, 1);
    assert_int_equal(s->flags, 0);
    assert_true(has_line(s, 'S', "2 uid-b"));
    assert_false(contains(s->transcript, s->transcript_len, "not a reply"));
    assert_no_secret(s, "pipe-pw");
    session_free(s);

    /* the whole client side first, then the whole server side: replies still match */
    const struct dialogue_step reordered[] = {
        dialogue_pipelined[1], dialogue_pipelined[0], dialogue_pipelined[2],
    };
    s = check(reordered, COUNT(reordered), MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_LOGIN_OK);
    assert_int_equal(s->stats.retr_count, 1);
    assert_int_equal(s->stats.top_count, 1);
    assert_int_equal(s->stats.dele_count, 1);
    assert_int_equal(s->flags, 0);
    session_free(s);
}

/* Lines that are not what they claim: a password on a line of its own, a blank one. */
static const struct dialogue_step dialogue_odd_secrets[] = {
    GREETING,
    C("USER odd\r\n"),
    S("+OK\r\n"),
    C("PASS\r\n"),
    S("-ERR No password given.\r\n"),
    C("hunter22\r\n"),
    S("-ERR Unknown command.\r\n"),
    C("XPWD hunter33\r\n"),
    S("-ERR Unknown command.\r\n"),
    C("PASS \t \r\n"),
    S("-ERR [AUTH] Authentication failed.\r\n"),
};

static void test_odd_secrets(void **unused)
{
    (void)unused;
    struct mt_session *s = check(dialogue_odd_secrets, COUNT(dialogue_odd_secrets), MT_END_CLOSE);
    assert_true(has_line(s, 'C', "PASS"));
    assert_true(has_line(s, 'C', "[unknown command, 8 bytes]"));
    assert_true(has_line(s, 'C', "XPWD *****"));
    assert_true(has_line(s, 'C', "PASS *****"));
    assert_no_secret(s, "hunter");
    assert_int_equal(s->status, MT_STATUS_AUTH_FAILED);
    assert_int_equal(s->auth_attempts, 2);
    session_free(s);
}

/* Every dialogue with a secret, and the secrets it must never leak. */
static void test_secrets_never_stored(void **unused)
{
    (void)unused;
    static const struct {
        const struct dialogue_step *steps;
        size_t n;
        const char *secrets[4];
    } cases[] = {
        { dialogue_user_pass, COUNT(dialogue_user_pass), { "s3cr3t-Pw", "with spaces" } },
        { dialogue_bad_password, COUNT(dialogue_bad_password), { "wrong-pw-1" } },
        { dialogue_fail_then_ok, COUNT(dialogue_fail_then_ok), { "wrong-pw-2", "right-pw-2" } },
        { dialogue_plain_ok, COUNT(dialogue_plain_ok), { "AGFsaWNl", "pw-plain" } },
        { dialogue_plain_failed, COUNT(dialogue_plain_failed), { "YWRtaW4A", "pw-plain" } },
        { dialogue_plain_authzid, COUNT(dialogue_plain_authzid), { "Z3JhY2U", "pw-plain" } },
        { dialogue_login, COUNT(dialogue_login), { "Y2Fyb2w", "cHctbG9n", "pw-login" } },
        { dialogue_cram_md5, COUNT(dialogue_cram_md5), { "dGltIGI5", "b913a602c7" } },
        { dialogue_xoauth2, COUNT(dialogue_xoauth2), { "dXNlcj1k", "secret-token" } },
        { dialogue_oauthbearer, COUNT(dialogue_oauthbearer), { "bixhPW9s", "oauth-secret" } },
        { dialogue_apop, COUNT(dialogue_apop), { "c4c9334bac" } },
        { dialogue_stls_plain, COUNT(dialogue_stls_plain), { "decrypted-pw" } },
        { dialogue_stls_refused, COUNT(dialogue_stls_refused), { "plain-pw" } },
        { dialogue_stls_tls, COUNT(dialogue_stls_tls), { "secret-pw", "secret-user" } },
        { dialogue_pipelined, COUNT(dialogue_pipelined), { "pipe-pw" } },
        { dialogue_top, COUNT(dialogue_top), { "b-pw" } },
        { dialogue_login_disabled_auth, COUNT(dialogue_login_disabled_auth), { "pw-plain" } },
        { dialogue_odd_secrets, COUNT(dialogue_odd_secrets), { "hunter" } },
    };
    enum mt_end ends[] = { MT_END_CLOSE, MT_END_EOF, MT_END_RESET };
    struct dialogue_step cut[32];
    for (size_t i = 0; i < COUNT(cases); i++) {
        assert_true(cases[i].n <= COUNT(cut));
        memcpy(cut, cases[i].steps, cases[i].n * sizeof *cut);
        /* every prefix too: a capture may stop anywhere, mid-line included */
        for (size_t last = 0; last < cases[i].n; last++) {
            for (size_t len = 0; len <= cases[i].steps[last].len; len++) {
                cut[last].len = len;
                for (size_t e = 0; e < COUNT(ends); e++) {
                    struct mt_session *s = run(cut, last + 1, ends[e], FEED_WHOLE, 0);
                    for (size_t k = 0; k < COUNT(cases[i].secrets) && cases[i].secrets[k]; k++)
                        assert_no_secret(s, cases[i].secrets[k]);
                    session_free(s);
                }
            }
            cut[last].len = cases[i].steps[last].len;
        }
    }
}

/* ---- hostile input ---- */

static void test_escape_sequences_and_nul(void **unused)
{
    (void)unused;
    static const char greeting[] = "+OK \x1b[2J\x1b]0;owned\x07 ready\0tail\r\n";
    static const char user[] = "USER ev\x1b[31mil\0x\r\n";
    const struct dialogue_step steps[] = {
        { MT_SERVER, greeting, sizeof greeting - 1 },
        { MT_CLIENT, user, sizeof user - 1 },
        S("+OK \x9b\x31m C1 control\r\n"),
    };
    struct mt_session *s = check(steps, COUNT(steps), MT_END_CLOSE);
    assert_null(memchr(s->banner, 0x1b, strlen(s->banner)));
    assert_non_null(strstr(s->banner, "\\x1b[2J"));
    assert_non_null(strstr(s->banner, "\\x00tail"));
    assert_null(memchr(s->user, 0x1b, strlen(s->user)));
    assert_null(memchr(s->transcript, 0x1b, s->transcript_len));
    assert_null(memchr(s->transcript, 0x07, s->transcript_len));
    assert_null(memchr(s->transcript, '\0', s->transcript_len));
    assert_null(memmem(s->transcript, s->transcript_len, "\xc2\x9b", 2));
    session_free(s);
}

/* Feeds `len` copies of byte `c` as segments of `chunk` bytes. */
static void feed_repeated(void *state, struct mt_session *s, enum mt_side side, char c,
                          size_t len, size_t chunk, int64_t ts)
{
    char *buf = malloc(chunk);
    assert_non_null(buf);
    memset(buf, c, chunk);
    for (size_t done = 0; done < len; done += chunk)
        pop3_decoder.data(state, s, side, buf, len - done < chunk ? len - done : chunk, ts);
    free(buf);
}

static void feed_text(void *state, struct mt_session *s, enum mt_side side, const char *text)
{
    pop3_decoder.data(state, s, side, text, strlen(text), 1);
}

static void test_ten_megabyte_lines(void **unused)
{
    (void)unused;
    const size_t big = 10u * 1024 * 1024;
    const size_t chunks[] = { 1460, 65536, 10u * 1024 * 1024 };
    for (size_t c = 0; c < COUNT(chunks); c++) {
        struct mt_session *s = session_new(MT_PROTO_POP3);
        void *st = pop3_decoder.open(s);
        feed_text(st, s, MT_SERVER, "+OK ");
        feed_repeated(st, s, MT_SERVER, 'G', big, chunks[c], 1); /* a 10 MB greeting */
        feed_text(st, s, MT_SERVER, "\r\n");
        feed_repeated(st, s, MT_CLIENT, 'X', big, chunks[c], 2); /* a 10 MB command */
        feed_text(st, s, MT_CLIENT, "\r\nUSER big\r\nPASS ");
        feed_repeated(st, s, MT_CLIENT, 'p', big, chunks[c], 3); /* a 10 MB password */
        feed_text(st, s, MT_CLIENT, "\r\nLIST\r\nRETR 1\r\n");
        feed_text(st, s, MT_SERVER, "-ERR unknown command\r\n+OK\r\n+OK Logged in.\r\n+OK\r\n1 ");
        feed_repeated(st, s, MT_SERVER, '9', big, chunks[c], 4); /* a 10 MB listing line */
        feed_text(st, s, MT_SERVER, "\r\n.\r\n+OK\r\n");
        feed_repeated(st, s, MT_SERVER, 'b', big, chunks[c], 5); /* a 10 MB body line */
        feed_text(st, s, MT_SERVER, "\r\n.\r\n");
        s->end = MT_END_CLOSE;
        pop3_decoder.close(st, s);
        pop3_decoder.free(st);
        assert_int_equal(s->status, MT_STATUS_LOGIN_OK);
        assert_string_equal(s->user, "big");
        assert_true(s->flags & MT_FLAG_LINE_TRUNCATED);
        assert_int_equal(s->flags & MT_FLAG_PROTOCOL_ERROR, 0);
        assert_int_equal(s->stats.retr_count, 1);
        assert_int_equal(s->stats.retr_bytes, big + 2);
        assert_true(strlen(s->banner) < MT_TEXT_MAX);
        assert_true(s->transcript_len < 16 * 1024);
        assert_no_secret(s, "ppppp");
        session_free(s);
    }
}

static void test_listing_capped(void **unused)
{
    (void)unused;
    struct mt_session *s = session_new(MT_PROTO_POP3);
    void *st = pop3_decoder.open(s);
    feed_text(st, s, MT_SERVER, "+OK ready\r\n");
    feed_text(st, s, MT_CLIENT, "USER a\r\nPASS b\r\nLIST\r\nNOOP\r\n");
    feed_text(st, s, MT_SERVER, "+OK\r\n+OK in\r\n+OK 250 messages\r\n");
    char line[32];
    for (int i = 1; i <= 250; i++) {
        snprintf(line, sizeof line, "%d %d\r\n", i, 1000 + i);
        feed_text(st, s, MT_SERVER, line);
    }
    feed_text(st, s, MT_SERVER, ".\r\n+OK noop\r\n");
    s->end = MT_END_CLOSE;
    pop3_decoder.close(st, s);
    pop3_decoder.free(st);
    assert_true(has_line(s, 'S', "20 1020"));
    assert_false(has_line(s, 'S', "21 1021"));
    assert_true(has_line(s, 'I', "[... 230 more lines]"));
    assert_true(has_line(s, 'S', "+OK noop"));
    assert_int_equal(s->flags, 0);
    session_free(s);
}

static void test_never_ending_responses(void **unused)
{
    (void)unused;
    /* a listing that never ends: counted, the transcript stays small */
    struct mt_session *s = session_new(MT_PROTO_POP3);
    void *st = pop3_decoder.open(s);
    feed_text(st, s, MT_SERVER, "+OK ready\r\n");
    feed_text(st, s, MT_CLIENT, "USER a\r\nPASS b\r\nUIDL\r\n");
    feed_text(st, s, MT_SERVER, "+OK\r\n+OK in\r\n+OK\r\n");
    for (int i = 0; i < 200000; i++)
        feed_text(st, s, MT_SERVER, "12345 uid-0123456789abcdef\r\n");
    s->end = MT_END_EOF;
    pop3_decoder.close(st, s);
    pop3_decoder.free(st);
    assert_int_equal(s->status, MT_STATUS_LOGIN_OK);
    assert_true(has_line(s, 'I', "[... 199980 more lines, listing cut]"));
    assert_true(s->transcript_len < 4096);
    session_free(s);

    /* a body that never ends: skipped, counted with what came (cut by the capture's end) */
    s = session_new(MT_PROTO_POP3);
    st = pop3_decoder.open(s);
    feed_text(st, s, MT_SERVER, "+OK ready\r\n");
    feed_text(st, s, MT_CLIENT, "USER a\r\nPASS b\r\nRETR 1\r\n");
    feed_text(st, s, MT_SERVER, "+OK\r\n+OK in\r\n+OK\r\n");
    for (int i = 0; i < 100000; i++)
        feed_text(st, s, MT_SERVER, "+OK still body\r\n.. \r\n");
    s->end = MT_END_EOF;
    pop3_decoder.close(st, s);
    pop3_decoder.free(st);
    assert_int_equal(s->stats.retr_count, 1);
    assert_int_equal(s->stats.retr_bytes, 2100000);
    assert_true(has_line(s, 'I', "[message cut after 2100000 bytes]"));
    assert_int_equal(s->flags, 0);
    session_free(s);
}

static const struct dialogue_step dialogue_desync[] = {
    GREETING,
    C("USER a\r\n"),
    S("+OK\r\n"),
    C("PASS b\r\n"),
    S("+OK Logged in.\r\n"),
    S("this is not a reply\r\n"),
    S("+OK nobody asked\r\n"),
    S("-ERR Disconnected for inactivity.\r\n"),
};

static void test_desync_flags_protocol_error(void **unused)
{
    (void)unused;
    struct mt_session *s = check(dialogue_desync, COUNT(dialogue_desync), MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_LOGIN_OK);
    assert_true(s->flags & MT_FLAG_PROTOCOL_ERROR);
    assert_int_equal(count_lines(s, 'I'), 1); /* noted once */
    session_free(s);

    /* more pipelined commands than the queue holds: replies are no longer paired, and
     * a message's lines (which no reply is known to start) are not kept */
    s = session_new(MT_PROTO_POP3);
    void *st = pop3_decoder.open(s);
    feed_text(st, s, MT_SERVER, "+OK ready\r\n");
    for (int i = 0; i < 3000; i++)
        feed_text(st, s, MT_CLIENT, "NOOP\r\n");
    feed_text(st, s, MT_CLIENT, "RETR 1\r\n");
    for (int i = 0; i < 3000; i++)
        feed_text(st, s, MT_SERVER, "+OK\r\n");
    feed_text(st, s, MT_SERVER, "+OK 40 octets\r\nSubject: x\r\n\r\nSECRET-BODY-LINE\r\n.\r\n");
    s->end = MT_END_CLOSE;
    pop3_decoder.close(st, s);
    pop3_decoder.free(st);
    assert_true(s->flags & MT_FLAG_PROTOCOL_ERROR);
    assert_int_equal(s->status, MT_STATUS_NO_MAIL);
    assert_false(contains(s->transcript, s->transcript_len, "SECRET-BODY-LINE"));
    assert_true(has_line(s, 'I', "[4 server lines not kept: neither +OK nor -ERR, and no reply"
                                 " paired with a command]"));
    session_free(s);
}

/* Emptying a mailbox pipelined (RFC 2449): 600 DELEs, then 300 RETRs, each batch's replies
 * in one go. Every reply pairs with its command (the queue once held 64). */
static void test_pipelined_mailbox(void **unused)
{
    (void)unused;
    struct mt_session *s = session_new(MT_PROTO_POP3);
    void *st = pop3_decoder.open(s);
    feed_text(st, s, MT_SERVER, "+OK ready\r\n");
    feed_text(st, s, MT_CLIENT, "USER u\r\n");
    feed_text(st, s, MT_SERVER, "+OK\r\n");
    feed_text(st, s, MT_CLIENT, "PASS p\r\n");
    feed_text(st, s, MT_SERVER, "+OK logged in\r\n");
    for (int i = 1; i <= 600; i++) {
        char cmd[32];
        snprintf(cmd, sizeof cmd, "DELE %d\r\n", i);
        feed_text(st, s, MT_CLIENT, cmd);
    }
    for (int i = 1; i <= 600; i++)
        feed_text(st, s, MT_SERVER, "+OK deleted\r\n");
    for (int i = 601; i <= 900; i++) {
        char cmd[32];
        snprintf(cmd, sizeof cmd, "RETR %d\r\n", i);
        feed_text(st, s, MT_CLIENT, cmd);
    }
    for (int i = 601; i <= 900; i++)
        feed_text(st, s, MT_SERVER, "+OK 30 octets\r\nSubject: m\r\n\r\nSECRET-BODY-LINE\r\n.\r\n");
    feed_text(st, s, MT_CLIENT, "QUIT\r\n");
    feed_text(st, s, MT_SERVER, "+OK bye\r\n");
    s->end = MT_END_CLOSE;
    pop3_decoder.close(st, s);
    pop3_decoder.free(st);
    assert_int_equal(s->status, MT_STATUS_LOGIN_OK);
    assert_int_equal(s->stats.dele_count, 600);
    assert_int_equal(s->stats.retr_count, 300);
    assert_false(s->flags & MT_FLAG_PROTOCOL_ERROR);
    assert_false(contains(s->transcript, s->transcript_len, "SECRET-BODY-LINE"));
    session_free(s);
}

static uint64_t xorshift(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* Random dialogues, of raw bytes or of POP3-looking tokens: no crash, bounded output,
 * and the same session however the segments are cut. */
static void test_random_garbage(void **unused)
{
    (void)unused;
    static const char *const tokens[] = {
        "+OK", "-ERR", "+ ", ".", "..", "\r\n", "\n", "\r", " ", "\0", "\x16\x03", "\x1b[0m",
        "USER a", "PASS secret", "RETR 1", "TOP 1 0", "LIST", "UIDL", "CAPA", "AUTH PLAIN",
        "AUTH LOGIN", "AUTH", "STLS", "QUIT", "STAT", "+OK 1 2", "*", "AGFsaWNl", "DELE 1",
        "RSET", "APOP x y",
    };
    for (uint64_t seed = 1; seed <= 24; seed++) {
        uint64_t x = seed * 0x9e3779b97f4a7c15ull;
        size_t n = 40 + xorshift(&x) % 40;
        struct dialogue_step *steps = calloc(n, sizeof *steps);
        char **bufs = calloc(n, sizeof *bufs);
        for (size_t i = 0; i < n; i++) {
            size_t len = 1 + xorshift(&x) % 600;
            char *buf = malloc(len + 16);
            size_t used = 0;
            while (used < len) {
                if (seed % 3 == 0) {
                    buf[used++] = (char)xorshift(&x);
                } else {
                    const char *t = tokens[xorshift(&x) % COUNT(tokens)];
                    size_t tl = t[0] ? strlen(t) : 1;
                    if (used + tl > len + 16)
                        break;
                    memcpy(buf + used, t, tl);
                    used += tl;
                }
            }
            bufs[i] = buf;
            steps[i] = (struct dialogue_step){ (xorshift(&x) & 1) ? MT_SERVER : MT_CLIENT, buf, used };
        }
        enum mt_end end = (enum mt_end)(seed % 5);
        size_t stride = total_bytes(steps, n) / 300 + 1 + (size_t)(seed % 7);
        struct mt_session *s = check_strided(steps, n, end, stride);
        assert_true(s->transcript_len <= MT_TRANSCRIPT_MAX_BYTES);
        assert_true(s->status != MT_STATUS_UNKNOWN);
        if (seed % 3 == 0) /* raw bytes: the greeting cannot parse */
            assert_true((s->flags & MT_FLAG_PROTOCOL_ERROR) || s->status == MT_STATUS_ENCRYPTED ||
                        s->status == MT_STATUS_NO_RESPONSE);
        session_free(s);
        for (size_t i = 0; i < n; i++)
            free(bufs[i]);
        free(bufs);
        free(steps);
    }
}

/* ---- real captures (tests/data/pop3, from the public set: see extract.py) ---- */

struct fixture {
    struct dialogue_step *steps;
    size_t n;
    char *data;
};

static void fixture_load(struct fixture *f, const char *name)
{
    const char *dir = getenv("MAILTAP_TEST_DATA");
    char path[512];
    snprintf(path, sizeof path, "%s/pop3/%s", dir ? dir : "tests/data", name);
    FILE *fp = fopen(path, "rb");
    if (!fp)
        fail_msg("cannot open %s (run from the repository root or set MAILTAP_TEST_DATA)", path);
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    f->data = malloc((size_t)size + 1);
    assert_int_equal(fread(f->data, 1, (size_t)size, fp), (size_t)size);
    fclose(fp);
    f->steps = NULL;
    f->n = 0;
    size_t cap = 0;
    f->data[size] = '\0';
    for (size_t at = 0; at < (size_t)size;) { /* records "C|S <len>\n<bytes>\n" */
        char side = f->data[at], *end;
        assert_true(side == 'C' || side == 'S');
        size_t len = strtoul(f->data + at + 2, &end, 10);
        assert_true(*end == '\n');
        at = (size_t)(end + 1 - f->data);
        assert_true(at + len < (size_t)size);
        if (f->n == cap) {
            cap = cap ? cap * 2 : 64;
            f->steps = realloc(f->steps, cap * sizeof *f->steps);
        }
        f->steps[f->n++] = (struct dialogue_step){ side == 'S' ? MT_SERVER : MT_CLIENT, f->data + at, len };
        at += len + 1;
    }
}

static void fixture_free(struct fixture *f)
{
    free(f->steps);
    free(f->data);
}

/* Whole, byte by byte, and split at every 7th byte (every byte for small captures). */
static struct mt_session *check_fixture(const char *name, enum mt_end end, struct fixture *f)
{
    fixture_load(f, name);
    size_t total = total_bytes(f->steps, f->n);
    return check_strided(f->steps, f->n, end, total < 4096 ? 1 : total < 40000 ? 7 : 997);
}

static void test_zeek_pop3_capture(void **unused)
{
    (void)unused;
    struct fixture f;
    /* connections 2 and 4: CAPA/QUIT probes, no login */
    const char *probes[] = { "zeek_pop3_s2.chunks", "zeek_pop3_s4.chunks" };
    for (size_t i = 0; i < COUNT(probes); i++) {
        struct mt_session *s = check_fixture(probes[i], MT_END_CLOSE, &f);
        assert_int_equal(s->status, MT_STATUS_NO_MAIL);
        assert_string_equal(s->status_line, "+OK POP server signing off");
        assert_string_equal(s->user, "");
        assert_int_equal(s->auth_attempts, 0);
        assert_int_equal(s->flags, 0);
        assert_true(has_line(s, 'S', "SASL PLAIN"));
        session_free(s);
        fixture_free(&f);
    }

    /* connection 3: AUTH PLAIN -> "-ERR authentication failed" */
    struct mt_session *s = check_fixture("zeek_pop3_s3.chunks", MT_END_CLOSE, &f);
    assert_int_equal(s->status, MT_STATUS_AUTH_FAILED);
    assert_string_equal(s->status_line, "-ERR authentication failed");
    assert_string_equal(s->user, "digitalinvestigator@networksims.com");
    assert_int_equal(s->auth_attempts, 1);
    assert_int_equal(s->auth_failures, 1);
    assert_true(has_line(s, 'S', "-ERR 1 argument required")); /* "AUTH": not a login */
    assert_no_secret(s, "napier");
    assert_no_secret(s, "AGRpZ2l0");
    assert_int_equal(s->flags, 0);
    session_free(s);
    fixture_free(&f);

    /* connection 5: AUTH PLAIN +OK */
    s = check_fixture("zeek_pop3_s5.chunks", MT_END_CLOSE, &f);
    assert_int_equal(s->status, MT_STATUS_LOGIN_OK);
    assert_string_equal(s->user, "digitalinvestigator@networksims.com");
    assert_int_equal(s->auth_attempts, 1);
    assert_int_equal(s->auth_failures, 0);
    assert_no_secret(s, "napier");
    session_free(s);
    fixture_free(&f);

    /* connection 6: AUTH PLAIN +OK, STAT, LIST, UIDL, 3 x RETR, QUIT */
    s = check_fixture("zeek_pop3_s6.chunks", MT_END_CLOSE, &f);
    assert_int_equal(s->status, MT_STATUS_LOGIN_OK);
    assert_string_equal(s->user, "digitalinvestigator@networksims.com");
    assert_int_equal(s->stats.retr_count, 3);
    assert_int_equal(s->stats.stat_messages, 3);
    assert_int_equal(s->stats.stat_bytes, 19191);
    /* bytes on the wire: two lines are dot-stuffed (LIST and STAT count 19191) */
    assert_int_equal(s->stats.retr_bytes, 19193);
    assert_true(has_line(s, 'I', "[message 5566 bytes]")); /* LIST: 5565, plus one stuffed dot */
    assert_true(has_line(s, 'S', "3 0MLPgA-1VC2Ru34ja-000jOl"));
    assert_no_secret(s, "napier");
    assert_no_secret(s, "Return-Path");
    assert_int_equal(s->flags, 0);
    session_free(s);
    fixture_free(&f);
}

static void test_suricata_pop3_capture(void **unused)
{
    (void)unused;
    struct fixture f;
    /* USER/PASS +OK, STAT, LIST (2108 lines), RSET, UIDL, 49 x "TOP n 0", no QUIT */
    struct mt_session *s = check_fixture("suricata_pop3_s0.chunks", MT_END_EOF, &f);
    assert_int_equal(s->status, MT_STATUS_LOGIN_OK);
    assert_string_equal(s->user, "moises.nunez@ingenierianumar.com");
    assert_string_equal(s->status_line, "+OK mailbox \"moises.nunez@ingenierianumar.com\" has "
                                        "2108 messages (665631557 octets) H mieueus020");
    assert_int_equal(s->stats.stat_messages, 2108);
    assert_int_equal(s->stats.stat_bytes, 665631557);
    assert_int_equal(s->stats.top_count, 49);
    assert_int_equal(s->stats.retr_count, 0);
    assert_int_equal(s->auth_attempts, 1);
    assert_true(has_line(s, 'C', "PASS *****"));
    assert_false(contains(s->transcript, s->transcript_len, "PASS moises"));
    assert_true(has_line(s, 'I', "[... 2088 more lines]"));
    assert_int_equal(s->flags, 0);
    session_free(s);
    fixture_free(&f);
}

static void test_zeek_pop3_starttls_capture(void **unused)
{
    (void)unused;
    struct fixture f;
    struct mt_session *s = check_fixture("zeek_pop3-starttls_s0.chunks", MT_END_RESET, &f);
    assert_int_equal(s->status, MT_STATUS_ENCRYPTED);
    assert_string_equal(s->status_line, "+OK Begin TLS negotiation now");
    assert_string_equal(s->server_name, "ladymacbeth.local");
    assert_true(s->tls);
    assert_int_equal(s->flags, 0);
    assert_int_equal(count_lines(s, 'S'), 2);
    session_free(s);
    fixture_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_user_pass_retr_counters),
        cmocka_unit_test(test_bad_password),
        cmocka_unit_test(test_fail_then_succeed),
        cmocka_unit_test(test_auth_plain),
        cmocka_unit_test(test_auth_login),
        cmocka_unit_test(test_auth_other_mechanisms),
        cmocka_unit_test(test_auth_list_and_cancel),
        cmocka_unit_test(test_apop),
        cmocka_unit_test(test_stls_then_tls),
        cmocka_unit_test(test_stls_client_ahead),
        cmocka_unit_test(test_stls_then_plaintext),
        cmocka_unit_test(test_stls_refused),
        cmocka_unit_test(test_login_disabled),
        cmocka_unit_test(test_err_greeting),
        cmocka_unit_test(test_server_trouble),
        cmocka_unit_test(test_no_server_bytes_and_implicit_tls),
        cmocka_unit_test(test_reset_and_incomplete),
        cmocka_unit_test(test_silence_at_the_end),
        cmocka_unit_test(test_hidden_line_echo_masked),
        cmocka_unit_test(test_server_goodbye),
        cmocka_unit_test(test_client_errors_and_unfinished_deletes),
        cmocka_unit_test(test_capa_quit_probe),
        cmocka_unit_test(test_top),
        cmocka_unit_test(test_retr_headers),
        cmocka_unit_test(test_retr_cut),
        cmocka_unit_test(test_pipelined_batch),
        cmocka_unit_test(test_odd_secrets),
        cmocka_unit_test(test_secrets_never_stored),
        cmocka_unit_test(test_escape_sequences_and_nul),
        cmocka_unit_test(test_ten_megabyte_lines),
        cmocka_unit_test(test_listing_capped),
        cmocka_unit_test(test_never_ending_responses),
        cmocka_unit_test(test_desync_flags_protocol_error),
        cmocka_unit_test(test_pipelined_mailbox),
        cmocka_unit_test(test_random_garbage),
        cmocka_unit_test(test_zeek_pop3_capture),
        cmocka_unit_test(test_suricata_pop3_capture),
        cmocka_unit_test(test_zeek_pop3_starttls_capture),
    };
    return cmocka_run_group_tests_name("pop3", tests, NULL, NULL);
}
