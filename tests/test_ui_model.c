/* test_ui_model.c — the console without a terminal: views and the filters they run, paging
 * that loads only a window, live refresh keeping the selection, search and failures filters,
 * the status explanations, the draw-time guard, column layout, key table, detail view, the
 * message trace (what it follows, its hops), the security-finding filter, and the console's
 * count query agreeing with the store's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cli/output.h"
#include "protocols/session.h"
#include "protocols/text.h"
#include "store/store.h"
#include "ui/columns.h"
#include "ui/detail.h"
#include "protocols/explain.h"
#include "ui/keys.h"
#include "ui/model.h"
#include "ui/safetext.h"
#include "ui/summary_model.h"

#include <curses.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* --- a fake source: an array of sessions, newest last ------------------------------------ */

#define FAKE_MAX 200000

struct fake {
    struct mt_session *rows[FAKE_MAX];
    int count;
    long queries, counts, rows_returned, max_limit;
    struct store_filter last;
    char last_grep[UI_GREP_MAX];
    long traces;
    char last_trace[256];
};

static bool fake_match(const struct mt_session *s, const struct store_filter *f)
{
    if (f->proto >= 0 && (int)s->proto != f->proto)
        return false;
    if (f->direction >= 0 && (int)s->direction != f->direction)
        return false;
    if (f->status >= 0 && (int)s->status != f->status)
        return false;
    if (f->failed_only && !status_is_failure(s->status))
        return false;
    if (f->grep && f->grep[0] && text_find_ci(s->user, strlen(s->user), f->grep) < 0)
        return false;
    if (f->since_us && s->start_us < f->since_us)
        return false;
    if (f->until_us && s->start_us >= f->until_us)
        return false;
    if (f->flags_any && !(s->flags & f->flags_any))
        return false;
    return true;
}

static int fake_query(void *ctx, const struct store_filter *f, store_session_fn fn, void *fn_ctx)
{
    struct fake *fk = ctx;
    long skipped = 0, given = 0;
    fk->queries++;
    fk->last = *f;
    snprintf(fk->last_grep, sizeof fk->last_grep, "%s", f->grep ? f->grep : "");
    if (f->limit > fk->max_limit)
        fk->max_limit = f->limit;
    for (int k = 0; k < fk->count; k++) {
        int i = f->oldest_first ? k : fk->count - 1 - k;
        if (!fake_match(fk->rows[i], f))
            continue;
        if (skipped++ < f->offset)
            continue;
        if (f->limit && given >= f->limit)
            break;
        struct mt_session *copy = session_new(fk->rows[i]->proto);
        *copy = *fk->rows[i];
        copy->transcript = NULL;
        copy->recipients = NULL;
        copy->messages = NULL;
        copy->recipient_count = copy->message_count = 0;
        given++;
        fk->rows_returned++;
        if (fn(fn_ctx, copy))
            break;
    }
    return (int)given;
}

static long fake_count(void *ctx, const struct store_filter *f)
{
    struct fake *fk = ctx;
    long n = 0;
    fk->counts++;
    fk->last = *f;   /* an empty result runs only the count */
    snprintf(fk->last_grep, sizeof fk->last_grep, "%s", f->grep ? f->grep : "");
    for (int i = 0; i < fk->count; i++)
        n += fake_match(fk->rows[i], f);
    return n;
}

static int fake_load(void *ctx, int64_t id, struct mt_session **out)
{
    struct fake *fk = ctx;
    for (int i = 0; i < fk->count; i++)
        if (fk->rows[i]->id == id) {
            *out = session_new(fk->rows[i]->proto);
            **out = *fk->rows[i];
            (*out)->transcript = NULL;
            (*out)->recipients = NULL;
            (*out)->messages = NULL;
            (*out)->recipient_count = (*out)->message_count = 0;
            return 0;
        }
    return STORE_NOT_FOUND;
}

/* Every session whose user contains the key is a hop; odd ids are "matched by size". */
static int fake_trace(void *ctx, const char *key, store_trace_fn fn, void *fn_ctx)
{
    struct fake *fk = ctx;
    int hops = 0;
    fk->traces++;
    snprintf(fk->last_trace, sizeof fk->last_trace, "%s", key);
    for (int i = 0; i < fk->count; i++) {
        if (text_find_ci(fk->rows[i]->user, strlen(fk->rows[i]->user), key) < 0)
            continue;
        struct mt_session *copy = session_new(fk->rows[i]->proto);
        *copy = *fk->rows[i];
        copy->transcript = NULL;
        copy->recipients = NULL;
        copy->messages = NULL;
        copy->recipient_count = copy->message_count = 0;
        fn(fn_ctx, copy, copy->id % 2 == 1);
        hops++;
    }
    return hops;
}

static void fake_add(struct fake *fk, enum mt_proto proto, enum mt_direction dir,
                     enum mt_status status, const char *user)
{
    struct mt_session *s = session_new(proto);
    s->id = fk->count + 1;
    s->direction = dir;
    s->status = status;
    s->start_us = 1767804840000000LL + (int64_t)fk->count * 1000000;
    snprintf(s->user, sizeof s->user, "%s", user);
    fk->rows[fk->count++] = s;
}

static struct fake *fake_new(int n)
{
    struct fake *fk = calloc(1, sizeof *fk);
    for (int i = 0; i < n; i++) {
        static const enum mt_proto protos[] = { MT_PROTO_SMTP, MT_PROTO_SMTP, MT_PROTO_POP3,
                                                MT_PROTO_IMAP };
        char user[32];
        snprintf(user, sizeof user, i % 10 == 3 ? "alice%d" : "user%d", i);
        fake_add(fk, protos[i % 4], i % 2 ? MT_OUTBOUND : MT_INBOUND,
                 i % 5 == 0 ? MT_STATUS_AUTH_FAILED : MT_STATUS_DELIVERED, user);
    }
    return fk;
}

static void fake_free(struct fake *fk)
{
    for (int i = 0; i < fk->count; i++)
        session_free(fk->rows[i]);
    free(fk);
}

static struct ui_model *model_on(struct fake *fk, int page)
{
    struct ui_source src = { fk, fake_query, fake_count, fake_load, NULL, fake_trace, NULL };
    struct ui_model *m = model_new(&src);
    model_set_page(m, page);
    assert_int_equal(model_reload(m), 0);
    return m;
}

/* --- model -------------------------------------------------------------------------------- */

static void test_views_apply_their_filter(void **state)
{
    (void)state;
    struct fake *fk = fake_new(100);
    struct ui_model *m = model_on(fk, 20);
    struct store_filter f;
    model_filter(m, &f);
    assert_int_equal(f.proto, -1);
    assert_int_equal(f.direction, -1);
    assert_int_equal(model_total(m), 100);

    assert_int_equal(model_set_view(m, UI_VIEW_SMTP_OUT), 0);
    assert_int_equal(fk->last.proto, MT_PROTO_SMTP);
    assert_int_equal(fk->last.direction, MT_OUTBOUND);
    for (long i = model_top(m); i < model_top(m) + 20 && i < model_total(m); i++) {
        const struct mt_session *s = model_row(m, i);
        assert_non_null(s);
        assert_int_equal(s->proto, MT_PROTO_SMTP);
        assert_int_equal(s->direction, MT_OUTBOUND);
    }
    assert_int_equal(model_set_view(m, UI_VIEW_SMTP_IN), 0);
    assert_int_equal(fk->last.direction, MT_INBOUND);
    assert_int_equal(model_set_view(m, UI_VIEW_POP3), 0);
    assert_int_equal(fk->last.proto, MT_PROTO_POP3);
    assert_int_equal(fk->last.direction, -1);
    assert_int_equal(model_total(m), 25);
    assert_int_equal(model_set_view(m, UI_VIEW_IMAP), 0);
    assert_int_equal(fk->last.proto, MT_PROTO_IMAP);

    /* each view remembers its row */
    assert_int_equal(model_set_view(m, UI_VIEW_ALL), 0);
    model_move(m, 7);
    int64_t id = model_selected(m)->id;
    assert_int_equal(model_set_view(m, UI_VIEW_POP3), 0);
    assert_int_equal(model_selected_index(m), 0);
    assert_int_equal(model_set_view(m, UI_VIEW_ALL), 0);
    assert_int_equal(model_selected(m)->id, id);
    /* the summary is not a list: nothing is queried */
    long before = fk->queries;
    assert_int_equal(model_set_view(m, UI_VIEW_SUMMARY), 0);
    assert_int_equal(fk->queries, before);
    model_free(m);
    fake_free(fk);
}

static void test_paging_loads_only_a_window(void **state)
{
    (void)state;
    struct fake *fk = fake_new(FAKE_MAX);
    struct ui_model *m = model_on(fk, 20);
    long queries, fetched;
    assert_int_equal(model_total(m), FAKE_MAX);
    model_stats(m, &queries, &fetched);
    assert_true(fetched <= 60);
    assert_true(fk->max_limit <= 60);
    assert_non_null(model_row(m, 0));
    assert_null(model_row(m, 1000));

    model_go(m, -1);    /* G */
    assert_int_equal(model_sync(m), 0);
    assert_int_equal(model_selected_index(m), FAKE_MAX - 1);
    assert_int_equal(model_top(m), FAKE_MAX - 20);
    assert_int_equal(model_selected(m)->id, 1);   /* the oldest */
    for (long i = model_top(m); i < FAKE_MAX; i++)
        assert_non_null(model_row(m, i));
    assert_true(fk->last.offset >= FAKE_MAX - 60);

    /* scrolling inside the window runs no query */
    model_go(m, 0);
    assert_int_equal(model_sync(m), 0);
    model_stats(m, &queries, &fetched);
    for (int i = 0; i < 10; i++) {
        model_move(m, 1);
        assert_int_equal(model_sync(m), 0);
    }
    long q2, f2;
    model_stats(m, &q2, &f2);
    assert_int_equal(q2, queries);
    /* page by page through 10 pages: each query loads at most a window */
    for (int i = 0; i < 10; i++) {
        model_move_page(m, 1);
        assert_int_equal(model_sync(m), 0);
        for (long r = model_top(m); r < model_top(m) + 20; r++)
            assert_non_null(model_row(m, r));
    }
    model_stats(m, &q2, &f2);
    assert_true(f2 - fetched <= (q2 - queries) * 60);
    assert_true(f2 < 600);
    model_free(m);
    fake_free(fk);
}

static void test_live_rows_keep_the_selection(void **state)
{
    (void)state;
    struct fake *fk = fake_new(100);
    struct ui_model *m = model_on(fk, 10);
    model_move(m, 5);
    assert_int_equal(model_sync(m), 0);
    int64_t id = model_selected(m)->id;
    long top = model_top(m), sel = model_selected_index(m);

    fake_add(fk, MT_PROTO_SMTP, MT_INBOUND, MT_STATUS_DELIVERED, "new1");
    fake_add(fk, MT_PROTO_SMTP, MT_INBOUND, MT_STATUS_DELIVERED, "new2");
    fake_add(fk, MT_PROTO_POP3, MT_INBOUND, MT_STATUS_LOGIN_OK, "new3");
    assert_int_equal(model_refresh(m), 0);
    assert_int_equal(model_total(m), 103);
    assert_int_equal(model_selected(m)->id, id);
    assert_int_equal(model_selected_index(m), sel + 3);
    /* the same sessions stay on the same screen lines */
    assert_int_equal(model_selected_index(m) - model_top(m), sel - top);
    assert_int_equal(model_new_above(m), 3);

    /* at the very top the list follows new sessions */
    model_go(m, 0);
    assert_int_equal(model_sync(m), 0);
    assert_int_equal(model_new_above(m), 0);
    fake_add(fk, MT_PROTO_IMAP, MT_INBOUND, MT_STATUS_LOGIN_OK, "newest");
    assert_int_equal(model_refresh(m), 0);
    assert_int_equal(model_selected_index(m), 0);
    assert_int_equal(model_top(m), 0);
    assert_string_equal(model_selected(m)->user, "newest");
    model_free(m);
    fake_free(fk);
}

static void test_search_and_failures_set_the_filter(void **state)
{
    (void)state;
    struct fake *fk = fake_new(100);
    struct ui_model *m = model_on(fk, 10);
    char line[256];
    model_move(m, 4);
    assert_int_equal(model_set_grep(m, "ALICE"), 0);
    assert_string_equal(fk->last_grep, "ALICE");
    assert_string_equal(model_grep(m), "ALICE");
    assert_int_equal(model_total(m), 10);
    assert_int_equal(model_selected_index(m), 0);
    assert_non_null(strstr(model_selected(m)->user, "alice"));
    model_describe(m, line, sizeof line);
    assert_non_null(strstr(line, "search \"ALICE\""));

    assert_int_equal(model_toggle_failures(m), 0);
    assert_true(fk->last.failed_only);
    assert_true(model_failures(m));
    assert_int_equal(model_set_grep(m, ""), 0);
    assert_null(fk->last.grep);
    assert_int_equal(model_total(m), 20);
    model_describe(m, line, sizeof line);
    assert_non_null(strstr(line, "failures only"));
    assert_int_equal(model_toggle_failures(m), 0);
    assert_false(fk->last.failed_only);
    assert_int_equal(model_total(m), 100);

    assert_int_equal(model_set_filter(m, MT_STATUS_AUTH_FAILED, 1767804840000000LL + 50000000,
                                      0), 0);
    assert_int_equal(fk->last.status, MT_STATUS_AUTH_FAILED);
    assert_int_equal(model_total(m), 10);
    model_describe(m, line, sizeof line);
    assert_non_null(strstr(line, "status auth_failed"));
    assert_non_null(strstr(line, "since 2026-01-07 16:54:50"));

    /* s cycles the key (time, status, user), o the direction; both show in the filter line */
    assert_int_equal(fk->last.order, STORE_ORDER_TIME);
    assert_false(fk->last.oldest_first);
    assert_int_equal(model_cycle_sort(m), 0);
    assert_int_equal(fk->last.order, STORE_ORDER_STATUS);
    assert_false(fk->last.oldest_first);
    model_describe(m, line, sizeof line);
    assert_non_null(strstr(line, "by status Z-A, newest first"));
    assert_int_equal(model_reverse_sort(m), 0);
    assert_true(fk->last.oldest_first);
    assert_int_equal(model_sort(m), STORE_ORDER_STATUS);
    assert_true(model_sort_ascending(m));
    assert_int_equal(model_cycle_sort(m), 0);
    assert_int_equal(fk->last.order, STORE_ORDER_USER);
    assert_true(fk->last.oldest_first);
    model_describe(m, line, sizeof line);
    assert_non_null(strstr(line, "by user A-Z, oldest first"));
    assert_int_equal(model_cycle_sort(m), 0);
    assert_int_equal(fk->last.order, STORE_ORDER_TIME);
    model_describe(m, line, sizeof line);
    assert_non_null(strstr(line, "oldest first"));
    assert_int_equal(model_reverse_sort(m), 0);
    assert_false(fk->last.oldest_first);
    assert_int_equal(model_clear_filters(m), 0);
    assert_int_equal(model_total(m), 100);
    assert_int_equal(fk->last.status, -1);
    model_free(m);
    fake_free(fk);
}

/* --- security findings (f: the finding field) ------------------------------------------------ */

static void test_finding_filter(void **state)
{
    (void)state;
    struct fake *fk = fake_new(100);
    uint32_t flag = 1;
    char line[256];
    int words = 0;

    /* the words are flag_name()'s security findings, nothing else */
    for (; model_finding_word(words); words++) {
        assert_true(model_parse_finding(model_finding_word(words), &flag));
        assert_true(flag >= MT_FLAG_CLEARTEXT_AUTH);
        assert_string_equal(flag_name((unsigned)__builtin_ctz(flag)), model_finding_word(words));
    }
    assert_int_equal(words, 6);
    assert_true(model_parse_finding("cert_expired", &flag));
    assert_int_equal(flag, MT_FLAG_CERT_EXPIRED);
    assert_true(model_parse_finding(" cleartext_auth ", &flag));
    assert_int_equal(flag, MT_FLAG_CLEARTEXT_AUTH);
    assert_true(model_parse_finding("", &flag));
    assert_int_equal(flag, 0);
    assert_false(model_parse_finding("line_truncated", &flag));   /* a flag, not a finding */
    assert_false(model_parse_finding("cert", &flag));
    assert_false(model_parse_finding("CERT_EXPIRED_X", &flag));

    for (int i = 0; i < fk->count; i++)
        if (i % 10 == 4)
            fk->rows[i]->flags = MT_FLAG_CERT_EXPIRED | MT_FLAG_CAPTURE_GAP;
        else if (i % 10 == 5)
            fk->rows[i]->flags = MT_FLAG_WEAK_TLS;
    struct ui_model *m = model_on(fk, 10);
    assert_int_equal(fk->last.flags_any, 0);
    assert_true(model_parse_finding("cert_expired", &flag));
    assert_int_equal(model_set_finding(m, flag), 0);
    assert_int_equal(model_finding(m), MT_FLAG_CERT_EXPIRED);
    assert_int_equal(fk->last.flags_any, MT_FLAG_CERT_EXPIRED);
    assert_int_equal(model_total(m), 10);
    for (long i = 0; i < model_total(m); i++)
        assert_true(model_row(m, i)->flags & MT_FLAG_CERT_EXPIRED);
    model_describe(m, line, sizeof line);
    assert_non_null(strstr(line, "finding: cert_expired"));
    assert_null(strstr(line, "no filter"));

    /* with other filters, and kept by them */
    assert_int_equal(model_set_grep(m, "user"), 0);
    assert_int_equal(fk->last.flags_any, MT_FLAG_CERT_EXPIRED);
    model_describe(m, line, sizeof line);
    assert_non_null(strstr(line, "search \"user\" · finding: cert_expired"));
    assert_int_equal(model_set_filter(m, -1, 0, 0), 0);
    assert_int_equal(fk->last.flags_any, MT_FLAG_CERT_EXPIRED);

    /* only findings are accepted as a filter; clearing drops it */
    assert_int_equal(model_set_finding(m, MT_FLAG_CAPTURE_GAP), 0);
    assert_int_equal(model_finding(m), 0);
    assert_int_equal(fk->last.flags_any, 0);
    assert_int_equal(model_set_finding(m, MT_FLAG_WEAK_TLS), 0);
    assert_int_equal(model_total(m), 10);
    assert_int_equal(model_clear_filters(m), 0);
    assert_int_equal(model_finding(m), 0);
    assert_int_equal(fk->last.flags_any, 0);
    assert_int_equal(model_total(m), 100);
    model_describe(m, line, sizeof line);
    assert_null(strstr(line, "finding"));
    model_free(m);
    fake_free(fk);
}

/* --- message trace (t in the detail view) --------------------------------------------------- */

/* t in the detail view of a session of several messages: the one that decided the status
 * as the view opens, the one scrolled to the top after; each by its own Message-ID, else
 * its own recipient, else its sender. */
static void test_trace_message_in_view(void **state)
{
    (void)state;
    char key[256];
    struct mt_session *s = session_new(MT_PROTO_SMTP);
    static const char *const ids[] = { "<one@x>", "", "<three@x>" };
    static const enum mt_status outcomes[] = { MT_STATUS_DELIVERED, MT_STATUS_DELIVERED,
                                              MT_STATUS_CONTENT_REJECTED };
    for (int i = 0; i < 3; i++) {
        struct mt_message *m = session_add_message(s);
        session_text_setf(&m->mail_from, MT_MSG_MAIL_FROM_MAX, "alice@x");
        if (ids[i][0])
            session_text_setf(&m->message_id, MT_MSG_MESSAGE_ID_MAX, "%s", ids[i]);
        m->status = outcomes[i];
        struct mt_recipient *r = session_add_recipient(s);
        session_text_setf(&r->addr, MT_RCPT_ADDR_MAX, "rcpt%d@y", i + 1);
        r->message = i;
        r->accepted = true;
    }
    s->status = MT_STATUS_CONTENT_REJECTED;
    assert_string_equal(model_trace_key_of(s, 2, key, sizeof key), "Message-ID");
    assert_string_equal(key, "<three@x>");
    assert_string_equal(model_trace_key_of(s, 1, key, sizeof key), "recipient");
    assert_string_equal(key, "rcpt2@y");   /* its own, not the session's first */
    assert_string_equal(model_trace_key_of(s, -1, key, sizeof key), "Message-ID");
    assert_string_equal(key, "<one@x>");

    struct ui_detail *d = detail_new(s);   /* takes s */
    assert_non_null(d);
    detail_layout(d, 80, false);
    assert_int_equal(detail_message_in_view(d, 10), 2);   /* the view as it opens */
    int second = -1;
    for (int r = 0; r < detail_row_count(d) && second < 0; r++)
        if (detail_line(d, detail_row(d, r)->line)->message == 1)
            second = r;
    assert_true(second > 0);
    detail_scroll_to(d, second, 5);
    assert_int_equal(detail_message_in_view(d, 5), 1);   /* scrolled to Mail 2 */
    detail_scroll_to(d, detail_row_count(d), 5);          /* the transcript's end */
    assert_int_equal(detail_message_in_view(d, 5), 2);
    detail_free(d);
}

static void test_trace_key(void **state)
{
    (void)state;
    char key[256];
    struct mt_session *s = session_new(MT_PROTO_SMTP);
    assert_null(model_trace_key(s, key, sizeof key));
    assert_string_equal(key, "");

    /* the sender is the last resort */
    struct mt_message *msg = session_add_message(s);
    session_text_setf(&msg->mail_from, MT_MSG_MAIL_FROM_MAX, "sender@client.example");
    assert_string_equal(model_trace_key(s, key, sizeof key), "sender");
    assert_string_equal(key, "sender@client.example");

    /* a recipient comes before it */
    struct mt_recipient *rc = session_add_recipient(s);
    session_text_setf(&rc->addr, MT_RCPT_ADDR_MAX, "first@relay.example");
    rc = session_add_recipient(s);
    session_text_setf(&rc->addr, MT_RCPT_ADDR_MAX, "second@relay.example");
    assert_string_equal(model_trace_key(s, key, sizeof key), "recipient");
    assert_string_equal(key, "first@relay.example");

    /* and the first message that has a Message-ID before everything */
    msg = session_add_message(s);
    session_text_setf(&msg->message_id, MT_MSG_MESSAGE_ID_MAX, "<two@client.example>");
    msg = session_add_message(s);
    session_text_setf(&msg->message_id, MT_MSG_MESSAGE_ID_MAX, "<three@client.example>");
    assert_string_equal(model_trace_key(s, key, sizeof key), "Message-ID");
    assert_string_equal(key, "<two@client.example>");
    session_free(s);

    /* POP3/IMAP: the user (an SMTP AUTH user is not a mail address to trace) */
    s = session_new(MT_PROTO_IMAP);
    snprintf(s->user, sizeof s->user, "dave");
    assert_string_equal(model_trace_key(s, key, sizeof key), "user");
    assert_string_equal(key, "dave");
    session_free(s);
    s = session_new(MT_PROTO_SMTP);
    snprintf(s->user, sizeof s->user, "alice");
    assert_null(model_trace_key(s, key, sizeof key));
    session_free(s);
}

static void test_trace_hops(void **state)
{
    (void)state;
    struct fake *fk = fake_new(40);   /* users "alice3", "alice13", "alice23", "alice33" */
    struct ui_model *m = model_on(fk, 10);
    struct ui_trace *t = NULL;
    char line[512];

    /* nothing to follow: the source is not asked */
    struct mt_session *none = session_new(MT_PROTO_SMTP);
    assert_int_equal(model_trace(m, none, &t), 0);
    assert_null(t);
    assert_int_equal(fk->traces, 0);
    session_free(none);

    /* a key without hops */
    struct mt_session *s = session_new(MT_PROTO_POP3);
    s->id = 14;
    snprintf(s->user, sizeof s->user, "nobody");
    assert_int_equal(model_trace(m, s, &t), 0);
    assert_null(t);
    assert_int_equal(fk->traces, 1);
    assert_string_equal(fk->last_trace, "nobody");

    /* hops in the source's (time) order, the session traced from selected and known */
    snprintf(s->user, sizeof s->user, "alice");
    assert_int_equal(model_trace(m, s, &t), 4);
    assert_non_null(t);
    assert_string_equal(fk->last_trace, "alice");
    assert_string_equal(t->key, "alice");
    assert_string_equal(t->what, "user");
    assert_int_equal(t->count, 4);
    assert_int_equal(t->current_id, 14);
    assert_int_equal(t->hops[0].session->id, 4);
    assert_int_equal(t->hops[3].session->id, 34);
    assert_int_equal(t->sel, 1);   /* #14 */
    assert_int_equal(t->hops[1].match, STORE_TRACE_KEY);

    /* one line per hop: time, #id, [by size/time], proto, client -> server, status */
    snprintf(t->hops[1].session->client_ip, sizeof t->hops[1].session->client_ip, "10.0.0.1");
    snprintf(t->hops[1].session->server_ip, sizeof t->hops[1].session->server_ip, "10.0.0.2");
    t->hops[1].session->server_port = 110;
    model_trace_line(&t->hops[1], t->key, line, sizeof line);
    assert_non_null(strstr(line, "#14"));
    assert_non_null(strstr(line, "10.0.0.1 -> 10.0.0.2:110"));
    assert_non_null(strstr(line, "smtp out"));   /* fake row 13: outbound SMTP */
    assert_non_null(strstr(line, "delivered"));
    assert_null(strstr(line, "by size"));
    assert_null(strchr(line, '\n'));
    t->hops[1].match = STORE_TRACE_SIZE;
    model_trace_line(&t->hops[1], t->key, line, sizeof line);
    assert_non_null(strstr(line, "[by size/time, no Message-ID] "));   /* early: never cut */
    model_trace_line(&t->hops[1], t->key, line, 16);   /* cut, still terminated */
    assert_true(strlen(line) < 16);

    /* moving stays on the hops and keeps the selection within a page */
    model_trace_move(t, 10, 2);
    assert_int_equal(t->sel, 3);
    assert_int_equal(t->top, 2);
    model_trace_move(t, -10, 2);
    assert_int_equal(t->sel, 0);
    assert_int_equal(t->top, 0);
    model_trace_free(t);
    session_free(s);

    /* a source that cannot trace is an error, not a crash */
    struct ui_source no_trace = { fk, fake_query, fake_count, fake_load, NULL, NULL, NULL };
    struct ui_model *m2 = model_new(&no_trace);
    s = session_new(MT_PROTO_IMAP);
    snprintf(s->user, sizeof s->user, "alice");
    assert_true(model_trace(m2, s, &t) < 0);
    assert_null(t);
    assert_true(strlen(model_error(m2)) > 0);
    session_free(s);
    model_free(m2);
    model_free(m);
    fake_free(fk);
}

static void test_parse_time(void **state)
{
    (void)state;
    int64_t us;
    assert_true(output_parse_time("2026-01-07T16:54:00", 0, &us));
    assert_int_equal(us, 1767804840000000LL);
    assert_true(output_parse_time("2026-01-07 16:54", 0, &us));
    assert_int_equal(us, 1767804840000000LL);
    assert_true(output_parse_time("2026-01-07", 0, &us));
    assert_int_equal(us, 1767744000000000LL);
    assert_true(output_parse_time("1767804840", 0, &us));
    assert_int_equal(us, 1767804840000000LL);
    assert_true(output_parse_time("-15m", 1000000000000LL, &us));
    assert_int_equal(us, 1000000000000LL - 900000000LL);
    assert_true(output_parse_time("", 5, &us));
    assert_int_equal(us, 0);
    assert_false(output_parse_time("yesterday", 0, &us));
    assert_false(output_parse_time("2026-13-01", 0, &us));
    /* what the JSON prints is accepted back, fraction and all */
    assert_true(output_parse_time("2026-01-07T16:54:00.266286Z", 0, &us));
    assert_int_equal(us, 1767804840266286LL);
    assert_true(output_parse_time("2026-01-07T16:54:00.5", 0, &us));
    assert_int_equal(us, 1767804840500000LL);
    assert_false(output_parse_time("2026-01-07T16:54:00.x", 0, &us));
    assert_true(output_parse_time("1767804840.266286", 0, &us));   /* start_ts, ts */
    assert_int_equal(us, 1767804840266286LL);
    assert_true(output_parse_time("-1.5h", 10000000000LL, &us));
    assert_int_equal(us, 10000000000LL - 5400000000LL);
    assert_false(output_parse_time("17678.04.84", 0, &us));
    assert_false(output_parse_time("-h", 0, &us));
}

/* --- explanations ---------------------------------------------------------------------------- */

static void test_every_status_is_explained(void **state)
{
    (void)state;
    for (int s = 0; s < MT_STATUS_COUNT; s++) {
        const struct mt_explain *e = explain_status((enum mt_status)s);
        assert_non_null(e);
        if (s != MT_STATUS_UNKNOWN)   /* its own entry, not the fallback */
            assert_ptr_not_equal(e, explain_status(MT_STATUS_UNKNOWN));
        assert_non_null(e->meaning);
        assert_non_null(e->check);
        assert_true(strlen(e->meaning) > 10);
        assert_true(strlen(e->check) > 5);
        if (status_is_failure((enum mt_status)s))
            assert_true(e->severity == MT_SEV_WARN || e->severity == MT_SEV_FAIL);
        else
            assert_true(e->severity == MT_SEV_OK || e->severity == MT_SEV_INFO);
    }
    assert_non_null(explain_status((enum mt_status)-3));
    assert_non_null(explain_status(MT_STATUS_COUNT));
    assert_int_equal(explain_status(MT_STATUS_DELIVERED)->severity, MT_SEV_OK);
    assert_int_equal(explain_status(MT_STATUS_TEMP_FAILED)->severity, MT_SEV_WARN);
    assert_int_equal(explain_status(MT_STATUS_REFUSED)->severity, MT_SEV_FAIL);
    assert_non_null(strstr(explain_status(MT_STATUS_AUTH_FAILED)->meaning, "password"));
    const char *r = explain_reason(MT_STATUS_RCPT_REJECTED,
                                   "550 5.1.1 <x@y>: Recipient address rejected");
    assert_non_null(r);
    assert_non_null(strstr(r, "mailbox does not exist"));
    /* the resolver's words, not the generic prefix before them */
    r = explain_reason(MT_STATUS_DNS_FAILED, "Name service error for name=x.example type=MX: "
                       "Host not found");
    assert_non_null(strstr(r, "NXDOMAIN"));
    r = explain_reason(MT_STATUS_DNS_FAILED, "Name service error for name=x.example type=MX: "
                       "Host found but no data record of requested type");
    assert_non_null(strstr(r, "domain exists"));
    r = explain_reason(MT_STATUS_AUTH_FAILED, "-ERR [AUTH] Authentication failed.");
    assert_non_null(r);
    assert_non_null(strstr(r, "password"));
    /* Dovecot's plaintext refusal carries the wrong-password code: not a password problem */
    r = explain_reason(MT_STATUS_LOGIN_DISABLED, "-ERR [AUTH] Plaintext authentication "
                       "disallowed on non-secure (SSL/TLS) connections.");
    assert_non_null(r);
    assert_null(strstr(r, "password"));
    assert_non_null(strstr(r, "TLS"));
    /* "never answered": the handshake, or the greeting after it, told apart */
    r = explain_reason(MT_STATUS_NO_RESPONSE, "no answer to the connection attempt (SYN): "
                       "server down, filtered or unreachable");
    assert_non_null(r);
    assert_non_null(strstr(r, "SYN was never answered"));
    r = explain_reason(MT_STATUS_NO_RESPONSE, "no reply from the server");
    assert_non_null(r);
    assert_non_null(strstr(r, "no greeting followed"));
    assert_int_equal(explain_status(MT_STATUS_NO_DATA)->severity, MT_SEV_INFO);
    assert_non_null(explain_reason(MT_STATUS_RELAY_DENIED, "554 Relay access denied"));
    assert_null(explain_reason(MT_STATUS_DELIVERED, "250 2.0.0 Ok"));
    assert_null(explain_reason(MT_STATUS_AUTH_FAILED, NULL));
}

/* --- the draw-time guard --------------------------------------------------------------------- */

static void assert_terminal_safe(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        assert_true(*p >= 0x20);
        assert_true(*p != 0x7f);
        if (*p == 0xc2)
            assert_false(p[1] >= 0x80 && p[1] <= 0x9f);   /* U+0080..U+009F */
    }
}

static void test_guard_replaces_controls(void **state)
{
    (void)state;
    char out[256];
    const char raw[] = "a\x1b[2J\x1b]0;pwned\x07" "b\x9b" "31m\xc2\x85" "c\x7f\x01\xe2\x80\xae" "d";
    setlocale(LC_CTYPE, "C.UTF-8");
    for (int utf8 = 0; utf8 < 2; utf8++) {
        int used = safe_fit(out, sizeof out, raw, sizeof raw - 1, 200, utf8, false);
        assert_terminal_safe(out);
        assert_string_equal(out, "a?[2J?]0;pwned?b?31m?c???d");
        assert_int_equal(used, (int)strlen(out));
    }
    /* what the decoders store (\x1b as text) passes unchanged */
    text_sanitize(out, sizeof out, "\x1b[2J", 4);
    char shown[64];
    safe_fit(shown, sizeof shown, out, strlen(out), 80, true, false);
    assert_string_equal(shown, "\\x1b[2J");
    /* UTF-8: kept in a UTF-8 locale, one '?' per character in a plain one */
    safe_fit(out, sizeof out, "Gr\xc3\xbc\xc3\x9f" "e", 7, 80, true, false);
    assert_string_equal(out, "Gr\xc3\xbc\xc3\x9f" "e");
    assert_int_equal(safe_width("Gr\xc3\xbc\xc3\x9f" "e", 7, true), 5);
    safe_fit(out, sizeof out, "Gr\xc3\xbc\xc3\x9f" "e", 7, 80, false, false);
    assert_string_equal(out, "Gr??e");
    /* wide characters are counted as two columns and never split */
    const char wide[] = "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e";   /* 日本語 */
    assert_int_equal(safe_width(wide, 9, true), 6);
    assert_int_equal(safe_fit(out, sizeof out, wide, 9, 3, true, false), 2);
    assert_string_equal(out, "\xe6\x97\xa5");
    assert_int_equal(safe_fit(out, sizeof out, wide, 9, 5, true, true), 5);
    assert_string_equal(out, "\xe6\x97\xa5\xe6\x9c\xac\xe2\x80\xa6");
    assert_int_equal(safe_fit(out, sizeof out, "abcdef", 6, 4, false, true), 4);
    assert_string_equal(out, "abc~");
    assert_int_equal(safe_cut(wide, 9, 5, true), 6);
    /* invalid UTF-8 and a lone combining mark */
    safe_fit(out, sizeof out, "\xcc\x81\xff\xc3(e\xcc\x81", 8, 80, true, false);
    assert_string_equal(out, "?" "?" "?(e\xcc\x81");
    /* a tiny buffer is never overrun */
    char tiny[4];
    safe_fit(tiny, sizeof tiny, "abcdefgh", 8, 80, true, false);
    assert_string_equal(tiny, "abc");
    setlocale(LC_CTYPE, "C");
}

/* --- columns, keys ------------------------------------------------------------------------- */

static void test_columns_fit_every_width(void **state)
{
    (void)state;
    struct ui_colpos cols[UI_COLUMNS_MAX];
    static const enum ui_layout layouts[] = { UI_LAYOUT_MIXED, UI_LAYOUT_SMTP,
                                              UI_LAYOUT_MAILBOX };
    for (int l = 0; l < 3; l++)
        for (int width = 40; width <= 300; width++) {
            int n = columns_layout(layouts[l], width, cols);
            assert_true(n >= 2);
            assert_true(cols[n - 1].x + cols[n - 1].width <= width);
            /* the status last, or the reply that decided it right after it */
            bool reply = cols[n - 1].col == COL_REPLY;
            assert_int_equal(cols[n - 1 - reply].col, COL_STATUS);
            bool port = false;
            for (int c = 0; c < n; c++)
                port |= cols[c].col == COL_PORT;
            if (width >= 80)
                assert_true(n >= 5);
            if (width >= 100)
                assert_int_equal(cols[n - 1].x + cols[n - 1].width, width);
            /* the extras only where the others have their room: an 80-column screen
             * keeps its width for addresses */
            if (width <= 88)
                assert_false(port || reply);
            if (width >= 120) {
                assert_true(port && reply);
                assert_true(cols[n - 1].width >= 20);
            }
        }
    assert_int_equal(columns_layout(UI_LAYOUT_NONE, 80, cols), 0);

    struct mt_session *s = session_new(MT_PROTO_POP3);
    char cell[128];
    s->start_us = 1767804855000000LL;
    s->stats.retr_count = 2;
    s->stats.retr_bytes = 51118;
    columns_cell(COL_TIME, s, 19, cell, sizeof cell);
    assert_string_equal(cell, "2026-01-07 16:54:15");
    columns_cell(COL_TIME, s, 14, cell, sizeof cell);
    assert_string_equal(cell, "01-07 16:54:15");
    columns_cell(COL_WHAT, s, 20, cell, sizeof cell);
    assert_non_null(strstr(cell, "retr=2"));
    columns_cell(COL_TYPE, s, 4, cell, sizeof cell);
    assert_string_equal(cell, "pop3");
    s->server_port = 995;
    columns_cell(COL_PORT, s, 5, cell, sizeof cell);
    assert_string_equal(cell, "995");
    snprintf(s->status_line, sizeof s->status_line, "-ERR [IN-USE] Mailbox locked");
    columns_cell(COL_REPLY, s, 30, cell, sizeof cell);
    assert_string_equal(cell, "-ERR [IN-USE] Mailbox locked");
    session_free(s);
    /* the reply without the IMAP tag it answered; other lines as they are */
    assert_string_equal(columns_reply_text("a7 NO [OVERQUOTA] Quota exceeded"),
                        "NO [OVERQUOTA] Quota exceeded");
    assert_string_equal(columns_reply_text("A0001 BAD Error in IMAP command"),
                        "BAD Error in IMAP command");
    assert_string_equal(columns_reply_text("* BYE Server shutting down."),
                        "* BYE Server shutting down.");
    assert_string_equal(columns_reply_text("550 5.1.1 <x@example.com>: User unknown"),
                        "550 5.1.1 <x@example.com>: User unknown");
    assert_string_equal(columns_reply_text("[no reply to PASS for 67 s]"),
                        "[no reply to PASS for 67 s]");
    assert_string_equal(columns_reply_text(""), "");

    /* a bounce's null sender reads "<>", as in `mailtap list`, not blank */
    s = session_new(MT_PROTO_SMTP);
    assert_non_null(session_add_message(s));
    columns_cell(COL_SENDER, s, 20, cell, sizeof cell);
    assert_string_equal(cell, "<>");
    columns_cell(COL_WHO, s, 20, cell, sizeof cell);
    assert_string_equal(cell, "<>");
    session_free(s);
}

static void test_keys_table(void **state)
{
    (void)state;
    char label[64];
    assert_int_equal(keys_request('q'), REQ_QUIT);
    assert_int_equal(keys_request('j'), REQ_DOWN);
    assert_int_equal(keys_request(KEY_DOWN), REQ_DOWN);
    assert_int_equal(keys_request('/'), REQ_SEARCH);
    assert_int_equal(keys_request('x'), REQ_FAILURES);
    assert_int_equal(keys_request('F'), REQ_FAILURES);
    assert_int_equal(keys_request('\t'), REQ_NEXT_VIEW);
    assert_int_equal(keys_request(KEY_BTAB), REQ_PREV_VIEW);
    assert_int_equal(keys_request('5'), REQ_VIEW_N);
    assert_int_equal(keys_request('?'), REQ_HELP);
    assert_int_equal(keys_request('t'), REQ_TRACE);
    assert_int_equal(keys_request('Z'), REQ_NONE);
    assert_int_equal(keys_help_count(), REQ_COUNT);
    for (int i = 0; i < keys_help_count(); i++) {
        keys_help_label(i, label, sizeof label);
        assert_true(strlen(label) > 0);
        assert_true(strlen(keys_help_text(i)) > 0);
    }
    keys_help_label(REQ_OPEN, label, sizeof label);
    assert_string_equal(label, "Enter");
    keys_help_label(REQ_PAGE_DOWN, label, sizeof label);
    assert_string_equal(label, "PgDn Space ^F");
}

/* --- detail -------------------------------------------------------------------------------- */

static struct mt_session *pop3_failure(void)
{
    struct mt_session *s = session_new(MT_PROTO_POP3);
    const char *lines[] = { "+OK Dovecot ready.", "USER erin", "+OK", "PASS *****",
                            "-ERR [AUTH] Authentication failed.", "QUIT" };
    const char dirs[] = "SCSCSC";
    s->id = 7;
    s->start_us = 1767804840000000LL;
    s->end_us = s->start_us + 1500000;
    snprintf(s->user, sizeof s->user, "erin");
    for (int i = 0; i < 6; i++) {
        int index = session_transcript_add(s, s->start_us + i * 1000, dirs[i], lines[i],
                                           strlen(lines[i]));
        if (i == 4)
            session_decide(s, MT_STATUS_AUTH_FAILED, lines[i], strlen(lines[i]), index);
    }
    return s;
}

/* Every flag is named, the security findings too (the view once knew the first six). */
static void test_detail_flags(void **state)
{
    (void)state;
    struct mt_session *s = pop3_failure();
    s->flags = MT_FLAG_LINE_TRUNCATED | MT_FLAG_CAPTURE_GAP | MT_FLAG_CLEARTEXT_AUTH |
               MT_FLAG_CERT_EXPIRED | MT_FLAG_CERT_NAME_MISMATCH;
    struct ui_detail *d = detail_new(s);
    assert_non_null(d);
    bool found = false;
    for (int i = 0; i < detail_line_count(d); i++) {
        const char *t = detail_line(d, i)->text;
        if (strstr(t, "Flags")) {
            found = true;
            assert_non_null(strstr(t, "line truncated, capture gap, cleartext auth, "
                                      "cert expired, cert name mismatch"));
        }
    }
    assert_true(found);
    detail_free(d);
}

/* A failed handshake is not "the rest of the session is encrypted", and the versions the
 * client offered are shown beside a protocol_version alert. */
static void test_detail_tls_failed(void **state)
{
    (void)state;
    struct mt_session *s = pop3_failure();
    s->tls = true;
    s->status = MT_STATUS_TLS_FAILED;
    struct mt_tls_info *t = session_tls_alloc(s);
    assert_non_null(t);
    snprintf(t->outcome, sizeof t->outcome, "failed");
    snprintf(t->alert, sizeof t->alert, "protocol_version");
    snprintf(t->client_versions, sizeof t->client_versions, "TLSv1.0");
    t->not_before = 1577836800;   /* 2020-01-01 */
    t->not_after = 1609459200;    /* 2021-01-01 */
    s->flags |= MT_FLAG_CERT_EXPIRED;
    struct ui_detail *d = detail_new(s);
    assert_non_null(d);
    bool attempted = false, offered = false, expired = false;
    for (int i = 0; i < detail_line_count(d); i++) {
        const char *text = detail_line(d, i)->text;
        assert_null(strstr(text, "the rest of the session is encrypted"));
        attempted = attempted || strstr(text, "attempted: the handshake failed");
        offered = offered || (strstr(text, "Offered") && strstr(text, "TLSv1.0"));
        expired = expired || (strstr(text, "Valid") && strstr(text, "EXPIRED"));
    }
    assert_true(attempted);
    assert_true(offered);
    assert_true(expired);
    detail_free(d);

    /* the same words as `show`: which fault, the names a mismatch was judged on, which
     * name did not match, and the issuer of a certificate without a CN (the detail owns
     * and has freed the first session) */
    s = pop3_failure();
    s->tls = true;
    s->status = MT_STATUS_TLS_FAILED;
    s->flags |= MT_FLAG_CERT_EXPIRED;
    t = session_tls_alloc(s);
    assert_non_null(t);
    snprintf(t->outcome, sizeof t->outcome, "failed");
    t->not_before = s->start_us / 1000000 + 86400;   /* starts tomorrow */
    t->not_after = t->not_before + 86400 * 90;
    snprintf(t->issuer, sizeof t->issuer, "Walk6 Root CA");
    snprintf(t->sans, sizeof t->sans, "other.example.org, *.example.org");
    snprintf(t->sni, sizeof t->sni, "mail.example.org");
    s->flags |= MT_FLAG_CERT_NAME_MISMATCH;
    d = detail_new(s);
    assert_non_null(d);
    bool not_yet = false, names = false, name = false, issuer = false;
    for (int i = 0; i < detail_line_count(d); i++) {
        const char *text = detail_line(d, i)->text;
        assert_null(strstr(text, "EXPIRED"));
        not_yet = not_yet || (strstr(text, "Valid") && strstr(text, "NOT YET VALID"));
        names = names || (strstr(text, "Names") && strstr(text, "*.example.org"));
        name = name || strstr(text, "does not match mail.example.org (the name the client asked");
        issuer = issuer || (strstr(text, "Cert") && strstr(text, "(no CN)  issued by Walk6"));
    }
    assert_true(not_yet);
    assert_true(names);
    assert_true(name);
    assert_true(issuer);
    detail_free(d);

    /* a certificate that names itself as its issuer says so (unknown_ca at a glance) */
    s = pop3_failure();
    t = session_tls_alloc(s);
    assert_non_null(t);
    snprintf(t->outcome, sizeof t->outcome, "encrypted");
    snprintf(t->subject, sizeof t->subject, "mail.example.org");
    snprintf(t->issuer, sizeof t->issuer, "mail.example.org");
    d = detail_new(s);
    assert_non_null(d);
    bool self = false;
    for (int i = 0; i < detail_line_count(d); i++)
        self = self || strstr(detail_line(d, i)->text, "mail.example.org  issued by itself");
    assert_true(self);
    detail_free(d);
}

/* A retrieved message is not drawn as a sent one, and a DNS row is a lookup. */
static void test_detail_retrieval_and_dns(void **state)
{
    (void)state;
    struct mt_session *s = pop3_failure();
    struct mt_message *m = session_add_message(s);
    assert_non_null(m);
    session_text_setf(&m->reply, MT_MSG_REPLY_MAX, "retrieved by RETR 1");
    m->size = 500;
    struct ui_detail *d = detail_new(s);
    bool retrieved = false;
    for (int i = 0; i < detail_line_count(d); i++) {
        const char *text = detail_line(d, i)->text;
        assert_null(strstr(text, "from <>"));
        retrieved = retrieved || (strstr(text, "Message") && strstr(text, "retrieved by RETR 1, 500"));
    }
    assert_true(retrieved);
    detail_free(d);
    s = session_new(MT_PROTO_DNS);
    s->direction = MT_OUTBOUND;
    d = detail_new(s);
    bool lookup = false;
    for (int i = 0; i < detail_line_count(d); i++) {
        const char *text = detail_line(d, i)->text;
        assert_null(strstr(text, "mailbox access"));
        assert_null(strstr(text, "Counters"));
        lookup = lookup || strstr(text, "dns lookup");
    }
    assert_true(lookup);
    detail_free(d);
}

/* A mailbox lock names who held it, under the deciding line; more than are listed are
 * counted. */
static void test_detail_peers(void **state)
{
    (void)state;
    struct mt_session *s = pop3_failure();
    snprintf(s->status_line, sizeof s->status_line, "-ERR [IN-USE] Mailbox is locked");
    struct store_peers peers = { .count = 1, .total = 3 };
    peers.list[0] = (struct store_peer){ .id = 3, .client_ip = "192.0.2.7",
                                         .start_us = s->start_us - 60000000,
                                         .end_us = s->start_us + 60000000,
                                         .status = MT_STATUS_LOGIN_OK };
    struct ui_detail *d = detail_new_with_peers(s, &peers);
    assert_non_null(d);
    int also = -1, more = -1, check = -1;
    for (int i = 0; i < detail_line_count(d); i++) {
        const char *t = detail_line(d, i)->text;
        if (strstr(t, "Also open") && strstr(t, "#3 from 192.0.2.7 since 16:53:00.000") &&
            strstr(t, "(login_ok, until 16:55:00.000)"))
            also = i;
        if (strstr(t, "and 2 more"))
            more = i;
        if (strncmp(t, "Check", 5) == 0)
            check = i;
    }
    assert_true(check >= 0 && also > check && more == also + 1);
    detail_free(d);
    /* without peers: no such line */
    d = detail_new(pop3_failure());
    for (int i = 0; i < detail_line_count(d); i++)
        assert_null(strstr(detail_line(d, i)->text, "Also open"));
    detail_free(d);
    /* looked for, none found: said so; one from the day before: with its date */
    struct store_peers none = { .looked = true };
    d = detail_new_with_peers(pop3_failure(), &none);
    bool said = false;
    for (int i = 0; i < detail_line_count(d); i++)
        said |= strstr(detail_line(d, i)->text, "Also open") &&
                strstr(detail_line(d, i)->text, "none seen");
    assert_true(said);
    detail_free(d);
    s = pop3_failure();
    peers.total = 1;
    peers.list[0].start_us = s->start_us - 86400LL * 1000000;
    d = detail_new_with_peers(s, &peers);
    said = false;
    for (int i = 0; i < detail_line_count(d); i++)
        said |= strstr(detail_line(d, i)->text, "since 2026-01-06 16:54:00 (login_ok, until "
                                                 "16:55:00.000)") != NULL;
    assert_true(said);
    detail_free(d);
}

static void test_detail_view(void **state)
{
    (void)state;
    struct ui_detail *d = detail_new(pop3_failure());
    assert_non_null(d);
    detail_layout(d, 80, false);
    int row = detail_deciding_row(d);
    assert_true(row >= 0);
    const struct detail_row *r = detail_row(d, row);
    const struct detail_line *line = detail_line(d, r->line);
    assert_true(line->deciding);
    assert_non_null(strstr(line->text, "S: -ERR [AUTH] Authentication failed."));
    assert_non_null(strstr(line->text, "16:54:00.004"));
    bool explained = false, decided = false;
    for (int i = 0; i < detail_line_count(d); i++) {
        const char *t = detail_line(d, i)->text;
        explained = explained || strstr(t, "the server rejected the password");
        decided = decided || (strstr(t, "Decided") && strstr(t, "-ERR [AUTH]"));
    }
    assert_true(explained);
    assert_true(decided);
    /* search finds rows, wrapping around, both ways */
    int first = detail_find(d, "pass *", -1, 1);
    assert_true(first >= 0);
    assert_non_null(strstr(detail_line(d, detail_row(d, first)->line)->text, "PASS"));
    assert_int_equal(detail_find(d, "pass *", first, 1), first);
    assert_int_equal(detail_find(d, "no such text", 0, 1), -1);
    int quit = detail_find(d, "C: QUIT", 0, -1);
    assert_true(quit > row);
    /* narrow: rows never exceed the width */
    detail_layout(d, 30, false);
    for (int i = 0; i < detail_row_count(d); i++) {
        const struct detail_row *rr = detail_row(d, i);
        const struct detail_line *ll = detail_line(d, rr->line);
        int width = safe_width(ll->text + rr->start, rr->len, false);
        assert_true(width + (rr->continuation ? ll->indent : 0) <= 30);
    }
    assert_true(detail_deciding_row(d) > row);
    detail_scroll_to(d, 100000, 10);
    assert_int_equal(detail_top(d), detail_row_count(d) - 10);
    detail_free(d);
}

/* --- the console's count agrees with the store ------------------------------------------- */

static int count_rows(void *ctx, struct mt_session *s)
{
    (*(long *)ctx)++;
    session_free(s);
    return 0;
}

/* A new database in /tmp (its path in db_path), open for writing. */
static struct mt_store *temp_store(char *db_path, size_t cap)
{
    char path[] = "/tmp/test_ui_model_XXXXXX", err[256];
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    unlink(path);
    snprintf(db_path, cap, "%s.db", path);
    struct mt_store *store = store_open(db_path, true, err, sizeof err);
    assert_non_null(store);
    return store;
}

static void test_count_matches_store(void **state)
{
    (void)state;
    char db_path[64], err[256];
    struct mt_store *store = temp_store(db_path, sizeof db_path);
    for (int i = 0; i < 60; i++) {
        struct mt_session *s = session_new((enum mt_proto)(i % 3));
        s->direction = i % 2 ? MT_OUTBOUND : MT_INBOUND;
        s->start_us = 1767804840000000LL + i * 1000000LL;
        s->status = i % 4 ? MT_STATUS_DELIVERED : MT_STATUS_RELAY_DENIED;
        snprintf(s->user, sizeof s->user, i % 6 ? "u%d" : "carol_%d%%", i);
        snprintf(s->client_ip, sizeof s->client_ip, "10.0.0.%d", i % 7);
        snprintf(s->server_ip, sizeof s->server_ip, "192.0.2.%d", i % 5);
        s->flags = (i % 10 == 0 ? MT_FLAG_CLEARTEXT_AUTH : 0) |
                   (i % 15 == 0 ? MT_FLAG_CERT_EXPIRED | MT_FLAG_LINE_TRUNCATED : 0);
        if (i % 5 == 0) {
            struct mt_message *m = session_add_message(s);
            session_text_setf(&m->subject, MT_MSG_SUBJECT_MAX, "Invoice %d", i);
        }
        assert_int_equal(store_put_session(store, s), STORE_OK);
        session_free(s);
    }
    struct mt_session *no_connection = session_new(MT_PROTO_SMTP);   /* a failed MX lookup */
    no_connection->direction = MT_OUTBOUND;
    no_connection->start_us = 1767804840000000LL + 60 * 1000000LL;
    no_connection->status = MT_STATUS_DNS_FAILED;
    assert_int_equal(store_put_session(store, no_connection), STORE_OK);
    session_free(no_connection);
    struct mt_session *lookup = session_new(MT_PROTO_DNS);   /* three hours later */
    lookup->start_us = 1767804840000000LL + 3 * 3600 * 1000000LL;
    lookup->status = MT_STATUS_RESOLVED;
    snprintf(session_dns_alloc(lookup)->qname, MT_NAME_MAX, "example.org");
    assert_int_equal(store_put_session(store, lookup), STORE_OK);
    session_free(lookup);
    assert_int_equal(store_flush(store), STORE_OK);
    struct ui_db *db = uidb_open(db_path, err, sizeof err);
    assert_non_null(db);
    for (int shape = 0; shape < 9; shape++) {
        struct store_filter f;
        long expected = 0;
        store_filter_init(&f);
        switch (shape) {
        case 1: f.proto = MT_PROTO_SMTP; f.direction = MT_OUTBOUND; break;
        case 2: f.failed_only = true; break;
        case 3: f.grep = "CAROL_"; break;
        case 4: f.grep = "%"; break;
        case 5: f.grep = "invoice"; break;
        case 6: f.status = MT_STATUS_RELAY_DENIED; f.since_us = 1767804850000000LL; break;
        case 7: f.until_us = 1767804850000000LL; f.proto = MT_PROTO_POP3; break;
        case 8: f.grep = "nothing-matches"; f.failed_only = true; break;
        }
        assert_true(store_query_sessions(store, &f, count_rows, &expected) >= 0);
        assert_int_equal(store_count_sessions(store, &f), expected);
    }
    struct ui_summary *sm = malloc(sizeof *sm);
    assert_int_equal(uidb_summary(db, 0, 0, 60, sm), 0);
    assert_int_equal(sm->total, 61);   /* mail sessions; the lookup apart */
    assert_int_equal(sm->dns_total, 1);
    assert_int_equal(sm->dns_failures, 0);
    assert_int_equal(sm->category_total[UI_CAT_DNS], 1);
    assert_int_equal(sm->counts[UI_CAT_DNS][MT_STATUS_RESOLVED], 1);
    assert_int_equal(sm->failures, 16);
    assert_int_equal(sm->reason_count, 2);
    assert_int_equal(sm->reasons[0].status, MT_STATUS_RELAY_DENIED);
    assert_int_equal(sm->reasons[1].status, MT_STATUS_DNS_FAILED);
    assert_true(sm->ip_count > 0);
    /* the security findings, per flag: not the flags that describe the record */
    assert_int_equal(sm->findings[7], 6);    /* cleartext_auth: i % 10 == 0 */
    assert_int_equal(sm->findings[10], 4);   /* cert_expired: i % 15 == 0 */
    assert_int_equal(sm->findings[0], 0);    /* line_truncated is no finding */
    for (int i = 0; i < sm->ip_count; i++)   /* the failed MX lookup has no IP to list */
        assert_true(sm->ips[i].text[0] != '\0');
    /* the whole range, 181 minutes, in at most 60 columns: 4 minutes each, made 5 */
    long charted = 0;
    for (int i = 0; i < sm->buckets; i++)
        charted += sm->per_bucket[i];
    assert_int_equal(charted, 62);
    assert_int_equal(sm->bucket_minutes, 5);
    assert_int_equal(sm->buckets, 37);
    assert_int_equal(sm->per_bucket[36], 1);
    assert_int_equal(sm->first_bucket_us, 1767804840000000LL);
    assert_int_equal(sm->end_us, 1767804840000000LL + 181 * 60000000LL);
    assert_int_equal(uidb_summary(db, 0, 1767804900000000LL + 1, 60, sm), 0);   /* 2 minutes */
    assert_int_equal(sm->bucket_minutes, 1);
    assert_int_equal(sm->buckets, 2);
    struct ui_sensor sensor;
    uidb_sensor(db, &sensor);
    assert_false(sensor.present);
    free(sm);
    uidb_close(db);
    store_close(store);
    char side[80];
    unlink(db_path);
    snprintf(side, sizeof side, "%s-wal", db_path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", db_path);
    unlink(side);
}

/* The Summary's top failure reasons: one per reason, not per IMAP tag or per Dovecot
 * timing ("a7 NO [OVERQUOTA] ... (0.001 + 0.000 secs)." three times is one reason), nor per
 * protocol for one event of mailtap's ("no reply from the server": SMTP's words without
 * brackets, walkthrough 13 M4). */
static void test_summary_reasons_grouped(void **state)
{
    (void)state;
    char db_path[64], err[256];
    struct mt_store *store = temp_store(db_path, sizeof db_path);
    static const char *const lines[] = {
        "EPHM2 NO [OVERQUOTA] Quota exceeded (mailbox for user is full) (0.001 + 0.000 secs).",
        "FFCN2 NO [OVERQUOTA] Quota exceeded (mailbox for user is full) (0.002 + 0.000 + 0.001 secs).",
        "a5 NO [OVERQUOTA] Quota exceeded (mailbox for user is full) (0.001 + 0.000 secs).",
        "-ERR [SYS/TEMP] Failed to create POP3 session lock.",
        "[connection reset by the client during RETR: the message cut after 303595 of 900 bytes]",
        "[connection reset by the client during RETR: the message cut after 1024 of 77 bytes]",
        "no reply from the server", "no reply from the server", "[no reply from the server]",
        "[no reply from the server]",
    };
    static const enum mt_proto protos[] = { MT_PROTO_IMAP, MT_PROTO_IMAP, MT_PROTO_IMAP,
                                            MT_PROTO_POP3, MT_PROTO_POP3, MT_PROTO_POP3,
                                            MT_PROTO_SMTP, MT_PROTO_SMTP, MT_PROTO_POP3,
                                            MT_PROTO_IMAP };
    for (int i = 0; i < 10; i++) {
        struct mt_session *s = session_new(protos[i]);
        s->start_us = 1767804840000000LL + i;
        session_decide(s, i < 3 ? MT_STATUS_MAILBOX_FAILED
                          : i == 3 ? MT_STATUS_TEMP_FAILED
                          : i < 6 ? MT_STATUS_INTERRUPTED : MT_STATUS_NO_RESPONSE,
                       lines[i], strlen(lines[i]), -1);
        assert_int_equal(store_put_session(store, s), STORE_OK);
        session_free(s);
    }
    assert_int_equal(store_flush(store), STORE_OK);
    struct ui_db *db = uidb_open(db_path, err, sizeof err);
    assert_non_null(db);
    struct ui_summary *sm = malloc(sizeof *sm);
    assert_int_equal(uidb_summary(db, 0, 0, 60, sm), 0);
    assert_int_equal(sm->reason_count, 4);
    assert_int_equal(sm->reasons[0].count, 4);
    assert_string_equal(sm->reasons[0].text, "[no reply from the server]");
    assert_int_equal(sm->reasons[1].count, 3);
    assert_string_equal(sm->reasons[1].text,
                        "NO [OVERQUOTA] Quota exceeded (mailbox for user is full).");
    assert_int_equal(sm->reasons[2].count, 2);   /* mailtap's own lines: numbers as N */
    assert_string_equal(sm->reasons[2].text, "[connection reset by the client during RETR: the "
                                             "message cut after N of N bytes]");
    assert_string_equal(sm->reasons[3].text, "-ERR [SYS/TEMP] Failed to create POP3 session lock.");
    free(sm);
    uidb_close(db);
    store_close(store);
    unlink(db_path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_views_apply_their_filter),
        cmocka_unit_test(test_paging_loads_only_a_window),
        cmocka_unit_test(test_live_rows_keep_the_selection),
        cmocka_unit_test(test_search_and_failures_set_the_filter),
        cmocka_unit_test(test_finding_filter),
        cmocka_unit_test(test_trace_key),
        cmocka_unit_test(test_trace_message_in_view),
        cmocka_unit_test(test_trace_hops),
        cmocka_unit_test(test_parse_time),
        cmocka_unit_test(test_every_status_is_explained),
        cmocka_unit_test(test_guard_replaces_controls),
        cmocka_unit_test(test_columns_fit_every_width),
        cmocka_unit_test(test_keys_table),
        cmocka_unit_test(test_detail_view),
        cmocka_unit_test(test_detail_peers),
        cmocka_unit_test(test_detail_flags),
        cmocka_unit_test(test_detail_tls_failed),
        cmocka_unit_test(test_detail_retrieval_and_dns),
        cmocka_unit_test(test_count_matches_store),
        cmocka_unit_test(test_summary_reasons_grouped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
