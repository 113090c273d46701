/* test_imap.c — cmocka suite for protocols/imap.c: scripted two-sided dialogues, each fed
 * whole, split at every byte boundary and byte by byte (the decoded session must not
 * change), plus hostile input and fixtures extracted from public captures
 * (tests/data/imap/README.md says where they come from). */
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

#define CL(s) { MT_CLIENT, (s), sizeof(s) - 1 }
#define SV(s) { MT_SERVER, (s), sizeof(s) - 1 }
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

enum feed_how { FEED_WHOLE, FEED_SPLIT, FEED_BYTES };

/* Feeds a dialogue: chunk i carries timestamp 1000000 + i, however it is cut. */
static struct mt_session *feed(const struct dialogue_step *chunks, size_t n, enum mt_end end,
                               enum feed_how how, size_t split)
{
    struct mt_session *session = session_new(MT_PROTO_IMAP);
    assert_non_null(session);
    void *state = imap_decoder.open(session);
    assert_non_null(state);
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        const char *b = chunks[i].bytes;
        size_t len = chunks[i].len;
        int64_t ts = 1000000 + (int64_t)i;
        if (how == FEED_BYTES) {
            for (size_t k = 0; k < len; k++)
                imap_decoder.data(state, session, chunks[i].side, b + k, 1, ts);
        } else if (how == FEED_SPLIT && split > at && split < at + len) {
            imap_decoder.data(state, session, chunks[i].side, b, split - at, ts);
            imap_decoder.data(state, session, chunks[i].side, b + (split - at), len - (split - at), ts);
        } else {
            imap_decoder.data(state, session, chunks[i].side, b, len, ts);
        }
        at += len;
    }
    session->end = end;
    session->end_us = 2000000;
    imap_decoder.close(state, session);
    imap_decoder.free(state);
    return session;
}

static void assert_same(const struct mt_session *a, const struct mt_session *b)
{
    assert_int_equal(a->status, b->status);
    assert_string_equal(a->status_line, b->status_line);
    assert_int_equal(a->status_transcript_line, b->status_transcript_line);
    assert_string_equal(a->user, b->user);
    assert_string_equal(a->banner, b->banner);
    assert_string_equal(a->server_name, b->server_name);
    assert_int_equal(a->tls, b->tls);
    assert_int_equal(a->auth_attempts, b->auth_attempts);
    assert_int_equal(a->auth_failures, b->auth_failures);
    assert_int_equal(a->flags, b->flags);
    const struct mt_mailbox_stats *x = &a->stats, *y = &b->stats;
    assert_int_equal(x->fetch_count, y->fetch_count);
    assert_int_equal(x->fetch_bytes, y->fetch_bytes);
    assert_int_equal(x->append_count, y->append_count);
    assert_int_equal(x->append_bytes, y->append_bytes);
    assert_int_equal(x->expunge_count, y->expunge_count);
    assert_int_equal(x->deleted_flagged, y->deleted_flagged);
    assert_int_equal(x->idled, y->idled);
    assert_string_equal(x->mailboxes, y->mailboxes);
    assert_int_equal(a->message_count, b->message_count);
    for (size_t i = 0; i < a->message_count; i++) {
        assert_string_equal(mt_str(a->messages[i].subject), mt_str(b->messages[i].subject));
        assert_string_equal(mt_str(a->messages[i].message_id), mt_str(b->messages[i].message_id));
        assert_string_equal(mt_str(a->messages[i].reply), mt_str(b->messages[i].reply));
        assert_int_equal(a->messages[i].size, b->messages[i].size);
        assert_int_equal(a->messages[i].start_us, b->messages[i].start_us);
    }
    assert_int_equal(a->transcript_lines, b->transcript_lines);
    assert_int_equal(a->transcript_len, b->transcript_len);
    if (a->transcript_len > 0)
        assert_memory_equal(a->transcript, b->transcript, a->transcript_len);
}

static size_t total_len(const struct dialogue_step *chunks, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += chunks[i].len;
    return total;
}

/* Runs a dialogue whole, then split at every stride-th byte boundary and byte by byte;
 * every run must decode to the same session. Returns the whole run's session. */
static struct mt_session *run_stride(const struct dialogue_step *chunks, size_t n, enum mt_end end,
                                     size_t stride)
{
    struct mt_session *whole = feed(chunks, n, end, FEED_WHOLE, 0);
    size_t total = total_len(chunks, n);
    for (size_t k = 1; k < total; k += stride) {
        struct mt_session *other = feed(chunks, n, end, FEED_SPLIT, k);
        assert_same(whole, other);
        session_free(other);
    }
    struct mt_session *bytes = feed(chunks, n, end, FEED_BYTES, 0);
    assert_same(whole, bytes);
    session_free(bytes);
    return whole;
}

static struct mt_session *run(const struct dialogue_step *chunks, size_t n, enum mt_end end)
{
    return run_stride(chunks, n, end, 1);
}

static bool transcript_has(const struct mt_session *s, const char *text)
{
    return s->transcript_len > 0 && memmem(s->transcript, s->transcript_len, text, strlen(text));
}

#define assert_transcript_has(s, text) \
    do { \
        if (!transcript_has((s), (text))) \
            fail_msg("transcript lacks \"%s\":\n%.*s", (text), (int)(s)->transcript_len, \
                     (s)->transcript ? (s)->transcript : ""); \
    } while (0)

/* A secret must be nowhere in the record: not in a field, not in the transcript. */
static void assert_no_secret(const struct mt_session *s, const char *secret)
{
    const char *fields[] = { s->user, s->banner, s->server_name, s->helo, s->status_line,
                             s->stats.mailboxes };
    for (size_t i = 0; i < COUNT(fields); i++)
        assert_null(strstr(fields[i], secret));
    if (transcript_has(s, secret))
        fail_msg("secret \"%s\" in transcript:\n%.*s", secret, (int)s->transcript_len, s->transcript);
}

/* ---- the ordinary session ------------------------------------------------------------- */

#define BODY1 "Subject: one\r\n\r\na3 OK FETCH completed\r\n* BYE not really\r\n"
#define BODY2 "Subject: two\r\n\r\n+ continue?\r\n{999999}\r\nbye\r\n"

static void test_login_select_fetch_store_expunge_logout(void **unused)
{
    (void)unused;
    char fetch[512];
    snprintf(fetch, sizeof fetch,
             "* 1 FETCH (FLAGS (\\Seen) BODY[] {%zu}\r\n%s)\r\n"
             "* 2 FETCH (BODY[] {%zu}\r\n%s FLAGS (\\Seen))\r\na3 OK FETCH completed\r\n",
             strlen(BODY1), BODY1, strlen(BODY2), BODY2);
    const struct dialogue_step chunks[] = {
        SV("* OK [CAPABILITY IMAP4rev1 LITERAL+ IDLE AUTH=PLAIN] mail.example.org IMAP4rev1 ready\r\n"),
        CL("a1 LOGIN alice s3cr3t-pw\r\n"),
        SV("a1 OK [CAPABILITY IMAP4rev1 IDLE] LOGIN completed\r\n"),
        CL("a2 SELECT INBOX\r\n"),
        SV("* 2 EXISTS\r\n* 0 RECENT\r\n* FLAGS (\\Seen \\Deleted)\r\na2 OK [READ-WRITE] SELECT completed\r\n"),
        CL("a3 FETCH 1:2 (FLAGS BODY[])\r\n"),
        { MT_SERVER, fetch, strlen(fetch) },
        CL("a4 STORE 1:2 +FLAGS (\\Deleted)\r\n"),
        SV("* 1 FETCH (FLAGS (\\Seen \\Deleted))\r\n* 2 FETCH (FLAGS (\\Seen \\Deleted))\r\na4 OK STORE completed\r\n"),
        CL("a5 EXPUNGE\r\n"),
        SV("* 1 EXPUNGE\r\n* 1 EXPUNGE\r\n* 0 EXISTS\r\na5 OK EXPUNGE completed\r\n"),
        CL("a6 LOGOUT\r\n"),
        SV("* BYE logging out\r\na6 OK LOGOUT completed\r\n"),
    };
    struct mt_session *s = run(chunks, COUNT(chunks), MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_LOGIN_OK);
    assert_string_equal(s->status_line, "a1 OK LOGIN completed");   /* no capabilities */
    assert_true(s->status_transcript_line >= 0);
    assert_string_equal(s->user, "alice");
    assert_string_equal(s->server_name, "mail.example.org");
    assert_int_equal(s->auth_attempts, 1);
    assert_int_equal(s->auth_failures, 0);
    assert_int_equal(s->flags, 0);
    assert_int_equal(s->stats.fetch_count, 2);
    assert_int_equal(s->stats.fetch_bytes, strlen(BODY1) + strlen(BODY2));
    assert_int_equal(s->stats.deleted_flagged, 2);
    assert_int_equal(s->stats.expunge_count, 2);
    assert_string_equal(s->stats.mailboxes, "INBOX");
    assert_transcript_has(s, " C a1 LOGIN alice *****\n");
    assert_transcript_has(s, "[INBOX selected: 2 messages]");
    char expect[128];
    snprintf(expect, sizeof expect, "S * 1 FETCH (FLAGS (\\\\Seen) BODY[] [literal %zu bytes])\n",
             strlen(BODY1));
    assert_transcript_has(s, expect);
    snprintf(expect, sizeof expect, "S * 2 FETCH (BODY[] [literal %zu bytes] FLAGS (\\\\Seen))\n",
             strlen(BODY2));
    assert_transcript_has(s, expect);
    assert_transcript_has(s, "S a6 OK LOGOUT completed\n");
    assert_false(transcript_has(s, "not really"));
    assert_false(transcript_has(s, "Subject"));
    assert_no_secret(s, "s3cr3t-pw");
    /* each BODY[] literal is a retrieved message, its headers read */
    assert_int_equal(s->message_count, 2);
    assert_string_equal(mt_str(s->messages[0].subject), "one");
    assert_string_equal(mt_str(s->messages[0].reply), "retrieved by FETCH 1");
    assert_int_equal(s->messages[0].size, strlen(BODY1));
    assert_string_equal(mt_str(s->messages[1].subject), "two");
    assert_string_equal(mt_str(s->messages[1].reply), "retrieved by FETCH 2");
    session_free(s);
}

/* Which FETCH literals are retrievals, and their headers read within the literal only. */
#define MSG_A "Received: from x\r\n\tby y\r\nMessage-ID:\r\n <a1@example.org>\r\n" \
              "Subject: =?UTF-8?Q?caf=C3=A9?= report\r\n\r\nMessage-ID: <body@x>\r\n"
#define MSG_B "Subject: partial\r\nMessage-Id: <b2@example.org>\r\n\r\nbody"
#define HDR_C "Message-ID: <c3@example.org>\r\nSubject: header only\r\n\r\n"
#define MSG_D "Subject: no blank line at the end\r\nMessage-ID: <d4@example.org>"

static void test_fetch_retrievals(void **unused)
{
    (void)unused;
    char fetch[2048];
    snprintf(fetch, sizeof fetch,
             "* 1 FETCH (UID 7 RFC822.SIZE %zu BODY[] {%zu}\r\n%s)\r\n"
             "* 2 FETCH (BODY[]<0> {%zu}\r\n%s)\r\n"
             "* 3 FETCH (BODY[HEADER] {%zu}\r\n%s)\r\n"
             "* 4 FETCH (RFC822 {%zu}\r\n%s UID 9)\r\n"
             "* 5 FETCH (BODY[TEXT] {%zu}\r\n%s)\r\n"
             "a3 OK FETCH completed\r\n",
             strlen(MSG_A), strlen(MSG_A), MSG_A, strlen(MSG_B), MSG_B, strlen(HDR_C), HDR_C,
             strlen(MSG_D), MSG_D, strlen(MSG_B), MSG_B);
    const struct dialogue_step chunks[] = {
        SV("* OK IMAP4rev1 ready\r\n"),
        CL("a1 LOGIN bob pw\r\n"),
        SV("a1 OK LOGIN completed\r\n"),
        CL("a2 SELECT INBOX\r\n"),
        SV("* 5 EXISTS\r\na2 OK [READ-WRITE] SELECT completed\r\n"),
        CL("a3 FETCH 1:5 (BODY.PEEK[])\r\n"),
        { MT_SERVER, fetch, strlen(fetch) },
        CL("a4 LOGOUT\r\n"),
        SV("* BYE bye\r\na4 OK LOGOUT completed\r\n"),
    };
    struct mt_session *s = run(chunks, COUNT(chunks), MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_LOGIN_OK);
    /* a header section alone is no retrieval (a client listing the mailbox); text is */
    assert_int_equal(s->stats.fetch_count, 4);
    assert_int_equal(s->stats.fetch_bytes,
                     strlen(MSG_A) + strlen(MSG_B) + strlen(MSG_D) + strlen(MSG_B));
    /* every retrieval counted is listed (BODY[TEXT] too: walkthrough 10); a header is none */
    assert_int_equal(s->message_count, 4);
    assert_string_equal(mt_str(s->messages[0].message_id), "<a1@example.org>");
    /* the UID when it comes before the literal (the server's log names messages so); the
     * fourth's comes after its literal, too late for the line */
    assert_string_equal(mt_str(s->messages[0].reply), "retrieved by FETCH 1 (UID 7)");
    assert_int_equal(s->messages[0].size, strlen(MSG_A));
    assert_non_null(strstr(mt_str(s->messages[0].subject), "report"));
    assert_string_equal(mt_str(s->messages[1].message_id), "<b2@example.org>");
    assert_string_equal(mt_str(s->messages[1].subject), "partial");
    assert_string_equal(mt_str(s->messages[1].reply), "retrieved by FETCH 2 (partial)");
    assert_string_equal(mt_str(s->messages[2].message_id), "<d4@example.org>");
    assert_string_equal(mt_str(s->messages[2].reply), "retrieved by FETCH 4");
    assert_string_equal(mt_str(s->messages[3].reply), "retrieved by FETCH 5 (only BODY[TEXT])");
    assert_string_equal(mt_str(s->messages[3].message_id), "");   /* its headers are not there */
    /* the literal ends the header scan: the rest of the line is IMAP again */
    assert_transcript_has(s, "[literal 63 bytes] UID 9)\n");
    session_free(s);
}

/* A message literal cut by the end of the capture keeps what its headers said; its size
 * is what came, and its line says of how much. */
static void test_fetch_cut_in_headers(void **unused)
{
    (void)unused;
    const struct dialogue_step chunks[] = {
        SV("* OK IMAP4rev1 ready\r\n"),
        CL("a1 LOGIN bob pw\r\n"),
        SV("a1 OK LOGIN completed\r\n"),
        CL("a2 FETCH 1 BODY[]\r\n"),
        SV("* 1 FETCH (BODY[] {4000000000}\r\nMessage-ID: <cut@x>\r\nSubject: cut sh"),
    };
    struct mt_session *s = run(chunks, COUNT(chunks), MT_END_EOF);
    assert_int_equal(s->message_count, 1);
    assert_string_equal(mt_str(s->messages[0].message_id), "<cut@x>");
    assert_string_equal(mt_str(s->messages[0].subject), "cut sh");
    assert_int_equal(s->messages[0].size, 36);
    assert_string_equal(mt_str(s->messages[0].reply), "FETCH 1 cut after 36 of 4000000000 bytes");
    assert_int_equal(s->stats.fetch_count, 1);
    session_free(s);
}

static void test_login_failure(void **unused)
{
    (void)unused;
    const struct dialogue_step chunks[] = {
        SV("* OK Dovecot ready.\r\n"),
        CL("a1 LOGIN bob wr0ngpass\r\n"),
        SV("a1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"),
        CL("a2 LOGOUT\r\n"),
        SV("* BYE Logging out\r\na2 OK Logout completed.\r\n"),
    };
    struct mt_session *s = run(chunks, COUNT(chunks), MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_AUTH_FAILED);
    assert_string_equal(s->status_line, "a1 NO [AUTHENTICATIONFAILED] Authentication failed.");
    assert_string_equal(s->user, "bob");
    assert_string_equal(s->banner, "* OK Dovecot ready.");
    assert_string_equal(s->server_name, "");
    assert_int_equal(s->auth_attempts, 1);
    assert_int_equal(s->auth_failures, 1);
    assert_no_secret(s, "wr0ngpass");
    session_free(s);
}

static void test_fail_then_succeed(void **unused)
{
    (void)unused;
    const struct dialogue_step chunks[] = {
        SV("* OK ready\r\n"),
        CL("a1 LOGIN bob wr0ngpass\r\n"),
        SV("a1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"),
        CL("a2 login \"alice\" \"r1ght \\\"pass\\\"\"\r\n"),
        SV("a2 OK Logged in\r\n"),
        CL("a3 LOGIN alice again\r\n"),
        SV("a3 BAD Already logged in\r\n"),
    };
    struct mt_session *s = run(chunks, COUNT(chunks), MT_END_EOF);
    assert_int_equal(s->status, MT_STATUS_LOGIN_OK);
    assert_string_equal(s->status_line, "a2 OK Logged in");
    assert_string_equal(s->user, "alice");
    assert_int_equal(s->auth_attempts, 3);
    assert_int_equal(s->auth_failures, 1);   /* a BAD is no verdict on a password */
    assert_transcript_has(s, "S a1 NO [AUTHENTICATIONFAILED] Authentication failed.\n");
    assert_transcript_has(s, "C a2 login \"alice\" *****\n");
    assert_no_secret(s, "wr0ngpass");
    assert_no_secret(s, "r1ght");
    assert_no_secret(s, "again");
    session_free(s);
}

static void test_login_literals(void **unused)
{
    (void)unused;
    /* synchronizing literals, each after "+"; the password holds a CR LF */
    const struct dialogue_step sync[] = {
        SV("* OK ready\r\n"),
        CL("a1 LOGIN {5}\r\n"),
        SV("+ Ready for literal data\r\n"),
        CL("alice {11}\r\n"),
        SV("+ go on\r\n"),
        CL("pa\r\nss word\r\n"),
        SV("a1 OK LOGIN completed\r\n"),
        CL("a2 LOGOUT\r\n"),
        SV("* BYE\r\na2 OK\r\n"),
    };
    struct mt_session *s = run(sync, COUNT(sync), MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_LOGIN_OK);
    assert_string_equal(s->user, "alice");
    assert_int_equal(s->flags, 0);
    assert_transcript_has(s, "C a1 LOGIN alice *****\n");
    assert_transcript_has(s, "C a2 LOGOUT\n");
    assert_no_secret(s, "word");
    assert_no_secret(s, "pa\\");
    session_free(s);

    /* LITERAL+: everything at once, then a too-long user literal that is not read */
    const struct dialogue_step plus[] = {
        SV("* OK [CAPABILITY IMAP4rev1 LITERAL+] ready\r\n"),
        CL("a1 LOGIN {4+}\r\ncarl {6+}\r\nsecret\r\na2 NOOP\r\n"),
        SV("a1 NO bad\r\na2 OK\r\n"),
    };
    s = run(plus, COUNT(plus), MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_AUTH_FAILED);
    assert_string_equal(s->user, "carl");
    assert_transcript_has(s, "C a2 NOOP\n");
    assert_no_secret(s, "secret");
    session_free(s);

    char big[600];
    memset(big, 'u', 300);
    snprintf(big + 300, sizeof big - 300, " {6+}\r\nsecret\r\n");
    const struct dialogue_step large[] = {
        SV("* OK ready\r\n"),
        CL("a1 LOGIN {300+}\r\n"),
        { MT_CLIENT, big, strlen(big) },
        SV("a1 OK\r\n"),
    };
    s = run(large, COUNT(large), MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_LOGIN_OK);
    assert_string_equal(s->user, "");
    assert_transcript_has(s, "C a1 LOGIN [literal 300 bytes] *****\n");
    assert_no_secret(s, "secret");
    assert_no_secret(s, "uuuu");
    session_free(s);
}

/* A login whose secret never crossed the wire (the client stopped at the go-ahead of its
 * AUTHENTICATE or of its LOGIN's literal) is no attempt, hence no cleartext_auth finding;
 * one whose password went out is, answered or not. */
static void test_credentials_never_sent(void **unused)
{
    (void)unused;
    const struct dialogue_step sasl[] = {
        SV("* OK ready\r\n"), CL("a1 AUTHENTICATE PLAIN\r\n"), SV("+ \r\n"),
        CL("AGhhbmcAU2VjcjN0\r\n"),
    };
    const struct dialogue_step user_literal[] = {
        SV("* OK ready\r\n"), CL("a1 LOGIN {5}\r\n"), SV("+ OK\r\n"),
        CL("alice {8}\r\n"), SV("+ OK\r\n"), CL("Secr3tpw\r\n"),
    };
    const struct {
        const struct dialogue_step *steps;
        size_t n;
        int attempts;
    } cases[] = {
        { sasl, 3, 0 }, { sasl, 4, 1 },
        { user_literal, 3, 0 }, { user_literal, 5, 0 }, { user_literal, 6, 1 },
    };
    for (size_t i = 0; i < COUNT(cases); i++) {
        enum mt_end ends[] = { MT_END_EOF, MT_END_CLOSE };
        for (size_t e = 0; e < COUNT(ends); e++) {
            struct mt_session *s = run(cases[i].steps, cases[i].n, ends[e]);
            assert_int_equal(s->auth_attempts, cases[i].attempts);
            assert_int_equal(s->auth_failures, 0);
            assert_no_secret(s, "Secr3tpw");
            assert_no_secret(s, "AGhhbmcAU2VjcjN0");
            /* the capture ended with the client's turn after a "+": said so (walkthrough 11) */
            if (ends[e] == MT_END_EOF && cases[i].attempts == 0)
                assert_string_equal(s->status_line, "[capture ended while the server waited for"
                                    " the client to go on after its \"+\"]");
            session_free(s);
        }
    }
    /* answered, the attempt counts once, whenever its credentials went */
    const struct dialogue_step refused[] = {
        SV("* OK ready\r\n"), CL("a1 AUTHENTICATE PLAIN\r\n"), SV("+ \r\n"),
        CL("AGhhbmcAU2VjcjN0\r\n"), SV("a1 NO [AUTHENTICATIONFAILED] failed\r\n"),
        CL("a2 LOGIN {5}\r\n"), SV("+ OK\r\n"), CL("alice wrongpw\r\n"),
        SV("a2 NO [AUTHENTICATIONFAILED] failed\r\n"),
        CL("a3 AUTHENTICATE CRAM-MD5\r\n"), SV("a3 NO unsupported mechanism\r\n"),
    };
    struct mt_session *s = run(refused, COUNT(refused), MT_END_CLOSE);
    assert_int_equal(s->auth_attempts, 3);
    assert_int_equal(s->auth_failures, 3);
    session_free(s);
}

/* ---- AUTHENTICATE ---------------------------------------------------------------------- */

static void test_authenticate_plain_sasl_ir(void **unused)
{
    (void)unused;
    const struct dialogue_step chunks[] = {
        SV("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN] ready\r\n"),
        CL("a1 AUTHENTICATE PLAIN YWRtaW4AYWxpY2UAUGw0MW5TM2NyZXQ=\r\n"),
        SV("a1 OK [CAPABILITY IMAP4rev1] Logged in\r\n"),
    };
    struct mt_session *s = run(chunks, COUNT(chunks), MT_END_EOF);
    assert_int_equal(s->status, MT_STATUS_LOGIN_OK);
    assert_string_equal(s->user, "alice");
    assert_int_equal(s->auth_attempts, 1);
    assert_transcript_has(s, "C a1 AUTHENTICATE PLAIN *****\n");
    assert_no_secret(s, "YWRtaW4AYWxpY2UAUGw0MW5TM2NyZXQ=");
    assert_no_secret(s, "Pl41nS3cret");
    session_free(s);

    /* empty authcid: the authzid is the user */
    const struct dialogue_step authzid[] = {
        SV("* OK ready\r\n"),
        CL("a1 AUTHENTICATE PLAIN Ym9iAABQbDQxblMzY3JldA==\r\n"),
        SV("a1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"),
    };
    s = run(authzid, COUNT(authzid), MT_END_EOF);
    assert_int_equal(s->status, MT_STATUS_AUTH_FAILED);
    assert_string_equal(s->user, "bob");
    assert_int_equal(s->auth_failures, 1);
    session_free(s);
}

static void test_authenticate_continuations(void **unused)
{
    (void)unused;
    const struct dialogue_step plain[] = {
        SV("* OK ready\r\n"),
        CL("a1 AUTHENTICATE PLAIN\r\n"),
        SV("+ \r\n"),
        CL("AGFsaWNlAFBsNDFuUzNjcmV0\r\n"),
        SV("a1 OK Logged in\r\n"),
        CL("a2 SELECT \"Sent Items\"\r\n"),
        SV("* 7 EXISTS\r\na2 OK [READ-WRITE] done\r\n"),
    };
    struct mt_session *s = run(plain, COUNT(plain), MT_END_EOF);
    assert_int_equal(s->status, MT_STATUS_LOGIN_OK);
    assert_string_equal(s->user, "alice");
    assert_string_equal(s->stats.mailboxes, "Sent Items");
    assert_transcript_has(s, "C a1 AUTHENTICATE PLAIN\n");
    assert_transcript_has(s, "C *****\n");
    assert_transcript_has(s, "[Sent Items selected: 7 messages]");
    assert_no_secret(s, "AGFsaWNlAFBsNDFuUzNjcmV0");
    session_free(s);

    const struct dialogue_step login[] = {
        SV("* OK ready\r\n"),
        CL("a1 authenticate login\r\n"),
        SV("+ VXNlcm5hbWU6\r\n"),
        CL("ZGF2ZQ==\r\n"),
        SV("+ UGFzc3dvcmQ6\r\n"),
        CL("TDBnMW5TM2NyZXQ=\r\n"),
        SV("a1 OK done\r\n"),
    };
    s = run(login, COUNT(login), MT_END_EOF);
    assert_int_equal(s->status, MT_STATUS_LOGIN_OK);
    assert_string_equal(s->user, "dave");
    assert_no_secret(s, "TDBnMW5TM2NyZXQ=");
    assert_no_secret(s, "ZGF2ZQ==");
    session_free(s);

    const struct dialogue_step xoauth[] = {
        SV("* OK ready\r\n"),
        CL("a1 AUTHENTICATE XOAUTH2 dXNlcj1jYXJvbEBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LlQwa2VuUzNjcmV0AQE=\r\n"),
        SV("a1 OK done\r\n"),
        CL("a2 AUTHENTICATE SCRAM-SHA-1 biwsbj1lcmluLHI9ZnlrbytkMmxiYkZnT05Sdjlxa3hkYXdM\r\n"),
        SV("a2 BAD already\r\n"),
    };
    s = run(xoauth, COUNT(xoauth), MT_END_EOF);
    assert_int_equal(s->status, MT_STATUS_LOGIN_OK);
    assert_string_equal(s->user, "carol@example.com");
    assert_int_equal(s->auth_failures, 1);
    assert_no_secret(s, "T0kenS3cret");
    assert_no_secret(s, "dXNlcj1jYXJvbEBleGFtcGxl");
    session_free(s);

    /* SCRAM's client-first message and OAUTHBEARER's gs2 header carry the user */
    const char *const scram[][2] = {
        { "a1 AUTHENTICATE SCRAM-SHA-256 biwsbj1lcmluLHI9ZnlrbytkMmxiYkZnT05Sdjlxa3hkYXdM\r\n", "erin" },
        { "a1 AUTHENTICATE OAUTHBEARER bixhPWZyYW5rQGV4YW1wbGUuY29tLAFob3N0PXNlcnZlcgFhdXRoPUJlYXJlciBUMGtlbgEB\r\n",
          "frank@example.com" },
    };
    for (size_t i = 0; i < COUNT(scram); i++) {
        const struct dialogue_step one[] = {
            SV("* OK ready\r\n"),
            { MT_CLIENT, scram[i][0], strlen(scram[i][0]) },
            SV("+ cj1meWtvK2QybGJiRmdPTlJ2OXFreGRhd0wzcmZjTkhZSlkxWlZ2V1ZzN2oscz1RU1hDUitRNnNlazhiZjkyLGk9NDA5Ng==\r\n"),
            CL("Yz1iaXdzLHI9ZnlrbytkMmxiYkZnT05Sdjlxa3hkYXdMM3JmY05IWUpZMVpWdldWczdqLHA9djBYOHYzQnoyVDBDSkdiSlF5RjBYK0hJNFRzPQ==\r\n"),
            SV("a1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"),
            CL("a2 LOGOUT\r\n"),
        };
        s = run(one, COUNT(one), MT_END_CLOSE);
        assert_int_equal(s->status, MT_STATUS_AUTH_FAILED);
        assert_string_equal(s->user, scram[i][1]);
        assert_transcript_has(s, "C *****\n");
        assert_no_secret(s, "Yz1iaXdz");
        assert_no_secret(s, "T0ken");
        session_free(s);
    }

    /* the client cancels with "*" */
    const struct dialogue_step cancel[] = {
        SV("* OK ready\r\n"),
        CL("a1 AUTHENTICATE CRAM-MD5\r\n"),
        SV("+ PDEyMzQ1QGhvc3Q+\r\n"),
        CL("*\r\n"),
        SV("a1 BAD Authentication cancelled\r\n"),
        CL("a2 LOGOUT\r\n"),
        SV("* BYE\r\na2 OK\r\n"),
    };
    s = run(cancel, COUNT(cancel), MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_NO_MAIL);   /* no verdict on a password: as SMTP */
    assert_string_equal(s->status_line, "[the client cancelled authentication]");
    assert_int_equal(s->auth_failures, 0);
    assert_transcript_has(s, "C *\n");
    assert_transcript_has(s, "C a2 LOGOUT\n");
    session_free(s);
}

/* ---- APPEND, IDLE ------------------------------------------------------------------------ */

#define MESSAGE "From: a@b\r\nSubject: up\r\n\r\na9 OK fake\r\n* BYE fake\r\n"

/* More tagged commands pipelined than are followed: the completions of those forgotten
 * say so once in the transcript, not only in the flags. */
static void test_pipelined_past_tags(void **unused)
{
    (void)unused;
    static char cmds[64 * 40], done[64 * 40];
    size_t cl = 0, dl = 0;
    for (int i = 0; i < 64; i++) {
        cl += (size_t)sprintf(cmds + cl, "a%d NOOP\r\n", i);
        dl += (size_t)sprintf(done + dl, "a%d OK NOOP completed\r\n", i);
    }
    const struct dialogue_step chunks[] = {
        SV("* OK [CAPABILITY IMAP4rev1] Dovecot ready.\r\n"),
        { MT_CLIENT, cmds, cl }, { MT_SERVER, done, dl },
    };
    struct mt_session *s = feed(chunks, COUNT(chunks), MT_END_CLOSE, FEED_WHOLE, 0);
    assert_true(s->flags & MT_FLAG_PROTOCOL_ERROR);
    assert_transcript_has(s, "a completion for a tag no command awaits");
    session_free(s);
}

static void test_append(void **unused)
{
    (void)unused;
    char sync_cmd[64], plus_cmd[256];
    snprintf(sync_cmd, sizeof sync_cmd, "a2 APPEND INBOX (\\Seen) {%zu}\r\n", strlen(MESSAGE));
    snprintf(plus_cmd, sizeof plus_cmd, "a3 APPEND {4+}\r\nSent {%zu+}\r\n%s\r\na4 NOOP\r\n",
             strlen(MESSAGE), MESSAGE);
    const struct dialogue_step chunks[] = {
        SV("* OK [CAPABILITY IMAP4rev1 LITERAL+] ready\r\n"),
        CL("a1 LOGIN alice pw\r\n"),
        SV("a1 OK\r\n"),
        { MT_CLIENT, sync_cmd, strlen(sync_cmd) },
        SV("+ Ready for literal data\r\n"),
        CL(MESSAGE "\r\n"),
        SV("a2 OK [APPENDUID 38505 3955] APPEND completed\r\n"),
        { MT_CLIENT, plus_cmd, strlen(plus_cmd) },
        SV("a3 OK APPEND completed\r\na4 OK\r\n"),
        /* refused: the server answers NO instead of "+"; the octets never come */
        CL("a5 APPEND Nowhere {5000}\r\n"),
        SV("a5 NO [TRYCREATE] No such mailbox\r\n"),
        /* sent whole, then refused: not stored, not counted */
        CL("a7 APPEND Drafts {5+}\r\nhello\r\n"),
        SV("a7 NO [TRYCREATE] Mailbox does not exist\r\n"),
        CL("a6 LOGOUT\r\n"),
        SV("* BYE\r\na6 OK\r\n"),
    };
    struct mt_session *s = run(chunks, COUNT(chunks), MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_LOGIN_OK);
    assert_int_equal(s->stats.append_count, 2);
    assert_int_equal(s->stats.append_bytes, 2 * strlen(MESSAGE));
    assert_int_equal(s->flags, 0);
    char expect[128];
    snprintf(expect, sizeof expect, "C a2 APPEND INBOX (\\\\Seen) [literal %zu bytes]\n", strlen(MESSAGE));
    assert_transcript_has(s, expect);
    snprintf(expect, sizeof expect, "C a3 APPEND [literal 4 bytes] [literal %zu bytes]\n", strlen(MESSAGE));
    assert_transcript_has(s, expect);
    assert_transcript_has(s, "C a4 NOOP\n");
    assert_transcript_has(s, "C a5 APPEND Nowhere [literal 5000 bytes, not sent]\n");
    assert_transcript_has(s, "C a6 LOGOUT\n");
    assert_false(transcript_has(s, "fake"));
    /* The command before the server's go-ahead for its literal, as they happened. */
    const char *command = strstr(s->transcript, "C a2 APPEND"),
               *plus = strstr(s->transcript, "S + Ready for literal data");
    assert_non_null(command);
    assert_non_null(plus);
    assert_true(command < plus);
    /* and stamped when it began, before the go-ahead ("USEC DIR TEXT" lines) */
    const char *command_line = command, *plus_line = plus;
    while (command_line > s->transcript && command_line[-1] != '\n')
        command_line--;
    while (plus_line > s->transcript && plus_line[-1] != '\n')
        plus_line--;
    assert_true(strtoll(command_line, NULL, 10) < strtoll(plus_line, NULL, 10));
    session_free(s);
}

/* The server's own trouble is not a wrong password; after the login, a mailbox command it
 * fails (or a goodbye in the middle of one) is the session's failure; a folder that does
 * not exist, or an APPEND to be retried after CREATE, is the client's business. */
static void test_server_trouble(void **unused)
{
    (void)unused;
    const struct dialogue_step unavailable[] = {
        SV("* OK ready\r\n"), CL("a1 LOGIN alice pw-unavail\r\n"),
        SV("a1 NO [UNAVAILABLE] Temporary authentication failure\r\n"),
        CL("a2 LOGOUT\r\n"), SV("* BYE\r\na2 OK\r\n"),
    };
    struct mt_session *s = run(unavailable, COUNT(unavailable), MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_TEMP_FAILED);
    assert_int_equal(s->auth_failures, 0);
    assert_no_secret(s, "pw-unavail");
    session_free(s);
    const struct dialogue_step serverbug[] = {
        SV("* OK ready\r\n"), CL("a1 LOGIN alice pw\r\n"), SV("a1 OK\r\n"),
        CL("a2 SELECT Archive\r\n"), SV("a2 NO Mailbox doesn't exist: Archive\r\n"),
        CL("a3 APPEND Sent {3}\r\n"), SV("a3 NO [TRYCREATE] Mailbox doesn't exist: Sent\r\n"),
        CL("a4 SELECT INBOX\r\n"), SV("a4 NO [SERVERBUG] Internal error occurred\r\n"),
        CL("a5 LOGOUT\r\n"), SV("* BYE\r\na5 OK\r\n"),
    };
    s = run(serverbug, COUNT(serverbug), MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_MAILBOX_FAILED);
    assert_string_equal(s->status_line, "a4 NO [SERVERBUG] Internal error occurred");
    session_free(s);
    const struct dialogue_step benign[] = {
        SV("* OK ready\r\n"), CL("a1 LOGIN alice pw\r\n"), SV("a1 OK\r\n"),
        CL("a2 SELECT Archive\r\n"), SV("a2 NO Mailbox doesn't exist: Archive\r\n"),
        CL("a3 FETCH 9 BODY[]\r\n"), SV("a3 NO [EXPUNGEISSUED] Some messages were expunged\r\n"),
        CL("a4 LOGOUT\r\n"), SV("* BYE\r\na4 OK\r\n"),
    };
    s = run(benign, COUNT(benign), MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_LOGIN_OK);
    session_free(s);
    const struct dialogue_step fetch_fails[] = {
        SV("* OK ready\r\n"), CL("a1 LOGIN alice pw\r\n"), SV("a1 OK\r\n"),
        CL("a2 SELECT INBOX\r\n"), SV("* 1 EXISTS\r\na2 OK [READ-WRITE] Select completed\r\n"),
        CL("a3 FETCH 1 BODY[]\r\n"), SV("a3 NO Error reading message body\r\n"),
        CL("a4 LOGOUT\r\n"), SV("* BYE\r\na4 OK\r\n"),
    };
    s = run(fetch_fails, COUNT(fetch_fails), MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_MAILBOX_FAILED);
    session_free(s);
    const struct dialogue_step bye[] = {
        SV("* OK ready\r\n"), CL("a1 LOGIN alice pw\r\n"), SV("a1 OK\r\n"),
        CL("a2 SELECT INBOX\r\n"), SV("* BYE Disconnected for inactivity.\r\n"),
    };
    s = run(bye, COUNT(bye), MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_INTERRUPTED);
    assert_string_equal(s->status_line, "* BYE Disconnected for inactivity.");
    session_free(s);
    /* Connection limits are "not now", not a wrong password nor an interruption. */
    const struct dialogue_step limit_no[] = {
        SV("* OK ready\r\n"), CL("a1 LOGIN alice pw\r\n"),
        SV("a1 NO [LIMIT] Too many simultaneous connections\r\n"),
    };
    s = run(limit_no, COUNT(limit_no), MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_TEMP_FAILED);
    assert_int_equal(s->auth_failures, 0);
    session_free(s);
    const struct dialogue_step limit_bye[] = {
        SV("* OK ready\r\n"), CL("a1 LOGIN alice pw\r\n"),
        SV("* BYE Maximum number of connections from user+IP exceeded "
           "(mail_max_userip_connections=10)\r\n"),
    };
    s = run(limit_bye, COUNT(limit_bye), MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_TEMP_FAILED);
    session_free(s);
    /* A mailbox full (or broken) for the commands that change it: mailbox_failed; a plain
     * NO to them (a message number out of range) is the client's own. */
    static const char *const changes[] = { "a3 UID MOVE 5 Trash\r\n", "a3 EXPUNGE\r\n",
                                           "a3 STORE 1 +FLAGS (\\Deleted)\r\n",
                                           "a3 COPY 1 Archive\r\n" };
    for (size_t i = 0; i < COUNT(changes); i++) {
        for (int trouble = 0; trouble < 2; trouble++) {
            const struct dialogue_step reply = trouble
                ? (struct dialogue_step)SV("a3 NO [OVERQUOTA] Quota exceeded (mailbox for user is full)\r\n")
                : (struct dialogue_step)SV("a3 NO Invalid messageset\r\n");
            const struct dialogue_step change[] = {
                SV("* OK ready\r\n"), CL("a1 LOGIN alice pw\r\n"), SV("a1 OK\r\n"),
                CL("a2 SELECT INBOX\r\n"), SV("* 9 EXISTS\r\na2 OK [READ-WRITE] done\r\n"),
                { MT_CLIENT, changes[i], strlen(changes[i]) }, reply,
            };
            s = run(change, COUNT(change), MT_END_CLOSE);
            assert_int_equal(s->status, trouble ? MT_STATUS_MAILBOX_FAILED : MT_STATUS_LOGIN_OK);
            session_free(s);
        }
    }
}

/* A refused AUTHENTICATE (or LOGIN) and the client sends its SASL response (or password)
 * anyway, alone on a line: no command, never shown. */
static void test_credential_after_refusal(void **unused)
{
    (void)unused;
    const struct dialogue_step sasl[] = {
        SV("* OK ready\r\n"), CL("a1 AUTHENTICATE PLAIN\r\n"), SV("a1 NO unsupported\r\n"),
        CL("AGRhdmUATWFza0E2c2VjcmV0\r\n"), SV("* BAD command unknown\r\n"),
        CL("a2 LOGOUT\r\n"), SV("* BYE\r\na2 OK\r\n"),
    };
    struct mt_session *s = run(sasl, COUNT(sasl), MT_END_CLOSE);
    assert_no_secret(s, "AGRhdmUATWFza0E2c2VjcmV0");
    assert_transcript_has(s, "[a line without a command, 24 bytes, not shown]");
    session_free(s);
    const struct dialogue_step password[] = {
        SV("* OK ready\r\n"), CL("a1 LOGIN dave\r\n"), SV("a1 BAD Missing arguments\r\n"),
        CL("MaskA7secret\r\n"), SV("* BAD Error in IMAP command\r\n"),
    };
    s = run(password, COUNT(password), MT_END_CLOSE);
    assert_no_secret(s, "MaskA7secret");
    session_free(s);
}

/* The capture went on a minute or more after the server fell silent owing a completion:
 * no cut, a silence (no_response), said with the command and how long. A shorter one is
 * the cut it was; IDLE, a client that owed the next word, and a failure keep theirs. */
static void test_silence_at_the_end(void **unused)
{
    (void)unused;
    const struct dialogue_step fetch[] = {
        SV("* OK ready\r\n"), CL("a1 LOGIN bob secret\r\n"), SV("a1 OK done\r\n"),
        CL("a2 SELECT INBOX\r\n"), SV("* 1 EXISTS\r\na2 OK [READ-WRITE] done\r\n"),
        CL("a3 FETCH 1 BODY[]\r\n"), SV("* 1 FETCH (BODY[] {500}\r\nSubject: x\r\n\r\nab"),
    };
    const int at[] = { 0, 1, 1, 2, 2, 3, 4 };
    struct mt_session *s = dialogue_until_end(&imap_decoder, fetch, at, COUNT(fetch) - 1, 8);   /* 5 s: a cut */
    assert_int_not_equal(s->status, MT_STATUS_NO_RESPONSE);
    assert_int_equal(s->end_us, 3000001);   /* its last bytes */
    session_free(s);
    s = dialogue_until_end(&imap_decoder, fetch, at, COUNT(fetch) - 1, 303);
    assert_int_equal(s->status, MT_STATUS_NO_RESPONSE);
    assert_string_equal(s->status_line, "[no reply to FETCH for 300 s when the capture ended]");
    assert_transcript_has(s, "303000001 I [no reply to FETCH for 300 s when the capture ended]");
    /* it waited until then: the session's time covers the silence (walkthrough 10) */
    assert_int_equal(s->end_us, 303000001);
    session_free(s);
    s = dialogue_until_end(&imap_decoder, fetch, at, COUNT(fetch), 124);   /* the message began, then stopped */
    assert_int_equal(s->status, MT_STATUS_NO_RESPONSE);
    assert_string_equal(s->status_line, "[FETCH unfinished: nothing more from the server for "
                                        "120 s when the capture ended]");
    assert_non_null(strstr(explain_reason(s->status, s->status_line), "stopped reading"));
    session_free(s);
    s = dialogue_until_end(&imap_decoder, fetch, at, 2, 100);   /* a login never answered */
    assert_int_equal(s->status, MT_STATUS_NO_RESPONSE);
    assert_string_equal(s->status_line, "[no reply to LOGIN for 99 s when the capture ended]");
    assert_non_null(strstr(explain_reason(s->status, s->status_line), "authentication backend"));
    session_free(s);

    /* IDLE: waiting is what it is for, once the server's "+" said it runs; before it, and
     * after the client's DONE, the server owes the answer as for any command */
    const struct dialogue_step idle[] = {
        SV("* OK ready\r\n"), CL("a1 LOGIN bob secret\r\n"), SV("a1 OK done\r\n"),
        CL("a2 SELECT INBOX\r\n"), SV("a2 OK done\r\n"), CL("a3 IDLE\r\n"), SV("+ idling\r\n"),
        CL("DONE\r\n"),
    };
    const int idle_at[] = { 0, 1, 1, 2, 2, 3, 3, 10 };
    s = dialogue_until_end(&imap_decoder, idle, idle_at, COUNT(idle) - 1, 900);
    assert_int_equal(s->status, MT_STATUS_LOGIN_OK);
    assert_true(s->stats.idled);
    session_free(s);
    s = dialogue_until_end(&imap_decoder, idle, idle_at, COUNT(idle) - 2, 70);   /* no "+" */
    assert_int_equal(s->status, MT_STATUS_NO_RESPONSE);
    assert_false(s->stats.idled);   /* it never idled (walkthrough 11) */
    assert_string_equal(s->status_line, "[no reply to IDLE for 67 s when the capture ended]");
    assert_transcript_has(s, "[no reply to IDLE for 67 s when the capture ended]");
    session_free(s);
    s = dialogue_until_end(&imap_decoder, idle, idle_at, COUNT(idle) - 2, 50);   /* a cut */
    assert_int_equal(s->status, MT_STATUS_INCOMPLETE);
    assert_string_equal(s->status_line, "[capture ended before IDLE's completion, 47 s "
                                        "after the last bytes]");
    session_free(s);
    s = dialogue_until_end(&imap_decoder, idle, idle_at, COUNT(idle), 77);   /* DONE, no OK */
    assert_int_equal(s->status, MT_STATUS_NO_RESPONSE);
    assert_string_equal(s->status_line, "[no reply to IDLE for 67 s when the capture ended]");
    assert_transcript_has(s, "C DONE\n");
    session_free(s);
    s = dialogue_until_end(&imap_decoder, idle, idle_at, COUNT(idle), 30);   /* DONE, cut */
    assert_int_equal(s->status, MT_STATUS_INCOMPLETE);
    assert_string_equal(s->status_line, "[capture ended before IDLE's completion, 20 s "
                                        "after the last bytes]");
    session_free(s);
    /* answering, untagged data and no completion: a reply unfinished (walkthrough 12) */
    const struct dialogue_step untagged[] = {
        SV("* OK ready\r\n"), CL("a1 LOGIN bob secret\r\n"), SV("a1 OK done\r\n"),
        CL("a2 FETCH 1 FLAGS\r\n"), SV("* 1 FETCH (FLAGS (\\Seen))\r\n"),
    };
    const int untagged_at[] = { 0, 1, 1, 2, 3 };
    s = dialogue_until_end(&imap_decoder, untagged, untagged_at, COUNT(untagged), 33);
    assert_int_equal(s->status, MT_STATUS_INCOMPLETE);
    assert_string_equal(s->status_line, "[capture ended during FETCH, 30 s after the last bytes]");
    session_free(s);
    /* the client owed the answer to a go-ahead */
    const struct dialogue_step sasl[] = {
        SV("* OK ready\r\n"), CL("a1 AUTHENTICATE PLAIN\r\n"), SV("+ \r\n"),
    };
    s = dialogue_until_end(&imap_decoder, sasl, at, COUNT(sasl), 400);
    assert_int_not_equal(s->status, MT_STATUS_NO_RESPONSE);
    session_free(s);
    /* a failure decided stays */
    const struct dialogue_step failed[] = {
        SV("* OK ready\r\n"), CL("a1 LOGIN bob wrong\r\n"),
        SV("a1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"),
        CL("a2 LOGIN bob wrong\r\n"),
    };
    s = dialogue_until_end(&imap_decoder, failed, at, COUNT(failed), 400);
    assert_int_equal(s->status, MT_STATUS_AUTH_FAILED);
    session_free(s);
}

/* An unsolicited "* BYE" to a logged-in user ends a session in use, whether it was idle,
 * in IDLE or between commands: interrupted, decided by the server's words, as POP3's
 * unsolicited -ERR before its close; a goodbye for inactivity is the client's idleness. */
static void test_unsolicited_bye(void **unused)
{
    (void)unused;
    static const char *const byes[] = {
        "* BYE Server shutting down.\r\n", "* BYE Disconnected for inactivity.\r\n",
        "* BYE Autologout; idle for too long\r\n",
        "* BYE Session expired, please login again.\r\n",   /* Gmail, a token run out */
        "* BYE Connection is closed. 13\r\n",               /* Exchange, idle */
    };
    for (size_t i = 0; i < COUNT(byes); i++) {
        for (int idling = 0; idling < 2; idling++) {
            const struct dialogue_step idle_steps[] = {
                CL("a3 IDLE\r\n"), SV("+ idling\r\n"),
            };
            const struct dialogue_step none[] = { SV("* 0 RECENT\r\n"), SV("* 1 RECENT\r\n") };
            const struct dialogue_step *middle = idling ? idle_steps : none;
            const struct dialogue_step chunks[] = {
                SV("* OK ready\r\n"), CL("a1 LOGIN dave secret\r\n"), SV("a1 OK Logged in\r\n"),
                CL("a2 SELECT INBOX\r\n"), SV("* 4 EXISTS\r\na2 OK [READ-WRITE] done\r\n"),
                middle[0], middle[1], { MT_SERVER, byes[i], strlen(byes[i]) },
            };
            struct mt_session *s = run(chunks, COUNT(chunks), MT_END_CLOSE);
            if (i == 0) {
                assert_int_equal(s->status, MT_STATUS_INTERRUPTED);
                assert_string_equal(s->status_line, "* BYE Server shutting down.");
                const struct mt_explain *e = explain_decision(s->status, s->status_line);
                assert_non_null(strstr(e->meaning, "the server ended the session of a "
                                                   "logged-in user and said why"));
                assert_non_null(strstr(explain_reason(s->status, s->status_line),
                                       "stopped or restarted"));
            } else {
                assert_int_equal(s->status, MT_STATUS_LOGIN_OK);
            }
            session_free(s);
        }
    }
    /* the goodbye the client asked for is none of this */
    const struct dialogue_step logout[] = {
        SV("* OK ready\r\n"), CL("a1 LOGIN dave secret\r\n"), SV("a1 OK Logged in\r\n"),
        CL("a2 LOGOUT\r\n"), SV("* BYE Server shutting down.\r\na2 OK\r\n"),
    };
    struct mt_session *s = run(logout, COUNT(logout), MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_LOGIN_OK);
    session_free(s);
    /* a command cut by it says what interrupted means otherwise */
    assert_non_null(strstr(explain_decision(MT_STATUS_INTERRUPTED, "[connection reset by the "
                                            "client during FETCH]")->meaning,
                           "middle of a command"));
}

static void test_idle_done(void **unused)
{
    (void)unused;
    const struct dialogue_step chunks[] = {
        SV("* PREAUTH [CAPABILITY IMAP4rev1 IDLE] logged in as bob\r\n"),
        CL("a1 EXAMINE INBOX\r\n"),
        SV("* 3 EXISTS\r\na1 OK [READ-ONLY] done\r\n"),
        CL("a2 IDLE\r\n"),
        SV("+ idling\r\n"),
        SV("* 4 EXISTS\r\n"),
        CL("DONE\r\n"),
        SV("a2 OK IDLE terminated\r\n"),
        CL("a3 NOOP\r\n"),
        SV("a3 OK\r\n"),
    };
    struct mt_session *s = run(chunks, COUNT(chunks), MT_END_EOF);
    assert_int_equal(s->status, MT_STATUS_LOGIN_OK);
    assert_string_equal(s->status_line, "* PREAUTH logged in as bob");
    assert_string_equal(s->user, "");
    assert_true(s->stats.idled);
    assert_int_equal(s->flags, 0);
    assert_int_equal(s->auth_attempts, 0);
    assert_transcript_has(s, "C DONE\n");
    assert_transcript_has(s, "S a2 OK IDLE terminated\n");
    assert_transcript_has(s, "C a3 NOOP\n");
    session_free(s);
}

/* ---- STARTTLS, refusals -------------------------------------------------------------------- */

static void test_starttls_then_tls(void **unused)
{
    (void)unused;
    const struct dialogue_step chunks[] = {
        SV("* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready\r\n"),
        CL("a1 STARTTLS\r\n"),
        SV("a1 OK Begin TLS negotiation now\r\n"),
        CL("\x16\x03\x01\x00\x10hello a2 LOGIN x y\r\n\x00\x01"),
        SV("\x16\x03\x03\x00\x10server\r\n* OK\r\n"),
        CL("\x17\x03\x03\x00\x05secret\r\n"),
    };
    struct mt_session *s = run(chunks, COUNT(chunks), MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_ENCRYPTED);
    assert_string_equal(s->status_line, "a1 OK Begin TLS negotiation now");
    assert_true(s->tls);
    assert_int_equal(s->flags, 0);
    assert_int_equal(s->auth_attempts, 0);
    assert_transcript_has(s, "[TLS from here on: the handshake and what follows are not shown]");
    assert_false(transcript_has(s, "hello"));
    assert_false(transcript_has(s, "server"));
    session_free(s);
}

static void test_starttls_then_plaintext(void **unused)
{
    (void)unused;
    const struct dialogue_step chunks[] = {
        SV("* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready\r\n"),
        CL("a1 STARTTLS\r\n"),
        SV("a1 OK Begin TLS negotiation now\r\n"),
        CL("a2 CAPABILITY\r\n"),
        SV("* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\na2 OK\r\n"),
        CL("a3 LOGIN alice pw0rd\r\n"),
        SV("a3 OK Logged in\r\n"),
    };
    struct mt_session *s = run(chunks, COUNT(chunks), MT_END_EOF);
    assert_int_equal(s->status, MT_STATUS_LOGIN_OK);
    assert_true(s->tls);
    assert_int_equal(s->flags, MT_FLAG_DECRYPTED);
    assert_string_equal(s->user, "alice");
    assert_transcript_has(s, "[plaintext after STARTTLS]");
    assert_no_secret(s, "pw0rd");
    session_free(s);

    /* the client never began TLS, and the server dropped it: TLS failed, not decrypted */
    const struct dialogue_step dropped[] = {
        SV("* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready\r\n"),
        CL("a1 STARTTLS\r\n"),
        SV("a1 OK Begin TLS negotiation now\r\n"),
        CL("a2 CAPABILITY\r\n"),
    };
    s = run(dropped, COUNT(dropped), MT_END_RESET);
    assert_int_equal(s->status, MT_STATUS_TLS_FAILED);
    assert_string_equal(s->status_line,
                        "the client sent plaintext after STARTTLS's OK instead of starting TLS");
    assert_int_equal(s->flags & MT_FLAG_DECRYPTED, 0);
    session_free(s);
    const struct dialogue_step alert[] = {   /* the server answers the plaintext with a TLS alert */
        SV("* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready\r\n"),
        CL("a1 STARTTLS\r\n"),
        SV("a1 OK Begin TLS negotiation now\r\n"),
        CL("a2 CAPABILITY\r\n"),
        SV("\x15\x03\x01\x00\x02\x02\x46"),
    };
    s = run(alert, COUNT(alert), MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_TLS_FAILED);
    assert_int_equal(s->flags & MT_FLAG_DECRYPTED, 0);
    session_free(s);
    s = run(dropped, COUNT(dropped), MT_END_EOF);   /* cut by the capture's end instead */
    assert_int_equal(s->status, MT_STATUS_INCOMPLETE);
    session_free(s);

    /* plaintext after STARTTLS and nothing conclusive: the end decides, not "encrypted"
     * (nor the refusal before TLS, which TLS answered) */
    const struct dialogue_step idle[] = {
        SV("* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready\r\n"),
        CL("a0 LOGIN alice pw0rd\r\n"),
        SV("a0 NO [PRIVACYREQUIRED] Use STARTTLS first\r\n"),
        CL("a1 STARTTLS\r\n"),
        SV("a1 OK go\r\n"),
        CL("a2 LOGOUT\r\n"),
        SV("* BYE\r\na2 OK\r\n"),
    };
    s = run(idle, COUNT(idle), MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_NO_MAIL);
    assert_string_equal(s->status_line, "[closed without a login]");
    assert_int_equal(s->auth_failures, 1);
    session_free(s);
}

/* A refused STARTTLS: the client asked (no starttls_unused); it is why a client that then
 * gives up got nothing, and a later login decides over it. */
static void test_starttls_refused(void **unused)
{
    (void)unused;
    const struct dialogue_step quit[] = {
        SV("* OK [CAPABILITY IMAP4rev1 STARTTLS] Dovecot ready.\r\n"),
        CL("b STARTTLS\r\n"),
        SV("b BAD TLS support isn't enabled.\r\n"),
        CL("c LOGOUT\r\n"),
        SV("* BYE Logging out\r\nc OK Logout completed.\r\n"),
    };
    struct mt_session *s = run(quit, COUNT(quit), MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_TLS_FAILED);
    assert_string_equal(s->status_line, "b BAD TLS support isn't enabled.");
    assert_true(s->starttls_refused);
    assert_false(s->tls);
    session_free(s);

    const struct dialogue_step login[] = {
        SV("* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n"),
        CL("a1 STARTTLS\r\n"),
        SV("a1 NO [UNAVAILABLE] TLS not available\r\n"),
        CL("a2 LOGIN alice pw0rd\r\n"),
        SV("a2 OK Logged in\r\n"),
    };
    s = run(login, COUNT(login), MT_END_EOF);
    assert_int_equal(s->status, MT_STATUS_LOGIN_OK);
    assert_true(s->starttls_refused);
    assert_no_secret(s, "pw0rd");
    session_free(s);
}

/* A LOGIN the server could not parse (BAD: a password with spaces the client did not
 * quote) was never checked: not a failed password, and said so; after refusals (NO), the
 * refusals decide. */
static void test_login_bad_syntax(void **unused)
{
    (void)unused;
    const struct dialogue_step bad[] = {
        SV("* OK ready\r\n"), CL("a1 LOGIN dave my pass word\r\n"),
        SV("a1 BAD Error in IMAP command received by server.\r\n"),
        CL("a2 LOGOUT\r\n"), SV("* BYE Logging out\r\na2 OK Logout completed.\r\n"),
    };
    struct mt_session *s = run(bad, COUNT(bad), MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_NO_MAIL);
    assert_string_equal(s->status_line, "a1 BAD Error in IMAP command received by server.");
    assert_int_equal(s->auth_failures, 0);
    assert_true(s->flags & MT_FLAG_PROTOCOL_ERROR);
    assert_non_null(strstr(explain_reason(s->status, s->status_line), "never checked"));
    assert_no_secret(s, "word");
    session_free(s);
    const struct dialogue_step refused_then_bad[] = {
        SV("* OK ready\r\n"), CL("a1 LOGIN dave wrong\r\n"),
        SV("a1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"),
        CL("a2 LOGIN dave \"pa\"ss\"\r\n"), SV("a2 BAD Missing '\"'\r\n"),
    };
    s = run(refused_then_bad, COUNT(refused_then_bad), MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_AUTH_FAILED);
    assert_string_equal(s->status_line, "a1 NO [AUTHENTICATIONFAILED] Authentication failed.");
    assert_int_equal(s->auth_failures, 1);
    session_free(s);
    /* a password typed as a line of its own: hidden, and so is Dovecot's echo of it */
    const struct dialogue_step echo[] = {
        SV("* OK ready\r\n"), CL("Hunter2!x\r\n"),
        SV("Hunter2!x BAD Error in IMAP command received by server.\r\n"),
    };
    s = run(echo, COUNT(echo), MT_END_CLOSE);
    assert_no_secret(s, "unter2");
    assert_transcript_has(s, "S ***** BAD Error in IMAP command received by server.\n");
    assert_false(s->flags & MT_FLAG_PROTOCOL_ERROR);   /* the BAD answers that line */
    session_free(s);
    /* with spaces: no IMAP command in it either (walkthrough 11), and the echo of its words
     * masked; commands IMAP registers, or an experimental X one, stay shown */
    const struct dialogue_step spaced[] = {
        SV("* OK ready\r\n"), CL("a1 LOGIN dave pw\r\n"), SV("a1 OK done\r\n"),
        CL("Tr0ub4dor and3 more\r\n"),
        SV("Tr0ub4dor BAD Error in IMAP command AND3: Unknown command\r\n"),
        CL("a2 NAMESPACE\r\n"), SV("* NAMESPACE NIL NIL NIL\r\na2 OK done\r\n"),
        CL("a3 XLIST \"\" *\r\n"), SV("a3 OK done\r\n"),
        CL("a5 LANGUAGE DE\r\n"), SV("a5 OK done\r\n"),   /* RFC 5255 */
        CL("a4 LOGOUT\r\n"), SV("* BYE bye\r\na4 OK done\r\n"),
    };
    s = run(spaced, COUNT(spaced), MT_END_CLOSE);
    assert_no_secret(s, "r0ub4dor");
    assert_no_secret(s, "ND3");
    assert_transcript_has(s, "C [a line without a command, 19 bytes, not shown]\n");
    assert_transcript_has(s, "C a2 NAMESPACE\n");
    assert_transcript_has(s, "C a3 XLIST \"\" *\n");
    assert_transcript_has(s, "C a5 LANGUAGE DE\n");
    assert_false(s->flags & MT_FLAG_PROTOCOL_ERROR);
    assert_int_equal(s->status, MT_STATUS_LOGIN_OK);
    session_free(s);
    /* a client the server gives up on before any login: its words, as POP3's -ERR */
    const struct dialogue_step scanner[] = {
        SV("* OK ready\r\n"), CL("b1 FROB\r\n"), SV("b1 BAD Error in IMAP command.\r\n"),
        CL("b2 FROB\r\n"), SV("* BYE Too many invalid IMAP commands.\r\n"),
    };
    s = run(scanner, COUNT(scanner), MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_NO_MAIL);
    assert_string_equal(s->status_line, "* BYE Too many invalid IMAP commands.");
    assert_non_null(strstr(explain_reason(s->status, s->status_line), "invalid commands"));
    session_free(s);
}

static void test_login_disabled(void **unused)
{
    (void)unused;
    const struct dialogue_step privacy[] = {
        SV("* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] Dovecot ready.\r\n"),
        CL("a1 LOGIN alice pw0rd\r\n"),
        SV("a1 NO [PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.\r\n"),
        CL("a2 LOGOUT\r\n"),
        SV("* BYE Logging out\r\na2 OK Logout completed.\r\n"),
    };
    struct mt_session *s = run(privacy, COUNT(privacy), MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_LOGIN_DISABLED);
    assert_string_equal(s->status_line,
                        "a1 NO [PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.");
    assert_int_equal(s->auth_attempts, 1);
    assert_no_secret(s, "pw0rd");
    session_free(s);

    /* no response code: LOGINDISABLED was announced, the refusal is a BAD */
    const struct dialogue_step bad[] = {
        SV("* OK ready\r\n"),
        CL("a1 CAPABILITY\r\n"),
        SV("* CAPABILITY IMAP4rev1 LOGINDISABLED STARTTLS\r\na1 OK\r\n"),
        CL("a2 LOGIN alice pw0rd\r\n"),
        SV("a2 BAD Command not allowed now\r\n"),
    };
    s = run(bad, COUNT(bad), MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_LOGIN_DISABLED);
    assert_string_equal(s->status_line, "a2 BAD Command not allowed now");
    session_free(s);
}

static void test_greetings(void **unused)
{
    (void)unused;
    const struct dialogue_step bye[] = {
        SV("* BYE Too many connections from your IP\r\n"),
        CL("a1 LOGOUT\r\n"),
    };
    struct mt_session *s = run(bye, COUNT(bye), MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_SERVER_REJECTED);
    assert_string_equal(s->status_line, "* BYE Too many connections from your IP");
    assert_string_equal(s->banner, "* BYE Too many connections from your IP");
    assert_int_equal(s->status_transcript_line, 0);
    session_free(s);

    const struct dialogue_step silent[] = { CL("a1 CAPABILITY\r\n") };
    s = run(silent, COUNT(silent), MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_NO_RESPONSE);
    assert_int_equal(s->status_transcript_line, -1);
    session_free(s);
    s = feed(NULL, 0, MT_END_EOF, FEED_WHOLE, 0);
    assert_int_equal(s->status, MT_STATUS_NO_RESPONSE);
    session_free(s);

    const struct dialogue_step tls[] = { CL("\x16\x03\x01\x02\x00\x01\x00\x01\xfc"), SV("\x16\x03\x03\x00\x5a") };
    s = run(tls, COUNT(tls), MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_ENCRYPTED);
    assert_true(s->tls);
    session_free(s);
}

static void test_end_statuses(void **unused)
{
    (void)unused;
    const struct dialogue_step greet[] = { SV("* OK ready\r\n"), CL("a1 CAPABILITY\r\n"),
                                   SV("* CAPABILITY IMAP4rev1\r\na1 OK\r\n") };
    struct { enum mt_end end; enum mt_status status; } cases[] = {
        { MT_END_CLOSE, MT_STATUS_NO_MAIL },   { MT_END_RESET, MT_STATUS_RESET },
        { MT_END_EOF, MT_STATUS_INCOMPLETE },  { MT_END_TIMEOUT, MT_STATUS_INCOMPLETE },
        { MT_END_EVICTED, MT_STATUS_INCOMPLETE },
    };
    for (size_t i = 0; i < COUNT(cases); i++) {
        struct mt_session *s = run(greet, COUNT(greet), cases[i].end);
        assert_int_equal(s->status, cases[i].status);
        session_free(s);
    }
    const struct dialogue_step logout[] = { SV("* OK ready\r\n"), CL("a1 LOGOUT\r\n"), SV("* BYE bye\r\n") };
    struct mt_session *s = run(logout, COUNT(logout), MT_END_EOF);
    assert_int_equal(s->status, MT_STATUS_NO_MAIL);
    session_free(s);
    /* closed while LOGIN awaited its completion: the server (or something between)
     * dropped it, which the capture did see (it was incomplete once) */
    const struct dialogue_step unanswered[] = { SV("* OK ready\r\n"), CL("a1 LOGIN a b\r\n") };
    s = run(unanswered, COUNT(unanswered), MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_INTERRUPTED);
    assert_string_equal(s->status_line, "[connection closed while LOGIN awaited its completion]");
    session_free(s);
    s = run(unanswered, COUNT(unanswered), MT_END_EOF);   /* the capture ended: not seen */
    assert_int_equal(s->status, MT_STATUS_INCOMPLETE);
    session_free(s);
    /* logged in, then closed in the middle of a message */
    const struct dialogue_step cut[] = {
        SV("* OK ready\r\n"), CL("a1 LOGIN alice pw\r\n"), SV("a1 OK\r\n"),
        CL("a2 FETCH 1 BODY[]\r\n"), SV("* 1 FETCH (BODY[] {500}\r\nSubject: x\r\n"),
    };
    s = run(cut, COUNT(cut), MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_INTERRUPTED);
    assert_string_equal(s->status_line, "[connection closed during FETCH: the message cut after 12"
                                        " of 500 bytes]");
    assert_int_equal(s->message_count, 1);   /* not "retrieved": show and trace say so */
    assert_string_equal(mt_str(s->messages[0].reply), "FETCH 1 cut after 12 of 500 bytes");
    assert_int_equal(s->messages[0].size, 12);
    session_free(s);
    /* reset by the client that gave up (curl --max-time), and the capture's end, the same */
    s = run(cut, COUNT(cut), MT_END_RESET);
    assert_int_equal(s->status, MT_STATUS_INTERRUPTED);
    assert_string_equal(s->status_line, "[connection reset during FETCH: the message cut after 12 of"
                                        " 500 bytes]");
    session_free(s);
    s = run(cut, COUNT(cut), MT_END_EOF);
    assert_int_equal(s->status, MT_STATUS_INCOMPLETE);
    assert_string_equal(s->status_line, "[capture ended during FETCH: the message cut after 12 of"
                                        " 500 bytes]");
    session_free(s);
    s = run(unanswered, COUNT(unanswered), MT_END_RESET);   /* before any login: reset */
    assert_int_equal(s->status, MT_STATUS_RESET);
    session_free(s);
    /* a server ending IDLE by closing, and a LOGIN refused, are not interruptions */
    const struct dialogue_step idle[] = {
        SV("* OK ready\r\n"), CL("a1 LOGIN alice pw\r\n"), SV("a1 OK\r\n"),
        CL("a2 IDLE\r\n"), SV("+ idling\r\n"),
    };
    s = run(idle, COUNT(idle), MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_LOGIN_OK);
    session_free(s);
    const struct dialogue_step refused[] = {
        SV("* OK ready\r\n"), CL("a1 LOGIN alice pw\r\n"), SV("a1 NO [AUTHENTICATIONFAILED] no\r\n"),
        CL("a2 LOGIN alice pw2\r\n"),
    };
    s = run(refused, COUNT(refused), MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_AUTH_FAILED);
    session_free(s);
}

/* ---- hostile input ------------------------------------------------------------------------ */

static void test_literal_4gb_then_eof(void **unused)
{
    (void)unused;
    const struct dialogue_step chunks[] = {
        SV("* OK ready\r\n"),
        CL("a1 LOGIN alice pw\r\n"),
        SV("a1 OK\r\n"),
        CL("a2 FETCH 1 BODY[]\r\n"),
        SV("* 1 FETCH (BODY[] {4294967296}\r\n0123456789012345678901234567890123456789"),
        SV("a2 OK looks like a line but is body\r\n"),
    };
    struct mt_session *s = run(chunks, COUNT(chunks), MT_END_EOF);
    assert_int_equal(s->status, MT_STATUS_INCOMPLETE);   /* the capture ended in the message */
    assert_string_equal(s->status_line, "[capture ended during FETCH: the message cut after 77 of"
                                        " 4294967296 bytes]");
    assert_int_equal(s->stats.fetch_count, 1);
    assert_int_equal(s->stats.fetch_bytes, 40 + 37);
    assert_transcript_has(s, "S * 1 FETCH (BODY[] [literal 4294967296 bytes, 77 received]\n");
    assert_false(transcript_has(s, "looks like"));
    session_free(s);

    /* a count beyond number64 is not skipped: a protocol error */
    const struct dialogue_step absurd[] = {
        SV("* OK ready\r\n"),
        SV("* 1 FETCH (BODY[] {99999999999999999999999}\r\nnext\r\n"),
    };
    s = run(absurd, COUNT(absurd), MT_END_EOF);
    assert_true(s->flags & MT_FLAG_PROTOCOL_ERROR);
    assert_int_equal(s->stats.fetch_count, 0);
    session_free(s);
}

static void test_overlong_lines(void **unused)
{
    (void)unused;
    size_t big = 10u << 20;
    char *line = malloc(big + 64);
    assert_non_null(line);
    memcpy(line, "* 1 FETCH (X-JUNK ", 18);
    memset(line + 18, 'x', big - 18);
    strcpy(line + big, " BODY[] {5}\r\nhello)\r\n");
    const struct dialogue_step chunks[] = {
        SV("* OK ready\r\n"),
        { MT_SERVER, line, strlen(line) },
        SV("* 2 FETCH (BODY[] {3}\r\nabc)\r\n"),
        CL("a1 NOOP "), { MT_CLIENT, line + 18, big - 18 }, CL("\r\na2 NOOP\r\n"),
    };
    struct mt_session *s = feed(chunks, COUNT(chunks), MT_END_EOF, FEED_WHOLE, 0);
    struct mt_session *split = feed(chunks, COUNT(chunks), MT_END_EOF, FEED_SPLIT, big - 3);
    assert_same(s, split);
    assert_true(s->flags & MT_FLAG_LINE_TRUNCATED);
    assert_false(s->flags & MT_FLAG_PROTOCOL_ERROR);
    assert_int_equal(s->stats.fetch_count, 2);
    assert_int_equal(s->stats.fetch_bytes, 8);
    assert_transcript_has(s, "C a2 NOOP\n");
    assert_true(s->transcript_len < 16 * 1024);
    session_free(s);
    session_free(split);
    free(line);
}

static void test_control_bytes(void **unused)
{
    (void)unused;
    const struct dialogue_step chunks[] = {
        SV("* OK \x1b[31mred\x1b[0m \x00 ready\r\n"),
        CL("a1 LOGIN \"ev\x1b]0;il\" p\x00w\r\n"),
        SV("a1 NO \x07\x1b[2J\r\n"),
        SV("\x00\x00garbage without tag\r\n"),
    };
    struct mt_session *s = run(chunks, COUNT(chunks), MT_END_CLOSE);
    assert_int_equal(s->status, MT_STATUS_AUTH_FAILED);
    assert_null(memchr(s->transcript, 0x1b, s->transcript_len));
    assert_null(memchr(s->transcript, 0x00, s->transcript_len));
    assert_null(strchr(s->banner, 0x1b));
    assert_null(strchr(s->user, 0x1b));
    assert_string_equal(s->user, "ev\\x1b]0;il");
    assert_true(s->flags & MT_FLAG_PROTOCOL_ERROR);
    session_free(s);
}

static void test_pipelining_and_list_cap(void **unused)
{
    (void)unused;
    char commands[2048], replies[4096], list[4096];
    size_t c = 0, r = 0, l = 0;
    for (int i = 0; i < 40; i++) {
        c += (size_t)snprintf(commands + c, sizeof commands - c, "p%d NOOP\r\n", i);
        r += (size_t)snprintf(replies + r, sizeof replies - r, "p%d OK\r\n", i);
    }
    for (int i = 0; i < 50; i++)
        l += (size_t)snprintf(list + l, sizeof list - l, "* LIST () \"/\" folder%d\r\n", i);
    l += (size_t)snprintf(list + l, sizeof list - l, "* LIST () \"/\" {6}\r\nInBox!\r\nq1 OK\r\n");
    const struct dialogue_step chunks[] = {
        SV("* PREAUTH ready\r\n"),
        { MT_CLIENT, commands, c },
        { MT_SERVER, replies, r },
        CL("q1 LIST \"\" *\r\n"),
        { MT_SERVER, list, l },
        CL("q2 LOGOUT\r\n"),
    };
    struct mt_session *s = run_stride(chunks, COUNT(chunks), MT_END_EOF, 7);
    /* 40 outstanding tags, 32 remembered: the 8 oldest completions match nothing */
    assert_true(s->flags & MT_FLAG_PROTOCOL_ERROR);
    assert_transcript_has(s, "S p39 OK\n");
    assert_transcript_has(s, "folder19\n");
    assert_false(transcript_has(s, "folder20"));
    assert_transcript_has(s, "[31 more untagged responses not shown]\n");
    assert_transcript_has(s, "S q1 OK\n");
    session_free(s);
}

/* Header sections in every spelling are not retrievals; a part is. */
static void test_fetch_header_sections(void **unused)
{
    (void)unused;
    const struct dialogue_step chunks[] = {
        SV("* PREAUTH ready\r\n"),
        CL("a1 SELECT INBOX\r\n"),
        SV("* 4 EXISTS\r\na1 OK done\r\n"),
        CL("a2 FETCH 1:4 (RFC822.HEADER)\r\n"),
        SV("* 1 FETCH (RFC822.HEADER {4}\r\nab\r\n)\r\n"
           "* 2 FETCH (UID 8 BODY[HEADER.FIELDS (SUBJECT FROM)]<0> {4}\r\nab\r\n)\r\n"
           "* 3 FETCH (BODY[1.MIME] {4}\r\nab\r\n FLAGS (\\Seen))\r\n"
           "* 4 FETCH (body[header.fields.not (X-A)] {4}\r\nab\r\n)\r\na2 OK\r\n"),
        CL("a3 FETCH 2 (BODY[1] BODY[1.MIME])\r\n"),
        SV("* 2 FETCH (BODY[1] {5}\r\nhello BODY[1.MIME] {4}\r\nab\r\n)\r\na3 OK\r\n"),
        CL("a4 LOGOUT\r\n"),
        SV("* BYE\r\na4 OK\r\n"),
    };
    struct mt_session *s = run(chunks, COUNT(chunks), MT_END_CLOSE);
    assert_int_equal(s->stats.fetch_count, 1);
    assert_int_equal(s->stats.fetch_bytes, 5);
    assert_int_equal(s->message_count, 1);   /* the part counted is listed, once */
    assert_string_equal(mt_str(s->messages[0].reply), "retrieved by FETCH 2 (only BODY[1])");
    assert_int_equal(s->messages[0].size, 5);
    session_free(s);
}

/* Ranges (RFC 9051 6.4.5): one from the start asked longer than the message brings the
 * whole message, not a piece; one from further on is a piece, and listed as every counted
 * retrieval is (walkthrough 10: "(partial), 145 bytes" for a whole message; a counted
 * "<5.20>" in no Message line). */
static void test_fetch_ranges(void **unused)
{
    (void)unused;
    const struct dialogue_step chunks[] = {
        SV("* PREAUTH ready\r\n"),
        CL("a1 SELECT INBOX\r\n"),
        SV("* 1 EXISTS\r\na1 OK done\r\n"),
        CL("a2 FETCH 1 BODY.PEEK[]<0.100>\r\n"),
        SV("* 1 FETCH (BODY[]<0> {100}\r\nSubject: a\r\n"),
        SV("0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567)\r\n"
           "a2 OK\r\n"),
        CL("a3 FETCH 1 BINARY.PEEK[]<0.200>\r\n"),
        SV("* 1 FETCH (BINARY[]<0> {14}\r\nSubject: b\r\n\r\n)\r\na3 OK\r\n"),
        CL("a4 UID FETCH 1 BODY.PEEK[]<5.20>\r\n"),
        SV("* 1 FETCH (UID 1 BODY[]<5> {20}\r\nct: b\r\n\r\n0123456789)\r\na4 OK\r\n"),
        CL("a5 FETCH 1 BODY.PEEK[]<0.14>\r\n"),
        SV("* 1 FETCH (BODY[]<0> {14}\r\nSubject: b\r\n\r\n)\r\na5 OK\r\n"),
        /* the same, with the message's size beside it: all of it (walkthrough 11) */
        CL("a6 FETCH 1 (RFC822.SIZE BODY.PEEK[]<0.14>)\r\n"),
        SV("* 1 FETCH (RFC822.SIZE 14 BODY[]<0> {14}\r\nSubject: b\r\n\r\n)\r\na6 OK\r\n"),
        CL("a7 LOGOUT\r\n"),
        SV("* BYE\r\na7 OK\r\n"),
    };
    struct mt_session *s = run(chunks, COUNT(chunks), MT_END_CLOSE);
    assert_int_equal(s->stats.fetch_count, 5);
    assert_int_equal(s->stats.fetch_bytes, 100 + 14 + 20 + 14 + 14);
    assert_int_equal(s->message_count, 5);
    assert_string_equal(mt_str(s->messages[4].reply), "retrieved by FETCH 1");
    assert_string_equal(mt_str(s->messages[0].reply), "retrieved by FETCH 1 (partial)");
    assert_string_equal(mt_str(s->messages[1].reply), "retrieved by FETCH 1");
    assert_string_equal(mt_str(s->messages[1].subject), "b");
    assert_string_equal(mt_str(s->messages[2].reply), "retrieved by FETCH 1 (UID 1) (partial)");
    assert_string_equal(mt_str(s->messages[2].subject), "");   /* not read from byte 5 */
    assert_int_equal(s->messages[2].size, 20);
    /* exactly as long as asked: it may have been cut there */
    assert_string_equal(mt_str(s->messages[3].reply), "retrieved by FETCH 1 (partial)");
    assert_int_equal(s->flags, 0);
    session_free(s);
}

static void test_store_silent_and_compress(void **unused)
{
    (void)unused;
    const struct dialogue_step chunks[] = {
        SV("* PREAUTH ready\r\n"),
        CL("a1 SELECT {5+}\r\nINBOX\r\n"),
        SV("* 9 EXISTS\r\na1 OK done\r\n"),
        CL("a2 UID STORE 1:3,5 +FLAGS.SILENT (\\Seen \\Deleted)\r\n"),
        SV("a2 OK\r\n"),
        CL("a3 STORE 7:* +FLAGS.SILENT (\\Deleted)\r\n"),
        SV("a3 OK\r\n"),
        CL("a4 STORE 1 -FLAGS (\\Deleted)\r\n"),
        SV("* 1 FETCH (FLAGS ())\r\na4 OK\r\n"),
        CL("a5 FETCH 1 (BODY[HEADER] BODY[TEXT])\r\n"),
        SV("* 1 FETCH (BODY[HEADER] {4}\r\nab\r\n BODY[TEXT] ~{3}\r\nxyz)\r\na5 OK\r\n"),
        CL("a6 COMPRESS DEFLATE\r\n"),
        SV("a6 OK DEFLATE active\r\n\x78\x9c garbage\r\n"),
        CL("\x78\x9c more garbage a7 LOGIN x y\r\n"),
    };
    struct mt_session *s = run(chunks, COUNT(chunks), MT_END_EOF);
    assert_string_equal(s->stats.mailboxes, "INBOX");
    assert_int_equal(s->stats.deleted_flagged, 4 + 3);
    assert_int_equal(s->stats.fetch_count, 1);
    assert_int_equal(s->stats.fetch_bytes, 3);   /* BODY[TEXT]; BODY[HEADER] is no retrieval */
    assert_int_equal(s->auth_attempts, 0);
    assert_int_equal(s->flags, 0);
    assert_transcript_has(s, "[COMPRESS: the rest is compressed, not decoded]");
    assert_false(transcript_has(s, "garbage"));
    session_free(s);
}

static void test_password_never_appears(void **unused)
{
    (void)unused;
    const struct dialogue_step chunks[] = {
        SV("* OK ready\r\n"),
        CL("LOGIN tagless Hunter2a\r\n"),
        SV("* BAD no tag\r\n"),
        CL("a1 LOGIN \"unterminated Hunter2b\r\n"),
        SV("a1 BAD parse\r\n"),
        CL("a2 LOGIN alice {8+}\r\nHunter2c\r\n"),
        SV("a2 NO nope\r\n"),
        CL("a3 LOGIN alice \"Hunter2d"),
    };
    struct mt_session *s = run(chunks, COUNT(chunks), MT_END_EOF);
    assert_int_equal(s->status, MT_STATUS_AUTH_FAILED);
    assert_no_secret(s, "Hunter2");
    assert_int_equal(s->auth_attempts, 4);
    assert_transcript_has(s, "C LOGIN tagless *****\n");
    assert_transcript_has(s, "C a1 LOGIN *****\n");
    session_free(s);
}

/* xorshift64*: the same garbage every run */
static uint64_t next_random(uint64_t *state)
{
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return *state * 2685821657736338717ULL;
}

static void test_random_garbage(void **unused)
{
    (void)unused;
    static const char *const atoms[] = {
        "* ", "+ ", "a1 ", "OK ", "NO ", "BAD ", "{5}", "{0}", "{3+}", "~{2}", "\r\n", "\n",
        "LOGIN ", "AUTHENTICATE PLAIN ", "STARTTLS", "IDLE", "DONE", "FETCH ", "BYE ",
        "PREAUTH", "\"q\\\"", "{18446744073709551615}", "\x16\x03", "\x00", "\x1b", "*",
        "APPEND INBOX ", "COMPRESS DEFLATE", "UID STORE 1:* +FLAGS (\\Deleted)", "1 EXPUNGE",
    };
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    for (int round = 0; round < 300; round++) {
        char bufs[12][160];
        struct dialogue_step chunks[12];
        size_t n = 1 + next_random(&seed) % 12;
        for (size_t i = 0; i < n; i++) {
            size_t len = 0;
            while (len < 120) {
                uint64_t r = next_random(&seed);
                if (r % 3 == 0) {
                    bufs[i][len++] = (char)(r >> 8);
                } else {
                    const char *a = atoms[(r >> 8) % COUNT(atoms)];
                    size_t al = (r >> 8) % COUNT(atoms) == 23 ? 1 : strlen(a);
                    memcpy(bufs[i] + len, a, al);
                    len += al;
                }
            }
            chunks[i] = (struct dialogue_step){ (next_random(&seed) & 1) ? MT_SERVER : MT_CLIENT, bufs[i], len };
        }
        enum mt_end end = (enum mt_end)(next_random(&seed) % 5);
        struct mt_session *s = run_stride(chunks, n, end, 1 + round % 13);
        assert_true(s->transcript_len <= MT_TRANSCRIPT_MAX_BYTES);
        assert_true(s->status != MT_STATUS_UNKNOWN);
        session_free(s);
    }
}

/* ---- fixtures from public captures -------------------------------------------------------- */

struct fixture {
    struct dialogue_step chunks[256];
    size_t n;
    char *bytes;
};

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Reads a `tshark -z follow,tcp,raw` dump: hex lines, TAB-indented ones from node 1 (the
 * server in every fixture here), everything else skipped. */
static void fixture_load(struct fixture *fx, const char *name)
{
    char path[512], line[1 << 16];
    const char *file = __FILE__, *slash = strrchr(file, '/');
    snprintf(path, sizeof path, "%.*sdata/imap/%s", slash ? (int)(slash - file + 1) : 0, file, name);
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("cannot open fixture %s", path);
    fx->n = 0;
    fx->bytes = malloc(1 << 20);
    assert_non_null(fx->bytes);
    size_t used = 0;
    while (fgets(line, sizeof line, f)) {
        const char *p = line;
        enum mt_side side = MT_CLIENT;
        if (*p == '\t') {
            side = MT_SERVER;
            p++;
        }
        size_t len = strcspn(p, "\r\n"), k;
        for (k = 0; k < len && hexval(p[k]) >= 0; k++)
            ;
        if (len == 0 || k != len || len % 2 != 0)
            continue;
        assert_true(fx->n < COUNT(fx->chunks) && used + len / 2 <= (1 << 20));
        for (k = 0; k < len; k += 2)
            fx->bytes[used + k / 2] = (char)(hexval(p[k]) << 4 | hexval(p[k + 1]));
        fx->chunks[fx->n++] = (struct dialogue_step){ side, fx->bytes + used, len / 2 };
        used += len / 2;
    }
    fclose(f);
    assert_true(fx->n > 0);
}

static size_t count_in_transcript(const struct mt_session *s, const char *text)
{
    size_t count = 0;
    for (const char *p = s->transcript, *end = p + s->transcript_len;
         p < end && (p = memmem(p, (size_t)(end - p), text, strlen(text))) != NULL; p++)
        count++;
    return count;
}

static void test_fixture_arkime_login_fetch(void **unused)
{
    (void)unused;
    static struct fixture fx;
    fixture_load(&fx, "arkime_imap.follow");
    struct mt_session *s = run_stride(fx.chunks, fx.n, MT_END_CLOSE, 211);
    /* MANIFEST: user neulingern, LOGIN OK, 3 FETCH commands */
    assert_int_equal(s->status, MT_STATUS_LOGIN_OK);
    assert_string_equal(s->status_line, "a0001 OK LOGIN completed.");
    assert_string_equal(s->user, "neulingern");
    assert_int_equal(s->auth_attempts, 1);
    assert_int_equal(s->auth_failures, 0);
    assert_int_equal(count_in_transcript(s, " C a0"), 26);
    assert_int_equal(count_in_transcript(s, " FETCH 1"), 3);   /* a0004, a0007, a0023 */
    /* 13 + 1 + 12 FETCH responses carried a literal; 25 of them the header fields a
     * client lists a mailbox with (BODY.PEEK[HEADER.FIELDS (...)]): one retrieval */
    assert_int_equal(s->stats.fetch_count, 1);
    assert_int_equal(s->stats.fetch_bytes, 3339);   /* a0007's RFC822 */
    assert_int_equal(s->stats.deleted_flagged, 1);
    assert_int_equal(s->stats.expunge_count, 1);
    assert_string_equal(s->stats.mailboxes, "INBOX");
    assert_int_equal(s->flags, 0);
    assert_transcript_has(s, "C a0001 LOGIN \"neulingern\" *****\n");
    assert_transcript_has(s, "[INBOX selected: 13 messages]");
    assert_transcript_has(s, "[INBOX selected: 12 messages]");
    assert_no_secret(s, "XXXXXX");
    session_free(s);
    free(fx.bytes);
}

static void test_fixture_cram_md5(void **unused)
{
    (void)unused;
    static struct fixture fx;
    fixture_load(&fx, "redrabbit_imap-authenticate-cram-md5.follow");
    struct mt_session *s = run(fx.chunks, fx.n, MT_END_CLOSE);
    /* MANIFEST: user hemmingway, AUTHENTICATE CRAM-MD5 OK */
    assert_int_equal(s->status, MT_STATUS_LOGIN_OK);
    assert_string_equal(s->status_line, "A00001 OK Logged in.");
    assert_string_equal(s->user, "hemmingway");
    assert_int_equal(s->auth_attempts, 1);
    assert_string_equal(s->banner, "* OK dovecot ready.");
    assert_string_equal(s->stats.mailboxes, "INBOX");
    assert_int_equal(s->flags, 0);
    assert_transcript_has(s, "C A00001 AUTHENTICATE CRAM-MD5\n");
    assert_transcript_has(s, "C *****\n");
    assert_no_secret(s, "29f20b669347aa0817490");
    assert_no_secret(s, "aGVtbWluZ3dheSAyOWYy");
    session_free(s);
    free(fx.bytes);
}

static void test_fixture_starttls(void **unused)
{
    (void)unused;
    static struct fixture fx;
    fixture_load(&fx, "zeek_imap-starttls.follow");
    struct mt_session *s = run(fx.chunks, fx.n, MT_END_CLOSE);
    /* MANIFEST: CAPABILITY, STARTTLS OK (tag "."), then TLS */
    assert_int_equal(s->status, MT_STATUS_ENCRYPTED);
    assert_string_equal(s->status_line, ". OK Begin TLS negotiation now");
    assert_true(s->tls);
    assert_int_equal(s->flags, 0);
    assert_int_equal(s->auth_attempts, 0);
    assert_transcript_has(s, "C . STARTTLS\n");
    assert_transcript_has(s, "[TLS from here on: the handshake and what follows are not shown]");
    session_free(s);
    free(fx.bytes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_login_select_fetch_store_expunge_logout),
        cmocka_unit_test(test_fetch_retrievals),
        cmocka_unit_test(test_silence_at_the_end),
        cmocka_unit_test(test_login_bad_syntax),
        cmocka_unit_test(test_fetch_cut_in_headers),
        cmocka_unit_test(test_login_failure),
        cmocka_unit_test(test_fail_then_succeed),
        cmocka_unit_test(test_login_literals),
        cmocka_unit_test(test_authenticate_plain_sasl_ir),
        cmocka_unit_test(test_authenticate_continuations),
        cmocka_unit_test(test_append),
        cmocka_unit_test(test_server_trouble),
        cmocka_unit_test(test_credential_after_refusal),
        cmocka_unit_test(test_pipelined_past_tags),
        cmocka_unit_test(test_idle_done),
        cmocka_unit_test(test_unsolicited_bye),
        cmocka_unit_test(test_credentials_never_sent),
        cmocka_unit_test(test_starttls_then_tls),
        cmocka_unit_test(test_starttls_then_plaintext),
        cmocka_unit_test(test_starttls_refused),
        cmocka_unit_test(test_login_disabled),
        cmocka_unit_test(test_greetings),
        cmocka_unit_test(test_end_statuses),
        cmocka_unit_test(test_literal_4gb_then_eof),
        cmocka_unit_test(test_overlong_lines),
        cmocka_unit_test(test_control_bytes),
        cmocka_unit_test(test_pipelining_and_list_cap),
        cmocka_unit_test(test_fetch_header_sections),
        cmocka_unit_test(test_fetch_ranges),
        cmocka_unit_test(test_store_silent_and_compress),
        cmocka_unit_test(test_password_never_appears),
        cmocka_unit_test(test_random_garbage),
        cmocka_unit_test(test_fixture_arkime_login_fetch),
        cmocka_unit_test(test_fixture_cram_md5),
        cmocka_unit_test(test_fixture_starttls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
