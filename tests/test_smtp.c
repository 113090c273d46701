/* test_smtp.c — SMTP decoder tests: scripted two-sided dialogues, each fed whole, cut in
 * two at every byte of every chunk, and one byte at a time; the decoded session must be
 * identical every time. The dialogues are written after what Postfix, Exchange and Gmail
 * send; the hostile ones are generated. */
#include "protocols/decoder.h"
#include "protocols/session.h"
#include "protocols/smtp.h"
#include "protocols/tlsfollow.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* ---- Feeding dialogues ------------------------------------------------------------- */

struct chunk {
    enum mt_side side;
    const char *bytes;
    size_t len;
};

#define C(s) { MT_CLIENT, s, sizeof(s) - 1 }
#define S(s) { MT_SERVER, s, sizeof(s) - 1 }

struct dialogue {
    const char *name;
    const struct chunk *chunks;
    size_t count;
    enum mt_end end;
};

#define DIALOGUE(var, endhow) { #var, var, sizeof(var) / sizeof(var)[0], endhow }

#define TS0 1700000000000000LL
#define TS(i) (TS0 + (int64_t)(i) * 1000)

/* Feeds d; chunk `cut` (SIZE_MAX: none) is given in two pieces split at `at`; bytewise
 * feeds every byte alone. Every piece keeps its chunk's time. */
static struct mt_session *decode(const struct dialogue *d, size_t cut, size_t at, bool bytewise)
{
    struct mt_session *s = session_new(MT_PROTO_SMTP);
    assert_non_null(s);
    void *st = smtp_decoder.open(s);
    assert_non_null(st);
    for (size_t i = 0; i < d->count; i++) {
        const struct chunk *c = &d->chunks[i];
        if (bytewise) {
            for (size_t k = 0; k < c->len; k++)
                smtp_decoder.data(st, s, c->side, c->bytes + k, 1, TS(i));
        } else if (i == cut) {
            smtp_decoder.data(st, s, c->side, c->bytes, at, TS(i));
            smtp_decoder.data(st, s, c->side, c->bytes + at, c->len - at, TS(i));
        } else {
            smtp_decoder.data(st, s, c->side, c->bytes, c->len, TS(i));
        }
    }
    s->end = d->end;
    s->end_us = TS(d->count);
    smtp_decoder.close(st, s);
    smtp_decoder.free(st);
    return s;
}

static struct mt_session *decode_whole(const struct dialogue *d)
{
    return decode(d, SIZE_MAX, 0, false);
}

/* Everything the decoder sets, as text, to compare runs and to search for secrets. */
static char *fingerprint(const struct mt_session *s)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    fprintf(f, "status=%s line=[%s] at=%d banner=[%s] server=[%s] helo=[%s] user=[%s]\n",
            status_name(s->status), s->status_line, s->status_transcript_line, s->banner,
            s->server_name, s->helo, s->user);
    fprintf(f, "tls=%d auth=%d/%d flags=%#x dropped=%llu/%llu/%llu\n", s->tls, s->auth_attempts,
            s->auth_failures, s->flags, (unsigned long long)s->recipients_dropped,
            (unsigned long long)s->messages_dropped, (unsigned long long)s->transcript_dropped);
    for (size_t i = 0; i < s->recipient_count; i++) {
        const struct mt_recipient *r = &s->recipients[i];
        fprintf(f, "rcpt [%s] %d [%s] ok=%d msg=%d\n", mt_str(r->addr), r->code, mt_str(r->reply),
                r->accepted, r->message);
    }
    for (size_t i = 0; i < s->message_count; i++) {
        const struct mt_message *m = &s->messages[i];
        fprintf(f, "msg [%s] [%s] [%s] [%s] [%s] [%s] size=%llu %d [%s] %s %lld\n",
                mt_str(m->mail_from), mt_str(m->header_from), mt_str(m->header_to),
                mt_str(m->subject), mt_str(m->date), mt_str(m->message_id),
                (unsigned long long)m->size, m->reply_code, mt_str(m->reply),
                status_name(m->status), (long long)m->start_us);
    }
    if (s->transcript_len)
        fwrite(s->transcript, 1, s->transcript_len, f);
    fclose(f);
    return text;
}

static void expect_same(const struct dialogue *d, const char *want, struct mt_session *s,
                        const char *how, size_t cut, size_t at)
{
    char *got = fingerprint(s);
    if (strcmp(want, got) != 0) {
        print_error("%s: %s (chunk %zu at %zu) differs from whole feed\n--- whole\n%s\n--- split\n%s\n",
                    d->name, how, cut, at, want, got);
        free(got);
        session_free(s);
        fail();
    }
    free(got);
    session_free(s);
}

/* Decodes d whole, then split everywhere, and fails unless every run agrees. Returns the
 * whole-feed session. sparse (megabyte chunks): cuts at the ends, the middle, and around
 * LR_LINE_MAX, where the line reader switches from passing a line to buffering it. */
static struct mt_session *decode_checked(const struct dialogue *d, bool sparse)
{
    struct mt_session *whole = decode_whole(d);
    char *want = fingerprint(whole);
    static const size_t sparse_cuts[] = { 1, 2, 4095, 8190, 8191, 8192, 8193, 8194, 8197 };
    for (size_t i = 0; i < d->count; i++) {
        size_t len = d->chunks[i].len;
        if (!sparse) {
            for (size_t at = 1; at < len; at++)
                expect_same(d, want, decode(d, i, at, false), "cut", i, at);
            continue;
        }
        for (size_t k = 0; k < sizeof sparse_cuts / sizeof sparse_cuts[0]; k++)
            if (sparse_cuts[k] < len)
                expect_same(d, want, decode(d, i, sparse_cuts[k], false), "cut", i, sparse_cuts[k]);
        if (len > 2) {
            expect_same(d, want, decode(d, i, len / 2, false), "cut", i, len / 2);
            expect_same(d, want, decode(d, i, len - 1, false), "cut", i, len - 1);
        }
    }
    if (!sparse)
        expect_same(d, want, decode(d, SIZE_MAX, 0, true), "byte by byte", 0, 0);
    free(want);
    return whole;
}

/* ---- Assertions -------------------------------------------------------------------- */

static void assert_status(const struct mt_session *s, enum mt_status want)
{
    if (s->status != want)
        print_error("status %s [%s], want %s\n", status_name(s->status), s->status_line,
                    status_name(want));
    assert_int_equal(s->status, want);
}

static bool transcript_has(const struct mt_session *s, const char *text)
{
    return s->transcript && memmem(s->transcript, s->transcript_len, text, strlen(text));
}

/* The secret occurs in no field and no transcript line. */
static void assert_nowhere(const struct mt_session *s, const char *secret)
{
    char *all = fingerprint(s);
    if (strstr(all, secret))
        print_error("secret [%s] leaked:\n%s\n", secret, all);
    assert_null(strstr(all, secret));
    free(all);
}

static const struct mt_recipient *rcpt(const struct mt_session *s, size_t i)
{
    assert_true(i < s->recipient_count);
    return &s->recipients[i];
}

static const struct mt_message *message(const struct mt_session *s, size_t i)
{
    assert_true(i < s->message_count);
    return &s->messages[i];
}

/* ---- Dialogues --------------------------------------------------------------------- */

#define GREETING S("220 mx.example.com ESMTP Postfix (Debian/GNU)\r\n")
#define EHLO C("EHLO client.example.org\r\n"), \
    S("250-mx.example.com\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-STARTTLS\r\n" \
      "250-AUTH PLAIN LOGIN CRAM-MD5 XOAUTH2\r\n250-ENHANCEDSTATUSCODES\r\n250-CHUNKING\r\n" \
      "250 SMTPUTF8\r\n")
#define MAIL_OK C("MAIL FROM:<alice@example.org> SIZE=512 BODY=8BITMIME\r\n"), S("250 2.1.0 Ok\r\n")
#define RCPT_OK C("RCPT TO:<bob@example.com>\r\n"), S("250 2.1.5 Ok\r\n")
#define DATA_354 C("DATA\r\n"), S("354 End data with <CR><LF>.<CR><LF>\r\n")
#define QUEUED S("250 2.0.0 Ok: queued as 4TZ1fK3s9Qz9sWK\r\n")
#define QUIT C("QUIT\r\n"), S("221 2.0.0 Bye\r\n")

/* Folded Subject, dot-stuffing, lines holding a dot, and commands inside the body. */
#define MESSAGE_TEXT \
    "Received: from client.example.org\r\n" \
    "From: Alice <alice@example.org>\r\n" \
    "To: Bob <bob@example.com>\r\n" \
    "Subject: Quarterly\r\n" \
    "\treport\r\n" \
    "Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n" \
    "Message-ID: <20240101100000.1@example.org>\r\n" \
    "\r\n" \
    "Hi Bob,\r\n" \
    "..this line starts with a dot\r\n" \
    "..\r\n" \
    ". \r\n" \
    "a line ending in a dot.\r\n" \
    "MAIL FROM:<mallory@example.net>\r\n" \
    "RCPT TO:<victim@example.net>\r\n" \
    "QUIT\r\n"
#define MESSAGE_SIZE (sizeof(MESSAGE_TEXT) - 1)

static const struct chunk delivered[] = {
    GREETING, EHLO, MAIL_OK, RCPT_OK, DATA_354, C(MESSAGE_TEXT ".\r\n"), QUEUED, QUIT,
};

static const struct chunk rcpt_unknown[] = {
    GREETING, EHLO, MAIL_OK,
    C("RCPT TO:<nobody@example.com>\r\n"),
    S("550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown in local "
      "recipient table\r\n"),
    QUIT,
};

static const struct chunk partial[] = {
    GREETING, EHLO, MAIL_OK, RCPT_OK,
    C("RCPT TO:<nobody@example.com>\r\n"),
    S("550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown\r\n"),
    DATA_354, C("Subject: two\r\n\r\nbody\r\n.\r\n"), QUEUED, QUIT,
};

static const struct chunk relay[] = {
    GREETING, C("HELO spammer\r\n"), S("250 mx.example.com\r\n"),
    C("MAIL FROM:<x@spam.example>\r\n"), S("250 2.1.0 Ok\r\n"),
    C("RCPT TO:<victim@elsewhere.example>\r\n"),
    S("554 5.7.1 <victim@elsewhere.example>: Relay access denied\r\n"),
    C("RCPT TO:<victim2@elsewhere.example>\r\n"),
    S("550 relaying denied\r\n"),
    QUIT,
};

/* Postfix's defer_unauth_destination: a 4xx that no retry will get past. */
static const struct chunk relay_deferred[] = {
    GREETING, C("HELO laptop\r\n"), S("250 mx.example.com\r\n"),
    C("MAIL FROM:<a@example.com>\r\n"), S("250 2.1.0 Ok\r\n"),
    C("RCPT TO:<u@gmail.example>\r\n"),
    S("454 4.7.1 <u@gmail.example>: Relay access denied\r\n"),
    QUIT,
};

/* DATA refused because no recipient is left valid: no message data was sent. */
static const struct chunk data_no_recipients[] = {
    GREETING, EHLO,
    C("MAIL FROM:<a@example.com>\r\n"), S("250 2.1.0 Ok\r\n"),
    C("RCPT TO:<u@example.com>\r\n"), S("250 2.1.5 Ok\r\n"),
    C("DATA\r\n"), S("554 5.5.1 Error: no valid recipients\r\n"),
    QUIT,
};

static const struct chunk sender_rejected[] = {
    GREETING, EHLO,
    C("MAIL FROM:<ceo@example.com>\r\n"),
    S("553 5.7.1 <ceo@example.com>: Sender address rejected: not logged in\r\n"),
    QUIT,
};

static const struct chunk too_big[] = {
    GREETING, EHLO,
    C("MAIL FROM:<alice@example.org> SIZE=99999999\r\n"),
    S("552 5.3.4 Message size exceeds fixed limit\r\n"),
    QUIT,
};

static const struct chunk too_big_after_data[] = {
    GREETING, EHLO, MAIL_OK, RCPT_OK, DATA_354,
    C("Subject: big\r\n\r\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n.\r\n"),
    S("552-5.2.3 Your message exceeded Google's message size limits. Please visit\r\n"
      "552 5.2.3  https://support.google.com/mail/?p=MaxSizeError - gsmtp\r\n"),
    QUIT,
};

static const struct chunk content_rejected[] = {
    GREETING, EHLO, MAIL_OK, RCPT_OK, DATA_354,
    C("Subject: cheap pills\r\n\r\nbuy now\r\n.\r\n"),
    S("554 5.7.1 Rejected by content filter: spam score 21.3\r\n"),
    QUIT,
};

static const struct chunk greylisted[] = {
    GREETING, EHLO, MAIL_OK,
    C("RCPT TO:<bob@example.com>\r\n"),
    S("451 4.7.1 <bob@example.com>: Recipient address rejected: Greylisted, see "
      "http://postgrey.schweikert.ch/help/example.com.html\r\n"),
    QUIT,
};

/* Every command in one segment, every reply in one segment; QUIT rides with the dot. */
static const struct chunk pipelined[] = {
    GREETING, EHLO,
    C("MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.com>\r\n"
      "RCPT TO:<nobody@example.com>\r\nRCPT TO:<carol@example.com>\r\nDATA\r\n"),
    S("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 <nobody@example.com>: User unknown\r\n"
      "250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"),
    C("Subject: pipelined\r\n\r\nhello\r\n.\r\nQUIT\r\n"),
    S("250 2.0.0 Ok: queued as 4TZ1fK3s9Qz9sWK\r\n221 2.0.0 Bye\r\n"),
};

/* Three transactions, the second refused: the session takes the worst one. */
static const struct chunk several[] = {
    GREETING, EHLO, MAIL_OK, RCPT_OK, DATA_354, C("Subject: one\r\n\r\n1\r\n.\r\n"), QUEUED,
    C("MAIL FROM:<alice@example.org>\r\n"), S("250 2.1.0 Ok\r\n"),
    C("RCPT TO:<gone@example.com>\r\n"),
    S("550 5.1.1 <gone@example.com>: Recipient address rejected: User unknown\r\n"),
    C("RSET\r\n"), S("250 2.0.0 Ok\r\n"),
    MAIL_OK, RCPT_OK, DATA_354, C("Subject: three\r\n\r\n3\r\n.\r\n"), QUEUED, QUIT,
};

static const struct chunk starttls_encrypted[] = {
    S("220 mx.google.com ESMTP a1-20020a170902 - gsmtp\r\n"),
    C("EHLO [192.168.4.149]\r\n"),
    S("250-mx.google.com at your service, [203.0.113.9]\r\n250-SIZE 157286400\r\n"
      "250-8BITMIME\r\n250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250-PIPELINING\r\n"
      "250 SMTPUTF8\r\n"),
    C("STARTTLS\r\n"), S("220 2.0.0 Ready to start TLS\r\n"),
    C("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\x8a\x0aMAIL FROM:<no@x>\r\n\x00\x00"),
    S("\x16\x03\x03\x00\x7a\x02\x00\x00\x76\x03\x03\x0a\x0d\x0a" "250 fake\r\n"),
    C("\x17\x03\x03\x00\x20\x99\x98\x0a\x97"),
};

static const struct chunk starttls_decrypted[] = {
    GREETING, EHLO, C("STARTTLS\r\n"), S("220 2.0.0 Ready to start TLS\r\n"),
    EHLO, MAIL_OK, RCPT_OK, C("BDAT 21 LAST\r\nSubject: x\r\n\r\nhello\r\n"),
    S("250 2.6.0 <1@example.org> [InternalId=1] Queued mail for delivery\r\n"), QUIT,
};

/* Two transactions, the second pipelined right after the first one's dot. */
static const struct chunk pipelined_after_dot[] = {
    GREETING, EHLO, MAIL_OK, RCPT_OK, DATA_354,
    C("Subject: first\r\n\r\n1\r\n.\r\nMAIL FROM:<carol@example.org>\r\n"
      "RCPT TO:<dave@example.com>\r\nDATA\r\n"),
    S("250 2.0.0 Ok: queued as AAA\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n"),
    C("Subject: second\r\n\r\n2\r\n.\r\nQUIT\r\n"),
    S("451 4.3.0 Error: queue file write error\r\n221 2.0.0 Bye\r\n"),
};

/* Commands without a transaction, an unknown one, and replies that do not parse. */
static const struct chunk misc_commands[] = {
    GREETING, C("HELO client\r\n"), S("250 mx.example.com\r\n"),
    C("NOOP\r\n"), S("250 2.0.0 Ok\r\n"),
    C("VRFY bob\r\n"), S("252 2.0.0 bob\r\n"),
    C("EXPN staff\r\n"), S("502 5.5.2 Error: command not recognized\r\n"),
    C("HELP\r\n"), S("214 2.0.0 see https://www.postfix.org\r\n"),
    C("XFOO bar baz\r\n"), S("502 5.5.2 Error: command not recognized\r\n"),
    C("RCPT TO:<nobody@example.com>\r\n"), S("503 5.5.1 Error: need MAIL command\r\n"),
    S("hello there\r\n25\r\n2500 x\r\n"),
    QUIT,
};

/* The server refuses the hello with an alert (protocol_version): a TLS record, not text. */
static const struct chunk starttls_alert[] = {
    GREETING, EHLO, C("STARTTLS\r\n"), S("220 2.0.0 Ready to start TLS\r\n"),
    C("\x16\x03\x01\x00\xc8\x01\x00\x00\xc4\x03\x01\x55\x0a\x66"),
    S("\x15\x03\x01\x00\x02\x02\x46"),
};

/* The capture ends right after the 220: no handshake seen, nothing encrypted seen. */
static const struct chunk starttls_cut[] = {
    GREETING, EHLO, C("STARTTLS\r\n"), S("220 2.0.0 Ready to start TLS\r\n"),
};

/* The client goes on in plaintext after the 220; the server (OpenSSL: "wrong version
 * number") drops it: TLS failed, nothing was decrypted. */
static const struct chunk starttls_client_plain[] = {
    GREETING, EHLO, C("STARTTLS\r\n"), S("220 2.0.0 Ready to start TLS\r\n"),
    C("EHLO client.example.org\r\n"),
};

static const struct chunk implicit_tls[] = {
    C("\x16\x03\x01\x00\xc8\x01\x00\x00\xc4\x03\x03\x55\x0a\x66"),
    S("\x16\x03\x03\x00\x5d\x02\x00\x00\x59\x03\x03\xa0"),
};

/* Chunks whose bytes look like commands: they must be skipped, not parsed. */
static const struct chunk bdat[] = {
    GREETING, EHLO, MAIL_OK, RCPT_OK,
    C("BDAT 51\r\nSubject: chunked\r\n\r\nMAIL FROM:<no@x>\r\nRCPT TO:<n>\r\n"),
    S("250 2.0.0 Ok: 51 bytes\r\n"),
    C("BDAT 12 LAST\r\nQUIT\r\nQUIT\r\n"),
    S("250 2.0.0 Ok: queued as 4TZ2\r\n"),
    QUIT,
};

/* Header lines cut by the chunks' ends, once between CR and LF. */
static const struct chunk bdat_headers_cut[] = {
    GREETING, EHLO, MAIL_OK, RCPT_OK,
    C("BDAT 12\r\nSubject: cut"),
    S("250 2.0.0 Ok\r\n"),
    C("BDAT 6\r\n here\r"),
    S("250 2.0.0 Ok\r\n"),
    C("BDAT 28 LAST\r\n\nMessage-ID: <c@x>\r\n\r\nbody\r\n"),
    S("250 2.0.0 Ok: queued as 4TZ3\r\n"),
    QUIT,
};
#define BDAT_HEADERS_CUT_SIZE 46

/* The client does not wait for the 354: its early lines are message data. */
static const struct chunk early_data[] = {
    GREETING, EHLO, MAIL_OK, RCPT_OK,
    C("DATA\r\nSubject: early\r\n\r\nMAIL FROM:<no@x>\r\n"),
    S("354 go ahead\r\n"),
    C("RCPT TO:<no@x>\r\n.\r\n"), QUEUED, QUIT,
};

/* The 354 arrives while the client is mid-line: in the headers, then in the body. */
static const struct chunk early_mid_header[] = {
    GREETING, EHLO, MAIL_OK, RCPT_OK, C("DATA\r\nSubject: ea"), S("354 go ahead\r\n"),
    C("rly\r\n\r\nbody\r\n.\r\n"), QUEUED, QUIT,
};

static const struct chunk early_mid_body[] = {
    GREETING, EHLO, MAIL_OK, RCPT_OK, C("DATA\r\nSubject: early\r\n\r\nhalf a li"),
    S("354 go ahead\r\n"), C("ne\r\n.\r\n"), QUEUED, QUIT,
};

static const struct chunk greeting_rejected[] = {
    S("554 5.7.1 Service unavailable; Client host [198.51.100.7] blocked using zen.spamhaus.org\r\n"),
    C("QUIT\r\n"), S("221 2.0.0 Bye\r\n"),
};

static const struct chunk silent_server[] = {
    C("EHLO client.example.org\r\n"), C("MAIL FROM:<alice@example.org>\r\n"),
};

static const struct chunk reset_mid_data[] = {
    GREETING, EHLO, MAIL_OK, RCPT_OK, DATA_354,
    C("Subject: cut short\r\n\r\nfirst line\r\nsecond"),
};

static const struct chunk eof_awaiting_reply[] = {
    GREETING, EHLO, MAIL_OK, RCPT_OK, DATA_354, C("Subject: s\r\n\r\nbody\r\n.\r\n"),
};

/* The next command would have been in the next rotated file: nobody abandoned it. */
static const struct chunk eof_between_commands[] = {
    GREETING, EHLO, MAIL_OK, RCPT_OK, C("RCPT TO:<carol@example.com>\r\n"), S("250 2.1.5 Ok\r\n"),
};

static const struct chunk eof_mid_body[] = {
    GREETING, EHLO, MAIL_OK, RCPT_OK, DATA_354, C("Subject: s\r\n\r\nbody still coming\r\n"),
};

static const struct chunk hostile_subject[] = {
    S("220 evil\x1b[2J.example ESMTP \x00\x1b]0;pwned\x07\r\n"),
    C("EHLO x\x1b[31m\r\n"), S("250 ok\x1b[0m\r\n"),
    C("MAIL FROM:<a\x1b[1m@example.org>\r\n"), S("250 ok\r\n"),
    C("RCPT TO:<b\x00\x1b@example.com>\r\n"), S("250 ok\x1b\r\n"),
    DATA_354,
    C("Subject: Hi \x1b[31mRED\x00\x1b]0;title\x07 \xc2\x9b" "31m end\r\n\r\nbody\x1b\r\n.\r\n"),
    S("250 queued\x1b[0m\r\n"), QUIT,
};

/* RFC 2047 Subject (GB2312, base64, folded into two words), From display name (UTF-8,
 * Q), To name hiding an escape sequence: decoded, then sanitized. */
static const struct chunk encoded_words[] = {
    GREETING, EHLO, MAIL_OK, RCPT_OK, DATA_354,
    C("From: =?UTF-8?Q?Fran=C3=A7ois_M=C3=BCller?= <f@example.org>\r\n"
      "To: =?utf-8?B?G1sySmV2aWw=?= <b@example.com>\r\n"
      "Subject: =?GB2312?B?xOO6ww==?=\r\n =?GB2312?B?o6zKwL3n?= report\r\n\r\nbody\r\n.\r\n"),
    QUEUED, QUIT,
};

/* An idle timeout after the message: the 421 answers nothing and must not desync. */
static const struct chunk unsolicited_421[] = {
    GREETING, EHLO, MAIL_OK, RCPT_OK, DATA_354, C("Subject: a\r\n\r\nb\r\n.\r\n"), QUEUED,
    S("421 4.4.2 mx.example.com Error: timeout exceeded\r\n"),
};

static const struct chunk closing_421[] = {
    GREETING, EHLO, MAIL_OK,
    C("RCPT TO:<bob@example.com>\r\nRCPT TO:<carol@example.com>\r\n"),
    S("421 4.7.0 mx.example.com Error: too many errors\r\n"),
};

/* Pipelined DATA after refused recipients gets 554: the recipients decide. */
static const struct chunk data_without_recipients[] = {
    GREETING, EHLO,
    C("MAIL FROM:<alice@example.org>\r\nRCPT TO:<gone@example.com>\r\nDATA\r\n"),
    S("250 2.1.0 Ok\r\n550 5.1.1 <gone@example.com>: User unknown\r\n"
      "554 5.5.1 Error: no valid recipients\r\n"),
    QUIT,
};

/* ---- SASL dialogues. The password is S3cr3tPassw0rd! in every one. ------------------- */

#define PASSWORD "S3cr3tPassw0rd!"
#define PASSWORD_B64 "UzNjcjN0UGFzc3cwcmQh"
#define PLAIN_B64 "AGFsaWNlQGV4YW1wbGUub3JnAFMzY3IzdFBhc3N3MHJkIQ=="  /* \0alice@example.org\0pw */
#define CRAM_B64 "YWxpY2UgOTYxZmM4NmFkYTI0YWNhYjRiZTgzM2VmYmZhODhiMmY="
#define XOAUTH2_B64 "dXNlcj1hbGljZUBleGFtcGxlLm9yZwFhdXRoPUJlYXJlciB5YTI5LlMzY3IzdFBhc3N3MHJkIQEB"

static const char *const secrets[] = {
    PASSWORD, PASSWORD_B64, PLAIN_B64, CRAM_B64, XOAUTH2_B64, "961fc86ada24acab4be833efbfa88b2f",
};

#define AUTH_OK S("235 2.7.0 Authentication successful\r\n")
#define AUTH_FAIL S("535 5.7.8 Error: authentication failed: authentication failure\r\n")

static const struct chunk auth_plain_ok[] = {
    GREETING, EHLO, C("AUTH PLAIN " PLAIN_B64 "\r\n"), AUTH_OK, QUIT,
};
static const struct chunk auth_plain_fail[] = {
    GREETING, EHLO, C("AUTH PLAIN\r\n"), S("334 \r\n"), C(PLAIN_B64 "\r\n"), AUTH_FAIL, QUIT,
};
static const struct chunk auth_plain_authzid[] = {   /* "bob\0\0pw": authzid only */
    GREETING, EHLO, C("AUTH PLAIN Ym9iAABTM2NyM3RQYXNzdzByZCE=\r\n"), AUTH_OK, QUIT,
};
static const struct chunk auth_login_ok[] = {
    GREETING, EHLO, C("AUTH LOGIN\r\n"), S("334 VXNlcm5hbWU6\r\n"),
    C("YWxpY2VAZXhhbXBsZS5vcmc=\r\n"), S("334 UGFzc3dvcmQ6\r\n"), C(PASSWORD_B64 "\r\n"),
    AUTH_OK, MAIL_OK, RCPT_OK, DATA_354, C("Subject: x\r\n\r\ny\r\n.\r\n"), QUEUED, QUIT,
};
static const struct chunk auth_login_fail[] = {
    GREETING, EHLO, C("AUTH LOGIN YWxpY2VAZXhhbXBsZS5vcmc=\r\n"), S("334 UGFzc3dvcmQ6\r\n"),
    C(PASSWORD_B64 "\r\n"), AUTH_FAIL,
    C("AUTH LOGIN\r\n"), S("334 VXNlcm5hbWU6\r\n"), C("*\r\n"),
    S("501 5.7.0 Authentication aborted\r\n"), QUIT,
};
/* The client gives up at the password prompt (RFC 4954 4: "*"): nothing was judged. */
static const struct chunk auth_cancelled[] = {
    GREETING, EHLO, C("AUTH LOGIN\r\n"), S("334 VXNlcm5hbWU6\r\n"),
    C("YWxpY2VAZXhhbXBsZS5vcmc=\r\n"), S("334 UGFzc3dvcmQ6\r\n"), C("*\r\n"),
    S("501 5.7.0 Authentication aborted\r\n"), QUIT,
};
/* The server refuses the mechanism; a broken client sends its credentials anyway. */
static const struct chunk auth_refused_sent_anyway[] = {
    GREETING, EHLO, C("AUTH LOGIN\r\n"), S("504 5.5.4 Unrecognized authentication type\r\n"),
    C("YWxpY2VAZXhhbXBsZS5vcmc=\r\n"), S("502 5.5.2 Error: command not recognized\r\n"),
    C(PASSWORD_B64 "\r\n"), S("502 5.5.2 Error: command not recognized\r\n"),
    C("AUHT PLAIN " PLAIN_B64 "\r\n"), S("502 5.5.2 Error: command not recognized\r\n"),
    C("XCLIENT NAME=spike.example.org ADDR=192.0.2.1\r\n"), S("550 5.7.0 Error: insufficient authorization\r\n"),
    QUIT,
};
/* A POP3 or IMAP client on a port declared SMTP (--port smtp:110): their login commands
 * are unknown to SMTP, and their secrets are masked all the same. */
static const struct chunk foreign_logins[] = {
    GREETING, C("USER alice\r\n"), S("502 5.5.2 Error: command not recognized\r\n"),
    C("PASS " PASSWORD "\r\n"), S("502 5.5.2 Error: command not recognized\r\n"),
    C("a1 LOGIN alice \"" PASSWORD "\"\r\n"), S("502 5.5.2 Error: command not recognized\r\n"),
    QUIT,
};
static const struct chunk auth_cram_ok[] = {
    GREETING, EHLO, C("AUTH CRAM-MD5\r\n"), S("334 PDE4OTYuNjk3MTcwOTUyQG14LmV4YW1wbGUuY29tPg==\r\n"),
    C(CRAM_B64 "\r\n"), AUTH_OK, QUIT,
};
static const struct chunk auth_cram_fail[] = {
    GREETING, EHLO, C("AUTH CRAM-MD5\r\n"), S("334 PDE4OTYuNjk3MTcwOTUyQG14LmV4YW1wbGUuY29tPg==\r\n"),
    C(CRAM_B64 "\r\n"), AUTH_FAIL, QUIT,
};
static const struct chunk auth_xoauth2_ok[] = {
    GREETING, EHLO, C("AUTH XOAUTH2 " XOAUTH2_B64 "\r\n"), AUTH_OK, QUIT,
};
/* A one-round initial response with the transaction pipelined behind it (RFC 4954 4):
 * the line after the AUTH is a command, not a SASL response. */
static const struct chunk auth_plain_pipelined[] = {
    GREETING, EHLO,
    C("AUTH PLAIN " PLAIN_B64 "\r\nMAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.com>\r\n"),
    S("235 2.7.0 Authentication successful\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"),
    DATA_354, C(MESSAGE_TEXT), QUEUED, QUIT,
};
/* A LOGIN user name as initial response and the password sent before its prompt: LOGIN
 * takes two rounds, so the line is a SASL response (masked) whatever the order. */
static const struct chunk auth_login_password_ahead[] = {
    GREETING, EHLO, C("AUTH LOGIN YWxpY2VAZXhhbXBsZS5vcmc=\r\n" PASSWORD_B64 "\r\n"),
    S("334 UGFzc3dvcmQ6\r\n"), AUTH_OK, QUIT,
};
/* The user name as initial response, and a server that prompts "Username:" anyway: the
 * client (Python's smtplib) answers with the password, which is no user name. */
static const struct chunk auth_login_prompted_again[] = {
    GREETING, EHLO, C("AUTH LOGIN YWxpY2VAZXhhbXBsZS5vcmc=\r\n"), S("334 VXNlcm5hbWU6\r\n"),
    C(PASSWORD_B64 "\r\n"), AUTH_FAIL, QUIT,
};
static const struct chunk auth_xoauth2_fail[] = {   /* Gmail: an error challenge, then 535 */
    GREETING, EHLO, C("AUTH XOAUTH2 " XOAUTH2_B64 "\r\n"),
    S("334 eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIiwic2NvcGUiOiJodHRwczovL21haWwuZ29vZ2xlLmNvbS8ifQ==\r\n"),
    C("\r\n"), S("535-5.7.8 Username and Password not accepted.\r\n535 5.7.8 https://support.google.com/mail/?p=BadCredentials\r\n"),
    QUIT,
};

/* The end of the message was lost in a capture gap (libnids stalls at the hole): the
 * server's reply still decides the transaction and the session is flagged capture_gap. */
static const struct chunk gap_before_dot[] = {
    GREETING, EHLO, MAIL_OK, RCPT_OK, DATA_354, C("Subject: gap\r\n\r\nfirst part\r\n"),
    S("250 2.6.0 <gap@example.org> Queued mail for delivery\r\n221 2.0.0 Bye\r\n"),
};

/* The client resets its first transaction and then sends: the reset is its own choice,
 * not a failure of the session. */
static const struct chunk rset_then_delivered[] = {
    GREETING, EHLO, MAIL_OK, C("RSET\r\n"), S("250 2.0.0 Ok\r\n"),
    MAIL_OK, RCPT_OK, DATA_354, C(MESSAGE_TEXT ".\r\n"), QUEUED, QUIT,
};

/* A callout (sender verification) probe: MAIL, RCPT, RSET and nothing else. */
static const struct chunk callout_probe[] = {
    GREETING, EHLO, C("MAIL FROM:<>\r\n"), S("250 2.1.0 Ok\r\n"), RCPT_OK,
    C("RSET\r\n"), S("250 2.0.0 Ok\r\n"), QUIT,
};

/* Postfix checks the sender when the recipients come (smtpd_delay_reject). */
static const struct chunk rcpt_sender_refused[] = {
    GREETING, EHLO, MAIL_OK, C("RCPT TO:<bob@example.com>\r\n"),
    S("553 5.7.1 <alice@example.org>: Sender address rejected: not logged in\r\n"), QUIT,
};

/* The HELO name refused; the 503 to MAIL is its consequence, not the cause. */
static const struct chunk helo_refused[] = {
    GREETING, C("EHLO bad\r\n"), S("550 5.7.1 <bad>: Helo command rejected: Host not found\r\n"),
    C("MAIL FROM:<a@example.com>\r\n"), S("503 5.5.1 Error: send HELO/EHLO first\r\n"), QUIT,
};

static const struct chunk helo_refused_quit[] = {
    GREETING, C("HELO bad\r\n"), S("554 5.7.1 <bad>: Helo command rejected: Access denied\r\n"),
    QUIT,
};

/* The server sends the client away at EHLO (Gmail throttling a sender): temporary, not a
 * client that gave up (walkthrough 13 M1); at an idle client, the client's doing. */
static const struct chunk ehlo_closing[] = {
    GREETING, C("EHLO client.example.org\r\n"),
    S("421 4.7.0 Try again later, closing connection. (EHLO) x1si2.1 - gsmtp\r\n"),
};

static const struct chunk idle_closing[] = {
    GREETING, EHLO, S("421 4.4.2 mx.example.com Error: timeout exceeded\r\n"),
};

/* An old server that does not know EHLO: the client falls back to HELO, nothing refused. */
static const struct chunk ehlo_unknown[] = {
    GREETING, C("EHLO client.example.org\r\n"), S("502 5.5.2 Error: command not recognized\r\n"),
    C("HELO client.example.org\r\n"), S("250 mx.example.com\r\n"), QUIT,
};

/* STARTTLS refused; the client will not send without TLS. */
static const struct chunk starttls_refused[] = {
    GREETING, EHLO, C("STARTTLS\r\n"), S("454 4.7.0 TLS not available due to local problem\r\n"),
    QUIT,
};

/* STARTTLS refused, and the client goes on in plaintext. */
static const struct chunk starttls_refused_sent[] = {
    GREETING, EHLO, C("STARTTLS\r\n"), S("454 4.7.0 TLS not available due to local problem\r\n"),
    MAIL_OK, RCPT_OK, DATA_354, C(MESSAGE_TEXT ".\r\n"), QUEUED, QUIT,
};

/* ---- The table: every dialogue, the status and status line it must give ------------- */

static const struct expectation {
    struct dialogue d;
    enum mt_status status;
    const char *status_line;   /* prefix */
} table[] = {
    { DIALOGUE(delivered, MT_END_CLOSE), MT_STATUS_DELIVERED, "250 2.0.0 Ok: queued as" },
    { DIALOGUE(bdat_headers_cut, MT_END_CLOSE), MT_STATUS_DELIVERED, "250 2.0.0 Ok: queued" },
    { DIALOGUE(rset_then_delivered, MT_END_CLOSE), MT_STATUS_DELIVERED, "250 2.0.0 Ok: queued" },
    { DIALOGUE(callout_probe, MT_END_CLOSE), MT_STATUS_ABORTED, "RSET" },
    { DIALOGUE(rcpt_sender_refused, MT_END_CLOSE), MT_STATUS_SENDER_REJECTED,
      "553 5.7.1 <alice@example.org>: Sender address rejected" },
    { DIALOGUE(helo_refused, MT_END_CLOSE), MT_STATUS_SENDER_REJECTED, "550 5.7.1 <bad>: Helo" },
    { DIALOGUE(helo_refused_quit, MT_END_CLOSE), MT_STATUS_SENDER_REJECTED, "554 5.7.1 <bad>" },
    { DIALOGUE(ehlo_unknown, MT_END_CLOSE), MT_STATUS_NO_MAIL, "221 2.0.0 Bye" },
    { DIALOGUE(ehlo_closing, MT_END_CLOSE), MT_STATUS_TEMP_FAILED, "421 4.7.0 Try again later" },
    { DIALOGUE(idle_closing, MT_END_CLOSE), MT_STATUS_NO_MAIL, "421 4.4.2 mx.example.com" },
    { DIALOGUE(starttls_refused, MT_END_CLOSE), MT_STATUS_TLS_FAILED, "454 4.7.0 TLS not" },
    { DIALOGUE(starttls_refused_sent, MT_END_CLOSE), MT_STATUS_DELIVERED, "250 2.0.0 Ok: queued" },
    { DIALOGUE(rcpt_unknown, MT_END_CLOSE), MT_STATUS_RCPT_REJECTED, "550 5.1.1 <nobody@" },
    { DIALOGUE(partial, MT_END_CLOSE), MT_STATUS_PARTIAL, "550 5.1.1" },
    { DIALOGUE(relay, MT_END_CLOSE), MT_STATUS_RELAY_DENIED, "554 5.7.1 <victim@elsewhere" },
    { DIALOGUE(relay_deferred, MT_END_CLOSE), MT_STATUS_RELAY_DENIED, "454 4.7.1 <u@gmail" },
    { DIALOGUE(data_no_recipients, MT_END_CLOSE), MT_STATUS_RCPT_REJECTED,
      "554 5.5.1 Error: no valid" },
    { DIALOGUE(sender_rejected, MT_END_CLOSE), MT_STATUS_SENDER_REJECTED, "553 5.7.1 <ceo@" },
    { DIALOGUE(too_big, MT_END_CLOSE), MT_STATUS_TOO_BIG, "552 5.3.4 Message size" },
    { DIALOGUE(too_big_after_data, MT_END_CLOSE), MT_STATUS_TOO_BIG, "552-5.2.3 Your message" },
    { DIALOGUE(content_rejected, MT_END_CLOSE), MT_STATUS_CONTENT_REJECTED, "554 5.7.1 Rejected by" },
    { DIALOGUE(greylisted, MT_END_CLOSE), MT_STATUS_TEMP_FAILED, "451 4.7.1 <bob@" },
    { DIALOGUE(pipelined, MT_END_CLOSE), MT_STATUS_PARTIAL, "550 5.1.1 <nobody@example.com>" },
    { DIALOGUE(several, MT_END_CLOSE), MT_STATUS_RCPT_REJECTED, "550 5.1.1 <gone@" },
    { DIALOGUE(starttls_encrypted, MT_END_EOF), MT_STATUS_ENCRYPTED, "220 2.0.0 Ready to start TLS" },
    { DIALOGUE(starttls_decrypted, MT_END_CLOSE), MT_STATUS_DELIVERED, "250 2.6.0" },
    { DIALOGUE(starttls_alert, MT_END_CLOSE), MT_STATUS_ENCRYPTED, "220 2.0.0 Ready" },
    { DIALOGUE(starttls_cut, MT_END_EOF), MT_STATUS_INCOMPLETE, "capture ended after STARTTLS" },
    { DIALOGUE(starttls_client_plain, MT_END_RESET), MT_STATUS_TLS_FAILED,
      "the client sent plaintext after STARTTLS's 220 instead of starting TLS" },
    /* ... unless the capture ended there: the answer may be in the next file */
    { DIALOGUE(starttls_client_plain, MT_END_EOF), MT_STATUS_INCOMPLETE,
      "capture ended before the other side answered" },
    { DIALOGUE(pipelined_after_dot, MT_END_CLOSE), MT_STATUS_TEMP_FAILED, "451 4.3.0 Error: queue" },
    { DIALOGUE(misc_commands, MT_END_CLOSE), MT_STATUS_NO_MAIL, "221 2.0.0 Bye" },
    { DIALOGUE(implicit_tls, MT_END_EOF), MT_STATUS_ENCRYPTED, "TLS from the first byte" },
    { DIALOGUE(bdat, MT_END_CLOSE), MT_STATUS_DELIVERED, "250 2.0.0 Ok: queued as 4TZ2" },
    { DIALOGUE(early_data, MT_END_CLOSE), MT_STATUS_DELIVERED, "250 2.0.0 Ok: queued" },
    { DIALOGUE(early_mid_header, MT_END_CLOSE), MT_STATUS_DELIVERED, "250 2.0.0 Ok: queued" },
    { DIALOGUE(early_mid_body, MT_END_CLOSE), MT_STATUS_DELIVERED, "250 2.0.0 Ok: queued" },
    { DIALOGUE(greeting_rejected, MT_END_CLOSE), MT_STATUS_SERVER_REJECTED, "554 5.7.1 Service unavailable" },
    { DIALOGUE(silent_server, MT_END_EOF), MT_STATUS_NO_RESPONSE, "no reply from the server" },
    { DIALOGUE(reset_mid_data, MT_END_RESET), MT_STATUS_ABORTED, "connection reset" },
    { DIALOGUE(eof_awaiting_reply, MT_END_EOF), MT_STATUS_INCOMPLETE, "capture ended" },
    { DIALOGUE(eof_mid_body, MT_END_EOF), MT_STATUS_INCOMPLETE, "capture ended" },
    { DIALOGUE(eof_between_commands, MT_END_EOF), MT_STATUS_INCOMPLETE, "capture ended" },
    { DIALOGUE(hostile_subject, MT_END_CLOSE), MT_STATUS_DELIVERED, "250 queued" },
    { DIALOGUE(encoded_words, MT_END_CLOSE), MT_STATUS_DELIVERED, "250 2.0.0 Ok: queued" },
    { DIALOGUE(unsolicited_421, MT_END_CLOSE), MT_STATUS_DELIVERED, "250 2.0.0 Ok: queued" },
    { DIALOGUE(closing_421, MT_END_CLOSE), MT_STATUS_TEMP_FAILED, "421 4.7.0" },
    { DIALOGUE(gap_before_dot, MT_END_CLOSE), MT_STATUS_DELIVERED, "250 2.6.0 <gap@" },
    { DIALOGUE(data_without_recipients, MT_END_CLOSE), MT_STATUS_RCPT_REJECTED, "550 5.1.1 <gone@" },
    { DIALOGUE(auth_plain_ok, MT_END_CLOSE), MT_STATUS_NO_MAIL, "221 2.0.0 Bye" },
    { DIALOGUE(auth_plain_fail, MT_END_CLOSE), MT_STATUS_AUTH_FAILED, "535 5.7.8" },
    { DIALOGUE(auth_plain_authzid, MT_END_CLOSE), MT_STATUS_NO_MAIL, "221 2.0.0 Bye" },
    { DIALOGUE(auth_login_ok, MT_END_CLOSE), MT_STATUS_DELIVERED, "250 2.0.0 Ok: queued" },
    { DIALOGUE(auth_login_fail, MT_END_CLOSE), MT_STATUS_AUTH_FAILED, "535 5.7.8" },
    { DIALOGUE(auth_cancelled, MT_END_CLOSE), MT_STATUS_NO_MAIL, "the client cancelled" },
    { DIALOGUE(auth_refused_sent_anyway, MT_END_CLOSE), MT_STATUS_AUTH_FAILED, "504 5.5.4" },
    { DIALOGUE(foreign_logins, MT_END_CLOSE), MT_STATUS_NO_MAIL, "" },
    { DIALOGUE(auth_cram_ok, MT_END_CLOSE), MT_STATUS_NO_MAIL, "221 2.0.0 Bye" },
    { DIALOGUE(auth_cram_fail, MT_END_CLOSE), MT_STATUS_AUTH_FAILED, "535 5.7.8" },
    { DIALOGUE(auth_xoauth2_ok, MT_END_CLOSE), MT_STATUS_NO_MAIL, "221 2.0.0 Bye" },
    { DIALOGUE(auth_xoauth2_fail, MT_END_CLOSE), MT_STATUS_AUTH_FAILED, "535-5.7.8 Username" },
    { DIALOGUE(auth_plain_pipelined, MT_END_CLOSE), MT_STATUS_DELIVERED, "250 2.0.0 Ok: queued" },
    { DIALOGUE(auth_login_password_ahead, MT_END_CLOSE), MT_STATUS_NO_MAIL, "221 2.0.0 Bye" },
    { DIALOGUE(auth_login_prompted_again, MT_END_CLOSE), MT_STATUS_AUTH_FAILED, "535 5.7.8" },
};

static struct mt_session *decode_named(const char *name)
{
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(table[i].d.name, name) == 0)
            return decode_whole(&table[i].d);
    fail_msg("no dialogue %s", name);
    return NULL;
}

/* ---- Tests ------------------------------------------------------------------------- */

/* The reset transaction keeps its own outcome; a refused STARTTLS is no finding of
 * STARTTLS left unused (one that was offered and never asked for is). */
static void test_abandoned_and_refused_starttls(void **state)
{
    (void)state;
    struct mt_session *s = decode_whole(&(struct dialogue)DIALOGUE(rset_then_delivered,
                                                                   MT_END_CLOSE));
    assert_int_equal(s->message_count, 2);
    assert_int_equal(message(s, 0)->status, MT_STATUS_ABORTED);
    assert_int_equal(message(s, 1)->status, MT_STATUS_DELIVERED);
    session_free(s);
    s = decode_whole(&(struct dialogue)DIALOGUE(starttls_refused_sent, MT_END_CLOSE));
    s->bytes_c2s = 100;   /* counted by the connection, which these tests leave out */
    tls_follow_settle(NULL, s);
    assert_false(s->flags & MT_FLAG_STARTTLS_UNUSED);
    session_free(s);
    s = decode_whole(&(struct dialogue)DIALOGUE(delivered, MT_END_CLOSE));
    s->bytes_c2s = 100;
    tls_follow_settle(NULL, s);
    assert_true(s->flags & MT_FLAG_STARTTLS_UNUSED);   /* offered in EHLO, never asked */
    session_free(s);
}

static void test_table_split_everywhere(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        const struct expectation *e = &table[i];
        struct mt_session *s = decode_checked(&e->d, false);
        if (s->status != e->status || strncmp(s->status_line, e->status_line, strlen(e->status_line)))
            print_error("%s: got %s [%s], want %s [%s...]\n", e->d.name, status_name(s->status),
                        s->status_line, status_name(e->status), e->status_line);
        assert_int_equal(s->status, e->status);
        assert_true(strncmp(s->status_line, e->status_line, strlen(e->status_line)) == 0);
        for (size_t k = 0; k < sizeof secrets / sizeof secrets[0]; k++)
            assert_nowhere(s, secrets[k]);
        session_free(s);
    }
}

static void test_delivered_fields(void **state)
{
    (void)state;
    struct mt_session *s = decode_named("delivered");
    assert_string_equal(s->banner, "220 mx.example.com ESMTP Postfix (Debian/GNU)");
    assert_string_equal(s->server_name, "mx.example.com");
    assert_string_equal(s->helo, "client.example.org");
    assert_int_equal(s->message_count, 1);   /* the MAIL FROM in the body is data */
    assert_int_equal(s->recipient_count, 1);
    assert_string_equal(mt_str(rcpt(s, 0)->addr), "bob@example.com");
    assert_int_equal(rcpt(s, 0)->code, 250);
    assert_true(rcpt(s, 0)->accepted);
    assert_int_equal(rcpt(s, 0)->message, 0);
    const struct mt_message *m = message(s, 0);
    assert_string_equal(mt_str(m->mail_from), "alice@example.org");
    assert_string_equal(mt_str(m->subject), "Quarterly report");
    assert_string_equal(mt_str(m->header_from), "Alice <alice@example.org>");
    assert_string_equal(mt_str(m->header_to), "Bob <bob@example.com>");
    assert_string_equal(mt_str(m->date), "Mon, 1 Jan 2024 10:00:00 +0000");
    assert_string_equal(mt_str(m->message_id), "<20240101100000.1@example.org>");
    assert_int_equal(m->size, MESSAGE_SIZE);
    assert_int_equal(m->reply_code, 250);
    assert_string_equal(mt_str(m->reply), "2.0.0 Ok: queued as 4TZ1fK3s9Qz9sWK");
    assert_int_equal(m->status, MT_STATUS_DELIVERED);
    assert_int_equal(s->flags, 0);
    char summary[80];
    snprintf(summary, sizeof summary, " I [message %zu bytes, Subject: Quarterly report]\n",
             MESSAGE_SIZE);
    assert_true(transcript_has(s, summary));
    assert_true(transcript_has(s, " C MAIL FROM:<alice@example.org> SIZE=512 BODY=8BITMIME\n"));
    assert_true(transcript_has(s, " S 250-PIPELINING\n"));
    assert_false(transcript_has(s, "mallory"));
    assert_true(s->status_transcript_line > 0);
    session_free(s);
}

static void test_recipient_replies(void **state)
{
    (void)state;
    struct mt_session *s = decode_named("pipelined");
    assert_int_equal(s->recipient_count, 3);
    assert_int_equal(rcpt(s, 1)->code, 550);
    assert_false(rcpt(s, 1)->accepted);
    assert_string_equal(mt_str(rcpt(s, 1)->reply), "5.1.1 <nobody@example.com>: User unknown");
    assert_true(rcpt(s, 2)->accepted);
    assert_string_equal(mt_str(message(s, 0)->subject), "pipelined");
    assert_int_equal(message(s, 0)->status, MT_STATUS_PARTIAL);
    assert_int_equal(s->flags, 0);
    session_free(s);

    s = decode_named("relay");
    assert_int_equal(rcpt(s, 0)->code, 554);
    assert_int_equal(rcpt(s, 1)->code, 550);
    assert_int_equal(message(s, 0)->status, MT_STATUS_RELAY_DENIED);
    assert_int_equal(message(s, 0)->reply_code, 554);
    session_free(s);
}

static void test_several_transactions(void **state)
{
    (void)state;
    struct mt_session *s = decode_named("several");
    assert_int_equal(s->message_count, 3);
    assert_int_equal(message(s, 0)->status, MT_STATUS_DELIVERED);
    assert_int_equal(message(s, 1)->status, MT_STATUS_RCPT_REJECTED);
    assert_int_equal(message(s, 2)->status, MT_STATUS_DELIVERED);
    assert_string_equal(mt_str(message(s, 2)->subject), "three");
    assert_int_equal(rcpt(s, 1)->message, 1);
    /* status_transcript_line points at the deciding reply */
    const char *t = s->transcript;
    for (int line = 0; line < s->status_transcript_line; line++)
        t = strchr(t, '\n') + 1;
    assert_true(strncmp(strchr(t, ' ') + 1, "S 550 5.1.1 <gone@", 18) == 0);
    session_free(s);
}

static void test_pipelined_and_misc(void **state)
{
    (void)state;
    struct mt_session *s = decode_named("pipelined_after_dot");
    assert_int_equal(s->message_count, 2);
    assert_int_equal(message(s, 0)->status, MT_STATUS_DELIVERED);
    assert_int_equal(message(s, 1)->status, MT_STATUS_TEMP_FAILED);
    assert_string_equal(mt_str(message(s, 1)->mail_from), "carol@example.org");
    assert_string_equal(mt_str(message(s, 1)->subject), "second");
    assert_int_equal(rcpt(s, 1)->message, 1);
    assert_true(rcpt(s, 1)->accepted);
    assert_false(s->flags & MT_FLAG_PROTOCOL_ERROR);
    session_free(s);

    s = decode_named("misc_commands");
    assert_true(transcript_has(s, " C XFOO bar baz\n"));
    assert_true(transcript_has(s, " C EXPN staff\n"));
    assert_true(transcript_has(s, " S hello there\n"));
    assert_int_equal(rcpt(s, 0)->code, 503);
    assert_int_equal(rcpt(s, 0)->message, -1);
    assert_int_equal(s->message_count, 0);
    assert_true(s->flags & MT_FLAG_PROTOCOL_ERROR);   /* the three bad reply lines */
    assert_string_equal(s->helo, "client");
    assert_string_equal(s->server_name, "mx.example.com");
    session_free(s);
}

static void test_auth(void **state)
{
    (void)state;
    static const struct { const char *name; const char *user; int attempts, failures; } cases[] = {
        { "auth_plain_ok", "alice@example.org", 1, 0 },
        { "auth_plain_fail", "alice@example.org", 1, 1 },
        { "auth_plain_authzid", "bob", 1, 0 },
        { "auth_login_ok", "alice@example.org", 1, 0 },
        { "auth_login_fail", "alice@example.org", 2, 1 },   /* the second one cancelled */
        { "auth_cancelled", "alice@example.org", 1, 0 },
        { "auth_refused_sent_anyway", "", 1, 1 },
        { "auth_cram_ok", "alice", 1, 0 },
        { "auth_cram_fail", "alice", 1, 1 },
        { "auth_xoauth2_ok", "alice@example.org", 1, 0 },
        { "auth_xoauth2_fail", "alice@example.org", 1, 1 },
        { "auth_plain_pipelined", "alice@example.org", 1, 0 },
        { "auth_login_password_ahead", "alice@example.org", 1, 0 },
        { "auth_login_prompted_again", "alice@example.org", 1, 1 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct mt_session *s = decode_named(cases[i].name);
        assert_string_equal(s->user, cases[i].user);
        assert_int_equal(s->auth_attempts, cases[i].attempts);
        assert_int_equal(s->auth_failures, cases[i].failures);
        for (size_t k = 0; k < sizeof secrets / sizeof secrets[0]; k++)
            assert_nowhere(s, secrets[k]);
        session_free(s);
    }
    struct mt_session *s = decode_named("auth_plain_ok");
    assert_true(transcript_has(s, " C AUTH PLAIN *****\n"));
    session_free(s);
    s = decode_named("auth_login_ok");
    assert_true(transcript_has(s, " C [user: alice@example.org]\n"));
    assert_true(transcript_has(s, " C *****\n"));
    session_free(s);
    s = decode_named("auth_refused_sent_anyway");
    assert_true(transcript_has(s, " C AUHT PLAIN *****\n"));
    assert_true(transcript_has(s, " C XCLIENT NAME=spike.example.org ADDR=192.0.2.1\n"));
    session_free(s);
    s = decode_named("auth_plain_pipelined");
    assert_true(transcript_has(s, " C MAIL FROM:<alice@example.org>\n"));
    assert_string_equal(mt_str(message(s, 0)->mail_from), "alice@example.org");
    session_free(s);
    s = decode_named("auth_login_password_ahead");
    assert_true(transcript_has(s, " C *****\n"));
    session_free(s);
    s = decode_named("auth_login_fail");
    assert_true(transcript_has(s, " C AUTH LOGIN [user: alice@example.org]\n"));
    assert_true(transcript_has(s, " C *\n"));
    session_free(s);
}

/* The capture went on long after a command with no reply: a silence, not a cut (a hung
 * content filter never answers the end of the message). Shortly after: the cut. */
static void test_silence_at_the_end(void **state)
{
    (void)state;
    static const struct { int64_t after_us; enum mt_status want; const char *line; } cases[] = {
        { 5LL * 1000000, MT_STATUS_INCOMPLETE, "capture ended" },
        { 300LL * 1000000, MT_STATUS_NO_RESPONSE,
          "no reply to the end of the message for 300 s when the capture ended" },
    };
    const struct dialogue d = DIALOGUE(eof_awaiting_reply, MT_END_EOF);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        struct mt_session *s = session_new(MT_PROTO_SMTP);
        void *st = smtp_decoder.open(s);
        assert_non_null(st);
        for (size_t i = 0; i < d.count; i++)
            smtp_decoder.data(st, s, d.chunks[i].side, d.chunks[i].bytes, d.chunks[i].len, TS(i));
        s->end = MT_END_EOF;
        s->end_us = TS(d.count - 1);
        s->input_end_us = TS(d.count - 1) + cases[k].after_us;
        smtp_decoder.close(st, s);
        smtp_decoder.free(st);
        assert_int_equal(s->status, cases[k].want);
        assert_true(strncmp(s->status_line, cases[k].line, strlen(cases[k].line)) == 0);
        /* a silence: the session waited until the end; a cut ends at its last bytes */
        assert_int_equal(s->end_us, cases[k].want == MT_STATUS_NO_RESPONSE ? s->input_end_us
                                                                           : TS(d.count - 1));
        session_free(s);
    }
}

static void test_tls(void **state)
{
    (void)state;
    struct mt_session *s = decode_named("starttls_encrypted");
    assert_true(s->tls);
    assert_false(s->flags & MT_FLAG_DECRYPTED);
    assert_int_equal(s->message_count, 0);   /* the "MAIL FROM" inside TLS bytes */
    assert_true(transcript_has(s, "[TLS from here on"));
    assert_false(transcript_has(s, "fake"));
    session_free(s);

    s = decode_named("starttls_decrypted");
    assert_true(s->tls);
    assert_true(s->flags & MT_FLAG_DECRYPTED);
    assert_int_equal(message(s, 0)->size, 21);
    assert_int_equal(message(s, 0)->status, MT_STATUS_DELIVERED);
    session_free(s);

    s = decode_named("implicit_tls");
    assert_true(s->tls);
    session_free(s);

    s = decode_named("starttls_client_plain");
    assert_false(s->flags & MT_FLAG_DECRYPTED);
    assert_true(transcript_has(s, "[plaintext after STARTTLS]"));
    session_free(s);

    s = decode_named("starttls_alert");
    assert_true(s->tls);
    assert_false(transcript_has(s, "plaintext"));
    assert_false(transcript_has(s, "\\x15"));
    session_free(s);
}

static void test_data_and_chunks(void **state)
{
    (void)state;
    struct mt_session *s = decode_named("bdat");
    assert_int_equal(s->message_count, 1);
    assert_int_equal(s->recipient_count, 1);
    assert_int_equal(message(s, 0)->size, 63);
    assert_true(transcript_has(s, " C BDAT 12 LAST\n"));
    assert_true(transcript_has(s, "[message 63 bytes in 2 BDAT chunks, Subject: chunked]"));
    assert_string_equal(mt_str(message(s, 0)->subject), "chunked");
    assert_false(transcript_has(s, "no@x"));
    session_free(s);

    s = decode_named("bdat_headers_cut");   /* joined again, whatever the packets */
    assert_int_equal(message(s, 0)->size, BDAT_HEADERS_CUT_SIZE);
    assert_string_equal(mt_str(message(s, 0)->subject), "cut here");
    assert_string_equal(mt_str(message(s, 0)->message_id), "<c@x>");
    assert_int_equal(s->status, MT_STATUS_DELIVERED);
    session_free(s);

    s = decode_named("early_data");
    assert_int_equal(s->message_count, 1);
    assert_int_equal(s->recipient_count, 1);
    assert_string_equal(mt_str(message(s, 0)->subject), "early");
    assert_int_equal(message(s, 0)->size, strlen("Subject: early\r\n\r\nMAIL FROM:<no@x>\r\nRCPT TO:<no@x>\r\n"));
    session_free(s);

    static const char *const mid_line[] = { "early_mid_header", "early_mid_body" };
    for (size_t i = 0; i < 2; i++) {
        s = decode_named(mid_line[i]);
        assert_string_equal(mt_str(message(s, 0)->subject), "early");
        assert_int_equal(message(s, 0)->size, i ? 31 : 24);
        assert_true(transcript_has(s, " C QUIT\n"));
        assert_int_equal(s->flags, 0);
        session_free(s);
    }
}

static void test_unfinished(void **state)
{
    (void)state;
    struct mt_session *s = decode_named("reset_mid_data");
    assert_int_equal(message(s, 0)->status, MT_STATUS_ABORTED);
    assert_int_equal(message(s, 0)->size, strlen("Subject: cut short\r\n\r\nfirst line\r\nsecond"));
    assert_string_equal(mt_str(message(s, 0)->subject), "cut short");
    session_free(s);

    s = decode_named("eof_awaiting_reply");
    assert_int_equal(message(s, 0)->status, MT_STATUS_INCOMPLETE);
    session_free(s);

    s = decode_named("silent_server");
    assert_int_equal(message(s, 0)->status, MT_STATUS_INCOMPLETE);
    assert_string_equal(mt_str(message(s, 0)->mail_from), "alice@example.org");
    session_free(s);

    s = decode_named("unsolicited_421");
    assert_false(s->flags & MT_FLAG_PROTOCOL_ERROR);
    session_free(s);

    /* same dialogue, but the connection closed normally without QUIT */
    struct dialogue d = { "closed", eof_mid_body, sizeof eof_mid_body / sizeof eof_mid_body[0],
                          MT_END_CLOSE };
    s = decode_whole(&d);
    assert_status(s, MT_STATUS_ABORTED);
    session_free(s);
}

static void test_encoded_words_decoded(void **state)
{
    (void)state;
    struct mt_session *s = decode_named("encoded_words");
    const struct mt_message *m = message(s, 0);
    assert_string_equal(mt_str(m->subject), "\xe4\xbd\xa0\xe5\xa5\xbd\xef\xbc\x8c"
                                            "\xe4\xb8\x96\xe7\x95\x8c report");
    assert_string_equal(mt_str(m->header_from), "Fran\xc3\xa7ois M\xc3\xbcller <f@example.org>");
    assert_string_equal(mt_str(m->header_to), "\\x1b[2Jevil <b@example.com>");
    assert_non_null(strstr(s->transcript, "Subject: \xe4\xbd\xa0\xe5\xa5\xbd"));
    assert_null(memchr(s->transcript, 0x1b, s->transcript_len));
    session_free(s);
}

static void test_hostile_text_sanitized(void **state)
{
    (void)state;
    struct mt_session *s = decode_named("hostile_subject");
    char *all = fingerprint(s);
    assert_null(strchr(all, 0x1b));
    assert_null(strchr(all, 0x07));
    assert_null(strstr(all, "\xc2\x9b"));   /* C1 CSI */
    assert_non_null(strstr(mt_str(s->messages[0].subject), "RED"));
    assert_non_null(strstr(mt_str(s->messages[0].subject), "\\x1b"));
    free(all);
    assert_null(memchr(s->transcript, 0x1b, s->transcript_len));
    assert_null(memchr(s->transcript, 0, s->transcript_len));
    session_free(s);
}

/* ---- Hostile volume (generated, fed whole or at a few cuts) -------------------------- */

static char *repeat(const char *head, char fill, size_t n, const char *tail, size_t *len)
{
    size_t hl = strlen(head), tl = strlen(tail);
    char *buf = malloc(hl + n + tl);
    assert_non_null(buf);
    memcpy(buf, head, hl);
    memset(buf + hl, fill, n);
    memcpy(buf + hl + n, tail, tl);
    *len = hl + n + tl;
    return buf;
}

static void test_long_lines(void **state)
{
    (void)state;
    static const size_t sizes[] = { 1u << 20, 10u << 20 };
    for (size_t i = 0; i < 2; i++) {
        size_t helo_len, reply_len, body_len;
        char *helo = repeat("EHLO ", 'h', sizes[i], "\r\n", &helo_len);
        char *reply = repeat("250-", 'r', sizes[i], "\r\n250 ok\r\n", &reply_len);
        char *body = repeat("Subject: ", 's', sizes[i], "\r\n\r\nx\r\n.\r\n", &body_len);
        const struct chunk chunks[] = {
            GREETING, { MT_CLIENT, helo, helo_len }, { MT_SERVER, reply, reply_len },
            MAIL_OK, RCPT_OK, DATA_354, { MT_CLIENT, body, body_len }, QUEUED, QUIT,
        };
        struct dialogue d = { "long lines", chunks, sizeof chunks / sizeof chunks[0], MT_END_CLOSE };
        struct mt_session *s = decode_checked(&d, true);
        assert_status(s, MT_STATUS_DELIVERED);
        assert_true(s->flags & MT_FLAG_LINE_TRUNCATED);
        assert_true(strlen(s->helo) < MT_NAME_MAX);
        assert_true(strlen(mt_str(message(s, 0)->subject)) < MT_TEXT_MAX);
        assert_int_equal(message(s, 0)->size, body_len - 3);
        /* a cut field says so: it must not read as a whole name */
        assert_string_equal(s->helo + strlen(s->helo) - 4, "h...");
        const char *subject = mt_str(message(s, 0)->subject);
        assert_string_equal(subject + strlen(subject) - 4, "s...");
        session_free(s);
        free(helo);
        free(reply);
        free(body);
    }
    /* An address longer than the field keeps its start and shows the cut. */
    size_t mail_len;
    char *mail = repeat("MAIL FROM:<", 'm', 1000, "@example.org>\r\n", &mail_len);
    const struct chunk chunks[] = {
        GREETING, EHLO, { MT_CLIENT, mail, mail_len }, S("250 2.1.0 Ok\r\n"), RCPT_OK, DATA_354,
        C("Subject: x\r\n\r\ny\r\n.\r\n"), QUEUED, QUIT,
    };
    struct dialogue d = { "long address", chunks, sizeof chunks / sizeof chunks[0], MT_END_CLOSE };
    struct mt_session *s = decode_checked(&d, true);
    const char *from = mt_str(message(s, 0)->mail_from);
    assert_true(strlen(from) < MT_MSG_MAIL_FROM_MAX);
    assert_true(strncmp(from, "mmmm", 4) == 0);
    assert_string_equal(from + strlen(from) - 4, "m...");
    session_free(s);
    free(mail);
}

static void test_endless_reply(void **state)
{
    (void)state;
    size_t len = 0;
    char *reply = malloc(100000 * 10 + 1);
    assert_non_null(reply);
    for (int i = 0; i < 100000; i++)
        len += (size_t)sprintf(reply + len, "250-%03d\r\n", i % 1000);
    const struct chunk chunks[] = { GREETING, C("EHLO x\r\n"), { MT_SERVER, reply, len } };
    struct dialogue d = { "endless reply", chunks, 3, MT_END_EOF };
    struct mt_session *s = decode_checked(&d, true);
    assert_true(s->flags & MT_FLAG_PROTOCOL_ERROR);
    assert_true(s->transcript_lines < 120);
    assert_status(s, MT_STATUS_INCOMPLETE);
    session_free(s);
    free(reply);
}

static void test_many_recipients(void **state)
{
    (void)state;
    size_t clen = 0, slen = 0;
    char *cmds = malloc(100000 * 40), *replies = malloc(100000 * 16);
    assert_true(cmds && replies);
    for (int i = 0; i < 100000; i++) {
        clen += (size_t)sprintf(cmds + clen, "RCPT TO:<user%d@example.com>\r\n", i);
        slen += (size_t)sprintf(replies + slen, "250 2.1.5 Ok\r\n");
    }
    /* all pipelined at once: the reply FIFO overflows, replies then lack commands */
    struct chunk chunks[] = {
        GREETING, EHLO, MAIL_OK, { MT_CLIENT, cmds, clen }, { MT_SERVER, replies, slen },
        DATA_354, C("Subject: many\r\n\r\n.\r\n"), QUEUED, QUIT,
    };
    struct dialogue d = { "many rcpts", chunks, sizeof chunks / sizeof chunks[0], MT_END_CLOSE };
    struct mt_session *s = decode_whole(&d);
    assert_int_equal(s->recipient_count, MT_RECIPIENTS_MAX);
    assert_true(s->recipients_dropped > 0);
    assert_true(s->flags & MT_FLAG_RECIPIENTS_CAPPED);
    assert_true(s->flags & MT_FLAG_PROTOCOL_ERROR);
    assert_true(s->transcript_len <= MT_TRANSCRIPT_MAX_BYTES);
    session_free(s);
    free(cmds);
    free(replies);
}

/* A whole transaction pipelined (RFC 2920): MAIL, 1,000 RCPTs (every other one refused)
 * and DATA in one go, their replies in one go. Every reply pairs with its command, and
 * the message data after the 354 stays data (it once became client commands in the
 * transcript when the pending ring held 256). */
static void test_pipelined_transaction(void **state)
{
    (void)state;
    enum { N = 1000 };
    size_t clen = 0, slen = 0;
    char *cmds = malloc(N * 40 + 64), *replies = malloc(N * 32 + 64);
    assert_true(cmds && replies);
    clen += (size_t)sprintf(cmds, "MAIL FROM:<alice@example.org>\r\n");
    slen += (size_t)sprintf(replies, "250 2.1.0 Ok\r\n");
    for (int i = 0; i < N; i++) {
        clen += (size_t)sprintf(cmds + clen, "RCPT TO:<user%d@example.com>\r\n", i);
        slen += (size_t)sprintf(replies + slen, i % 2 ? "550 5.1.1 No such user\r\n"
                                                      : "250 2.1.5 Ok\r\n");
    }
    clen += (size_t)sprintf(cmds + clen, "DATA\r\n");
    slen += (size_t)sprintf(replies + slen, "354 go ahead\r\n");
    struct chunk chunks[] = {
        GREETING, EHLO, { MT_CLIENT, cmds, clen }, { MT_SERVER, replies, slen },
        C("Subject: pipelined\r\n\r\nSECRET-BODY-LINE\r\nRCPT TO:<not@a.command>\r\n.\r\n"),
        QUEUED, QUIT,
    };
    struct dialogue d = { "pipelined", chunks, sizeof chunks / sizeof chunks[0], MT_END_CLOSE };
    struct mt_session *s = decode_whole(&d);
    assert_status(s, MT_STATUS_PARTIAL);
    assert_int_equal(message(s, 0)->status, MT_STATUS_PARTIAL);
    assert_string_equal(mt_str(message(s, 0)->subject), "pipelined");
    size_t accepted = 0;
    for (size_t i = 0; i < s->recipient_count; i++)
        accepted += rcpt(s, i)->accepted && rcpt(s, i)->code == 250 && i % 2 == 0;
    assert_int_equal(accepted, (s->recipient_count + 1) / 2);
    assert_false(s->flags & MT_FLAG_PROTOCOL_ERROR);
    assert_false(transcript_has(s, "SECRET-BODY-LINE"));
    assert_false(transcript_has(s, "not@a.command"));
    session_free(s);
    free(cmds);
    free(replies);
}

/* More commands without a reply than the decoder pairs (hostile: 5,000 NOOPs first): the
 * replies are no longer paired, but a 354 still starts the message data and the data is
 * never read as commands nor kept. */
static void test_pipelined_past_pairing(void **state)
{
    (void)state;
    enum { N = 5000 };
    size_t clen = 0, slen = 0;
    char *cmds = malloc(N * 8 + 256), *replies = malloc(N * 16 + 256);
    assert_true(cmds && replies);
    for (int i = 0; i < N; i++) {
        clen += (size_t)sprintf(cmds + clen, "NOOP\r\n");
        slen += (size_t)sprintf(replies + slen, "250 2.0.0 Ok\r\n");
    }
    clen += (size_t)sprintf(cmds + clen, "MAIL FROM:<mallory@example.org>\r\n"
                                         "RCPT TO:<bob@example.com>\r\nDATA\r\n");
    slen += (size_t)sprintf(replies + slen, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n");
    struct chunk chunks[] = {
        GREETING, EHLO, { MT_CLIENT, cmds, clen }, { MT_SERVER, replies, slen },
        C("Subject: invoice\r\n\r\nSECRET-BODY-LINE\r\nQUIT\r\n.\r\n"), QUEUED, QUIT,
    };
    struct dialogue d = { "past pairing", chunks, sizeof chunks / sizeof chunks[0], MT_END_CLOSE };
    struct mt_session *s = decode_whole(&d);
    assert_true(s->flags & MT_FLAG_PROTOCOL_ERROR);
    assert_status(s, MT_STATUS_INCOMPLETE);
    assert_non_null(strstr(s->status_line, "could not be paired"));
    assert_string_equal(mt_str(message(s, 0)->subject), "invoice");
    assert_false(transcript_has(s, "SECRET-BODY-LINE"));
    assert_true(transcript_has(s, "replies no longer paired with commands"));
    session_free(s);
    free(cmds);
    free(replies);
}

static uint64_t xorshift(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* Random bytes, random printable lines with SMTP words, NULs: nothing may crash, and a
 * small sample must still decode the same however it is split. */
static void test_garbage(void **state)
{
    (void)state;
    static const char *const words[] = {
        "MAIL FROM:<", "RCPT TO:<", "DATA", "BDAT 7", "BDAT 3 LAST", "AUTH LOGIN", "AUTH PLAIN",
        "STARTTLS", "250-", "250 ", "354 ", "334 ", "220 ", "421 ", "\r\n", "\n", ".\r\n", "\x16\x03",
        "\x00", "*", "=", "\x1b[",
    };
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int round = 0; round < 40; round++) {
        char buf[2][4096];
        size_t len[2] = { 0, 0 }, cap = round < 2 ? 1024 : sizeof buf[0];  /* small: split everywhere */
        for (int side = 0; side < 2; side++) {
            while (len[side] < cap - 32) {
                uint64_t r = xorshift(&x);
                const char *w = words[r % (sizeof words / sizeof words[0])];
                size_t wl = strlen(w) ? strlen(w) : 1;
                if ((r >> 8) % 3 == 0) {
                    buf[side][len[side]++] = (char)(r >> 16);
                } else {
                    memcpy(buf[side] + len[side], w, wl);
                    len[side] += wl;
                }
            }
        }
        struct chunk chunks[6];
        size_t n = 0, off[2] = { 0, 0 };
        for (int k = 0; k < 6; k++) {   /* alternate sides in uneven pieces */
            int side = (int)((k + round) % 2);
            size_t piece = k < 4 ? len[side] / 3 : len[side] - off[side];
            chunks[n++] = (struct chunk){ side ? MT_SERVER : MT_CLIENT, buf[side] + off[side], piece };
            off[side] += piece;
        }
        struct dialogue d = { "garbage", chunks, n, round % 2 ? MT_END_RESET : MT_END_EOF };
        session_free(decode_checked(&d, round >= 2));
    }
}

static void test_enhanced_code(void **state)
{
    (void)state;
    struct smtp_enhanced e;
    assert_true(smtp_enhanced_code("5.1.1 <x>: unknown", 18, &e));
    assert_int_equal(e.cls, 5);
    assert_int_equal(e.subject, 1);
    assert_int_equal(e.detail, 1);
    assert_true(smtp_enhanced_code("4.7.100", 7, &e));
    assert_int_equal(e.detail, 100);
    assert_false(smtp_enhanced_code("3.1.1 x", 7, &e));
    assert_false(smtp_enhanced_code("5.1 x", 5, &e));
    assert_false(smtp_enhanced_code("5.1.1000", 8, &e));
    assert_false(smtp_enhanced_code("5.1.1x", 6, &e));
    assert_false(smtp_enhanced_code("Ok", 2, &e));
    assert_false(smtp_enhanced_code("", 0, &e));
}

static void test_classify(void **state)
{
    (void)state;
    static const struct { enum smtp_phase phase; const char *line; enum mt_status want; } cases[] = {
        { SMTP_PHASE_RCPT, "550 5.1.1 <x>: Recipient address rejected", MT_STATUS_RCPT_REJECTED },
        { SMTP_PHASE_RCPT, "554 5.7.1 <x>: Relay access denied", MT_STATUS_RELAY_DENIED },
        { SMTP_PHASE_RCPT, "550 Relaying denied", MT_STATUS_RELAY_DENIED },
        { SMTP_PHASE_RCPT, "553 sorry, that domain isn't in my list (#5.7.1)", MT_STATUS_RCPT_REJECTED },
        { SMTP_PHASE_RCPT, "550 5.7.1 Unable to relay", MT_STATUS_RELAY_DENIED },
        /* walkthrough 13 H1: a blocklist said at RCPT is the sending host refused; 5.7.1
         * alone is no relay refusal */
        { SMTP_PHASE_RCPT, "554 5.7.1 Service unavailable; Client host [198.51.100.1] blocked "
                           "using zen.spamhaus.org; https://www.spamhaus.org/query/ip/198.51.100.1",
          MT_STATUS_SENDER_REJECTED },
        { SMTP_PHASE_RCPT, "550 5.7.606 Access denied, banned sending IP [203.0.113.9]",
          MT_STATUS_SENDER_REJECTED },
        { SMTP_PHASE_RCPT, "554 5.7.1 Blocked - see https://www.spamcop.net/bl.shtml?192.0.2.4; "
                           "listed on our blocklist", MT_STATUS_SENDER_REJECTED },
        { SMTP_PHASE_RCPT, "554 5.7.1 <bob@example.org>: Recipient address rejected: Access "
                           "denied", MT_STATUS_RCPT_REJECTED },
        { SMTP_PHASE_RCPT, "550 5.7.1 RESOLVER.RST.NotAuthorized; not authorized to send to this "
                           "group", MT_STATUS_RCPT_REJECTED },
        { SMTP_PHASE_RCPT, "550 relay not permitted", MT_STATUS_RELAY_DENIED },
        { SMTP_PHASE_RCPT, "550 5.1.1 <blacklist@example.org>: Recipient address rejected: User "
                           "unknown in virtual mailbox table", MT_STATUS_RCPT_REJECTED },
        { SMTP_PHASE_RCPT, "554 5.7.1 <bob@spammy.example>: Recipient address rejected: "
                           "blocked using dbl.spamhaus.org", MT_STATUS_RCPT_REJECTED },
        { SMTP_PHASE_RCPT, "450 4.2.0 Greylisted", MT_STATUS_TEMP_FAILED },
        { SMTP_PHASE_RCPT, "250 2.1.5 Ok", MT_STATUS_DELIVERED },
        { SMTP_PHASE_MAIL, "552 5.3.4 Message size exceeds fixed limit", MT_STATUS_TOO_BIG },
        { SMTP_PHASE_MAIL, "550 5.3.4 too big", MT_STATUS_TOO_BIG },
        { SMTP_PHASE_MAIL, "553 5.7.1 Sender rejected", MT_STATUS_SENDER_REJECTED },
        { SMTP_PHASE_MAIL, "421 4.7.0 closing", MT_STATUS_TEMP_FAILED },
        { SMTP_PHASE_DATA, "554 5.7.1 spam", MT_STATUS_CONTENT_REJECTED },
        { SMTP_PHASE_RCPT, "454 4.7.1 <x>: Relay access denied", MT_STATUS_RELAY_DENIED },
        { SMTP_PHASE_DATA, "554 5.5.1 Error: no valid recipients", MT_STATUS_RCPT_REJECTED },
        { SMTP_PHASE_DATA, "503 5.5.1 valid RCPT command must precede DATA", MT_STATUS_RCPT_REJECTED },
        { SMTP_PHASE_DATA, "552 too much mail data", MT_STATUS_TOO_BIG },
        { SMTP_PHASE_DATA, "451 4.3.0 try later", MT_STATUS_TEMP_FAILED },
        { SMTP_PHASE_DATA, "25 short", MT_STATUS_UNKNOWN },
        { SMTP_PHASE_DATA, "2500 long", MT_STATUS_UNKNOWN },
        { SMTP_PHASE_DATA, "354 go", MT_STATUS_UNKNOWN },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        enum mt_status got = smtp_classify_line(cases[i].phase, cases[i].line, strlen(cases[i].line));
        if (got != cases[i].want)
            print_error("[%s]: %s, want %s\n", cases[i].line, status_name(got), status_name(cases[i].want));
        assert_int_equal(got, cases[i].want);
    }
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_enhanced_code),
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_table_split_everywhere),
        cmocka_unit_test(test_abandoned_and_refused_starttls),
        cmocka_unit_test(test_delivered_fields),
        cmocka_unit_test(test_recipient_replies),
        cmocka_unit_test(test_several_transactions),
        cmocka_unit_test(test_pipelined_and_misc),
        cmocka_unit_test(test_auth),
        cmocka_unit_test(test_tls),
        cmocka_unit_test(test_silence_at_the_end),
        cmocka_unit_test(test_data_and_chunks),
        cmocka_unit_test(test_unfinished),
        cmocka_unit_test(test_hostile_text_sanitized),
        cmocka_unit_test(test_encoded_words_decoded),
        cmocka_unit_test(test_long_lines),
        cmocka_unit_test(test_endless_reply),
        cmocka_unit_test(test_many_recipients),
        cmocka_unit_test(test_pipelined_transaction),
        cmocka_unit_test(test_pipelined_past_pairing),
        cmocka_unit_test(test_garbage),
    };
    if (argc > 1)   /* run only the tests whose names match, e.g. "*auth*" */
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
