/* make_demo_db.c — builds the console's test database by hand through store_put_session():
 * one session of each interesting kind (delivered, 550 5.1.1, relay denied, SMTP/POP3 auth
 * failures, logins, a refused attempt, a greylisted one, a UTF-8 subject), one session whose
 * user and subject carry escape sequences sanitized as a decoder would, and one row whose
 * strings are then overwritten raw (unsanitized) with sqlite3, to prove the console's
 * draw-time guard. Times start 2026-01-07 16:54:00 UTC.
 *
 *   make_demo_db DB              creates DB (it must not exist) with the demo sessions
 *   make_demo_db --add N DB      appends N newer SMTP sessions "live1".."liveN"
 *   make_demo_db --many N DB     appends N older synthetic sessions (paging/performance)
 *   make_demo_db --sensor DB     adds two sensor_stats rows, as a live capture would */
#include "protocols/session.h"
#include "protocols/text.h"
#include "store/store.h"

#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BASE_US 1767804840000000LL   /* 2026-01-07 16:54:00 UTC */
#define SEC 1000000LL

static int64_t clock_us;

static void line(struct mt_session *s, char dir, const char *text)
{
    clock_us += 7000;
    session_transcript_add(s, clock_us, dir, text, strlen(text));
}

static int decide_line(struct mt_session *s, char dir, const char *text, enum mt_status st)
{
    clock_us += 7000;
    int index = session_transcript_add(s, clock_us, dir, text, strlen(text));
    session_decide(s, st, text, strlen(text), index);
    return index;
}

static struct mt_session *smtp(int64_t start, enum mt_direction dir, const char *client,
                               const char *server, const char *helo)
{
    struct mt_session *s = session_new(MT_PROTO_SMTP);
    s->direction = dir;
    snprintf(s->client_ip, sizeof s->client_ip, "%s", client);
    snprintf(s->server_ip, sizeof s->server_ip, "%s", server);
    s->client_port = 40000 + (uint16_t)(start / SEC % 20000);
    s->server_port = 25;
    s->start_us = clock_us = start;
    snprintf(s->helo, sizeof s->helo, "%s", helo);
    snprintf(s->server_name, sizeof s->server_name, "mail.example.org");
    snprintf(s->banner, sizeof s->banner, "220 mail.example.org ESMTP Postfix");
    s->end = MT_END_CLOSE;
    line(s, 'S', s->banner);
    char ehlo[300];
    snprintf(ehlo, sizeof ehlo, "EHLO %s", helo);
    line(s, 'C', ehlo);
    line(s, 'S', "250-mail.example.org");
    line(s, 'S', "250 SIZE 52428800");
    return s;
}

static struct mt_message *mail(struct mt_session *s, const char *from, const char *subject)
{
    struct mt_message *m = session_add_message(s);
    char cmd[400];
    session_text_setf(&m->mail_from, MT_MSG_MAIL_FROM_MAX, "%s", from);
    session_text_set(&m->subject, MT_MSG_SUBJECT_MAX, subject, strlen(subject));
    m->start_us = clock_us;
    snprintf(cmd, sizeof cmd, "MAIL FROM:<%s>", from);
    line(s, 'C', cmd);
    line(s, 'S', "250 2.1.0 Ok");
    return m;
}

static void rcpt(struct mt_session *s, const char *addr, int code, const char *reply)
{
    struct mt_recipient *r = session_add_recipient(s);
    char cmd[400];
    session_text_setf(&r->addr, MT_RCPT_ADDR_MAX, "%s", addr);
    r->code = code;
    r->accepted = code / 100 == 2;
    session_text_setf(&r->reply, MT_RCPT_REPLY_MAX, "%s", reply);
    r->message = (int)s->message_count - 1;
    snprintf(cmd, sizeof cmd, "RCPT TO:<%s>", addr);
    line(s, 'C', cmd);
}

static void finish(struct mt_session *s)
{
    s->end_us = clock_us + 3000;
    s->bytes_c2s = 300 + s->transcript_len / 2;
    s->bytes_s2c = 200 + s->transcript_len / 3;
}

static struct mt_session *mailbox(enum mt_proto proto, int64_t start, const char *user)
{
    struct mt_session *s = session_new(proto);
    s->direction = MT_INBOUND;
    snprintf(s->client_ip, sizeof s->client_ip, "192.168.1.%d", 20 + (int)(start / SEC % 50));
    snprintf(s->server_ip, sizeof s->server_ip, "10.0.0.5");
    s->client_port = 50000;
    s->server_port = proto == MT_PROTO_POP3 ? 110 : 143;
    s->start_us = clock_us = start;
    s->end = MT_END_CLOSE;
    snprintf(s->user, sizeof s->user, "%s", user);
    snprintf(s->server_name, sizeof s->server_name, "mail.example.org");
    snprintf(s->banner, sizeof s->banner, proto == MT_PROTO_POP3 ? "+OK Dovecot ready."
             : "* OK [CAPABILITY IMAP4rev1 LOGIN-REFERRALS] Dovecot ready.");
    line(s, 'S', s->banner);
    return s;
}

static void put(struct mt_store *store, struct mt_session *s)
{
    finish(s);
    if (store_put_session(store, s) != STORE_OK) {
        fprintf(stderr, "make_demo_db: %s\n", store_error(store));
        exit(1);
    }
    session_free(s);
}

static void demo(struct mt_store *store)
{
    struct mt_session *s;
    struct mt_message *m;
    const char *evil = "\x1b[2J\x1b]0;pwned\x07";
    char buf[256];

    s = smtp(BASE_US, MT_INBOUND, "203.0.113.5", "10.0.0.25", "mx.sender.example");
    m = mail(s, "alex@example.com", "Quarterly report");
    rcpt(s, "bob@example.org", 250, "250 2.1.5 Ok");
    line(s, 'S', "250 2.1.5 Ok");
    line(s, 'C', "DATA");
    line(s, 'S', "354 End data with <CR><LF>.<CR><LF>");
    line(s, 'I', "[message 51118 bytes, Subject: Quarterly report]");
    m->size = 51118;
    m->reply_code = 250;
    session_text_setf(&m->message_id, MT_MSG_MESSAGE_ID_MAX, "<q4-2025@example.com>");
    session_text_setf(&m->reply, MT_MSG_REPLY_MAX, "250 2.0.0 Ok: queued as 4F2A1");
    m->status = MT_STATUS_DELIVERED;
    decide_line(s, 'S', "250 2.0.0 Ok: queued as 4F2A1", MT_STATUS_DELIVERED);
    line(s, 'C', "QUIT");
    put(store, s);

    s = smtp(BASE_US + 40 * SEC, MT_INBOUND, "203.0.113.9", "10.0.0.25", "relay.partner.example");
    m = mail(s, "news@partner.example", "Newsletter");
    rcpt(s, "nobody@example.org", 550, "550 5.1.1 <nobody@example.org>: Recipient address rejected");
    m->status = MT_STATUS_RCPT_REJECTED;
    decide_line(s, 'S', "550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown",
                MT_STATUS_RCPT_REJECTED);
    line(s, 'C', "QUIT");
    put(store, s);

    s = smtp(BASE_US + 95 * SEC, MT_OUTBOUND, "10.0.0.7", "198.51.100.20", "laptop.example.org");
    m = mail(s, "carol@example.org", "Photos");
    rcpt(s, "friend@elsewhere.example", 554, "554 5.7.1 <friend@elsewhere.example>: Relay access denied");
    m->status = MT_STATUS_RELAY_DENIED;
    decide_line(s, 'S', "554 5.7.1 <friend@elsewhere.example>: Relay access denied",
                MT_STATUS_RELAY_DENIED);
    put(store, s);

    s = smtp(BASE_US + 130 * SEC, MT_OUTBOUND, "10.0.0.8", "198.51.100.30", "desk.example.org");
    s->server_port = 587;
    snprintf(s->user, sizeof s->user, "dave.smtp");
    s->auth_attempts = 1;
    s->auth_failures = 1;
    line(s, 'C', "AUTH PLAIN *****");
    decide_line(s, 'S', "535 5.7.8 Error: authentication failed: authentication failure",
                MT_STATUS_AUTH_FAILED);
    put(store, s);

    s = smtp(BASE_US + 160 * SEC, MT_INBOUND, "203.0.113.77", "10.0.0.25", "grey.example.net");
    m = mail(s, "promo@grey.example.net", "Grüße aus Köln — 日本語のテキスト mit einer sehr langen Betreffzeile");
    rcpt(s, "erin@example.org", 450, "450 4.7.1 <erin@example.org>: Recipient address rejected: Greylisted");
    m->status = MT_STATUS_TEMP_FAILED;
    decide_line(s, 'S', "450 4.7.1 <erin@example.org>: Recipient address rejected: Greylisted",
                MT_STATUS_TEMP_FAILED);
    put(store, s);

    s = mailbox(MT_PROTO_POP3, BASE_US + 200 * SEC, "dave");
    line(s, 'C', "USER dave");
    line(s, 'S', "+OK");
    line(s, 'C', "PASS *****");
    s->auth_attempts = 1;
    decide_line(s, 'S', "+OK Logged in.", MT_STATUS_LOGIN_OK);
    line(s, 'C', "RETR 1");
    line(s, 'I', "[message 25559 bytes]");
    line(s, 'C', "RETR 2");
    line(s, 'I', "[message 25559 bytes]");
    line(s, 'C', "DELE 1");
    line(s, 'C', "DELE 2");
    line(s, 'C', "QUIT");
    s->stats.retr_count = 2;
    s->stats.retr_bytes = 51118;
    s->stats.dele_count = 2;
    put(store, s);

    s = mailbox(MT_PROTO_POP3, BASE_US + 260 * SEC, "erin");
    line(s, 'C', "USER erin");
    line(s, 'S', "+OK");
    line(s, 'C', "PASS *****");
    s->auth_attempts = 1;
    s->auth_failures = 1;
    decide_line(s, 'S', "-ERR [AUTH] Authentication failed.", MT_STATUS_AUTH_FAILED);
    line(s, 'C', "QUIT");
    line(s, 'S', "+OK Logging out.");
    put(store, s);

    s = mailbox(MT_PROTO_IMAP, BASE_US + 300 * SEC, "frank");
    line(s, 'C', "a1 LOGIN frank *****");
    s->auth_attempts = 1;
    decide_line(s, 'S', "a1 OK [CAPABILITY IMAP4rev1] Logged in", MT_STATUS_LOGIN_OK);
    line(s, 'C', "a2 SELECT INBOX");
    line(s, 'C', "a3 FETCH 1:3 BODY.PEEK[]");
    s->stats.fetch_count = 3;
    s->stats.fetch_bytes = 80000;
    snprintf(s->stats.mailboxes, sizeof s->stats.mailboxes, "INBOX");
    put(store, s);

    s = session_new(MT_PROTO_SMTP);
    s->direction = MT_OUTBOUND;
    snprintf(s->client_ip, sizeof s->client_ip, "10.0.0.9");
    snprintf(s->server_ip, sizeof s->server_ip, "198.51.100.99");
    s->client_port = 41000;
    s->server_port = 25;
    s->start_us = clock_us = BASE_US + 330 * SEC;
    s->end = MT_END_REFUSED;
    decide_line(s, 'I', "connection refused: SYN answered by RST", MT_STATUS_REFUSED);
    put(store, s);

    /* Escape sequences, sanitized as a decoder stores them. */
    s = smtp(BASE_US + 360 * SEC, MT_INBOUND, "203.0.113.66", "10.0.0.25", "evil.example");
    snprintf(buf, sizeof buf, "mallory%s", evil);
    text_sanitize(s->user, sizeof s->user, buf, strlen(buf));
    snprintf(buf, sizeof buf, "Hello%sWorld", evil);
    m = mail(s, "mallory@evil.example", buf);
    rcpt(s, "bob@example.org", 250, "250 2.1.5 Ok");
    session_transcript_add(s, clock_us += 1000, 'C', buf, strlen(buf));
    decide_line(s, 'S', "550 5.7.1 Message rejected as spam", MT_STATUS_CONTENT_REJECTED);
    m->status = MT_STATUS_CONTENT_REJECTED;
    put(store, s);

    /* Overwritten raw below (user "rawuser..."). */
    s = smtp(BASE_US + 390 * SEC, MT_INBOUND, "203.0.113.67", "10.0.0.25", "raw.example");
    snprintf(s->user, sizeof s->user, "rawuser");
    m = mail(s, "raw@evil.example", "raw subject");
    rcpt(s, "bob@example.org", 550, "550 5.1.1 unknown");
    decide_line(s, 'S', "550 5.1.1 unknown", MT_STATUS_RCPT_REJECTED);
    put(store, s);

    s = smtp(BASE_US + 420 * SEC, MT_INBOUND, "203.0.113.8", "10.0.0.25", "quiet.example");
    decide_line(s, 'I', "connection closed without a transaction", MT_STATUS_NO_MAIL);
    put(store, s);
}

static void exec_sql(const char *path, const char *sql)
{
    sqlite3 *db;
    char *err = NULL;
    if (sqlite3_open(path, &db) != SQLITE_OK ||
        sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        fprintf(stderr, "make_demo_db: %s\n", err ? err : sqlite3_errmsg(db));
        exit(1);
    }
    sqlite3_close(db);
}

static int keep_newest(void *ctx, struct mt_session *session)
{
    *(int64_t *)ctx = session->start_us;
    session_free(session);
    return 1;
}

/* Appends n sessions: newer than everything (--add) or older than everything (--many). */
static void append(struct mt_store *store, long n, bool newer)
{
    struct store_filter f;
    int64_t newest = BASE_US;
    store_filter_init(&f);
    f.limit = 1;
    store_query_sessions(store, &f, keep_newest, &newest);
    for (long i = 1; i <= n; i++) {
        char helo[64], from[64];
        int64_t start = newer ? newest + i * SEC : BASE_US - (n - i + 1) * 10 * SEC;
        snprintf(helo, sizeof helo, "%s%ld.example", newer ? "live" : "bulk", i);
        snprintf(from, sizeof from, "%s%ld@example.net", newer ? "live" : "bulk", i);
        struct mt_session *s = smtp(start, i % 3 ? MT_INBOUND : MT_OUTBOUND, "203.0.113.100",
                                    "10.0.0.25", helo);
        struct mt_message *m = mail(s, from, newer ? "live message" : "bulk message");
        rcpt(s, "bob@example.org", 250, "250 2.1.5 Ok");
        m->status = i % 7 ? MT_STATUS_DELIVERED : MT_STATUS_RCPT_REJECTED;
        decide_line(s, 'S', i % 7 ? "250 2.0.0 Ok: queued" : "550 5.1.1 unknown", m->status);
        put(store, s);
    }
}

int main(int argc, char **argv)
{
    char err[512];
    const char *mode = argc >= 3 ? argv[1] : "";
    const char *path = argv[argc - 1];
    long n = argc == 4 ? atol(argv[2]) : 0;
    bool ok_args = argc == 2 || (argc == 3 && strcmp(mode, "--sensor") == 0) ||
                   (argc == 4 && (strcmp(mode, "--add") == 0 || strcmp(mode, "--many") == 0));
    if (!ok_args) {
        fprintf(stderr, "usage: make_demo_db [--add N | --many N | --sensor] DB\n");
        return 2;
    }
    if (strcmp(mode, "--sensor") == 0) {
        exec_sql(path, "CREATE TABLE IF NOT EXISTS sensor_stats(ts_us INTEGER, packets INTEGER,"
                 " kernel_drops INTEGER, interface_drops INTEGER, sessions INTEGER, source TEXT);"
                 "INSERT INTO sensor_stats(ts_us, packets, kernel_drops, interface_drops,"
                 " sessions, source) VALUES (1767805000000000, 10000, 0, 0, 10, 'eth0'),"
                 " (1767805010000000, 12500, 3, 1, 12, 'eth0');");
        return 0;
    }
    struct mt_store *store = store_open(path, true, err, sizeof err);
    if (!store) {
        fprintf(stderr, "make_demo_db: %s\n", err);
        return 1;
    }
    store_set_batch(store, 5000, 60000);
    if (argc == 4)
        append(store, n, strcmp(mode, "--add") == 0);
    else
        demo(store);
    if (store_close(store) != STORE_OK) {
        fprintf(stderr, "make_demo_db: could not commit\n");
        return 1;
    }
    if (argc == 2) {
        /* Raw bytes straight into the row, bypassing every sanitizer: ESC, BEL, an 8-bit
         * CSI (0x9b) and a C1 character (U+0085). */
        exec_sql(path,
            "UPDATE sessions SET user = 'rawuser' || char(27) || '[2J' || char(27) || ']0;pwned'"
            " || char(7) || CAST(X'9b' AS TEXT) || '31m' || char(133) || 'end',"
            " status_line = 'raw ' || char(27) || '[5m550 5.1.1 unknown'"
            " WHERE user = 'rawuser';"
            "UPDATE messages SET subject = 'raw' || char(27) || ']0;pwned' || char(7) || 'subject'"
            " WHERE mail_from = 'raw@evil.example';"
            "UPDATE transcript SET text = text || '1767805300000000 S rawline ' || char(27) ||"
            " '[2J' || char(27) || ']0;pwned' || char(7) || 'done' || char(10)"
            " WHERE session_id = (SELECT id FROM sessions WHERE helo = 'raw.example');");
    }
    return 0;
}
