/* make_big_db.c — builds a large synthetic database through store_put_session() (so every
 * index and the search table are written the way a capture writes them), for measuring
 * search, count and sort times. Deterministic: the same N gives the same sessions.
 *
 *   make_big_db N DB     creates DB (it must not exist) with N sessions over 30 days:
 *                        70% SMTP (1-3 recipients, a subject), 20% POP3, 10% IMAP; 5,000
 *                        users, a few named ones (carol, dave...) being rare; ~10
 *                        transcript lines per session.
 *
 * Build (from the repository root):
 *   cc -std=c11 -D_DEFAULT_SOURCE -D_GNU_SOURCE -O2 -I. -o /tmp/make_big_db \
 *      tests/ui_data/make_big_db.c store/store.c protocols/session.c protocols/text.c -lsqlite3 */
#include "protocols/session.h"
#include "protocols/text.h"
#include "store/store.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define BASE_US 1767225600000000LL   /* 2026-01-01 00:00:00 UTC */
#define SPAN_US (30LL * 86400 * 1000000)

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint32_t rnd(uint32_t n)   /* splitmix64, reduced to [0, n) */
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return (uint32_t)(z % n);
}

static const char *const words[] = {
    "Quarterly", "report", "invoice", "meeting", "Re:", "Fwd:", "holiday", "photos",
    "contract", "draft", "urgent", "weekly", "update", "budget", "Grüße", "Köln",
    "offer", "order", "shipping", "delay", "résumé", "team", "lunch", "agenda",
    "100%", "discount", "under_score", "\"quoted\"", "it's", "日本語", "project", "release",
};
static const char *const domains[] = {
    "example.org", "example.com", "example.net", "partner.example", "mail.example.test",
};
static const char *const named[] = { "carol", "dave", "alice", "bob", "erin", "frank" };

static void user_name(char *out, size_t cap)
{
    if (rnd(1000) == 0)   /* the named users are rare: about 1 session in 1000 */
        snprintf(out, cap, "%s", named[rnd(6)]);
    else
        snprintf(out, cap, "user%04u", rnd(5000));
}

static void subject(char *out, size_t cap)
{
    size_t len = 0;
    int n = 2 + (int)rnd(4);
    out[0] = '\0';
    for (int i = 0; i < n && len + 1 < cap; i++)
        len += (size_t)snprintf(out + len, cap - len, "%s%s", i ? " " : "",
                                words[rnd(sizeof words / sizeof words[0])]);
}

static void add(struct mt_session *s, int64_t *t, char dir, const char *text)
{
    *t += 1000 + rnd(50000);
    session_transcript_add(s, *t, dir, text, strlen(text));
}

static struct mt_session *make_smtp(int64_t start)
{
    static const enum mt_status statuses[] = {
        MT_STATUS_DELIVERED, MT_STATUS_DELIVERED, MT_STATUS_DELIVERED, MT_STATUS_DELIVERED,
        MT_STATUS_DELIVERED, MT_STATUS_DELIVERED, MT_STATUS_RCPT_REJECTED,
        MT_STATUS_TEMP_FAILED, MT_STATUS_RELAY_DENIED, MT_STATUS_AUTH_FAILED,
    };
    struct mt_session *s = session_new(MT_PROTO_SMTP);
    char buf[512], user[64], helo[128], from[128];
    int64_t t = start;
    enum mt_status st = statuses[rnd(10)];
    s->direction = rnd(3) ? MT_INBOUND : MT_OUTBOUND;
    snprintf(s->client_ip, sizeof s->client_ip, "%u.%u.%u.%u", 1 + rnd(223), rnd(256),
             rnd(256), 1 + rnd(254));
    snprintf(s->server_ip, sizeof s->server_ip, "10.0.%u.%u", rnd(4), 1 + rnd(30));
    s->client_port = (uint16_t)(30000 + rnd(30000));
    s->server_port = rnd(4) ? 25 : 587;
    s->start_us = start;
    s->end = MT_END_CLOSE;
    snprintf(helo, sizeof helo, "host%u.%s", rnd(20000), domains[rnd(5)]);
    snprintf(s->helo, sizeof s->helo, "%s", helo);
    snprintf(s->banner, sizeof s->banner, "220 mx%u.example.org ESMTP Postfix", rnd(4));
    snprintf(s->server_name, sizeof s->server_name, "mx.example.org");
    add(s, &t, 'S', s->banner);
    snprintf(buf, sizeof buf, "EHLO %s", helo);
    add(s, &t, 'C', buf);
    add(s, &t, 'S', "250 mx.example.org");
    if (s->server_port == 587 || st == MT_STATUS_AUTH_FAILED) {
        user_name(user, sizeof user);
        snprintf(s->user, sizeof s->user, "%s", user);
        s->auth_attempts = 1;
        add(s, &t, 'C', "AUTH PLAIN *****");
        if (st == MT_STATUS_AUTH_FAILED) {
            s->auth_failures = 1;
            const char *line = "535 5.7.8 Error: authentication failed";
            session_decide(s, st, line, strlen(line), session_transcript_add(s, t, 'S', line,
                                                                             strlen(line)));
            s->end_us = t + 1000;
            return s;
        }
        add(s, &t, 'S', "235 2.7.0 Authentication successful");
    }
    snprintf(from, sizeof from, "%s%u@%s", rnd(2) ? "news" : "person", rnd(50000),
             domains[rnd(5)]);
    struct mt_message *m = session_add_message(s);
    session_text_setf(&m->mail_from, MT_MSG_MAIL_FROM_MAX, "%s", from);
    subject(buf, sizeof buf);
    session_text_set(&m->subject, MT_MSG_SUBJECT_MAX, buf, strlen(buf));
    session_text_setf(&m->message_id, MT_MSG_MESSAGE_ID_MAX, "<%u.%u@%s>", rnd(1000000),
                      rnd(1000000), domains[rnd(5)]);
    m->start_us = t;
    snprintf(buf, sizeof buf, "MAIL FROM:<%s>", from);
    add(s, &t, 'C', buf);
    add(s, &t, 'S', "250 2.1.0 Ok");
    int rcpts = 1 + (int)rnd(3);
    for (int i = 0; i < rcpts; i++) {
        struct mt_recipient *r = session_add_recipient(s);
        char to[64];
        user_name(to, sizeof to);
        session_text_setf(&r->addr, MT_RCPT_ADDR_MAX, "%s@%s", to, domains[rnd(5)]);
        r->message = 0;
        bool ok = st == MT_STATUS_DELIVERED || (st == MT_STATUS_TEMP_FAILED && i);
        r->code = ok ? 250 : st == MT_STATUS_TEMP_FAILED ? 450 : st == MT_STATUS_RELAY_DENIED
                  ? 554 : 550;
        r->accepted = ok;
        session_text_setf(&r->reply, MT_RCPT_REPLY_MAX, "%d %s", r->code, ok ? "2.1.5 Ok" :
                          r->code == 450 ? "4.7.1 Greylisted" : r->code == 554 ?
                          "5.7.1 Relay access denied" : "5.1.1 User unknown");
        snprintf(buf, sizeof buf, "RCPT TO:<%s>", mt_str(r->addr));
        add(s, &t, 'C', buf);
        add(s, &t, 'S', mt_str(r->reply));
    }
    const char *line;
    if (st == MT_STATUS_DELIVERED) {
        add(s, &t, 'C', "DATA");
        add(s, &t, 'S', "354 End data with <CR><LF>.<CR><LF>");
        m->size = 1000 + rnd(200000);
        snprintf(buf, sizeof buf, "[message %llu bytes]", (unsigned long long)m->size);
        add(s, &t, 'I', buf);
        session_text_setf(&m->reply, MT_MSG_REPLY_MAX, "250 2.0.0 Ok: queued as %X",
                          rnd(0x7fffffff));
        m->reply_code = 250;
        line = mt_str(m->reply);
    } else {
        line = mt_str(s->recipients[s->recipient_count - 1].reply);
    }
    m->status = st;
    session_decide(s, st, line, strlen(line), session_transcript_add(s, t, 'S', line,
                                                                     strlen(line)));
    add(s, &t, 'C', "QUIT");
    add(s, &t, 'S', "221 2.0.0 Bye");
    s->end_us = t + 1000;
    s->bytes_c2s = 500 + m->size;
    s->bytes_s2c = 400;
    return s;
}

static struct mt_session *make_mailbox(int64_t start, enum mt_proto proto)
{
    struct mt_session *s = session_new(proto);
    char buf[256], user[64];
    int64_t t = start;
    bool ok = rnd(10) != 0;
    s->direction = MT_INBOUND;
    snprintf(s->client_ip, sizeof s->client_ip, "192.168.%u.%u", rnd(8), 1 + rnd(254));
    snprintf(s->server_ip, sizeof s->server_ip, "10.0.0.5");
    s->client_port = (uint16_t)(30000 + rnd(30000));
    s->server_port = proto == MT_PROTO_POP3 ? 110 : 143;
    s->start_us = start;
    s->end = MT_END_CLOSE;
    user_name(user, sizeof user);
    snprintf(s->user, sizeof s->user, "%s", user);
    snprintf(s->banner, sizeof s->banner, proto == MT_PROTO_POP3 ? "+OK Dovecot ready."
             : "* OK [CAPABILITY IMAP4rev1] Dovecot ready.");
    add(s, &t, 'S', s->banner);
    snprintf(buf, sizeof buf, proto == MT_PROTO_POP3 ? "USER %s" : "a1 LOGIN %s *****", user);
    add(s, &t, 'C', buf);
    if (proto == MT_PROTO_POP3) {
        add(s, &t, 'S', "+OK");
        add(s, &t, 'C', "PASS *****");
    }
    s->auth_attempts = 1;
    const char *line = ok ? (proto == MT_PROTO_POP3 ? "+OK Logged in." : "a1 OK Logged in")
                          : (proto == MT_PROTO_POP3 ? "-ERR [AUTH] Authentication failed."
                                                    : "a1 NO [AUTHENTICATIONFAILED] "
                                                      "Authentication failed.");
    s->auth_failures = ok ? 0 : 1;
    session_decide(s, ok ? MT_STATUS_LOGIN_OK : MT_STATUS_AUTH_FAILED, line, strlen(line),
                   session_transcript_add(s, t, 'S', line, strlen(line)));
    if (ok && proto == MT_PROTO_POP3) {
        s->stats.retr_count = rnd(5);
        s->stats.retr_bytes = s->stats.retr_count * (1000 + rnd(50000));
        for (uint64_t i = 0; i < s->stats.retr_count; i++) {
            snprintf(buf, sizeof buf, "RETR %llu", (unsigned long long)i + 1);
            add(s, &t, 'C', buf);
        }
    } else if (ok) {
        add(s, &t, 'C', "a2 SELECT INBOX");
        add(s, &t, 'S', "a2 OK [READ-WRITE] Select completed.");
        snprintf(s->stats.mailboxes, sizeof s->stats.mailboxes, "INBOX");
    }
    add(s, &t, 'C', proto == MT_PROTO_POP3 ? "QUIT" : "a9 LOGOUT");
    s->end_us = t + 1000;
    return s;
}

int main(int argc, char **argv)
{
    char err[512];
    struct stat sb;
    if (argc != 3 || atol(argv[1]) <= 0) {
        fprintf(stderr, "usage: make_big_db N DB\n");
        return 2;
    }
    long n = atol(argv[1]);
    if (stat(argv[2], &sb) == 0) {
        fprintf(stderr, "make_big_db: %s exists\n", argv[2]);
        return 2;
    }
    struct mt_store *store = store_open(argv[2], true, err, sizeof err);
    if (!store) {
        fprintf(stderr, "make_big_db: %s\n", err);
        return 1;
    }
    store_set_batch(store, 20000, 600000);
    for (long i = 0; i < n; i++) {
        int64_t start = BASE_US + (int64_t)((double)SPAN_US * (double)i / (double)n);
        uint32_t kind = rnd(10);
        struct mt_session *s = kind < 7 ? make_smtp(start)
                             : make_mailbox(start, kind < 9 ? MT_PROTO_POP3 : MT_PROTO_IMAP);
        if (store_put_session(store, s) != STORE_OK) {
            fprintf(stderr, "make_big_db: %s\n", store_error(store));
            return 1;
        }
        session_free(s);
    }
    if (store_close(store) != STORE_OK) {
        fprintf(stderr, "make_big_db: could not commit\n");
        return 1;
    }
    return 0;
}
