/* test_store.c — the SQLite store and the CLI output: sessions built by hand (no capture
 * involved) are stored in a temporary database, queried with every filter, loaded back
 * field by field, and printed as table, JSON and detail view. Also: read-only open of a
 * missing file, schema version refusal, a simulated full disk, batch visibility, retention
 * (store_prune) by age and by size, and capture statistics read back. */
#include "cli/output.h"
#include "protocols/explain.h"
#include "protocols/session.h"
#include "store/search_build.h"
#include "store/store.h"
#include "store/writer.h"
#include "ui/summary_model.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#define T_SMTP 1767804855123456LL     /* 2026-01-07 16:54:15.123456 UTC */
#define T_POP3 1767881913000000LL     /* 2026-01-08 14:18:33 UTC */
#define T_REFUSED 1767804060000000LL  /* 2026-01-07 16:41:00 UTC */

struct fixture {
    char dir[64];
    char path[96];
};

/* ---- sessions built by hand ----------------------------------------------------------- */

static void add_line(struct mt_session *s, int64_t ts, char dir, const char *text)
{
    assert_true(session_transcript_add(s, ts, dir, text, strlen(text)) >= 0);
}

static struct mt_recipient *add_rcpt(struct mt_session *s, const char *addr, int code,
                                     const char *reply, bool accepted, int message)
{
    struct mt_recipient *r = session_add_recipient(s);
    assert_non_null(r);
    session_text_setf(&r->addr, MT_RCPT_ADDR_MAX, "%s", addr);
    r->code = code;
    session_text_setf(&r->reply, MT_RCPT_REPLY_MAX, "%s", reply);
    r->accepted = accepted;
    r->message = message;
    return r;
}

/* Inbound SMTP: two transactions, three recipients (one rejected). */
static struct mt_session *make_smtp(void)
{
    struct mt_session *s = session_new(MT_PROTO_SMTP);
    struct mt_message *m;
    int64_t t = T_SMTP;
    s->direction = MT_INBOUND;
    strcpy(s->client_ip, "59.124.36.164");
    strcpy(s->server_ip, "59.124.36.165");
    s->client_port = 50123;
    s->server_port = 25;
    s->start_us = t;
    s->end_us = t + 877544;
    s->bytes_c2s = 5432;
    s->bytes_s2c = 987;
    strcpy(s->banner, "220 nusec.com.tw ESMTP SMTPProxy");
    strcpy(s->server_name, "nusec.com.tw");
    strcpy(s->helo, "nusoft.com.tw");
    s->tls = true;
    s->flags = MT_FLAG_LINE_TRUNCATED | MT_FLAG_PROTOCOL_ERROR;
    s->end = MT_END_CLOSE;
    add_line(s, t, 'S', "220 nusec.com.tw ESMTP SMTPProxy");
    add_line(s, t + 1000, 'C', "EHLO nusoft.com.tw");
    add_line(s, t + 2000, 'S', "250 OK");
    add_line(s, t + 3000, 'C', "MAIL FROM:<alex@nusoft.com.tw> SIZE=2678");
    add_line(s, t + 4000, 'C', "RCPT TO:<ajx@nusec.com.tw>");
    add_line(s, t + 5000, 'C', "RCPT TO:<bob@nusec.com.tw>");
    add_line(s, t + 6000, 'S', "550 5.1.1 <bob@nusec.com.tw>: User unknown");
    add_line(s, t + 7000, 'I', "[message 2678 bytes]");
    add_line(s, t + 8000, 'S', "250 2.0.0 Ok: queued as ABC\x1b[2J");   /* sanitized */
    m = session_add_message(s);
    session_text_setf(&m->mail_from, MT_MSG_MAIL_FROM_MAX, "alex@nusoft.com.tw");
    session_text_setf(&m->header_from, MT_MSG_HEADER_FROM_MAX, "Alex <alex@nusoft.com.tw>");
    session_text_setf(&m->header_to, MT_MSG_HEADER_TO_MAX, "ajx@nusec.com.tw, bob@nusec.com.tw");
    session_text_setf(&m->subject, MT_MSG_SUBJECT_MAX,
                      "Quarterly report \xe5\xa0\xb1\xe5\x91\x8a");   /* 報告 */
    session_text_setf(&m->date, MT_MSG_DATE_MAX, "Wed, 07 Jan 2026 16:54:14 +0800");
    session_text_setf(&m->message_id, MT_MSG_MESSAGE_ID_MAX, "<abc@nusoft.com.tw>");
    m->size = 2678;
    m->reply_code = 250;
    session_text_setf(&m->reply, MT_MSG_REPLY_MAX, "250 2.0.0 Ok: queued as ABC");
    m->status = MT_STATUS_PARTIAL;
    m->start_us = t + 3000;
    add_rcpt(s, "ajx@nusec.com.tw", 250, "250 2.1.5 Ok", true, 0);
    add_rcpt(s, "bob@nusec.com.tw", 550, "550 5.1.1 User unknown", false, 0);
    m = session_add_message(s);
    /* mail_from stays NULL, "": the null sender, a bounce */
    session_text_setf(&m->subject, MT_MSG_SUBJECT_MAX, "Undelivered Mail");
    m->size = 100;
    m->reply_code = 250;
    session_text_setf(&m->reply, MT_MSG_REPLY_MAX, "250 Ok");
    m->status = MT_STATUS_DELIVERED;
    m->start_us = t + 9000;
    add_rcpt(s, "carol@nusec.com.tw", 250, "250 2.1.5 Ok", true, 1);
    session_decide(s, MT_STATUS_PARTIAL, "550 5.1.1 <bob@nusec.com.tw>: User unknown", 42, 6);
    return s;
}

/* POP3 retrieval with Dovecot-like counters. */
static struct mt_session *make_pop3(void)
{
    struct mt_session *s = session_new(MT_PROTO_POP3);
    int64_t t = T_POP3;
    s->direction = MT_INBOUND;
    strcpy(s->client_ip, "59.124.36.164");
    strcpy(s->server_ip, "10.0.0.5");
    s->client_port = 40001;
    s->server_port = 110;
    s->start_us = t;
    s->end_us = t + 250000;
    strcpy(s->banner, "+OK Dovecot Xi ready.");
    strcpy(s->user, "alex");
    s->auth_attempts = 1;
    s->end = MT_END_CLOSE;
    s->stats.retr_count = 2;
    s->stats.retr_bytes = 51118;
    s->stats.dele_count = 2;
    s->stats.stat_messages = 129;
    s->stats.stat_bytes = 53438974;
    add_line(s, t, 'S', "+OK Dovecot Xi ready.");
    add_line(s, t + 100, 'C', "USER alex");
    add_line(s, t + 200, 'S', "+OK");
    add_line(s, t + 300, 'C', "PASS ****");
    int decided = session_transcript_add(s, t + 400, 'S', "+OK Logged in.", 14);
    session_decide(s, MT_STATUS_LOGIN_OK, "+OK Logged in.", 14, decided);
    return s;
}

/* Outbound SMTP attempt answered by RST. */
static struct mt_session *make_refused(void)
{
    struct mt_session *s = session_new(MT_PROTO_SMTP);
    s->direction = MT_OUTBOUND;
    strcpy(s->client_ip, "192.168.1.10");
    strcpy(s->server_ip, "203.0.113.5");
    s->client_port = 33333;
    s->server_port = 25;
    s->start_us = T_REFUSED;
    s->end_us = T_REFUSED + 1500;
    s->end = MT_END_REFUSED;
    session_decide(s, MT_STATUS_REFUSED, "connection refused (RST)", 24, -1);
    return s;
}

/* ---- comparing ------------------------------------------------------------------------ */

static void assert_session_equal(const struct mt_session *a, const struct mt_session *b,
                                 bool transcript)
{
    assert_int_equal(a->id, b->id);
    assert_int_equal(a->proto, b->proto);
    assert_int_equal(a->direction, b->direction);
    assert_string_equal(a->client_ip, b->client_ip);
    assert_string_equal(a->server_ip, b->server_ip);
    assert_int_equal(a->client_port, b->client_port);
    assert_int_equal(a->server_port, b->server_port);
    assert_int_equal(a->start_us, b->start_us);
    assert_int_equal(a->end_us, b->end_us);
    assert_int_equal(a->bytes_c2s, b->bytes_c2s);
    assert_int_equal(a->bytes_s2c, b->bytes_s2c);
    assert_string_equal(a->banner, b->banner);
    assert_string_equal(a->server_name, b->server_name);
    assert_string_equal(a->helo, b->helo);
    assert_string_equal(a->user, b->user);
    assert_int_equal(a->tls, b->tls);
    assert_int_equal(a->auth_attempts, b->auth_attempts);
    assert_int_equal(a->auth_failures, b->auth_failures);
    assert_int_equal(a->status, b->status);
    assert_string_equal(a->status_line, b->status_line);
    assert_int_equal(a->status_transcript_line, b->status_transcript_line);
    assert_int_equal(a->end, b->end);
    assert_int_equal(a->flags, b->flags);
    assert_int_equal(a->recipients_dropped, b->recipients_dropped);
    assert_int_equal(a->messages_dropped, b->messages_dropped);
    assert_int_equal(a->transcript_lines, b->transcript_lines);
    assert_int_equal(a->transcript_dropped, b->transcript_dropped);
    assert_int_equal(a->recipient_count, b->recipient_count);
    for (size_t i = 0; i < a->recipient_count; i++) {
        const struct mt_recipient *x = &a->recipients[i], *y = &b->recipients[i];
        assert_string_equal(mt_str(x->addr), mt_str(y->addr));
        assert_int_equal(x->code, y->code);
        assert_string_equal(mt_str(x->reply), mt_str(y->reply));
        assert_int_equal(x->accepted, y->accepted);
        assert_int_equal(x->message, y->message);
    }
    assert_int_equal(a->message_count, b->message_count);
    for (size_t i = 0; i < a->message_count; i++) {
        const struct mt_message *x = &a->messages[i], *y = &b->messages[i];
        assert_string_equal(mt_str(x->mail_from), mt_str(y->mail_from));
        assert_string_equal(mt_str(x->header_from), mt_str(y->header_from));
        assert_string_equal(mt_str(x->header_to), mt_str(y->header_to));
        assert_string_equal(mt_str(x->subject), mt_str(y->subject));
        assert_string_equal(mt_str(x->date), mt_str(y->date));
        assert_string_equal(mt_str(x->message_id), mt_str(y->message_id));
        assert_int_equal(x->size, y->size);
        assert_int_equal(x->reply_code, y->reply_code);
        assert_string_equal(mt_str(x->reply), mt_str(y->reply));
        assert_int_equal(x->status, y->status);
        assert_int_equal(x->start_us, y->start_us);
    }
    const struct mt_mailbox_stats *p = &a->stats, *q = &b->stats;
    assert_int_equal(p->retr_count, q->retr_count);
    assert_int_equal(p->retr_bytes, q->retr_bytes);
    assert_int_equal(p->top_count, q->top_count);
    assert_int_equal(p->dele_count, q->dele_count);
    assert_int_equal(p->stat_messages, q->stat_messages);
    assert_int_equal(p->stat_bytes, q->stat_bytes);
    assert_int_equal(p->fetch_count, q->fetch_count);
    assert_int_equal(p->fetch_bytes, q->fetch_bytes);
    assert_int_equal(p->append_count, q->append_count);
    assert_int_equal(p->append_bytes, q->append_bytes);
    assert_int_equal(p->expunge_count, q->expunge_count);
    assert_int_equal(p->deleted_flagged, q->deleted_flagged);
    assert_int_equal(p->idled, q->idled);
    assert_string_equal(p->mailboxes, q->mailboxes);
    if (transcript) {
        assert_int_equal(a->transcript_len, b->transcript_len);
        if (a->transcript_len)
            assert_memory_equal(a->transcript, b->transcript, a->transcript_len);
    } else {
        assert_null(b->transcript);
    }
}

/* ---- store helpers -------------------------------------------------------------------- */

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    strcpy(f->dir, "/tmp/mailtap-test-XXXXXX");
    if (!f || !mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof f->path, "%s/t.db", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    const char *suffixes[] = { "", "-wal", "-shm", "-journal" };
    char path[128];
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        snprintf(path, sizeof path, "%s%s", f->path, suffixes[i]);
        unlink(path);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

static struct mt_store *open_store(const struct fixture *f, bool writable)
{
    char err[512] = "";
    struct mt_store *store = store_open(f->path, writable, err, sizeof err);
    if (!store)
        fail_msg("store_open: %s", err);
    return store;
}

/* Stores the three sample sessions (ids set in them); the caller frees them. */
static void put_samples(struct mt_store *store, struct mt_session *s[3])
{
    s[0] = make_refused();
    s[1] = make_smtp();
    s[2] = make_pop3();
    for (int i = 0; i < 3; i++)
        assert_int_equal(store_put_session(store, s[i]), STORE_OK);
    assert_int_equal(store_flush(store), STORE_OK);
    assert_true(s[0]->id > 0 && s[1]->id > s[0]->id && s[2]->id > s[1]->id);
}

static void free_samples(struct mt_session *s[3])
{
    for (int i = 0; i < 3; i++)
        session_free(s[i]);
}

/* Collects query results (up to 8). */
struct results {
    struct mt_session *s[8];
    int n;
};

static int collect(void *ctx, struct mt_session *session)
{
    struct results *r = ctx;
    if (r->n < 8)
        r->s[r->n++] = session;
    else
        session_free(session);
    return 0;
}

static void results_free(struct results *r)
{
    for (int i = 0; i < r->n; i++)
        session_free(r->s[i]);
    r->n = 0;
}

/* Runs the filter and returns the ids found, as "id,id,..." in order. */
static const char *query_ids(struct mt_store *store, const struct store_filter *filter)
{
    static char ids[128];
    struct results r = { .n = 0 };
    int n = store_query_sessions(store, filter, collect, &r);
    size_t len = 0;
    assert_int_equal(n, r.n);
    ids[0] = '\0';
    for (int i = 0; i < r.n; i++)
        len += (size_t)snprintf(ids + len, sizeof ids - len, "%s%lld", i ? "," : "",
                                (long long)r.s[i]->id);
    results_free(&r);
    return ids;
}

static char *ids_of(const struct mt_session *a, const struct mt_session *b)
{
    static char ids[64];
    if (b)
        snprintf(ids, sizeof ids, "%lld,%lld", (long long)a->id, (long long)b->id);
    else
        snprintf(ids, sizeof ids, "%lld", (long long)a->id);
    return ids;
}

/* ---- minimal JSON validator ----------------------------------------------------------- */

static const char *json_value(const char *p);

static const char *json_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

static const char *json_string_end(const char *p)
{
    if (*p++ != '"')
        return NULL;
    while (*p != '"') {
        if ((unsigned char)*p < 0x20)
            return NULL;            /* raw control byte (or the end of the text) */
        if (*p == '\\') {
            p++;
            if (*p == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (!strchr("0123456789abcdefABCDEF", p[i]) || !p[i])
                        return NULL;
                p += 4;
            } else if (!*p || !strchr("\"\\/bfnrt", *p)) {
                return NULL;
            }
        }
        p++;
    }
    return p + 1;
}

static const char *json_number_end(const char *p)
{
    const char *start;
    if (*p == '-')
        p++;
    start = p;
    while (*p >= '0' && *p <= '9')
        p++;
    if (p == start)
        return NULL;
    if (*p == '.') {
        start = ++p;
        while (*p >= '0' && *p <= '9')
            p++;
        if (p == start)
            return NULL;
    }
    return p;
}

static const char *json_members(const char *p, char close, bool keys)
{
    p = json_ws(p + 1);
    if (*p == close)
        return p + 1;
    for (;;) {
        if (keys) {
            if (!(p = json_string_end(json_ws(p))))
                return NULL;
            p = json_ws(p);
            if (*p++ != ':')
                return NULL;
        }
        if (!(p = json_value(p)))
            return NULL;
        p = json_ws(p);
        if (*p == close)
            return p + 1;
        if (*p++ != ',')
            return NULL;
    }
}

static const char *json_value(const char *p)
{
    p = json_ws(p);
    switch (*p) {
    case '{': return json_members(p, '}', true);
    case '[': return json_members(p, ']', false);
    case '"': return json_string_end(p);
    case 't': return strncmp(p, "true", 4) ? NULL : p + 4;
    case 'f': return strncmp(p, "false", 5) ? NULL : p + 5;
    case 'n': return strncmp(p, "null", 4) ? NULL : p + 4;
    default: return json_number_end(p);
    }
}

/* True when text is exactly one JSON value followed by one newline. */
static bool json_line_valid(const char *text)
{
    const char *end = json_value(text);
    return end && end[0] == '\n' && end[1] == '\0';
}

/* Runs a printer into a string (caller frees). */
static char *capture(void (*print)(FILE *, const struct mt_session *), const struct mt_session *s)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    assert_non_null(out);
    print(out, s);
    fclose(out);
    return buf;
}

/* ---- tests ---------------------------------------------------------------------------- */

static void test_roundtrip(void **state)
{
    struct fixture *f = *state;
    struct mt_store *store = open_store(f, true);
    struct mt_session *s[3];
    struct store_filter filter;
    struct results r = { .n = 0 };
    put_samples(store, s);
    store_filter_init(&filter);
    filter.oldest_first = true;
    filter.with_transcript = true;
    assert_int_equal(store_query_sessions(store, &filter, collect, &r), 3);
    for (int i = 0; i < 3; i++)
        assert_session_equal(s[i], r.s[i], true);
    results_free(&r);
    /* without transcript, from a second (read-only) connection */
    struct mt_store *reader = open_store(f, false);
    filter.with_transcript = false;
    assert_int_equal(store_query_sessions(reader, &filter, collect, &r), 3);
    for (int i = 0; i < 3; i++)
        assert_session_equal(s[i], r.s[i], false);
    results_free(&r);
    /* a read-only store refuses writes with a clear code */
    assert_int_equal(store_put_session(reader, s[0]), STORE_READONLY);
    assert_non_null(strstr(store_error(reader), "read-only"));
    assert_int_equal(store_close(reader), STORE_OK);
    assert_int_equal(store_close(store), STORE_OK);
    free_samples(s);
}

/* TLS and DNS facts are allocated only by the sessions that have them: a session without
 * reads as empty, and loading gives each record back to the rows that had one. */
static void test_tls_dns_facts(void **state)
{
    struct fixture *f = *state;
    struct mt_store *store = open_store(f, true);
    struct mt_session *s[3] = { make_refused(), make_smtp(), session_new(MT_PROTO_DNS) };
    struct store_filter filter;
    struct results r = { .n = 0 };
    assert_null(s[0]->tls_info);
    assert_null(s[0]->dns);
    assert_string_equal(session_tls(s[0])->outcome, "");   /* never NULL */
    assert_string_equal(session_dns(s[0])->qname, "");
    struct mt_tls_info *tls = session_tls_alloc(s[1]);
    assert_non_null(tls);
    assert_ptr_equal(session_tls_alloc(s[1]), tls);        /* the same one after */
    assert_ptr_equal(session_tls(s[1]), tls);
    strcpy(tls->version, "TLSv1.2");
    strcpy(tls->client_versions, "TLSv1.0-1.3");
    strcpy(tls->cipher, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256");
    strcpy(tls->sni, "mail.nusec.com.tw");
    strcpy(tls->subject, "nusec.com.tw");
    strcpy(tls->issuer, "R3");
    strcpy(tls->sans, "nusec.com.tw, mail.nusec.com.tw");
    tls->not_before = 1760000000;
    tls->not_after = 1767800000;
    strcpy(tls->alert, "certificate_expired from the client");
    strcpy(tls->outcome, "failed");
    struct mt_dns_info *dns = session_dns_alloc(s[2]);
    assert_non_null(dns);
    s[2]->direction = MT_OUTBOUND;
    s[2]->start_us = T_POP3 + 1;
    strcpy(dns->qname, "nusec.com.tw");
    strcpy(dns->qtype, "MX");
    strcpy(dns->rcode, "NOERROR");
    strcpy(dns->answers, "10 mail.nusec.com.tw");
    dns->response_us = 12345;
    const char *line = "MX nusec.com.tw: 10 mail.nusec.com.tw";
    session_decide(s[2], MT_STATUS_RESOLVED, line, strlen(line), -1);
    for (int i = 0; i < 3; i++)
        assert_int_equal(store_put_session(store, s[i]), STORE_OK);
    assert_int_equal(store_flush(store), STORE_OK);
    store_filter_init(&filter);
    filter.oldest_first = true;
    assert_int_equal(store_query_sessions(store, &filter, collect, &r), 3);
    for (int i = 0; i < 3; i++)
        assert_session_equal(s[i], r.s[i], false);
    assert_null(r.s[0]->tls_info);
    assert_null(r.s[0]->dns);
    assert_null(r.s[1]->dns);
    const struct mt_tls_info *t = r.s[1]->tls_info;
    assert_non_null(t);
    assert_string_equal(t->version, tls->version);
    assert_string_equal(t->client_versions, tls->client_versions);
    assert_string_equal(t->cipher, tls->cipher);
    assert_string_equal(t->sni, tls->sni);
    assert_string_equal(t->subject, tls->subject);
    assert_string_equal(t->issuer, tls->issuer);
    assert_string_equal(t->sans, tls->sans);
    assert_int_equal(t->not_before, tls->not_before);
    assert_int_equal(t->not_after, tls->not_after);
    assert_string_equal(t->alert, tls->alert);
    assert_string_equal(t->outcome, tls->outcome);
    assert_null(r.s[2]->tls_info);
    const struct mt_dns_info *d = r.s[2]->dns;
    assert_non_null(d);
    assert_string_equal(d->qname, dns->qname);
    assert_string_equal(d->qtype, dns->qtype);
    assert_string_equal(d->rcode, dns->rcode);
    assert_string_equal(d->answers, dns->answers);
    assert_int_equal(d->response_us, dns->response_us);
    results_free(&r);
    /* A DNS row holds its lookup even when nothing came back. */
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "UPDATE sessions SET dns_qname = '', dns_qtype = '',"
                                  " dns_rcode = '', dns_answers = '', dns_response_us = 0"
                                  " WHERE proto = 'dns'", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    filter.proto = MT_PROTO_DNS;
    assert_int_equal(store_query_sessions(store, &filter, collect, &r), 1);
    assert_non_null(r.s[0]->dns);
    assert_string_equal(r.s[0]->dns->qname, "");
    results_free(&r);
    assert_int_equal(store_close(store), STORE_OK);
    free_samples(s);
}

static void test_filters(void **state)
{
    struct fixture *f = *state;
    struct mt_store *store = open_store(f, true);
    struct mt_session *s[3];   /* refused (oldest), smtp, pop3 (newest) */
    struct store_filter q;
    put_samples(store, s);
    char all_new[64], all_old[64];
    snprintf(all_new, sizeof all_new, "%lld,%lld,%lld", (long long)s[2]->id,
             (long long)s[1]->id, (long long)s[0]->id);
    snprintf(all_old, sizeof all_old, "%lld,%lld,%lld", (long long)s[0]->id,
             (long long)s[1]->id, (long long)s[2]->id);

    store_filter_init(&q);
    assert_string_equal(query_ids(store, &q), all_new);
    q.oldest_first = true;
    assert_string_equal(query_ids(store, &q), all_old);

    store_filter_init(&q);
    q.proto = MT_PROTO_POP3;
    assert_string_equal(query_ids(store, &q), ids_of(s[2], NULL));
    q.proto = MT_PROTO_SMTP;
    assert_string_equal(query_ids(store, &q), ids_of(s[1], s[0]));
    q.direction = MT_OUTBOUND;
    assert_string_equal(query_ids(store, &q), ids_of(s[0], NULL));
    q.proto = MT_PROTO_IMAP;
    assert_string_equal(query_ids(store, &q), "");

    store_filter_init(&q);
    q.status = MT_STATUS_REFUSED;
    assert_string_equal(query_ids(store, &q), ids_of(s[0], NULL));
    q.status = MT_STATUS_UNKNOWN;
    assert_string_equal(query_ids(store, &q), "");

    store_filter_init(&q);
    q.failed_only = true;   /* partial and refused; login_ok is not a failure */
    assert_string_equal(query_ids(store, &q), ids_of(s[1], s[0]));

    store_filter_init(&q);
    q.grep = "QUARTERLY";   /* a subject, case-insensitively */
    assert_string_equal(query_ids(store, &q), ids_of(s[1], NULL));
    q.grep = "報告";
    assert_string_equal(query_ids(store, &q), ids_of(s[1], NULL));
    q.grep = "59.124.36.164";
    assert_string_equal(query_ids(store, &q), ids_of(s[2], s[1]));
    q.grep = "203.0.113";
    assert_string_equal(query_ids(store, &q), ids_of(s[0], NULL));
    q.grep = "carol@";      /* a recipient */
    assert_string_equal(query_ids(store, &q), ids_of(s[1], NULL));
    q.grep = "%";           /* LIKE wildcards are literal */
    assert_string_equal(query_ids(store, &q), "");
    q.grep = "alex";        /* user of one, sender of the other */
    assert_string_equal(query_ids(store, &q), ids_of(s[2], s[1]));
    q.grep = "alex'; DROP TABLE sessions; --";
    assert_string_equal(query_ids(store, &q), "");
    assert_int_equal(store_count_sessions(store, NULL), 3);   /* still there */

    store_filter_init(&q);
    q.since_us = T_SMTP;
    assert_string_equal(query_ids(store, &q), ids_of(s[2], s[1]));
    q.until_us = T_POP3;    /* exclusive */
    assert_string_equal(query_ids(store, &q), ids_of(s[1], NULL));
    q.since_us = 0;
    q.until_us = T_SMTP;
    assert_string_equal(query_ids(store, &q), ids_of(s[0], NULL));

    store_filter_init(&q);
    q.limit = 1;
    assert_string_equal(query_ids(store, &q), ids_of(s[2], NULL));
    q.offset = 1;
    assert_string_equal(query_ids(store, &q), ids_of(s[1], NULL));
    q.limit = 0;
    assert_string_equal(query_ids(store, &q), ids_of(s[1], s[0]));
    q.offset = 0;
    q.limit = 2;
    q.oldest_first = true;
    q.proto = MT_PROTO_SMTP;
    q.failed_only = true;
    assert_string_equal(query_ids(store, &q), ids_of(s[0], s[1]));

    /* counting ignores limit, offset and order */
    q.limit = 1;
    q.offset = 1;
    assert_int_equal(store_count_sessions(store, &q), 2);
    q.grep = "quarterly";
    assert_int_equal(store_count_sessions(store, &q), 1);
    q.since_us = T_POP3;
    assert_int_equal(store_count_sessions(store, &q), 0);

    assert_int_equal(store_close(store), STORE_OK);
    free_samples(s);
}

static int stop_after_one(void *ctx, struct mt_session *session)
{
    (*(int *)ctx)++;
    session_free(session);
    return 1;
}

static void test_load_and_stop(void **state)
{
    struct fixture *f = *state;
    struct mt_store *store = open_store(f, true);
    struct mt_session *s[3], *loaded = NULL;
    struct store_filter q;
    int calls = 0;
    put_samples(store, s);
    assert_int_equal(store_load_session(store, s[1]->id, &loaded), STORE_OK);
    assert_session_equal(s[1], loaded, true);
    assert_non_null(strstr(loaded->transcript, "queued as ABC\\x1b[2J"));
    session_free(loaded);
    assert_int_equal(store_load_session(store, 9999, &loaded), STORE_NOT_FOUND);
    assert_null(loaded);
    assert_non_null(strstr(store_error(store), "9999"));
    store_filter_init(&q);
    assert_int_equal(store_query_sessions(store, &q, stop_after_one, &calls), 1);
    assert_int_equal(calls, 1);
    assert_int_equal(store_close(store), STORE_OK);
    free_samples(s);
}

static void test_json(void **state)
{
    (void)state;
    struct mt_session *smtp = make_smtp(), *pop = make_pop3(), *refused = make_refused();
    smtp->id = 7;
    pop->id = 8;
    refused->id = 9;
    char *json = capture(output_json, smtp);
    assert_true(json_line_valid(json));
    assert_non_null(strstr(json, "{\"id\":7,\"proto\":\"smtp\",\"direction\":\"in\","
                                 "\"client_ip\":\"59.124.36.164\",\"client_port\":50123,"));
    assert_non_null(strstr(json, "\"start\":\"2026-01-07T16:54:15.123456Z\","
                                 "\"start_ts\":1767804855.123456,\"end_ts\":1767804856.001000,"
                                 "\"duration\":0.877544,"));
    assert_non_null(strstr(json, "\"tls\":true,"));
    assert_non_null(strstr(json, "\"mail_from\":\"alex@nusoft.com.tw\",\"rcpt_to\":[{\"addr\":"
                                 "\"ajx@nusec.com.tw\",\"code\":250,\"accepted\":true,"));
    assert_non_null(strstr(json, "\"rcpt_to\":[\"ajx@nusec.com.tw\",\"bob@nusec.com.tw\"],"
                                 "\"size\":2678,\"subject\":\"Quarterly report 報告\""));
    assert_non_null(strstr(json, "{\"mail_from\":\"\",\"rcpt_to\":[\"carol@nusec.com.tw\"]"));
    assert_non_null(strstr(json, "\"status\":\"partial\",\"status_line\":"));
    assert_non_null(strstr(json, "\"end\":\"close\",\"flags\":[\"line_truncated\","
                                 "\"protocol_error\"]"));
    free(json);

    json = capture(output_show_json, smtp);
    assert_true(json_line_valid(json));
    assert_non_null(strstr(json, ",\"transcript\":[{\"ts\":1767804855.123456,\"dir\":\"S\","
                                 "\"text\":\"220 nusec.com.tw ESMTP SMTPProxy\"},"));
    /* the sanitizer's backslash is itself escaped */
    assert_non_null(strstr(json, "\"text\":\"250 2.0.0 Ok: queued as ABC\\\\x1b[2J\"}]}"));
    free(json);

    json = capture(output_json, pop);
    assert_true(json_line_valid(json));
    assert_non_null(strstr(json, "\"mail_from\":null,\"rcpt_to\":[],\"messages\":[]"));
    assert_non_null(strstr(json, "\"stats\":{\"retr_count\":2,\"retr_bytes\":51118,"
                                 "\"dele_count\":2,\"top_count\":0,\"stat_messages\":129,"));
    free(json);

    json = capture(output_json, refused);
    assert_true(json_line_valid(json));
    assert_non_null(strstr(json, "\"direction\":\"out\""));
    assert_non_null(strstr(json, "\"end\":\"refused\",\"flags\":[]"));
    free(json);

    /* Raw bytes that never went through the sanitizer are still escaped. */
    strcpy(refused->user, "a\x01" "b\"c\\d\n\x7f\xc2\x85\xff" "\xc3\xa9");
    json = capture(output_json, refused);
    assert_true(json_line_valid(json));
    assert_non_null(strstr(json, "\"user\":\"a\\u0001b\\\"c\\\\d\\n\\u007f\\u0085\\ufffd\xc3\xa9\""));
    free(json);
    session_free(smtp);
    session_free(pop);
    session_free(refused);
}

static void test_table(void **state)
{
    (void)state;
    struct mt_session *smtp = make_smtp(), *pop = make_pop3(), *refused = make_refused();
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    smtp->id = 7;
    pop->id = 8;
    refused->id = 123456;
    strcpy(pop->client_ip, "2001:db8:85a3::8a2e:370:7334");
    output_table_header(out, OUTPUT_VIEW_MIXED);
    output_table_row(out, smtp);
    output_table_row(out, pop);
    output_table_row(out, refused);
    output_table_header(out, OUTPUT_VIEW_MAILBOX);
    fclose(out);
    /* sender cut with an ellipsis, recipient cut to leave room for "+2", IPv6 address
     * cut in the middle, a long id widening its column */
    assert_string_equal(buf,
        "    ID Date/Time (UTC)     Type IP              Sender/User       Rcpt/Counters     Status\n"
        "     7 2026-01-07 16:54:15 in   59.124.36.164   alex@nusoft.com.… ajx@nusec.com… +2 partial\n"
        "     8 2026-01-08 14:18:33 pop3 2001:db…70:7334 alex              retr=2/50K del=2  login_ok\n"
        "123456 2026-01-07 16:41:00 out  203.0.113.5     -                 -                 refused\n"
        "    ID Date/Time (UTC)     Prot IP              User              Counters          Status\n");
    free(buf);
    session_free(smtp);
    session_free(pop);
    session_free(refused);
}

static void test_show(void **state)
{
    (void)state;
    struct mt_session *smtp = make_smtp(), *refused = make_refused();
    smtp->id = 7;
    char *text = capture(output_show, smtp);
    assert_non_null(strstr(text, "Session 7, smtp inbound (times in UTC)\n"));
    assert_non_null(strstr(text, "Time       2026-01-07 16:54:15.123 to 16:54:16.001 (0.877544 s)\n"));
    assert_non_null(strstr(text, "Client     59.124.36.164:50123  (HELO nusoft.com.tw)\n"));
    assert_non_null(strstr(text, "Server     59.124.36.165:25  (nusec.com.tw)\n"));
    assert_non_null(strstr(text, "  To       bob@nusec.com.tw  550 5.1.1 User unknown  "
                                 "[rejected]\n"));
    assert_non_null(strstr(text, "  Subject  Quarterly report 報告\n"));
    assert_non_null(strstr(text, "   16:54:15.124 C: EHLO nusoft.com.tw\n"));
    assert_non_null(strstr(text, ">> 16:54:15.129 S: 550 5.1.1 <bob@nusec.com.tw>: User unknown\n"));
    assert_non_null(strstr(text, "   16:54:15.130    [message 2678 bytes]\n"));
    assert_non_null(strstr(text, "queued as ABC\\x1b[2J\n"));
    assert_null(strchr(text, '\x1b'));
    free(text);
    text = capture(output_show, refused);
    assert_non_null(strstr(text, "Time       2026-01-07 16:41:00.000 to 16:41:00.001 (0.001500 s)\n"));
    assert_non_null(strstr(text, "Status     refused\nDecided by connection refused (RST)\n"
                                 "Meaning    nothing listens on that port"));
    assert_non_null(strstr(text, "\nEnd        refused\n"));
    assert_non_null(strstr(text, "Transcript (UTC):\n   (empty)\n"));
    free(text);
    session_free(smtp);
    session_free(refused);
}

/* A database file the user may write, in a directory it may not (a sensor after -Z):
 * the message names the directory, not the step that happened to write first. As root,
 * checked in a child that becomes nobody (root writes anywhere). */
static void test_readonly_directory_named(void **state)
{
    struct fixture *f = *state;
    struct mt_store *store = open_store(f, true);
    assert_int_equal(store_close(store), STORE_OK);
    bool root = geteuid() == 0;
    if (root)
        assert_int_equal(chown(f->path, 65534, 65534), 0);
    assert_int_equal(chmod(f->dir, 0555), 0);
    fflush(NULL);
    pid_t child = root ? fork() : 0;
    assert_true(child >= 0);
    if (child == 0) {
        char err[512] = "";
        if (root && (setgid(65534) != 0 || setuid(65534) != 0))
            _exit(3);
        struct mt_store *denied = store_open(f->path, true, err, sizeof err);
        bool named = !denied && strstr(err, "directory of") && strstr(err, "not writable");
        if (!named)
            fprintf(stderr, "    got: %s\n", denied ? "(opened)" : err);
        store_close(denied);
        if (root)
            _exit(named ? 0 : 1);
        assert_true(named);
    } else {
        int status = 0;
        assert_int_equal(waitpid(child, &status, 0), child);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    assert_int_equal(chmod(f->dir, 0700), 0);
}

/* Why no certificate is shown, and which name did not match (show and the console). */
static void test_cert_words(void **state)
{
    (void)state;
    struct mt_session *s = session_new(MT_PROTO_SMTP);
    assert_non_null(s);
    struct mt_tls_info *t = session_tls_alloc(s);
    assert_non_null(t);
    assert_null(output_cert_absence(t));   /* no handshake read */
    snprintf(t->outcome, sizeof t->outcome, "encrypted");
    snprintf(t->version, sizeof t->version, "TLSv1.3");
    assert_string_equal(output_cert_absence(t), "not visible (TLS 1.3 encrypts it)");
    snprintf(t->version, sizeof t->version, "TLSv1.2");
    assert_non_null(strstr(output_cert_absence(t), "resumed"));
    snprintf(t->outcome, sizeof t->outcome, "failed");
    assert_non_null(strstr(output_cert_absence(t), "ended before it"));
    snprintf(t->subject, sizeof t->subject, "mx.example.org");
    assert_null(output_cert_absence(t));

    char buf[512];
    assert_null(output_cert_name(buf, sizeof buf, s));
    s->flags |= MT_FLAG_CERT_NAME_MISMATCH;
    snprintf(s->server_name, sizeof s->server_name, "mx.example.net");
    assert_string_equal(output_cert_name(buf, sizeof buf, s),
                        "does not match mx.example.net (the server's greeting; the client sent"
                        " no SNI)");
    snprintf(t->sni, sizeof t->sni, "mail.example.org");
    assert_non_null(strstr(output_cert_name(buf, sizeof buf, s), "mail.example.org (the name"));

    s->start_us = 1800000000LL * 1000000;
    t->not_before = 1700000000;
    t->not_after = 1790000000;
    assert_string_equal(output_cert_validity(t, s->start_us, 0), "");
    assert_string_equal(output_cert_validity(t, s->start_us, MT_FLAG_CERT_EXPIRED),
                        "  EXPIRED at the time");
    t->not_before = 1810000000;
    t->not_after = 1900000000;
    assert_string_equal(output_cert_validity(t, s->start_us, MT_FLAG_CERT_EXPIRED),
                        "  NOT YET VALID at the time");
    session_free(s);
}

static void test_open_errors(void **state)
{
    struct fixture *f = *state;
    char err[512] = "";
    struct stat sb;
    assert_null(store_open(f->path, false, err, sizeof err));
    assert_non_null(strstr(err, "No such file"));
    assert_int_equal(stat(f->path, &sb), -1);   /* and nothing was created */

    mode_t old_umask = umask(0);
    struct mt_store *store = open_store(f, true);
    struct mt_session *s = make_pop3();
    char wal[128];
    umask(old_umask);
    assert_int_equal(store_put_session(store, s), STORE_OK);
    assert_int_equal(store_flush(store), STORE_OK);
    assert_int_equal(stat(f->path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    snprintf(wal, sizeof wal, "%s-wal", f->path);
    assert_int_equal(stat(wal, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(store_close(store), STORE_OK);
    session_free(s);

    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version=99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_null(store_open(f->path, true, err, sizeof err));
    assert_non_null(strstr(err, "schema version 99, newer"));
    assert_null(store_open(f->path, false, err, sizeof err));
    assert_non_null(strstr(err, "schema version 99, newer"));

    teardown(state);
    setup(state);
    f = *state;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE other(x)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_null(store_open(f->path, true, err, sizeof err));
    assert_non_null(strstr(err, "not a mailtap database"));
}

static void test_disk_full(void **state)
{
    struct fixture *f = *state;
    struct mt_store *store = open_store(f, true);
    struct mt_session *a = make_smtp(), *b = make_pop3(), *c = make_smtp();
    struct store_filter q;
    assert_int_equal(store_put_session(store, a), STORE_OK);
    assert_int_equal(store_flush(store), STORE_OK);
    assert_int_equal(store_put_session(store, b), STORE_OK);   /* pending in the batch */
    assert_int_equal(store_limit_size(store, 1), STORE_OK);
    while (session_transcript_addf(c, T_SMTP, 'C', "%0900d", 0) >= 0)
        ;                                                        /* ~128 KiB of transcript */
    assert_int_equal(store_put_session(store, c), STORE_FULL);
    assert_non_null(strstr(store_error(store), "database write failed: disk full"));
    assert_non_null(strstr(store_error(store), "1 uncommitted session rolled back"));
    print_message("    disk full reported as: %s\n", store_error(store));
    store_filter_init(&q);
    assert_string_equal(query_ids(store, &q), ids_of(a, NULL));
    /* still usable: small writes that fit in free pages may work, big ones fail again */
    assert_int_equal(store_put_session(store, c), STORE_FULL);
    assert_int_equal(store_close(store), STORE_OK);
    store = open_store(f, false);
    assert_string_equal(query_ids(store, &q), ids_of(a, NULL));
    assert_int_equal(store_close(store), STORE_OK);
    session_free(a);
    session_free(b);
    session_free(c);
}

static int64_t sql_int(const char *path, const char *sql);

/* The writer thread: sessions put from this thread while it writes, a statistics row
 * written under its lock in between, all there after the stop, in the order put. */
static void test_writer(void **state)
{
    struct fixture *f = *state;
    struct mt_store *store = open_store(f, true);
    char err[512] = "";
    struct store_writer *writer = store_writer_start(store, err, sizeof err);
    assert_non_null(writer);
    enum { N = 3 * STORE_WRITER_QUEUE };   /* more than the queue: the put waits */
    for (int i = 0; i < N; i++) {
        struct mt_session *s = i % 3 == 0 ? make_refused() : i % 3 == 1 ? make_smtp() : make_pop3();
        s->client_port = (uint16_t)i;   /* the put order, visible in the rows */
        assert_int_equal(store_writer_put(writer, s), STORE_OK);
        if (i == N / 2) {
            struct store_sensor_stats stats = { .ts_us = 1, .packets = 7, .source = "test" };
            struct mt_store *locked = store_writer_lock(writer);
            assert_ptr_equal(locked, store);
            assert_int_equal(store_put_sensor_stats(locked, &stats), STORE_OK);
            store_writer_unlock(writer);
        }
    }
    uint64_t dropped = 99;
    assert_int_equal(store_writer_stop(writer, err, sizeof err, &dropped), STORE_OK);
    assert_int_equal(dropped, 0);
    assert_string_equal(err, "");
    assert_int_equal(store_close(store), STORE_OK);
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM sessions"), N);
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM sensor_stats"), 1);
    /* ids follow the put order */
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM sessions a JOIN sessions b"
                                      " ON b.id = a.id + 1 WHERE b.client_port <> a.client_port + 1"), 0);
}

/* A batch commits on time while nothing arrives: the writer's idle check, no put needed. */
static void test_writer_commits_when_idle(void **state)
{
    struct fixture *f = *state;
    struct mt_store *store = open_store(f, true);
    store_set_batch(store, 1000, 50);
    char err[512] = "";
    struct store_writer *writer = store_writer_start(store, err, sizeof err);
    assert_non_null(writer);
    assert_int_equal(store_writer_put(writer, make_smtp()), STORE_OK);
    int64_t seen = 0;
    for (int tries = 0; tries < 200 && seen == 0; tries++) {   /* up to 10 s on a busy host */
        usleep(50000);
        seen = sql_int(f->path, "SELECT count(*) FROM sessions");
    }
    assert_int_equal(seen, 1);
    assert_int_equal(store_writer_stop(writer, err, sizeof err, NULL), STORE_OK);
    assert_int_equal(store_close(store), STORE_OK);
}

/* A full disk in the writer: the failure comes back from a later put (or the stop) with
 * its message, later sessions are dropped and counted, nothing committed is lost. */
static void test_writer_disk_full(void **state)
{
    struct fixture *f = *state;
    struct mt_store *store = open_store(f, true);
    char err[512] = "";
    struct store_writer *writer = store_writer_start(store, err, sizeof err);
    assert_non_null(writer);
    assert_int_equal(store_writer_put(writer, make_smtp()), STORE_OK);
    assert_int_equal(store_writer_sync(writer), STORE_OK);   /* the first one committed */
    struct mt_store *locked = store_writer_lock(writer);
    assert_int_equal(store_limit_size(locked, 1), STORE_OK);
    store_writer_unlock(writer);
    int result = STORE_OK, puts = 0;
    while (result == STORE_OK && puts < 100000) {
        struct mt_session *big = make_smtp();
        while (session_transcript_addf(big, T_SMTP, 'C', "%0900d", puts) >= 0)
            ;
        result = store_writer_put(writer, big);
        puts++;
    }
    assert_int_equal(result, STORE_FULL);
    store_writer_error(writer, err, sizeof err);
    assert_non_null(strstr(err, "disk full"));
    uint64_t dropped = 0;
    assert_int_equal(store_writer_stop(writer, err, sizeof err, &dropped), STORE_FULL);
    assert_true(dropped >= 1);
    assert_int_equal(store_close(store), STORE_OK);
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM sessions"), 1);
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM pragma_integrity_check"
                                      " WHERE integrity_check <> 'ok'"), 0);
}

/* A write error that is not ENOSPC: the file size limit makes write() fail with EFBIG,
 * which SQLite reports as SQLITE_IOERR_WRITE. */
static void test_io_error(void **state)
{
    struct fixture *f = *state;
    struct mt_store *store = open_store(f, true);
    struct mt_session *a = make_smtp(), *big = make_smtp();
    struct store_filter q;
    struct rlimit old, small;
    struct stat sb;
    char wal[128];
    assert_int_equal(store_put_session(store, a), STORE_OK);
    assert_int_equal(store_flush(store), STORE_OK);
    while (session_transcript_addf(big, T_SMTP, 'S', "%0900d", 1) >= 0)
        ;
    snprintf(wal, sizeof wal, "%s-wal", f->path);
    assert_int_equal(stat(wal, &sb), 0);
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    small = old;
    small.rlim_cur = (rlim_t)sb.st_size + 8192;
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    store_set_batch(store, 1, 0);      /* commit at once: the WAL write happens now */
    int rc = store_put_session(store, big);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, old_handler);
    assert_int_equal(rc, STORE_IOERR);
    print_message("    I/O error reported as: %s\n", store_error(store));
    assert_non_null(strstr(store_error(store), "I/O error"));
    store_filter_init(&q);
    assert_string_equal(query_ids(store, &q), ids_of(a, NULL));
    /* the limit is gone: the same store writes again */
    assert_int_equal(store_put_session(store, big), STORE_OK);
    assert_int_equal(store_close(store), STORE_OK);
    store = open_store(f, false);
    assert_string_equal(query_ids(store, &q), ids_of(big, a));
    assert_int_equal(store_close(store), STORE_OK);
    session_free(a);
    session_free(big);
}

/* Reads one text column of one session with plain SQL. */
static void raw_column(const char *path, const char *column, int64_t id, char *out, size_t cap)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT %s FROM sessions WHERE id = ?", column);
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_int64(st, 1, id);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    snprintf(out, cap, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void test_denormalised(void **state)
{
    struct fixture *f = *state;
    struct mt_store *store = open_store(f, true);
    struct mt_session *s = make_smtp(), *loaded;
    char text[512], addr[32];
    for (int i = 0; i < 30; i++) {
        snprintf(addr, sizeof addr, "user%02d@example.org", i);   /* 18 bytes each */
        add_rcpt(s, addr, 250, "250 ok", true, 1);
    }
    s->recipients_dropped = 5;
    assert_int_equal(store_put_session(store, s), STORE_OK);
    assert_int_equal(store_close(store), STORE_OK);            /* commits the batch */
    raw_column(f->path, "mail_from", s->id, text, sizeof text);
    assert_string_equal(text, "alex@nusoft.com.tw");
    raw_column(f->path, "rcpt_summary", s->id, text, sizeof text);
    /* 3 + 7 addresses take 194 bytes, an 8th would pass 200: 23 kept + 5 dropped follow */
    assert_string_equal(text, "ajx@nusec.com.tw, bob@nusec.com.tw, carol@nusec.com.tw, "
                              "user00@example.org, user01@example.org, user02@example.org, "
                              "user03@example.org, user04@example.org, user05@example.org, "
                              "user06@example.org +28");
    raw_column(f->path, "direction", s->id, text, sizeof text);
    assert_string_equal(text, "in");
    store = open_store(f, false);
    assert_int_equal(store_load_session(store, s->id, &loaded), STORE_OK);
    assert_session_equal(s, loaded, true);
    struct store_filter q;
    store_filter_init(&q);
    q.grep = "user29@";      /* past the summary: found through the recipients table */
    assert_string_equal(query_ids(store, &q), ids_of(s, NULL));
    session_free(loaded);
    assert_int_equal(store_close(store), STORE_OK);
    session_free(s);
}

static void test_batches(void **state)
{
    struct fixture *f = *state;
    struct mt_store *store = open_store(f, true);
    struct mt_store *reader = open_store(f, false);
    struct mt_session *s = make_pop3();
    struct store_filter q;
    store_filter_init(&q);
    store_set_batch(store, 2, 60000);
    assert_int_equal(store_put_session(store, s), STORE_OK);
    assert_string_equal(query_ids(reader, &q), "");            /* not committed yet */
    assert_int_equal(store_tick(store), STORE_OK);              /* too young to commit */
    assert_string_equal(query_ids(reader, &q), "");
    assert_int_equal(store_put_session(store, s), STORE_OK);   /* batch of 2: commits */
    assert_int_equal(strlen(query_ids(reader, &q)) > 0, 1);
    store_set_batch(store, 100, 0);                             /* commit on age 0 */
    assert_int_equal(store_put_session(store, s), STORE_OK);
    struct results r = { .n = 0 };
    assert_int_equal(store_query_sessions(reader, &q, collect, &r), 3);
    results_free(&r);
    assert_int_equal(store_close(reader), STORE_OK);
    assert_int_equal(store_close(store), STORE_OK);
    session_free(s);
}

/* ---- sorting and searching over a varied data set ---------------------------------------- */

/* Texts chosen to trip an index that is not exactly LIKE: quotes (FTS5's string syntax),
 * LIKE's own wildcards, backslashes, FTS5 operators, letters whose Unicode case folding
 * differs from ASCII's (Kelvin sign, long s, dotted I, sharp s), CJK, emoji, a control byte
 * as raw as a hand-written row can be, and text that looks like other fields. */
static const char *const varied_users[] = {
    "alice", "Alice", "ALICE", "o'brien", "d\"quote", "100%off", "under_score", "back\\slash",
    "Grüße", "GRÜSSE", "KÖLN", "köln", "\xc4\xb0stanbul", "istanbul", "\xc5\xbftra\xc3\x9f" "e",
    "strasse", "\xe2\x84\xaa" "elvin", "kelvin", "日本語", "\xf0\x9f\x93\xa7user", "", "x", "ab",
    "esc\x1b[2Jraw", "NEAR(a b)", "a AND b", "col:val", "*star*", "^caret", "quote\"\"twice",
    "carol", "CAROL.smith",
};
static const char *const varied_helos[] = {
    "mx.Example.COM", "host_1.example", "laptop.local", "grüße.example", "[192.168.1.20]",
    "a\"b\"c.example", "",
};
static const char *const varied_ips[] = {
    "192.168.1.20", "10.0.0.5", "2001:db8::1", "::1", "203.0.113.5",
};
static const char *const varied_lines[] = {
    "550 5.1.1 <bob@example.org>: User unknown", "-ERR [AUTH] Authentication failed.",
    "250 2.0.0 Ok: queued as ABC%_", "421 4.7.0 Try again \"later\"", "a1 OK Logged in",
    "535 5.7.8 Error: authentication failed: UGFzc3dvcmQ6",
};
static const char *const varied_subjects[] = {
    "Quarterly report 報告", "Re: 50% off_sale", "Grüße aus Köln", "It's \"quoted\"",
    "back\\\\slash", "日本語のテキスト", "emoji \xf0\x9f\x93\xa7 mail", "KELVIN \xe2\x84\xaa",
    "\"\"", "AND OR NOT", "",
};
/* TLS names (SNI, certificate subject, SANs) and DNS names (query, answers). */
static const char *const varied_names[] = {
    "mail.Expired.example", "mx1.köln.example", "DNS:a.example, DNS:B.example",
    "example.org", "10 mx.example.org", "192.0.2.7", "_25._tcp.mx.example",
};
static const char *const varied_rcpts[] = {
    "bob@example.org", "Carol@Example.Org", "o'brien@example.net", "100%@example.net",
    "x_y@example.net", "köln@example.de", "user@日本.jp",
};
#define VARIED_COUNT 70
#define COUNT_OF(a) (sizeof a / sizeof a[0])

static struct mt_session *make_varied(int i)
{
    static const enum mt_status statuses[] = {
        MT_STATUS_DELIVERED, MT_STATUS_AUTH_FAILED, MT_STATUS_RCPT_REJECTED, MT_STATUS_LOGIN_OK,
        MT_STATUS_TEMP_FAILED, MT_STATUS_REFUSED,
    };
    static const enum mt_proto protos[] = { MT_PROTO_SMTP, MT_PROTO_POP3, MT_PROTO_IMAP };
    struct mt_session *s = session_new(protos[i % 3]);
    const char *line = varied_lines[(size_t)i % COUNT_OF(varied_lines)];
    s->direction = i % 4 ? MT_INBOUND : MT_OUTBOUND;
    snprintf(s->user, sizeof s->user, "%s", varied_users[(size_t)i % COUNT_OF(varied_users)]);
    snprintf(s->helo, sizeof s->helo, "%s", varied_helos[(size_t)i % COUNT_OF(varied_helos)]);
    snprintf(s->client_ip, sizeof s->client_ip, "%s", varied_ips[(size_t)i % COUNT_OF(varied_ips)]);
    snprintf(s->server_ip, sizeof s->server_ip, "%s",
             varied_ips[(size_t)(i + 2) % COUNT_OF(varied_ips)]);
    s->client_port = (uint16_t)(40000 + i);
    s->server_port = 25;
    /* a few share a start time: ties are broken by id */
    s->start_us = T_SMTP + (int64_t)((i * 37) % 50) * 1000000;
    session_decide(s, statuses[i % 6], line, strlen(line), -1);
    const char *name = varied_names[(size_t)i % COUNT_OF(varied_names)];
    if (i % 4 == 1) {
        struct mt_tls_info *tls = session_tls_alloc(s);
        snprintf(tls->sni, sizeof tls->sni, "%s", name);
        snprintf(tls->subject, sizeof tls->subject, "%s",
                 varied_names[(size_t)(i + 1) % COUNT_OF(varied_names)]);
        snprintf(tls->sans, sizeof tls->sans, "%s",
                 varied_names[(size_t)(i + 2) % COUNT_OF(varied_names)]);
        snprintf(tls->issuer, sizeof tls->issuer, "%s Issuing CA",
                 varied_names[(size_t)(i + 4) % COUNT_OF(varied_names)]);
    } else if (i % 4 == 2) {
        struct mt_dns_info *dns = session_dns_alloc(s);
        snprintf(dns->qname, sizeof dns->qname, "%s", name);
        snprintf(dns->answers, sizeof dns->answers, "%s",
                 varied_names[(size_t)(i + 3) % COUNT_OF(varied_names)]);
    }
    if (s->proto == MT_PROTO_SMTP) {
        for (int m = 0; m < 1 + i % 3; m++) {
            struct mt_message *msg = session_add_message(s);
            session_text_setf(&msg->mail_from, MT_MSG_MAIL_FROM_MAX, "%s@sender.example",
                              varied_users[(size_t)(i + m + 5) % COUNT_OF(varied_users)]);
            session_text_setf(&msg->subject, MT_MSG_SUBJECT_MAX, "%s",
                              varied_subjects[(size_t)(i + m) % COUNT_OF(varied_subjects)]);
        }
        int rcpts = i == 12 ? 30 : 1 + i % 4;   /* one long list: "... +N" in the summary */
        for (int r = 0; r < rcpts; r++)
            add_rcpt(s, varied_rcpts[(size_t)(i + r) % COUNT_OF(varied_rcpts)], 250,
                     "250 ok", true, 0);
    }
    return s;
}

static void put_varied(struct mt_store *store)
{
    for (int i = 0; i < VARIED_COUNT; i++) {
        struct mt_session *s = make_varied(i);
        assert_int_equal(store_put_session(store, s), STORE_OK);
        session_free(s);
    }
    assert_int_equal(store_flush(store), STORE_OK);
}

/* Every id the query returns, in order, as "id,id,...". */
struct id_list {
    char text[4096];
    size_t len;
};

static int collect_id(void *ctx, struct mt_session *session)
{
    struct id_list *l = ctx;
    if (l->len + 24 < sizeof l->text)
        l->len += (size_t)snprintf(l->text + l->len, sizeof l->text - l->len, "%s%lld",
                                   l->len ? "," : "", (long long)session->id);
    session_free(session);
    return 0;
}

static const char *store_ids(struct mt_store *store, const struct store_filter *q,
                             struct id_list *l)
{
    l->len = 0;
    l->text[0] = '\0';
    assert_true(store_query_sessions(store, q, collect_id, l) >= 0);
    return l->text;
}

/* The reference: LIKE '%text%' on every searched field, as plain SQL (what grep meant before
 * the index), with the same extra conditions and order. */
static const char *oracle_ids(sqlite3 *db, const char *grep, const char *extra,
                              struct id_list *l, long *count)
{
    char sql[2048], pattern[1024];
    size_t n = 0;
    sqlite3_stmt *st;
    pattern[n++] = '%';
    for (const char *p = grep; *p && n + 3 < sizeof pattern; p++) {
        if (*p == '%' || *p == '_' || *p == '\\')
            pattern[n++] = '\\';
        pattern[n++] = *p;
    }
    pattern[n++] = '%';
    pattern[n] = '\0';
#define L(col) col " LIKE ?1 ESCAPE '\\'"
    snprintf(sql, sizeof sql, "SELECT id FROM sessions WHERE (" L("user") " OR " L("helo")
             " OR " L("client_ip") " OR " L("server_ip") " OR " L("mail_from") " OR "
             L("rcpt_summary") " OR " L("status_line") " OR " L("tls_sni") " OR "
             L("tls_subject") " OR " L("tls_sans") " OR " L("tls_issuer") " OR "
             L("dns_qname") " OR "
             L("dns_answers") " OR EXISTS (SELECT 1 FROM messages m"
             " WHERE m.session_id = sessions.id AND " L("m.subject") ") OR EXISTS (SELECT 1"
             " FROM recipients r WHERE r.session_id = sessions.id AND " L("r.addr") ")) %s",
             extra);
#undef L
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    sqlite3_bind_text(st, 1, pattern, -1, SQLITE_STATIC);
    l->len = 0;
    l->text[0] = '\0';
    *count = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        (*count)++;
        if (l->len + 24 < sizeof l->text)
            l->len += (size_t)snprintf(l->text + l->len, sizeof l->text - l->len, "%s%lld",
                                       l->len ? "," : "", (long long)sqlite3_column_int64(st, 0));
    }
    sqlite3_finalize(st);
    return l->text;
}

static uint32_t test_rand(uint32_t *state)
{
    *state = *state * 1103515245u + 12345u;
    return *state >> 8;
}

/* Appends substrings of text to patterns: every length 1..6 at a few offsets (some cut a
 * UTF-8 character: invalid patterns must still answer like LIKE), ASCII case flipped at
 * random. */
static int add_substrings(char patterns[][64], int n, int max, const char *text, uint32_t *rnd)
{
    size_t len = strlen(text);
    for (size_t off = 0; off < len && n < max; off += 1 + test_rand(rnd) % 3) {
        for (size_t k = 1; k <= 6 && off + k <= len && n < max; k++) {
            memcpy(patterns[n], text + off, k);
            patterns[n][k] = '\0';
            for (size_t j = 0; j < k; j++) {
                char c = patterns[n][j];
                if (test_rand(rnd) % 2 && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
                    patterns[n][j] = (char)(c ^ 0x20);
            }
            n++;
        }
    }
    return n;
}

#define PATTERNS_MAX 2500

/* Checks that grep through the store (index, document scan or field LIKE) returns what the
 * LIKE reference returns, for every step-th pattern, plain and combined with a filter and
 * an order. */
static void assert_search_like_reference(const char *path, struct mt_store *store, int step)
{
    static const char *const fixed[] = {
        "ALICE", "köln", "KÖLN", "Köln", "GRÜSSE", "grüsse", "strasse", "STRASSE", "kelvin",
        "KELVIN", "\xe2\x84\xaa" "elvin", "istanbul", "ISTANBUL", "\xc4\xb0stanbul",
        "日本", "日本語", "語のテ", "\xf0\x9f\x93\xa7", "\xf0\x9f\x93\xa7 m",
        "\"", "\"\"", "\"quoted\"", "'", "it's", "o'b", "%", "50%", "100%", "_", "x_y", "_1.",
        "\\", "\\\\", "back\\", "k\\\\s", "NEAR(a", "AND", "a AND b", "AND OR NOT", "col:",
        "*", "*star", "^", "^caret", "quote\"\"", "\"\"twice", "e\"\"t", "[auth]", "5.1.1",
        "192.168.1.2", "2001:db8", "::1", ":", "@example.org", ", ", "org, ", " +2", "+2",
        "ice\nmx", "ice mx", "alicemx", "e\x1b[2J", "\x1b", "ab", "x", "e", "é", "ß", "ſ",
        "\xff", "\xc3", "ko\xcc\x88ln", "carol", "CAROL", "smith", "r.s", "unknown\n",
        "a1 ok logged", "UGFzc3dvcmQ6", "ugfzc3dvcmq6", "zzzz-none", "    ", "issuing ca",
        "ISSUING CA",
        /* every trigram is in some document, never side by side: the index names
         * candidates, LIKE must turn them all down */
        "alicarol", "carolalice", "alice.carol", "smithcarol", "köln日本語", "日本語köln",
        "5.1.1carol", "2001:db8carol", "carol\"quoted\"",
    };
    static char patterns[PATTERNS_MAX][64];
    struct id_list got, want;
    struct store_filter q;
    long want_count;
    uint32_t rnd = 12345;
    int n = 0;
    sqlite3 *db;
    for (size_t i = 0; i < COUNT_OF(fixed); i++)
        snprintf(patterns[n++], sizeof patterns[0], "%s", fixed[i]);
    const char *const *lists[] = { varied_users, varied_helos, varied_ips, varied_lines,
                                   varied_subjects, varied_rcpts, varied_names };
    const size_t sizes[] = { COUNT_OF(varied_users), COUNT_OF(varied_helos),
                             COUNT_OF(varied_ips), COUNT_OF(varied_lines),
                             COUNT_OF(varied_subjects), COUNT_OF(varied_rcpts),
                             COUNT_OF(varied_names) };
    for (size_t l = 0; l < COUNT_OF(lists); l++)
        for (size_t i = 0; i < sizes[l]; i++)
            n = add_substrings(patterns, n, PATTERNS_MAX, lists[l][i], &rnd);
    assert_true(n > 1000);
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    long matched = 0;
    for (int i = 0; i < n; i += step) {
        store_filter_init(&q);
        q.grep = patterns[i];
        oracle_ids(db, patterns[i], "ORDER BY start_us DESC, id DESC", &want, &want_count);
        if (strcmp(store_ids(store, &q, &got), want.text) != 0)
            fail_msg("grep \"%s\": store %s, LIKE %s", patterns[i], got.text, want.text);
        assert_int_equal(store_count_sessions(store, &q), want_count);
        matched += want_count > 0;
        if (i % (5 * step))
            continue;
        q.proto = MT_PROTO_SMTP;
        q.order = STORE_ORDER_USER;
        q.oldest_first = true;
        q.limit = 7;
        q.offset = 1;
        oracle_ids(db, patterns[i], "AND proto = 'smtp'"
                   " ORDER BY user ASC, start_us ASC, id ASC LIMIT 7 OFFSET 1", &want, &want_count);
        if (strcmp(store_ids(store, &q, &got), want.text) != 0)
            fail_msg("grep \"%s\" (smtp, by user): store %s, LIKE %s", patterns[i], got.text,
                     want.text);
    }
    assert_true(matched > n / step / 2);   /* the data set is searched, not just missed */
    sqlite3_close(db);
}

static void test_sort_orders(void **state)
{
    struct fixture *f = *state;
    struct mt_store *store = open_store(f, true);
    struct id_list got, want, page;
    struct store_filter q;
    long count;
    sqlite3 *db;
    static const struct {
        enum store_order order;
        bool ascending;
        const char *sql;
    } orders[] = {
        { STORE_ORDER_TIME, false, "ORDER BY start_us DESC, id DESC" },
        { STORE_ORDER_TIME, true, "ORDER BY start_us ASC, id ASC" },
        { STORE_ORDER_STATUS, false, "ORDER BY status DESC, start_us DESC, id DESC" },
        { STORE_ORDER_STATUS, true, "ORDER BY status ASC, start_us ASC, id ASC" },
        { STORE_ORDER_USER, false, "ORDER BY user DESC, start_us DESC, id DESC" },
        { STORE_ORDER_USER, true, "ORDER BY user ASC, start_us ASC, id ASC" },
    };
    put_varied(store);
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    for (size_t i = 0; i < COUNT_OF(orders); i++) {
        char extra[400];
        store_filter_init(&q);
        q.order = orders[i].order;
        q.oldest_first = orders[i].ascending;
        oracle_ids(db, "", orders[i].sql, &want, &count);
        assert_int_equal(count, VARIED_COUNT);
        assert_string_equal(store_ids(store, &q, &got), want.text);
        /* paging: the pages put together are the whole list */
        char joined[4096] = "";
        size_t len = 0;
        q.limit = 9;
        for (q.offset = 0; q.offset < VARIED_COUNT; q.offset += 9) {
            store_ids(store, &q, &page);
            len += (size_t)snprintf(joined + len, sizeof joined - len, "%s%s", len ? "," : "",
                                    page.text);
        }
        assert_string_equal(joined, want.text);
        /* with filters: a tab (proto), failures only, a time range */
        store_filter_init(&q);
        q.order = orders[i].order;
        q.oldest_first = orders[i].ascending;
        q.proto = MT_PROTO_POP3;
        q.failed_only = true;
        q.since_us = T_SMTP + 10 * 1000000;
        snprintf(extra, sizeof extra, "AND proto = 'pop3' AND status IN ('auth_failed',"
                 " 'rcpt_rejected', 'temp_failed', 'refused') AND start_us >= %lld %s",
                 (long long)q.since_us, orders[i].sql);
        oracle_ids(db, "", extra, &want, &count);
        assert_true(count > 0);
        assert_string_equal(store_ids(store, &q, &got), want.text);
    }
    /* an order out of range is time */
    store_filter_init(&q);
    q.order = (enum store_order)99;
    oracle_ids(db, "", orders[0].sql, &want, &count);
    assert_string_equal(store_ids(store, &q, &got), want.text);
    sqlite3_close(db);
    assert_int_equal(store_close(store), STORE_OK);
}

static void test_search_is_like(void **state)
{
    struct fixture *f = *state;
    struct mt_store *store = open_store(f, true);
    put_varied(store);
    assert_search_like_reference(f->path, store, 1);
    /* the same from a read-only connection (the console's) */
    struct mt_store *reader = open_store(f, false);
    assert_search_like_reference(f->path, reader, 3);
    assert_int_equal(store_close(reader), STORE_OK);
    assert_int_equal(store_close(store), STORE_OK);
}

/* The writer builds each search document itself; the view session_text_source, which
 * rebuilds one when a field changes, must give the same bytes. */
static void test_search_document_is_the_views(void **state)
{
    struct fixture *f = *state;
    struct mt_store *store = open_store(f, true);
    put_varied(store);
    /* and the corners of group_concat and instr: empty subjects, an empty address past the
     * summary (instr() finds "" anywhere), one in capitals beside the summary's lower case */
    struct mt_session *s = make_varied(12);
    for (int m = 0; m < 2; m++)
        session_add_message(s);
    add_rcpt(s, "", 250, "250 ok", true, 0);
    add_rcpt(s, "BOB@EXAMPLE.ORG", 550, "550 no", false, 0);
    add_rcpt(s, "", 250, "250 ok", true, 0);
    assert_int_equal(store_put_session(store, s), STORE_OK);
    session_free(s);
    assert_int_equal(store_close(store), STORE_OK);

    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*), sum(t.doc IS NOT v.doc),"
                                        " (SELECT count(*) FROM sessions) FROM session_text t"
                                        " JOIN session_text_source v USING (id)", -1, &st,
                                        NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), VARIED_COUNT + 1);
    assert_int_equal(sqlite3_column_int(st, 1), 0);
    assert_int_equal(sqlite3_column_int(st, 2), VARIED_COUNT + 1);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void exec_ok(const char *path, const char *sql)
{
    sqlite3 *db;
    char *err = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
        fail_msg("%s: %s", sql, err);
    sqlite3_close(db);
}

/* SQL condition must hold in the database at path (abs() of the smallest integer is an
 * error: the statement fails, and exec_ok() with it, when the condition is false). */
#define assert_sql_true(path, condition) \
    exec_ok(path, "SELECT CASE WHEN " condition " THEN 1 ELSE abs(-9223372036854775807 - 1) END;")

/* FTS5's own check that the index holds exactly the documents' trigrams. */
static void assert_index_consistent(const char *path)
{
    exec_ok(path, "INSERT INTO session_search(session_search, rank) VALUES('integrity-check', 1);");
    assert_sql_true(path, "(SELECT count(*) FROM session_text) = (SELECT count(*) FROM sessions)");
}

/* A writable open brings the database up to date; the index is still consistent after. */
static void reopen_writable(const struct fixture *f)
{
    struct mt_store *store = open_store(f, true);
    assert_int_equal(store_close(store), STORE_OK);
    assert_index_consistent(f->path);
}

static void test_search_kept_in_step(void **state)
{
    struct fixture *f = *state;
    struct mt_store *store = open_store(f, true);
    struct mt_store *reader = open_store(f, false);
    struct store_filter q;
    struct id_list got;
    store_filter_init(&q);
    put_varied(store);
    assert_index_consistent(f->path);

    /* pending in the open batch: invisible to others, found by the writer itself */
    struct mt_session *s = make_varied(1);
    snprintf(s->user, sizeof s->user, "pending-user");
    store_set_batch(store, 100, 60000);
    assert_int_equal(store_put_session(store, s), STORE_OK);
    q.grep = "PENDING-us";
    assert_int_equal(store_count_sessions(reader, &q), 0);
    assert_int_equal(store_count_sessions(store, &q), 1);
    snprintf(s->user, sizeof s->user, "pending-two");   /* the batch goes on after a query */
    assert_int_equal(store_put_session(store, s), STORE_OK);
    q.grep = "pending-";
    assert_int_equal(store_count_sessions(store, &q), 2);
    assert_int_equal(store_flush(store), STORE_OK);
    assert_int_equal(store_count_sessions(reader, &q), 2);
    assert_index_consistent(f->path);

    /* retention deletes sessions (foreign keys on, as the store runs, or off, as a plain
     * sqlite3 shell does): their documents go with them */
    exec_ok(f->path, "PRAGMA foreign_keys=ON; DELETE FROM sessions WHERE id % 3 = 0"
                     " AND id < 70;");
    exec_ok(f->path, "DELETE FROM sessions WHERE id = 2;");
    assert_index_consistent(f->path);
    assert_search_like_reference(f->path, reader, 3);
    q.grep = "pending-two";
    assert_int_equal(store_count_sessions(reader, &q), 1);
    exec_ok(f->path, "DELETE FROM sessions WHERE user = 'pending-two';");
    assert_int_equal(store_count_sessions(reader, &q), 0);

    /* a searched field rewritten: the document follows */
    exec_ok(f->path, "UPDATE sessions SET user = 'renamed-user' WHERE id = 4;"
                     "UPDATE messages SET subject = 'rewritten subject' WHERE session_id = 4;"
                     "UPDATE recipients SET addr = 'moved@example.org' WHERE session_id = 4;");
    q.grep = "renamed-USER";
    assert_string_equal(store_ids(reader, &q, &got), "4");
    q.grep = "rewritten subj";
    assert_string_equal(store_ids(reader, &q, &got), "4");
    q.grep = "moved@";
    assert_string_equal(store_ids(reader, &q, &got), "4");
    assert_index_consistent(f->path);
    assert_search_like_reference(f->path, reader, 3);
    assert_int_equal(store_close(reader), STORE_OK);
    assert_int_equal(store_close(store), STORE_OK);
    session_free(s);
}

/* Text longer than a member's cap in the database (written by another tool, or before a
 * cap shrank) is read back cut between characters, as the char arrays once cut it; an
 * empty column reads back as NULL. */
static void test_long_text_read_back(void **state)
{
    struct fixture *f = *state;
    struct mt_store *store = open_store(f, true);
    struct mt_session *s = make_smtp(), *loaded;
    char sql[2048], subject[700], addr[400];
    assert_int_equal(store_put_session(store, s), STORE_OK);
    assert_int_equal(store_close(store), STORE_OK);
    /* 509 ASCII bytes, then a 3-byte character across the cut at 511 bytes */
    memset(subject, 'a', 509);
    strcpy(subject + 509, "\xe5\xa0\xb1tail and more of it");
    memset(addr, 'b', 318);
    strcpy(addr + 318, "\xc3\xa9@example.org");   /* a 2-byte character across 319 */
    snprintf(sql, sizeof sql, "UPDATE messages SET subject = '%s', message_id = '' WHERE"
             " session_id = %lld AND idx = 0; UPDATE recipients SET addr = '%s' WHERE"
             " session_id = %lld AND idx = 1;", subject, (long long)s->id, addr,
             (long long)s->id);
    exec_ok(f->path, sql);
    store = open_store(f, false);
    assert_int_equal(store_load_session(store, s->id, &loaded), STORE_OK);
    assert_int_equal(strlen(mt_str(loaded->messages[0].subject)), 509);
    assert_memory_equal(loaded->messages[0].subject, subject, 509);
    assert_null(loaded->messages[0].message_id);
    assert_int_equal(strlen(mt_str(loaded->recipients[1].addr)), 318);
    assert_string_equal(mt_str(loaded->recipients[0].addr), "ajx@nusec.com.tw");
    assert_null(loaded->messages[1].mail_from);   /* the null sender */
    session_free(loaded);
    assert_int_equal(store_close(store), STORE_OK);
    session_free(s);
}

/* The varied sessions written and closed, then sql run on the file (an older schema). */
static void put_varied_then(const struct fixture *f, const char *sql)
{
    struct mt_store *store = open_store(f, true);
    put_varied(store);
    assert_int_equal(store_close(store), STORE_OK);
    exec_ok(f->path, sql);
}

/* A database of the first, unreleased schema 1 (no search index, user index without time,
 * no per-protocol order indexes): read-only, grep falls back to LIKE; writable, the indexes
 * are added and the search index filled. */
static void test_search_added_to_older_database(void **state)
{
    struct fixture *f = *state;
    struct mt_store *store;
    put_varied_then(f, "DROP TRIGGER sessions_text_delete; DROP TRIGGER sessions_text_update;"
                       "DROP TRIGGER messages_text_update; DROP TRIGGER recipients_text_update;"
                       "DROP VIEW session_text_source; DROP TABLE session_search;"
                       "DROP TABLE session_text; DROP INDEX sessions_user_time;"
                       "DROP INDEX sessions_proto_time; DROP INDEX sessions_proto_status;"
                       "DROP INDEX sessions_proto_user;"
                       "CREATE INDEX sessions_user ON sessions(user);");
    store = open_store(f, false);
    assert_search_like_reference(f->path, store, 3);
    assert_int_equal(store_close(store), STORE_OK);
    reopen_writable(f);   /* adds the indexes */
    assert_sql_true(f->path, "(SELECT group_concat(name, ' ') FROM (SELECT name FROM"
                    " sqlite_master WHERE type = 'index' AND name LIKE 'sessions_%user%' ORDER"
                    " BY name)) = 'sessions_proto_user sessions_user_time'");
    store = open_store(f, false);
    assert_search_like_reference(f->path, store, 3);
    struct mt_session *s = make_varied(3);
    assert_int_equal(store_close(store), STORE_OK);
    store = open_store(f, true);
    assert_int_equal(store_put_session(store, s), STORE_OK);
    assert_int_equal(store_close(store), STORE_OK);
    assert_index_consistent(f->path);
    session_free(s);
}

/* A database whose documents predate the TLS and DNS names (its view without them): the
 * first writable open rewrites every document and rebuilds the index, once. */
static void test_search_documents_upgraded(void **state)
{
    struct fixture *f = *state;
    put_varied_then(f, "DROP TRIGGER sessions_text_update; DROP VIEW session_text_source;"
                       "CREATE VIEW session_text_source(id, doc) AS SELECT id, lower("
                       "ifnull(user, '') || char(10) || ifnull(helo, '')) FROM sessions;"
                       "CREATE TRIGGER sessions_text_update AFTER UPDATE OF user, helo ON"
                       " sessions BEGIN UPDATE session_text SET doc = (SELECT doc FROM"
                       " session_text_source WHERE id = new.id) WHERE id = new.id; END;"
                       "UPDATE session_text SET doc = (SELECT doc FROM session_text_source"
                       " WHERE id = session_text.id);");
    struct store_filter q;
    struct id_list got;
    struct mt_store *store = open_store(f, false);   /* read-only: left as it is */
    store_filter_init(&q);
    q.grep = "köln.example";
    assert_string_equal(store_ids(store, &q, &got), "");
    assert_int_equal(store_close(store), STORE_OK);
    reopen_writable(f);
    assert_sql_true(f->path, "(SELECT count(*) FROM session_text t JOIN session_text_source v"
                    " USING (id) WHERE t.doc IS v.doc) = (SELECT count(*) FROM sessions)");
    store = open_store(f, false);
    assert_string_not_equal(store_ids(store, &q, &got), "");
    assert_search_like_reference(f->path, store, 3);
    assert_int_equal(store_close(store), STORE_OK);
}

/* The capture files a read took in: unknown, then being read, then complete; a database
 * made before the record (no table) answers unknown read-only and gets the table
 * writable. */
static void test_capture_files(void **state)
{
    struct fixture *f = *state;
    int64_t at;
    bool complete;
    struct mt_store *store = open_store(f, true);
    assert_int_equal(store_capture_file_state(store, "10-ab", &at, &complete), 0);
    assert_int_equal(store_capture_file_mark(store, "10-ab", "/x.pcap", 10, 77, false), STORE_OK);
    assert_int_equal(store_capture_file_state(store, "10-ab", &at, &complete), 1);
    assert_int_equal(at, 77);
    assert_false(complete);
    assert_int_equal(store_capture_file_mark(store, "10-ab", "/x.pcap", 10, 78, true), STORE_OK);
    assert_int_equal(store_capture_file_state(store, "10-ab", &at, &complete), 1);
    assert_true(complete);
    assert_int_equal(store_close(store), STORE_OK);
    exec_ok(f->path, "DROP TABLE capture_files;");
    store = open_store(f, false);
    assert_int_equal(store_capture_file_state(store, "10-ab", &at, &complete), 0);
    assert_int_equal(store_close(store), STORE_OK);
    store = open_store(f, true);
    assert_int_equal(store_capture_file_state(store, "10-ab", &at, &complete), 0);
    assert_int_equal(store_close(store), STORE_OK);
}

/* A database made before the index dropped positions (detail=full, SQLite's default):
 * the same queries give the same answers, and writing keeps it consistent. */
static void test_search_positional_index(void **state)
{
    struct fixture *f = *state;
    struct mt_store *store;
    put_varied_then(f, "DROP TABLE session_search; CREATE VIRTUAL TABLE session_search USING"
                       " fts5(doc, content = 'session_text', content_rowid = 'id',"
                       " tokenize = 'trigram case_sensitive 1', columnsize = 0);"
                       "INSERT INTO session_search(session_search) VALUES('rebuild');");
    store = open_store(f, true);
    struct mt_session *s = make_varied(3);
    assert_int_equal(store_put_session(store, s), STORE_OK);
    session_free(s);
    assert_int_equal(store_flush(store), STORE_OK);
    assert_search_like_reference(f->path, store, 2);
    assert_int_equal(store_close(store), STORE_OK);
    assert_index_consistent(f->path);
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM sqlite_master WHERE name ="
                                      " 'session_search' AND sql LIKE '%detail%'"), 0);
}

/* The secondary indexes present (names, space-separated, sorted). */
#define ALL_INDEXES "messages_message_id recipients_addr sessions_client_ip sessions_mail_from" \
    " sessions_proto sessions_proto_status sessions_proto_time sessions_proto_user" \
    " sessions_start sessions_status sessions_user_time"
static void assert_indexes(const char *path, const char *want)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT ifnull(group_concat(name, ' '), '') FROM"
                                        " (SELECT name FROM sqlite_master WHERE type = 'index'"
                                        " AND tbl_name IN ('sessions', 'messages', 'recipients')"
                                        " AND sql IS NOT NULL ORDER BY name)", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), want);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

#define AUTOMERGE "SELECT v FROM session_search_config WHERE k = 'automerge'"
#define SEARCH_PENDING "SELECT count(*) FROM search_pending"
static long grep_count(struct mt_store *store, const char *text);

/* A bulk load into an empty database drops the secondary indexes and makes them at its end;
 * into one with sessions it keeps them; a load that never finished (killed) leaves them
 * missing only until the next writable open. Queries answer the same meanwhile. The search
 * index's automatic merges are off during any bulk load and back on after it, or at the
 * next writable open. */
static void test_bulk_load_defers_indexes(void **state)
{
    struct fixture *f = *state;
    struct mt_store *store = open_store(f, true);
    assert_indexes(f->path, ALL_INDEXES);
    assert_int_equal(sql_int(f->path, AUTOMERGE), 4);
    assert_int_equal(store_set_bulk_load(store, true), STORE_OK);
    assert_indexes(f->path, "");
    assert_int_equal(sql_int(f->path, AUTOMERGE), 0);
    assert_int_equal(sql_int(f->path, SEARCH_PENDING), 1);   /* the search index aside */
    put_varied(store);
    assert_int_equal(store_flush(store), STORE_OK);
    assert_sql_true(f->path, "(SELECT count(*) FROM session_search_idx) = 0");
    assert_search_like_reference(f->path, store, 7);   /* without either index */
    assert_int_equal(store_finish_bulk_load(store), STORE_OK);
    assert_indexes(f->path, ALL_INDEXES);
    assert_int_equal(sql_int(f->path, AUTOMERGE), 4);
    assert_int_equal(sql_int(f->path, SEARCH_PENDING), 0);
    assert_index_consistent(f->path);
    assert_search_like_reference(f->path, store, 7);
    /* sessions there: nothing dropped, the search index kept up batch by batch */
    assert_int_equal(store_set_bulk_load(store, true), STORE_OK);
    assert_indexes(f->path, ALL_INDEXES);
    assert_int_equal(sql_int(f->path, SEARCH_PENDING), 0);
    assert_int_equal(store_close(store), STORE_OK);
    exec_ok(f->path, "DELETE FROM messages; DELETE FROM recipients; DELETE FROM transcript;"
                     " DELETE FROM sessions;");

    /* killed before its end: a reader copes, the next writer makes them and fills the
     * search index from the documents */
    store = open_store(f, true);
    assert_int_equal(store_set_bulk_load(store, true), STORE_OK);
    put_varied(store);
    assert_int_equal(store_flush(store), STORE_OK);
    assert_indexes(f->path, "");
    assert_int_equal(sql_int(f->path, AUTOMERGE), 0);
    struct mt_store *reader = open_store(f, false);
    assert_search_like_reference(f->path, reader, 11);
    assert_int_equal(store_close(reader), STORE_OK);
    struct mt_store *next = open_store(f, true);
    assert_indexes(f->path, ALL_INDEXES);
    assert_int_equal(sql_int(f->path, AUTOMERGE), 4);
    assert_int_equal(sql_int(f->path, SEARCH_PENDING), 0);
    assert_index_consistent(f->path);
    assert_int_equal(store_close(next), STORE_OK);
    /* its own finish: the index is no longer empty, so it is not replaced by the one
     * built aside but made again from the documents */
    assert_int_equal(store_close(store), STORE_OK);
    assert_indexes(f->path, ALL_INDEXES);
    assert_int_equal(sql_int(f->path, SEARCH_PENDING), 0);
    assert_index_consistent(f->path);
    reader = open_store(f, false);
    assert_search_like_reference(f->path, reader, 11);
    assert_int_equal(store_close(reader), STORE_OK);
}

/* A batch rolled back during a bulk load (a full disk) took back documents the search
 * index aside was given: the index is then made from the documents at the end instead,
 * and holds exactly those committed. */
static void test_bulk_load_search_after_failure(void **state)
{
    struct fixture *f = *state;
    struct mt_store *store = open_store(f, true);
    assert_int_equal(store_set_bulk_load(store, true), STORE_OK);
    put_varied(store);
    assert_int_equal(store_flush(store), STORE_OK);
    struct mt_session *big = make_smtp();
    snprintf(big->user, sizeof big->user, "rolled-back-user");
    while (session_transcript_addf(big, T_SMTP, 'C', "%0900d", 0) >= 0)
        ;
    for (int i = 0; i < VARIED_COUNT; i++) {   /* in the open batch, */
        struct mt_session *s = make_varied(i);
        snprintf(s->user, sizeof s->user, "rolled-back-%d", i);
        assert_int_equal(store_put_session(store, s), STORE_OK);
        session_free(s);
    }
    assert_int_equal(store_limit_size(store, 1), STORE_OK);
    assert_int_equal(store_put_session(store, big), STORE_FULL);   /* rolled back with it */
    assert_non_null(strstr(store_error(store), "70 uncommitted sessions rolled back"));
    assert_int_equal(store_limit_size(store, 1LL << 30), STORE_OK);
    put_varied(store);
    assert_int_equal(store_finish_bulk_load(store), STORE_OK);
    assert_int_equal(sql_int(f->path, SEARCH_PENDING), 0);
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM sessions"), 2 * VARIED_COUNT);
    assert_index_consistent(f->path);
    assert_int_equal(grep_count(store, "rolled-back"), 0);
    assert_search_like_reference(f->path, store, 7);
    assert_int_equal(store_close(store), STORE_OK);
    session_free(big);
}

/* search_build.c alone: documents indexed aside, enough to be indexed while the input
 * goes on and to make the adder wait, then copied into a database's empty index, which
 * FTS5's integrity check then finds to hold exactly the documents; a copy into an index
 * that is not empty is refused and changes nothing. */
static void test_search_build_copy(void **state)
{
    struct fixture *f = *state;
    enum { DOCS = 6000, DOC_LEN = 2000 };   /* 12 MB: past the queue's limit */
    static char doc[DOC_LEN + 32];
    char err[512] = "";
    struct mt_store *store = open_store(f, true);
    assert_int_equal(store_close(store), STORE_OK);
    struct search_build *build = search_build_start(err, sizeof err);
    assert_non_null(build);
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO session_text(id, doc) VALUES(?,?)",
                                        -1, &st, NULL), SQLITE_OK);
    memset(doc, 'a', DOC_LEN);
    for (int i = 1; i <= DOCS; i++) {
        int len = DOC_LEN + snprintf(doc + DOC_LEN, 32, "\n%s%d", i % 3 ? "x" : "y", i);
        assert_int_equal(search_build_add(build, i, doc, (size_t)len), 0);
        sqlite3_bind_int(st, 1, i);
        sqlite3_bind_text(st, 2, doc, len, SQLITE_STATIC);
        assert_int_equal(sqlite3_step(st), SQLITE_DONE);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_exec(db, "INSERT INTO session_text(id, doc) VALUES(9999, 'zzz');"
                                  "INSERT INTO session_search(rowid, doc) VALUES(9999, 'zzz');"
                                  "INSERT INTO search_pending VALUES(1); COMMIT",
                                  NULL, NULL, NULL), SQLITE_OK);
    search_build_end_input(build);
    assert_int_equal(search_build_copy(build, f->path, err, sizeof err), -1);
    assert_non_null(strstr(err, "no longer empty"));
    assert_int_equal(sql_int(f->path, SEARCH_PENDING), 1);
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM session_search"
                                      " WHERE session_search MATCH 'zzz'"), 1);
    assert_int_equal(sqlite3_exec(db, "DELETE FROM session_text WHERE id = 9999;"
                                  "INSERT INTO session_search(session_search)"
                                  " VALUES('delete-all')", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(search_build_copy(build, f->path, err, sizeof err), 0);
    search_build_free(build);
    assert_int_equal(sql_int(f->path, SEARCH_PENDING), 0);
    exec_ok(f->path, "INSERT INTO session_search(session_search, rank) VALUES('integrity-check', 1);");
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM session_search"
                                      " WHERE session_search MATCH '\"aaa\"'"), DOCS);
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM session_search"
                                      " WHERE session_search MATCH '\"\ny1\"'"), 369);
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM session_search"
                                      " WHERE session_search MATCH 'zzz'"), 0);
}

/* ---- retention ---------------------------------------------------------------------- */

/* The one integer a query returns, with plain SQL on its own connection. */
static int64_t sql_int(const char *path, const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    int64_t v;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

#define HOUR_US 3600000000LL

/* The sample SMTP session (2 messages, 3 recipients, a transcript) starting i hours after
 * T_SMTP, with subject "prune-subject-<i>". */
static struct mt_session *make_aged(int i)
{
    struct mt_session *s = make_smtp();
    s->start_us = T_SMTP + i * HOUR_US;
    s->end_us = s->start_us + 1000;
    session_text_setf(&s->messages[0].subject, MT_MSG_SUBJECT_MAX, "prune-subject-%d", i);
    return s;
}

/* Rows of the session's children and search document whose session is gone (0 when
 * deleting left nothing behind), and the FTS5 index checked against the documents. */
static void assert_no_orphans(const char *path)
{
    assert_int_equal(sql_int(path, "SELECT (SELECT count(*) FROM messages WHERE session_id"
                                   " NOT IN (SELECT id FROM sessions)) + (SELECT count(*) FROM"
                                   " recipients WHERE session_id NOT IN (SELECT id FROM"
                                   " sessions)) + (SELECT count(*) FROM transcript WHERE"
                                   " session_id NOT IN (SELECT id FROM sessions)) + (SELECT"
                                   " count(*) FROM session_text WHERE id NOT IN (SELECT id FROM"
                                   " sessions))"), 0);
    exec_ok(path, "INSERT INTO session_search(session_search) VALUES('integrity-check');");
    assert_index_consistent(path);
}

static long grep_count(struct mt_store *store, const char *text)
{
    struct store_filter q;
    store_filter_init(&q);
    q.grep = text;   /* 3+ characters: the FTS5 index names the documents to check */
    return store_count_sessions(store, &q);
}

static const char *journal_mode(const char *path)
{
    static char mode[16];
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    snprintf(mode, sizeof mode, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return mode;
}

static const char *journal_path(const struct fixture *f, const char *suffix)
{
    static char path[128];
    snprintf(path, sizeof path, "%s%s", f->path, suffix);
    return path;
}

/* A bulk load into an empty database made for it (16 KiB pages) writes with a rollback
 * journal and ends in WAL mode with every session there; into a database with sessions it
 * stays in WAL. */
static void test_bulk_load_journal(void **state)
{
    struct fixture *f = *state;
    char err[512] = "";
    struct mt_store *store = store_open_for_load(f->path, err, sizeof err);
    assert_non_null(store);
    assert_int_equal(store_set_bulk_load(store, true), STORE_OK);
    assert_int_equal(sql_int(f->path, "PRAGMA page_size"), STORE_BULK_PAGE_SIZE);
    assert_string_equal(journal_mode(f->path), "delete");
    put_varied(store);
    assert_int_equal(store_flush(store), STORE_OK);
    int64_t stored = sql_int(f->path, "SELECT count(*) FROM sessions");
    assert_true(stored > 0);
    struct mt_store *reader = open_store(f, false);   /* reads while the load goes on */
    struct store_filter all;
    store_filter_init(&all);
    assert_int_equal(store_count_sessions(reader, &all), stored);
    assert_int_equal(store_close(reader), STORE_OK);
    assert_int_equal(store_close(store), STORE_OK);
    assert_string_equal(journal_mode(f->path), "wal");
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM sessions"), stored);
    assert_no_orphans(f->path);

    /* sessions there: WAL stays */
    store = open_store(f, true);
    assert_int_equal(store_set_bulk_load(store, true), STORE_OK);
    put_varied(store);
    assert_int_equal(store_flush(store), STORE_OK);
    assert_true(access(journal_path(f, "-wal"), F_OK) == 0);
    assert_int_equal(store_close(store), STORE_OK);
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM sessions"), 2 * stored);
    /* a database made for a sensor keeps SQLite's 4 KiB pages */
    unlink(f->path);
    store = open_store(f, true);
    assert_int_equal(store_close(store), STORE_OK);
    assert_int_equal(sql_int(f->path, "PRAGMA page_size"), 4096);
}

/* A bulk load killed while its commit wrote into the file leaves a hot journal: a reader
 * that may write rolls it back and reads what was committed; immutable (a reader that may
 * not) refuses the half transaction instead of reading it. */
static void test_hot_journal(void **state)
{
    struct fixture *f = *state;
    struct mt_store *store = open_store(f, true);
    put_varied(store);
    assert_int_equal(store_close(store), STORE_OK);
    int64_t stored = sql_int(f->path, "SELECT count(*) FROM sessions");
    int64_t refused = sql_int(f->path, "SELECT count(*) FROM sessions WHERE status = 'refused'");
    assert_true(refused < stored);
    exec_ok(f->path, "PRAGMA journal_mode=DELETE");
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {   /* a writer that dies with its changes half in the file */
        sqlite3 *db;
        if (sqlite3_open(f->path, &db) != SQLITE_OK)
            _exit(1);
        sqlite3_exec(db, "PRAGMA cache_size=2; BEGIN; UPDATE sessions SET status = 'refused';"
                         " UPDATE transcript SET text = text || text;", NULL, NULL, NULL);
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    char journal[128];
    snprintf(journal, sizeof journal, "%s-journal", f->path);
    assert_int_equal(access(journal, F_OK), 0);
    sqlite3 *immutable = NULL;
    assert_int_equal(store_sqlite_open_immutable(f->path, &immutable), SQLITE_READONLY_ROLLBACK);
    sqlite3_close(immutable);
    struct mt_store *reader = open_store(f, false);
    assert_int_not_equal(access(journal, F_OK), 0);
    struct store_filter q;
    store_filter_init(&q);
    q.status = MT_STATUS_REFUSED;
    assert_int_equal(store_count_sessions(reader, &q), refused);
    assert_int_equal(store_close(reader), STORE_OK);
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM sessions"), stored);
}

static struct mt_session *mailbox_session(const char *user, const char *client,
                                          const char *server, int64_t start_s, int64_t end_s,
                                          enum mt_status status, const char *line)
{
    struct mt_session *s = session_new(MT_PROTO_POP3);
    assert_non_null(s);
    snprintf(s->user, sizeof s->user, "%s", user);
    snprintf(s->client_ip, sizeof s->client_ip, "%s", client);
    snprintf(s->server_ip, sizeof s->server_ip, "%s", server);
    s->server_port = 110;
    s->start_us = T_SMTP + start_s * 1000000;
    s->end_us = T_SMTP + end_s * 1000000;
    s->status = status;
    snprintf(s->status_line, sizeof s->status_line, "%s", line);
    return s;
}

/* "-ERR [IN-USE]": the user's other sessions to that server open when it began are found
 * (the lock holder), not those of another user, another server, or one already over. */
static void test_peer_sessions(void **state)
{
    struct fixture *f = *state;
    struct mt_store *store = open_store(f, true);
    struct mt_session *s[] = {
        mailbox_session("carol", "192.0.2.7", "10.1.0.2", 0, 300, MT_STATUS_LOGIN_OK, "+OK"),
        mailbox_session("carol", "192.0.2.9", "10.1.0.2", 10, 11, MT_STATUS_TEMP_FAILED,
                        "-ERR [IN-USE] Mailbox is locked by another POP3 session."),
        mailbox_session("dave", "192.0.2.7", "10.1.0.2", 0, 300, MT_STATUS_LOGIN_OK, "+OK"),
        mailbox_session("carol", "192.0.2.7", "10.1.0.3", 0, 300, MT_STATUS_LOGIN_OK, "+OK"),
        mailbox_session("carol", "192.0.2.8", "10.1.0.2", 0, 5, MT_STATUS_LOGIN_OK, "+OK"),
        mailbox_session("carol", "192.0.2.8", "10.1.0.2", 20, 30, MT_STATUS_LOGIN_OK, "+OK"),
        /* open then, but holding nothing: a refused login */
        mailbox_session("carol", "192.0.2.7", "10.1.0.2", 9, 12, MT_STATUS_AUTH_FAILED, "-ERR"),
        /* the same user in capitals, from another address */
        mailbox_session("CAROL", "192.0.2.11", "10.1.0.2", 2, 50, MT_STATUS_LOGIN_OK, "+OK"),
    };
    size_t n = sizeof s / sizeof s[0];
    for (size_t i = 0; i < n; i++)
        assert_int_equal(store_put_session(store, s[i]), STORE_OK);
    assert_int_equal(store_flush(store), STORE_OK);
    assert_true(explain_blames_other_sessions(s[1]->status_line, strlen(s[1]->status_line)));
    assert_false(explain_blames_other_sessions(s[0]->status_line, strlen(s[0]->status_line)));
    struct store_peers peers;
    assert_int_equal(store_peer_sessions(store, s[1], &peers), STORE_OK);
    assert_true(peers.looked);
    assert_int_equal(peers.count, 2);
    assert_int_equal(peers.total, 2);
    assert_int_equal(peers.list[0].id, s[0]->id);
    assert_string_equal(peers.list[0].client_ip, "192.0.2.7");
    assert_int_equal(peers.list[0].status, MT_STATUS_LOGIN_OK);
    assert_int_equal(peers.list[0].start_us, s[0]->start_us);
    assert_int_equal(peers.list[1].id, s[7]->id);
    /* a limit per user and address: only those from the same address */
    snprintf(s[1]->status_line, sizeof s[1]->status_line, "-ERR Maximum number of connections"
             " from user+IP exceeded (mail_max_userip_connections=10)");
    snprintf(s[1]->client_ip, sizeof s[1]->client_ip, "192.0.2.11");
    assert_int_equal(store_peer_sessions(store, s[1], &peers), STORE_OK);
    assert_int_equal(peers.count, 1);
    assert_int_equal(peers.list[0].id, s[7]->id);
    snprintf(s[1]->client_ip, sizeof s[1]->client_ip, "192.0.2.9");
    snprintf(s[1]->status_line, sizeof s[1]->status_line, "-ERR [IN-USE] locked");
    /* more than are listed: the total says so */
    for (int i = 0; i < STORE_PEERS_MAX + 2; i++) {
        struct mt_session *other = mailbox_session("carol", "192.0.2.10", "10.1.0.2", 1 + i,
                                                   100, MT_STATUS_LOGIN_OK, "+OK");
        assert_int_equal(store_put_session(store, other), STORE_OK);
        session_free(other);
    }
    assert_int_equal(store_flush(store), STORE_OK);
    assert_int_equal(store_peer_sessions(store, s[1], &peers), STORE_OK);
    assert_int_equal(peers.count, STORE_PEERS_MAX);
    assert_int_equal(peers.total, 2 + STORE_PEERS_MAX + 2);
    assert_int_equal(peers.list[0].id, s[0]->id);   /* the oldest first */
    /* a session without a user has none */
    s[1]->user[0] = '\0';
    assert_int_equal(store_peer_sessions(store, s[1], &peers), STORE_OK);
    assert_int_equal(peers.count, 0);
    assert_false(peers.looked);
    for (size_t i = 0; i < n; i++)
        session_free(s[i]);
    assert_int_equal(store_close(store), STORE_OK);
}

static void test_prune_by_age(void **state)
{
    struct fixture *f = *state;
    static const int order[] = { 3, 0, 5, 1, 4, 2 };   /* ids not in time order */
    struct mt_store *store = open_store(f, true);
    int64_t id_of[6];
    long deleted = -1;
    char want[64];
    for (int k = 0; k < 6; k++) {
        struct mt_session *s = make_aged(order[k]);
        assert_int_equal(store_put_session(store, s), STORE_OK);
        id_of[order[k]] = s->id;
        session_free(s);
        struct store_sensor_stats row = { .ts_us = T_SMTP + k * HOUR_US, .sessions = (uint64_t)k,
                                          .source = "eth0" };
        assert_int_equal(store_put_sensor_stats(store, &row), STORE_OK);
    }
    assert_int_equal(store_flush(store), STORE_OK);
    assert_int_equal(grep_count(store, "prune-subject-1"), 1);
    /* one more in the open batch, older than the limit: committed, then pruned */
    store_set_batch(store, 100, 60000);
    struct mt_session *pending = make_aged(-1);
    assert_int_equal(store_put_session(store, pending), STORE_OK);
    assert_int_equal(store_prune(store, T_SMTP + 3 * HOUR_US, 0, 100, &deleted), STORE_OK);
    assert_int_equal(deleted, 4 + 3);   /* sessions -1, 0, 1, 2 and sensor rows 0, 1, 2 */
    snprintf(want, sizeof want, "%lld,%lld,%lld", (long long)id_of[5], (long long)id_of[4],
             (long long)id_of[3]);
    struct store_filter q;
    store_filter_init(&q);
    assert_string_equal(query_ids(store, &q), want);
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM messages"), 3 * 2);
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM recipients"), 3 * 3);
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM transcript"), 3);
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM session_text"), 3);
    assert_int_equal(sql_int(f->path, "SELECT min(ts_us) FROM sensor_stats"),
                     T_SMTP + 3 * HOUR_US);
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM sensor_stats"), 3);
    assert_no_orphans(f->path);
    for (int i = -1; i < 6; i++) {
        char subject[32];
        snprintf(subject, sizeof subject, "prune-subject-%d", i);
        assert_int_equal(grep_count(store, subject), i >= 3);
    }
    assert_int_equal(grep_count(store, "nusoft.com"), 3);   /* in every document */
    /* done: nothing more to delete */
    assert_int_equal(store_prune(store, T_SMTP + 3 * HOUR_US, 0, 100, &deleted), STORE_OK);
    assert_int_equal(deleted, 0);
    /* the exact boundary is kept ("before"), one microsecond later it goes */
    assert_int_equal(store_prune(store, T_SMTP + 3 * HOUR_US + 1, 0, 100, &deleted), STORE_OK);
    assert_int_equal(deleted, 2);
    assert_no_orphans(f->path);
    assert_int_equal(store_close(store), STORE_OK);
    session_free(pending);
}

static void test_prune_max_rows(void **state)
{
    struct fixture *f = *state;
    struct mt_store *store = open_store(f, true);
    static const long steps[] = { 3, 3, 3, 1, 0 };
    long deleted = -1;
    for (int i = 0; i < 12; i++) {
        struct mt_session *s = make_aged(i);
        assert_int_equal(store_put_session(store, s), STORE_OK);
        session_free(s);
    }
    assert_int_equal(store_prune(store, T_SMTP, 0, 0, &deleted), STORE_ERROR);
    assert_non_null(strstr(store_error(store), "max_rows"));
    for (size_t i = 0; i < COUNT_OF(steps); i++) {
        assert_int_equal(store_prune(store, T_SMTP + 10 * HOUR_US, 0, 3, &deleted), STORE_OK);
        assert_int_equal(deleted, steps[i]);
        /* the oldest go first */
        int64_t left = 12 - (i < 4 ? 3 * (long)i + steps[i] : 10);
        assert_int_equal(sql_int(f->path, "SELECT count(*) FROM sessions"), left);
        assert_int_equal(sql_int(f->path, "SELECT min(start_us) FROM sessions"),
                         T_SMTP + (12 - left) * HOUR_US);
    }
    assert_no_orphans(f->path);
    assert_int_equal(store_close(store), STORE_OK);
}

static void test_prune_nothing_to_do(void **state)
{
    struct fixture *f = *state;
    struct mt_store *store = open_store(f, true);
    struct mt_session *s[3];
    long deleted = -1;
    /* an empty database, every kind of limit */
    assert_int_equal(store_prune(store, T_SMTP, 0, 10, &deleted), STORE_OK);
    assert_int_equal(deleted, 0);
    deleted = -1;
    assert_int_equal(store_prune(store, 0, 1, 10, &deleted), STORE_OK);
    assert_int_equal(deleted, 0);
    put_samples(store, s);
    store_set_batch(store, 100, 60000);
    struct mt_session *pending = make_pop3();
    assert_int_equal(store_put_session(store, pending), STORE_OK);
    /* no limit: nothing deleted, but the batch is committed, as always */
    assert_int_equal(store_prune(store, 0, 0, 10, &deleted), STORE_OK);
    assert_int_equal(deleted, 0);
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM sessions"), 4);
    /* limits that everything meets */
    assert_int_equal(store_prune(store, T_REFUSED, 1LL << 40, 10, &deleted), STORE_OK);
    assert_int_equal(deleted, 0);
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM sessions"), 4);
    assert_int_equal(store_close(store), STORE_OK);
    free_samples(s);
    session_free(pending);
}

static void test_prune_read_only(void **state)
{
    struct fixture *f = *state;
    struct mt_store *store = open_store(f, true);
    struct mt_session *s[3];
    long deleted = -1;
    put_samples(store, s);
    assert_int_equal(store_close(store), STORE_OK);
    store = open_store(f, false);
    assert_int_equal(store_prune(store, T_SMTP + HOUR_US, 1, 10, &deleted), STORE_READONLY);
    assert_int_equal(deleted, 0);
    assert_non_null(strstr(store_error(store), "read-only"));
    assert_int_equal(store_close(store), STORE_OK);
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM sessions"), 3);
    free_samples(s);
}

/* A limit below what the newest session needs: everything else goes, it stays (even when
 * it was still in the open batch), and pruning then stops. */
static void test_prune_keeps_newest(void **state)
{
    struct fixture *f = *state;
    struct mt_store *store = open_store(f, true);
    long deleted = -1, total = 0;
    int64_t newest_id;
    for (int i = 0; i < 5; i++) {
        struct mt_session *s = make_aged(i);
        assert_int_equal(store_put_session(store, s), STORE_OK);
        session_free(s);
        struct store_sensor_stats row = { .ts_us = T_SMTP + i * HOUR_US, .source = "eth0" };
        assert_int_equal(store_put_sensor_stats(store, &row), STORE_OK);
    }
    assert_int_equal(store_flush(store), STORE_OK);
    store_set_batch(store, 100, 60000);
    struct mt_session *s = make_aged(9);
    assert_int_equal(store_put_session(store, s), STORE_OK);   /* pending */
    newest_id = s->id;
    session_free(s);
    for (int calls = 0; calls < 10; calls++) {
        assert_int_equal(store_prune(store, 0, 1, 2, &deleted), STORE_OK);
        assert_true(deleted <= 2);
        total += deleted;
        if (deleted == 0)
            break;
    }
    assert_int_equal(deleted, 0);
    assert_int_equal(total, 5 + 5);   /* the older sessions, and the statistics before them */
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM sessions"), 1);
    assert_int_equal(sql_int(f->path, "SELECT id FROM sessions"), newest_id);
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM sensor_stats"), 0);
    assert_no_orphans(f->path);
    assert_int_equal(store_prune(store, 0, 1, 2, &deleted), STORE_OK);
    assert_int_equal(deleted, 0);
    assert_int_equal(store_close(store), STORE_OK);
}

/* A live size in bytes, as store_prune() measures it. */
static int64_t live_bytes(const char *path)
{
    return sql_int(path, "SELECT (p.page_count - f.freelist_count) * s.page_size FROM"
                         " pragma_page_count() p, pragma_freelist_count() f, pragma_page_size() s");
}

static off_t file_size(const char *path)
{
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    return sb.st_size;
}

#define SIZE_SESSIONS 3000

/* A session of about 2 KB of transcript starting at T_SMTP + slot seconds. */
static struct mt_session *make_sized(int slot)
{
    struct mt_session *s = make_refused();
    s->start_us = T_SMTP + (int64_t)slot * 1000000;
    for (int line = 0; line < 20; line++)
        assert_true(session_transcript_addf(s, s->start_us + line, 'C', "%05d-%02d %088d", slot,
                                            line, slot * 31 + line) >= 0);
    snprintf(s->user, sizeof s->user, "sized-%05d", slot);
    return s;
}

static void test_prune_by_size(void **state)
{
    struct fixture *f = *state;
    struct mt_store *store = open_store(f, true);
    long deleted = -1, total = 0;
    int calls = 0;
    assert_int_equal(sql_int(f->path, "PRAGMA auto_vacuum"), 2);   /* incremental */
    store_set_batch(store, 500, 60000);
    for (int i = 0; i < SIZE_SESSIONS; i++) {
        /* start times a permutation of the ids: "oldest" is by time, not by id */
        struct mt_session *s = make_sized((i * 7) % SIZE_SESSIONS);
        assert_int_equal(store_put_session(store, s), STORE_OK);
        session_free(s);
    }
    assert_int_equal(store_close(store), STORE_OK);   /* checkpoints: the file is the data */
    off_t before = file_size(f->path);
    int64_t limit = before / 2;
    assert_true(live_bytes(f->path) > limit);
    print_message("    %d sessions: %lld bytes; limit %lld\n", SIZE_SESSIONS,
                  (long long)before, (long long)limit);
    store = open_store(f, true);
    do {
        assert_int_equal(store_prune(store, 0, limit, 100, &deleted), STORE_OK);
        assert_true(deleted >= 0 && deleted <= 100);
        total += deleted;
        assert_true(++calls < 100);
    } while (deleted > 0);
    int64_t live = live_bytes(f->path);
    int64_t kept = sql_int(f->path, "SELECT count(*) FROM sessions");
    print_message("    %d calls deleted %ld sessions; live %lld bytes, %lld sessions kept\n",
                  calls, total, (long long)live, (long long)kept);
    /* at the target (90% of the limit), not far below it: no more than needed went */
    assert_true(live <= limit / 100 * 90);
    assert_true(live >= limit / 100 * 80);
    assert_int_equal(kept + total, SIZE_SESSIONS);
    /* the newest are the ones kept: exactly the last `kept` start times */
    assert_int_equal(sql_int(f->path, "SELECT max(start_us) FROM sessions"),
                     T_SMTP + (int64_t)(SIZE_SESSIONS - 1) * 1000000);
    assert_int_equal(sql_int(f->path, "SELECT min(start_us) FROM sessions"),
                     T_SMTP + (SIZE_SESSIONS - kept) * 1000000);
    assert_int_equal(grep_count(store, "sized-00000"), 0);
    assert_int_equal(grep_count(store, "sized-02999"), 1);
    /* under the limit now: a few more sessions do not start a prune of one row at a time */
    for (int i = 0; i < 10; i++) {
        struct mt_session *s = make_sized(SIZE_SESSIONS + i);
        assert_int_equal(store_put_session(store, s), STORE_OK);
        session_free(s);
    }
    assert_int_equal(store_prune(store, 0, limit, 100, &deleted), STORE_OK);
    assert_int_equal(deleted, 0);
    assert_no_orphans(f->path);
    assert_int_equal(store_close(store), STORE_OK);
    off_t after = file_size(f->path);
    print_message("    file: %lld bytes before, %lld after\n", (long long)before, (long long)after);
    assert_true(after <= limit);
    assert_true(after < before);
}

/* The number of levels in the search index's structure record (FTS5's %_data row 10: a
 * 4-byte cookie, a newer version's 4-byte marker, then nLevel as a varint). */
static int64_t index_levels(const char *path)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    int64_t levels = 0;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT block FROM session_search_data WHERE id = 10",
                                        -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    const unsigned char *b = sqlite3_column_blob(st, 0);
    int n = sqlite3_column_bytes(st, 0), i = 4;
    if (n >= 8 && b[4] == 0xff && b[5] == 0 && b[6] == 0 && b[7] == 1)
        i = 8;
    for (; i < n && i < 13; i++) {
        levels = levels << 7 | (b[i] & 0x7f);
        if (!(b[i] & 0x80))
            break;
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return levels;
}

/* Pruning at every call for a long time (by age, with the merge work that follows the
 * deleting, and by size): the index's structure keeps a handful of levels (FTS5 of SQLite
 * 3.40 calls an index of more than 2000 corrupt, and a negative 'merge' adds one each time
 * the segments are on several levels), and stays consistent. */
static void test_prune_index_levels(void **state)
{
    struct fixture *f = *state;
    struct mt_store *store = open_store(f, true);
    long deleted;
    int next = 0;
    assert_int_equal(sql_int(f->path, "SELECT v FROM session_search_config"
                                      " WHERE k = 'usermerge'"), 2);
    for (int round = 0; round < 200; round++) {
        for (int batch = 0; batch < 2; batch++) {   /* two segments a round */
            for (int i = 0; i < 5; i++) {
                struct mt_session *s = make_aged(next++);
                assert_int_equal(store_put_session(store, s), STORE_OK);
                session_free(s);
            }
            assert_int_equal(store_flush(store), STORE_OK);
        }
        /* keep the newest 50 */
        assert_int_equal(store_prune(store, T_SMTP + (next - 50) * HOUR_US, 0, 100, &deleted),
                         STORE_OK);
        assert_int_equal(deleted, next > 50 ? 10 : 0);
    }
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM sessions"), 50);
    int64_t by_age = index_levels(f->path);
    for (int round = 0; round < 100; round++) {
        for (int i = 0; i < 3; i++) {
            struct mt_session *s = make_aged(next++);
            assert_int_equal(store_put_session(store, s), STORE_OK);
            session_free(s);
        }
        assert_int_equal(store_prune(store, 0, 1, 100, &deleted), STORE_OK);
        assert_int_equal(deleted, round ? 3 : 52);   /* all but the newest */
    }
    assert_int_equal(store_close(store), STORE_OK);
    int64_t levels = index_levels(f->path);
    print_message("    search index: %lld levels after 200 calls by age, %lld after 100 more"
                  " by size\n", (long long)by_age, (long long)levels);
    assert_true(by_age > 0 && by_age < 20);
    assert_true(levels > 0 && levels < 20);
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM sessions"), 1);
    assert_no_orphans(f->path);
}

/* ---- capture statistics ------------------------------------------------------------- */

struct sensor_rows {
    struct store_sensor_stats row[8];
    char source[8][32];
    int n, stop_after;
};

static int collect_sensor(void *ctx, const struct store_sensor_stats *stats)
{
    struct sensor_rows *r = ctx;
    assert_true(r->n < 8);
    r->row[r->n] = *stats;
    snprintf(r->source[r->n], sizeof r->source[0], "%s", stats->source);
    r->row[r->n].source = r->source[r->n];   /* the store's string dies with the call */
    return ++r->n == r->stop_after;
}

static void test_sensor_stats(void **state)
{
    struct fixture *f = *state;
    struct mt_store *store = open_store(f, true);
    struct sensor_rows r = { .n = 0 };
    char source[16];
    /* run 1: three rows a minute apart; run 2 (another handle) starts its count again */
    for (int i = 0; i < 3; i++) {
        snprintf(source, sizeof source, "eth%d", i);
        struct store_sensor_stats row = {
            .ts_us = T_SMTP + i * 60000000LL, .packets = 1000u * (unsigned)(i + 1),
            .kernel_drops = (uint64_t)i, .interface_drops = 7, .sessions = 10u + 30u * (unsigned)i,
            .streams = 100u + (unsigned)i, .source = source, .run = 12345 /* ignored */,
        };
        assert_int_equal(store_put_sensor_stats(store, &row), STORE_OK);
    }
    assert_int_equal(store_close(store), STORE_OK);
    store = open_store(f, true);
    struct store_sensor_stats next = { .ts_us = T_SMTP + 3 * 60000000LL, .sessions = 5,
                                       .streams = 3, .source = "eth0" };
    assert_int_equal(store_put_sensor_stats(store, &next), STORE_OK);
    assert_int_equal(store_query_sensor_stats(store, 0, 0, collect_sensor, &r), 4);
    for (int i = 0; i < 4; i++)   /* newest first */
        assert_int_equal(r.row[i].ts_us, T_SMTP + (3 - i) * 60000000LL);
    assert_int_equal(r.row[1].packets, 3000);
    assert_int_equal(r.row[1].kernel_drops, 2);
    assert_int_equal(r.row[1].interface_drops, 7);
    assert_int_equal(r.row[1].sessions, 70);
    assert_int_equal(r.row[1].streams, 102);
    assert_string_equal(r.row[1].source, "eth2");
    assert_int_equal(r.row[0].streams, 3);
    assert_true(r.row[1].run > 0 && r.row[1].run != 12345);
    assert_int_equal(r.row[1].run, r.row[2].run);
    assert_int_equal(r.row[2].run, r.row[3].run);
    assert_true(r.row[0].run > r.row[1].run);
    /* sessions per minute: 30 a minute within run 1; none across the runs */
    double rate = store_sensor_sessions_per_minute(&r.row[1], &r.row[3]);
    assert_true(rate > 29.999 && rate < 30.001);
    assert_true(store_sensor_sessions_per_minute(&r.row[0], &r.row[1]) < 0);
    assert_true(store_sensor_sessions_per_minute(&r.row[3], &r.row[1]) < 0);   /* reversed */
    struct store_sensor_stats soon = r.row[2];   /* under a minute: no rate */
    soon.ts_us = r.row[3].ts_us + 59 * 1000000LL;
    assert_true(store_sensor_sessions_per_minute(&soon, &r.row[3]) < 0);
    soon.ts_us = r.row[3].ts_us + 60 * 1000000LL;
    assert_true(store_sensor_sessions_per_minute(&soon, &r.row[3]) >= 0);
    /* since, limit, stopping */
    r.n = 0;
    assert_int_equal(store_query_sensor_stats(store, T_SMTP + 60000000LL, 0, collect_sensor,
                                              &r), 3);
    assert_int_equal(r.row[2].ts_us, T_SMTP + 60000000LL);
    r.n = 0;
    assert_int_equal(store_query_sensor_stats(store, 0, 2, collect_sensor, &r), 2);
    r.n = 0;
    r.stop_after = 1;
    assert_int_equal(store_query_sensor_stats(store, 0, 0, collect_sensor, &r), 1);
    assert_int_equal(store_close(store), STORE_OK);
    /* the console's own query, by column name, still reads the newest row */
    char err[256];
    struct ui_db *ui = uidb_open(f->path, err, sizeof err);
    struct ui_sensor sensor;
    assert_non_null(ui);
    uidb_sensor(ui, &sensor);
    assert_true(sensor.present);
    assert_int_equal(sensor.ts_us, T_SMTP + 3 * 60000000LL);
    assert_int_equal(sensor.sessions, 5);
    assert_string_equal(sensor.source, "eth0");
    uidb_close(ui);
    /* an older capture read in afterwards: its run is the one shown, not the sensor's
     * rows of later capture times */
    exec_ok(f->path, "INSERT INTO sensor_stats(ts_us, packets, kernel_drops, interface_drops,"
                     " sessions, source, streams, run) VALUES(1000000, 9, 0, 0, 2, 'old.pcap', 0,"
                     " 1000)");
    ui = uidb_open(f->path, err, sizeof err);
    assert_non_null(ui);
    uidb_sensor(ui, &sensor);
    assert_string_equal(sensor.source, "old.pcap");
    assert_int_equal(sensor.sessions, 2);
    uidb_close(ui);
}

/* A database whose sensor_stats predates streams and run: read-only, the rows read back
 * with 0 for them and writing is refused; writable, the columns are added. */
static void test_sensor_stats_older_database(void **state)
{
    struct fixture *f = *state;
    struct mt_store *store = open_store(f, true);
    struct sensor_rows r = { .n = 0 };
    assert_int_equal(store_close(store), STORE_OK);
    exec_ok(f->path, "DROP TABLE sensor_stats; CREATE TABLE sensor_stats (ts_us INTEGER,"
                     " packets INTEGER, kernel_drops INTEGER, interface_drops INTEGER,"
                     " sessions INTEGER, source TEXT); INSERT INTO sensor_stats"
                     " VALUES (1767805000000000, 10000, 0, 0, 10, 'eth0');");
    store = open_store(f, false);
    assert_int_equal(store_query_sensor_stats(store, 0, 0, collect_sensor, &r), 1);
    assert_int_equal(r.row[0].sessions, 10);
    assert_int_equal(r.row[0].streams, 0);
    assert_int_equal(r.row[0].run, 0);
    struct store_sensor_stats row = { .ts_us = 1767805060000000, .sessions = 20, .streams = 9,
                                      .source = "eth0" };
    assert_int_equal(store_put_sensor_stats(store, &row), STORE_READONLY);
    assert_int_equal(store_close(store), STORE_OK);
    store = open_store(f, true);
    assert_int_equal(store_put_sensor_stats(store, &row), STORE_OK);
    r.n = 0;
    assert_int_equal(store_query_sensor_stats(store, 0, 0, collect_sensor, &r), 2);
    assert_int_equal(r.row[0].streams, 9);
    assert_true(r.row[0].run > 0);
    assert_true(store_sensor_sessions_per_minute(&r.row[0], &r.row[1]) < 0);   /* run 0 */
    assert_int_equal(store_close(store), STORE_OK);
    assert_int_equal(sql_int(f->path, "SELECT count(*) FROM sqlite_master WHERE name ="
                                      " 'sensor_stats_time'"), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls_dns_facts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_and_stop, setup, teardown),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_show),
        cmocka_unit_test(test_cert_words),
        cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readonly_directory_named, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_io_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_denormalised, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sort_orders, setup, teardown),
        cmocka_unit_test_setup_teardown(test_search_is_like, setup, teardown),
        cmocka_unit_test_setup_teardown(test_search_document_is_the_views, setup, teardown),
        cmocka_unit_test_setup_teardown(test_search_kept_in_step, setup, teardown),
        cmocka_unit_test_setup_teardown(test_search_added_to_older_database, setup, teardown),
        cmocka_unit_test_setup_teardown(test_search_documents_upgraded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_capture_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_search_positional_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bulk_load_defers_indexes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bulk_load_search_after_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_search_build_copy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bulk_load_journal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hot_journal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_peer_sessions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prune_by_age, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prune_max_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prune_nothing_to_do, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prune_read_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prune_keeps_newest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prune_by_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prune_index_levels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sensor_stats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer_commits_when_idle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer_disk_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sensor_stats_older_database, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_text_read_back, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
