/* console.c — `mailtap ui`: the main loop (draw, wait for a key or the live-refresh timer,
 * dispatch) and the per-screen request handlers, which return what must happen next as
 * flags. Line editing for the search prompt and the filter form lives here too. */
#include "console.h"

#include "cli/output.h"
#include "store/store.h"
#include "ui/detail.h"
#include "ui/draw.h"
#include "ui/keys.h"
#include "ui/model.h"
#include "ui/summary_model.h"

#include <curses.h>
#include <langinfo.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { UI_REDRAW = 1, UI_QUIT = 2, UI_CLEAR = 4 };

#define INPUT_TICK_MS 150
#define SUMMARY_REFRESH_MS 5000

struct console {
    const struct ui_live *live;
    bool live_ended;             /* live->source has exited: everything is written */
    bool live_failed;            /* ... with a status that says some input was bad */
    const char *db_path;
    struct mt_store *store;
    struct ui_db *db;
    struct ui_model *model;
    struct ui_detail *detail;
    struct ui_trace *trace;      /* the trace view (t in the detail view), NULL if none */
    struct ui_detail *origin;    /* the detail traced from, while a hop's detail is open */
    struct ui_detail *peers_of;  /* the detail whose Also open sessions are being opened (a) */
    size_t peer_at;              /* ... and which of them is open */
    enum ui_screen screen, before_help;
    struct ui_summary summary;
    bool summary_valid, summary_stale;
    int summary_top, help_top;
    struct ui_sensor sensor;
    long db_sessions;
    bool color, utf8;

    bool prompting, prompt_dirty;
    char prompt[UI_GREP_MAX], prompt_saved[UI_GREP_MAX], prompt_line[UI_GREP_MAX + 8];
    char find[UI_GREP_MAX];     /* detail search */
    int find_origin;

    bool form_open;
    struct ui_form form;
    char message[256];
    int64_t last_poll_ms, last_summary_ms;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void say(struct console *c, const char *text)
{
    snprintf(c->message, sizeof c->message, "%s", text);
}

/* ---- the model's source: the store for rows, our own SQL for counts ---------------------- */

static int src_query(void *ctx, const struct store_filter *f, store_session_fn fn, void *fn_ctx)
{
    return store_query_sessions(((struct console *)ctx)->store, f, fn, fn_ctx);
}

static long src_count(void *ctx, const struct store_filter *f)
{
    return store_count_sessions(((struct console *)ctx)->store, f);
}

static int src_load(void *ctx, int64_t id, struct mt_session **out)
{
    return store_load_session(((struct console *)ctx)->store, id, out);
}

static int src_trace(void *ctx, const char *key, store_trace_fn fn, void *fn_ctx)
{
    return store_trace(((struct console *)ctx)->store, key, fn, fn_ctx);
}

static int src_peers(void *ctx, const struct mt_session *session, struct store_peers *out)
{
    return store_peer_sessions(((struct console *)ctx)->store, session, out);
}

static const char *src_error(void *ctx)
{
    struct console *c = ctx;
    const char *e = store_error(c->store);
    return e && e[0] ? e : uidb_error(c->db);
}

/* ---- data refresh ----------------------------------------------------------------------- */

static void check_model(struct console *c, int rc)
{
    if (rc < 0)
        say(c, model_error(c->model));
}

static void load_summary(struct console *c)
{
    int status;
    int64_t since, until;
    model_get_filter(c->model, &status, &since, &until);
    c->summary_valid = uidb_summary(c->db, since, until, draw_summary_columns(),
                                    &c->summary) == 0;
    if (!c->summary_valid)
        say(c, uidb_error(c->db));
    c->summary_stale = false;
    c->last_summary_ms = now_ms();
}

static void count_database(struct console *c)
{
    struct store_filter all;
    store_filter_init(&all);
    c->db_sessions = store_count_sessions(c->store, &all);
    uidb_sensor(c->db, &c->sensor);
}

/* Called on every input tick; polls the database once per poll interval. */
static int poll_database(struct console *c)
{
    int poll = c->live && c->live->poll_ms > 0 ? c->live->poll_ms : 1000;
    int64_t now = now_ms();
    int flags = 0;
    if (now - c->last_poll_ms < poll)
        return 0;
    c->last_poll_ms = now;
    if (c->live)
        flags |= UI_REDRAW;   /* the sensor row changes even when no session is new */
    if (c->live && c->live->source > 0 && !c->live_ended) {
        siginfo_t info;
        memset(&info, 0, sizeof info);
        /* WNOWAIT: the caller reaps it and reads its exit status. */
        c->live_ended = waitid(P_PID, (id_t)c->live->source, &info,
                               WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == c->live->source;
        c->live_failed = c->live_ended && (info.si_code != CLD_EXITED || info.si_status != 0);
        if (c->live_failed)   /* a file it could not read: not a quiet "done" */
            snprintf(c->message, sizeof c->message, "the read ended with problems (exit status"
                     " %d)%s%s; they are printed when you quit", info.si_status,
                     c->live->log_path ? ": see " : "",
                     c->live->log_path ? c->live->log_path : "");
    }
    uidb_sensor(c->db, &c->sensor);
    if (!uidb_changed(c->db))
        return flags;
    count_database(c);
    check_model(c, model_refresh(c->model));
    c->summary_stale = true;
    if (c->screen == SCREEN_SUMMARY && now - c->last_summary_ms >= SUMMARY_REFRESH_MS)
        load_summary(c);
    if (model_new_above(c->model) > 0 && c->screen == SCREEN_LIST)
        snprintf(c->message, sizeof c->message, "%ld new session%s above: g goes to the top",
                 model_new_above(c->model), model_new_above(c->model) == 1 ? "" : "s");
    return UI_REDRAW;
}

/* ---- screen changes --------------------------------------------------------------------- */

static int switch_view(struct console *c, int view)
{
    if (view < 0 || view >= UI_VIEW_COUNT)
        return 0;
    check_model(c, model_set_view(c->model, (enum ui_view)view));
    if (view == UI_VIEW_SUMMARY) {
        c->screen = SCREEN_SUMMARY;
        c->summary_top = 0;
        if (!c->summary_valid || c->summary_stale)
            load_summary(c);
    } else {
        c->screen = SCREEN_LIST;
    }
    return UI_REDRAW;
}

static int open_detail(struct console *c)
{
    struct mt_session *s;
    if (model_load_selected(c->model, &s) < 0) {
        say(c, model_total(c->model) ? model_error(c->model) : "No session to open.");
        return UI_REDRAW;
    }
    struct store_peers peers;
    model_peers(c->model, s, &peers);
    detail_free(c->detail);
    if (!(c->detail = detail_new_with_peers(s, &peers))) {
        say(c, "out of memory");
        return UI_REDRAW;
    }
    detail_layout(c->detail, COLS, c->utf8);
    c->find_origin = 0;
    c->screen = SCREEN_DETAIL;
    return UI_REDRAW | UI_CLEAR;
}

static void close_trace(struct console *c)
{
    if (c->origin) {   /* a hop's detail was open: the traced session's comes back */
        detail_free(c->detail);
        c->detail = c->origin;
        c->origin = NULL;
        detail_layout(c->detail, COLS, c->utf8);
    }
    model_trace_free(c->trace);
    c->trace = NULL;
}

/* From one of the Also open sessions back to the detail that named it. */
static void close_peer(struct console *c)
{
    if (!c->peers_of)
        return;
    close_trace(c);
    detail_free(c->detail);
    c->detail = c->peers_of;
    c->peers_of = NULL;
    detail_layout(c->detail, COLS, c->utf8);
}

static int close_detail(struct console *c)
{
    close_trace(c);
    close_peer(c);
    detail_free(c->detail);
    c->detail = NULL;
    c->screen = SCREEN_LIST;
    return UI_REDRAW | UI_CLEAR;
}

/* From a hop's detail back to the trace it was opened from. */
static int back_to_trace(struct console *c)
{
    detail_free(c->detail);
    c->detail = c->origin;
    c->origin = NULL;
    detail_layout(c->detail, COLS, c->utf8);
    model_trace_move(c->trace, 0, draw_trace_rows());
    c->screen = SCREEN_TRACE;
    return UI_REDRAW | UI_CLEAR;
}

static int open_trace(struct console *c)
{
    if (c->trace && c->origin)
        return back_to_trace(c);
    const struct mt_session *s = detail_session(c->detail);
    /* The message on screen, in a session of several: the one the reader asks about. */
    int message = detail_message_in_view(c->detail, draw_detail_rows());
    char key[MT_NAME_MAX];
    const char *what = model_trace_key_of(s, message, key, sizeof key);
    struct ui_trace *t;
    int n = model_trace_message(c->model, s, message, &t);
    if (n < 0) {
        say(c, model_error(c->model));
        return UI_REDRAW;
    }
    if (n == 0) {
        if (what)
            snprintf(c->message, sizeof c->message, "Nothing to trace: no hop found for %s %.160s.",
                     what, key);
        else
            say(c, "Nothing to trace: this session has no Message-ID, recipient, user or sender.");
        return UI_REDRAW;
    }
    c->trace = t;
    model_trace_move(t, 0, draw_trace_rows());
    c->screen = SCREEN_TRACE;
    return UI_REDRAW | UI_CLEAR;
}

/* The detail view of session id, laid out; NULL with the reason said. */
static struct ui_detail *load_detail(struct console *c, int64_t id)
{
    struct mt_session *s;
    struct ui_detail *d;
    if (model_load(c->model, id, &s) < 0) {
        say(c, model_error(c->model));
        return NULL;
    }
    if (!(d = detail_new(s))) {
        say(c, "out of memory");
        return NULL;
    }
    detail_layout(d, COLS, c->utf8);
    return d;
}

/* a in a detail: the first session its "Also open" lines name; again: the next one (then
 * the first again). Esc comes back to the detail that named them. */
static int open_peer(struct console *c)
{
    const struct ui_detail *base = c->peers_of ? c->peers_of : c->detail;
    size_t count = detail_peer_count(base);
    struct ui_detail *d;
    if (c->origin || count == 0) {
        say(c, c->origin ? "Also open: from the session traced, not from a hop (Esc: back)."
                         : "No other session to open: this detail names none under Also open.");
        return UI_REDRAW;
    }
    size_t next = c->peers_of ? (c->peer_at + 1) % count : 0;
    if (!(d = load_detail(c, detail_peer_id(base, next))))
        return UI_REDRAW;
    close_trace(c);
    if (c->peers_of)
        detail_free(c->detail);
    else
        c->peers_of = c->detail;
    c->detail = d;
    c->peer_at = next;
    c->find_origin = 0;
    size_t total = detail_peer_total(c->peers_of);
    char more[64] = "";
    if (total > count)   /* the lines name the oldest five; list --grep USER has them all */
        snprintf(more, sizeof more, " listed (%zu in all)", total);
    snprintf(c->message, sizeof c->message, "Also open of #%lld: %zu of %zu%s%s; Esc: back.",
             (long long)detail_session(c->peers_of)->id, next + 1, count, more,
             count > 1 ? " (a: the next)" : "");
    return UI_REDRAW | UI_CLEAR;
}

/* Enter on a hop: its detail (Esc comes back to the trace). */
static int open_hop(struct console *c)
{
    const struct ui_trace *t = c->trace;
    struct ui_detail *d;
    int64_t id = t->hops[t->sel].session->id;
    if (id == detail_session(c->detail)->id) {   /* the session traced from */
        close_trace(c);
        c->screen = SCREEN_DETAIL;
        return UI_REDRAW | UI_CLEAR;
    }
    if (!(d = load_detail(c, id)))
        return UI_REDRAW;
    c->origin = c->detail;
    c->detail = d;
    c->find_origin = 0;
    c->screen = SCREEN_DETAIL;
    return UI_REDRAW | UI_CLEAR;
}

static int start_prompt(struct console *c)
{
    const char *current = c->screen == SCREEN_DETAIL ? c->find : model_grep(c->model);
    snprintf(c->prompt, sizeof c->prompt, "%s", current);
    snprintf(c->prompt_saved, sizeof c->prompt_saved, "%s", current);
    c->prompting = true;
    c->prompt_dirty = false;
    if (c->detail)
        c->find_origin = detail_top(c->detail);
    return UI_REDRAW;
}

static void open_form(struct console *c)
{
    int status;
    int64_t since, until;
    uint32_t flag;
    model_get_filter(c->model, &status, &since, &until);
    memset(&c->form, 0, sizeof c->form);
    c->form.status = status;
    c->form.failures = model_failures(c->model);
    for (int i = 0; model_finding_word(i); i++)
        if (model_parse_finding(model_finding_word(i), &flag) && flag & model_finding(c->model)) {
            snprintf(c->form.finding, sizeof c->form.finding, "%s", model_finding_word(i));
            break;
        }
    for (int i = 0; i < 2; i++) {
        int64_t us = i ? until : since;
        char *field = i ? c->form.until : c->form.since;
        time_t t = (time_t)(us / 1000000);
        struct tm tm;
        if (us && gmtime_r(&t, &tm))
            strftime(field, sizeof c->form.since, "%Y-%m-%d %H:%M:%S", &tm);
    }
    c->form_open = true;
}

/* ---- per-screen requests ------------------------------------------------------------------ */

static int list_request(struct console *c, enum ui_request req, int key)
{
    switch (req) {
    case REQ_DOWN: case REQ_SEARCH_NEXT: model_move(c->model, 1); break;
    case REQ_UP: case REQ_SEARCH_PREV: model_move(c->model, -1); break;
    case REQ_PAGE_DOWN: model_move_page(c->model, 1); break;
    case REQ_PAGE_UP: model_move_page(c->model, -1); break;
    case REQ_FIRST: model_go(c->model, 0); c->message[0] = '\0'; break;
    case REQ_LAST: model_go(c->model, -1); break;
    case REQ_OPEN: return open_detail(c);
    case REQ_QUIT: return UI_QUIT;
    case REQ_BACK: say(c, "q quits; c clears the search and filters"); break;
    case REQ_SEARCH: return start_prompt(c);
    case REQ_FAILURES: check_model(c, model_toggle_failures(c->model)); break;
    case REQ_FILTER: open_form(c); break;
    case REQ_CLEAR: check_model(c, model_clear_filters(c->model)); break;
    case REQ_SORT: check_model(c, model_cycle_sort(c->model)); break;
    case REQ_REVERSE: check_model(c, model_reverse_sort(c->model)); break;
    case REQ_RELOAD: check_model(c, model_reload(c->model)); count_database(c); break;
    case REQ_NEXT_VIEW:
        return switch_view(c, ((int)model_view(c->model) + 1) % UI_VIEW_COUNT);
    case REQ_PREV_VIEW:
        return switch_view(c, ((int)model_view(c->model) + UI_VIEW_COUNT - 1) % UI_VIEW_COUNT);
    case REQ_VIEW_N: return switch_view(c, key - '1');
    case REQ_SUMMARY: return switch_view(c, UI_VIEW_SUMMARY);
    default: return 0;
    }
    return UI_REDRAW;
}

static int detail_request(struct console *c, enum ui_request req, int key)
{
    struct ui_detail *d = c->detail;
    int page = draw_detail_rows(), top = detail_top(d), row;
    (void)key;
    switch (req) {
    case REQ_DOWN: detail_scroll_to(d, top + 1, page); break;
    case REQ_UP: detail_scroll_to(d, top - 1, page); break;
    case REQ_PAGE_DOWN: detail_scroll_to(d, top + page - 1, page); break;
    case REQ_PAGE_UP: detail_scroll_to(d, top - page + 1, page); break;
    case REQ_FIRST: detail_scroll_to(d, 0, page); break;
    case REQ_LAST: detail_scroll_to(d, detail_row_count(d), page); break;
    case REQ_BACK: case REQ_QUIT:
        if (c->origin)
            return back_to_trace(c);
        if (c->peers_of) {
            close_peer(c);
            return UI_REDRAW | UI_CLEAR;
        }
        return close_detail(c);
    case REQ_TRACE: return open_trace(c);
    case REQ_ALSO_OPEN: return open_peer(c);
    case REQ_SEARCH: return start_prompt(c);
    case REQ_SEARCH_NEXT:
    case REQ_SEARCH_PREV:
        row = detail_find(d, c->find, top, req == REQ_SEARCH_NEXT ? 1 : -1);
        if (row >= 0)
            detail_scroll_to(d, row, page);
        else
            say(c, c->find[0] ? "Not found." : "No search: / searches the transcript.");
        break;
    case REQ_DECIDING:
        row = detail_deciding_row(d);
        if (row >= 0)
            detail_scroll_to(d, row - page / 2, page);
        else if (detail_session(d)->flags & MT_FLAG_TRANSCRIPT_CAPPED &&
                 detail_session(d)->status_transcript_line < 0)
            say(c, "The deciding line is past the transcript's cap (transcript_capped): its "
                   "text is on the Decided line.");
        else
            say(c, "No transcript line decided this status (an event did).");
        break;
    default: return 0;
    }
    return UI_REDRAW;
}

static int trace_request(struct console *c, enum ui_request req, int key)
{
    struct ui_trace *t = c->trace;
    int page = draw_trace_rows();
    (void)key;
    switch (req) {
    case REQ_DOWN: model_trace_move(t, 1, page); break;
    case REQ_UP: model_trace_move(t, -1, page); break;
    case REQ_PAGE_DOWN: model_trace_move(t, page, page); break;
    case REQ_PAGE_UP: model_trace_move(t, -page, page); break;
    case REQ_FIRST: model_trace_move(t, -t->count, page); break;
    case REQ_LAST: model_trace_move(t, t->count, page); break;
    case REQ_OPEN: return open_hop(c);
    case REQ_BACK: case REQ_QUIT: case REQ_TRACE:
        close_trace(c);
        c->screen = SCREEN_DETAIL;
        return UI_REDRAW | UI_CLEAR;
    default: return 0;
    }
    return UI_REDRAW;
}

static int summary_request(struct console *c, enum ui_request req, int key)
{
    int max_top = draw_summary_height(&c->summary) - (LINES - 4);
    switch (req) {
    case REQ_LAST: c->summary_top = max_top; break;
    case REQ_DOWN: c->summary_top++; break;
    case REQ_UP: if (c->summary_top > 0) c->summary_top--; break;
    case REQ_PAGE_DOWN: c->summary_top += draw_list_rows(); break;
    case REQ_PAGE_UP: c->summary_top -= draw_list_rows(); break;
    case REQ_FIRST: c->summary_top = 0; break;
    case REQ_RELOAD: load_summary(c); break;
    case REQ_BACK: case REQ_QUIT: case REQ_SUMMARY:
        return switch_view(c, UI_VIEW_ALL);
    case REQ_FILTER: open_form(c); break;
    case REQ_NEXT_VIEW: case REQ_PREV_VIEW: case REQ_VIEW_N:
        return list_request(c, req, key);
    default: return 0;
    }
    if (c->summary_top > max_top)
        c->summary_top = max_top;
    if (c->summary_top < 0)
        c->summary_top = 0;
    return UI_REDRAW;
}

static int help_request(struct console *c, enum ui_request req, int key)
{
    (void)key;
    switch (req) {
    case REQ_DOWN: c->help_top++; break;
    case REQ_UP: if (c->help_top > 0) c->help_top--; break;
    case REQ_PAGE_DOWN: c->help_top += LINES - 2; break;
    case REQ_PAGE_UP: c->help_top = c->help_top > LINES - 2 ? c->help_top - LINES + 2 : 0; break;
    case REQ_BACK: case REQ_QUIT: case REQ_HELP:
        c->screen = c->before_help;
        return UI_REDRAW | UI_CLEAR;
    default: return 0;
    }
    if (c->help_top > keys_help_count())
        c->help_top = keys_help_count();
    return UI_REDRAW;
}

/* One handler per screen (tig's view_ops, reduced to what differs). */
static int (*const screen_request[])(struct console *, enum ui_request, int) = {
    [SCREEN_LIST] = list_request,
    [SCREEN_DETAIL] = detail_request,
    [SCREEN_SUMMARY] = summary_request,
    [SCREEN_HELP] = help_request,
    [SCREEN_TRACE] = trace_request,
};

/* ---- prompt, form and mouse ---------------------------------------------------------------- */

static void apply_prompt(struct console *c)
{
    c->prompt_dirty = false;
    if (c->screen == SCREEN_DETAIL) {
        snprintf(c->find, sizeof c->find, "%s", c->prompt);
        int row = detail_find(c->detail, c->find, c->find_origin - 1, 1);
        if (row >= 0)
            detail_scroll_to(c->detail, row, draw_detail_rows());
        return;
    }
    check_model(c, model_set_grep(c->model, c->prompt));
}

/* Edits a text field: printable bytes (UTF-8 arrives byte by byte), Backspace, ^U. Returns
 * true when the text changed. */
static bool edit_text(char *text, size_t cap, int key)
{
    size_t len = strlen(text);
    if (key == KEY_BACKSPACE || key == 127 || key == 8) {
        while (len > 0 && ((unsigned char)text[len - 1] & 0xc0) == 0x80)
            len--;   /* a whole UTF-8 character */
        if (len > 0)
            len--;
        text[len] = '\0';
        return true;
    }
    if (key == UI_KEY_CTRL('u')) {
        text[0] = '\0';
        return true;
    }
    if (key >= 0x20 && key <= 0xff && key != 0x7f && len + 1 < cap) {
        text[len] = (char)key;
        text[len + 1] = '\0';
        return true;
    }
    return false;
}

/* Whether a pause in typing runs the search. The list's search runs as you type from 3
 * characters (the store's trigram index answers those at once); 1 or 2 characters mean a
 * scan of every session, so they wait for Enter. */
static bool search_as_you_type(const struct console *c)
{
    size_t chars = 0;
    if (c->screen == SCREEN_DETAIL)
        return true;
    for (const unsigned char *p = (const unsigned char *)c->prompt; *p; p++)
        chars += (*p & 0xc0) != 0x80;
    return chars == 0 || chars >= 3;
}

static int prompt_key(struct console *c, int key)
{
    if (key == UI_KEY_ESC) {
        snprintf(c->prompt, sizeof c->prompt, "%s", c->prompt_saved);
        apply_prompt(c);
        if (c->detail)
            detail_scroll_to(c->detail, c->find_origin, draw_detail_rows());
        c->prompting = false;
    } else if (key == '\n' || key == '\r' || key == KEY_ENTER) {
        apply_prompt(c);
        c->prompting = false;
    } else if (edit_text(c->prompt, sizeof c->prompt, key)) {
        c->prompt_dirty = true;
    }
    return UI_REDRAW;
}

static int form_key(struct console *c, int key)
{
    struct ui_form *f = &c->form;
    char *field = f->field == FORM_SINCE ? f->since : f->field == FORM_UNTIL ? f->until :
                  f->field == FORM_FINDING ? f->finding : NULL;
    int64_t since, until, now = (int64_t)time(NULL) * 1000000;
    uint32_t finding;
    f->error[0] = '\0';
    if (key == UI_KEY_ESC) {
        c->form_open = false;
    } else if (key == KEY_UP || key == KEY_BTAB) {
        f->field = (enum ui_form_field)((f->field + FORM_FIELDS - 1) % FORM_FIELDS);
    } else if (key == KEY_DOWN || key == '\t') {
        f->field = (enum ui_form_field)((f->field + 1) % FORM_FIELDS);
    } else if (f->field == FORM_STATUS && (key == KEY_LEFT || key == KEY_RIGHT)) {
        f->status += key == KEY_RIGHT ? 1 : -1;
        if (f->status >= MT_STATUS_COUNT)
            f->status = -1;
        if (f->status < -1)
            f->status = MT_STATUS_COUNT - 1;
    } else if (f->field == FORM_FAILURES && (key == ' ' || key == KEY_LEFT || key == KEY_RIGHT)) {
        f->failures = !f->failures;
    } else if (f->field == FORM_FINDING && (key == KEY_LEFT || key == KEY_RIGHT)) {
        int count = 0, at = -1;   /* -1: empty */
        while (model_finding_word(count)) {
            if (strcmp(model_finding_word(count), f->finding) == 0)
                at = count;
            count++;
        }
        at += key == KEY_RIGHT ? 1 : -1;
        if (at >= count)
            at = -1;
        if (at < -1)
            at = count - 1;
        snprintf(f->finding, sizeof f->finding, "%s", at < 0 ? "" : model_finding_word(at));
    } else if (key == '\n' || key == '\r' || key == KEY_ENTER) {
        if (!output_parse_time(f->since, now, &since))
            snprintf(f->error, sizeof f->error, " Since: not a time I understand");
        else if (!output_parse_time(f->until, now, &until))
            snprintf(f->error, sizeof f->error, " Until: not a time I understand");
        else if (!model_parse_finding(f->finding, &finding))
            snprintf(f->error, sizeof f->error, " Finding: not a security finding (see below)");
        else {
            c->form_open = false;
            if (f->failures != model_failures(c->model))
                model_toggle_failures(c->model);
            check_model(c, model_set_finding(c->model, finding));
            check_model(c, model_set_filter(c->model, f->status, since, until));
            c->summary_stale = true;
            if (c->screen == SCREEN_SUMMARY)
                load_summary(c);
        }
    } else if (field) {
        edit_text(field, sizeof f->since, key);
    }
    return UI_REDRAW | (c->form_open ? 0 : UI_CLEAR);
}

static int mouse_event(struct console *c)
{
    MEVENT ev;
    if (getmouse(&ev) != OK)
        return 0;
    int wheel = ev.bstate & BUTTON4_PRESSED ? -3 : 0;
#ifdef BUTTON5_PRESSED
    if (ev.bstate & BUTTON5_PRESSED)
        wheel = 3;
#endif
    if (wheel) {
        int flags = 0;
        for (int i = 0; i < 3; i++)
            flags |= screen_request[c->screen](c, wheel < 0 ? REQ_UP : REQ_DOWN, 0);
        return flags;
    }
    if (!(ev.bstate & (BUTTON1_CLICKED | BUTTON1_PRESSED | BUTTON1_DOUBLE_CLICKED)))
        return 0;
    if (ev.y == 0 && (c->screen == SCREEN_LIST || c->screen == SCREEN_SUMMARY))
        return switch_view(c, draw_tab_at(ev.x));
    if (c->screen != SCREEN_LIST)
        return 0;
    long before = model_selected_index(c->model);
    if (!model_click(c->model, ev.y - draw_list_first_row()))
        return 0;
    if (ev.bstate & BUTTON1_DOUBLE_CLICKED || model_selected_index(c->model) == before)
        return open_detail(c);
    return UI_REDRAW;
}

/* ---- main loop ------------------------------------------------------------------------------ */

static void relayout(struct console *c)
{
    model_set_page(c->model, draw_list_rows());
    if (c->detail) {
        detail_layout(c->detail, COLS, c->utf8);
        detail_scroll_to(c->detail, detail_top(c->detail), draw_detail_rows());
    }
    if (c->origin)
        detail_layout(c->origin, COLS, c->utf8);
    if (c->peers_of)
        detail_layout(c->peers_of, COLS, c->utf8);
    if (c->trace)
        model_trace_move(c->trace, 0, draw_trace_rows());
    if (c->screen == SCREEN_SUMMARY)
        load_summary(c);   /* the chart's width follows the screen's */
}

static void draw(struct console *c)
{
    struct draw_state st = {
        .screen = c->screen, .color = c->color, .utf8 = c->utf8, .db_label = c->db_path,
        .live = c->live, .live_ended = c->live_ended,
        .live_failed = c->live_failed, .sensor = &c->sensor,
        .db_sessions = c->db_sessions,
        .message = c->message, .model = c->model, .detail = c->detail,
        .find = c->find[0] ? c->find : NULL,
        .summary = c->summary_valid ? &c->summary : NULL, .summary_top = c->summary_top,
        .help_top = c->help_top, .form = c->form_open ? &c->form : NULL,
        .trace = c->trace,
    };
    if (c->prompting) {
        snprintf(c->prompt_line, sizeof c->prompt_line, "/%s", c->prompt);
        st.prompt = c->prompt_line;
        if (c->screen == SCREEN_DETAIL)
            st.find = c->prompt[0] ? c->prompt : NULL;
    }
    if (model_sync(c->model) < 0)
        say(c, model_error(c->model));
    draw_screen(&st);
}

static int handle_key(struct console *c, int key)
{
    if (key == KEY_RESIZE) {
        relayout(c);
        return UI_REDRAW | UI_CLEAR;
    }
    if (c->form_open)
        return form_key(c, key);
    if (c->prompting)
        return prompt_key(c, key);
    if (key == KEY_MOUSE)
        return mouse_event(c);
    enum ui_request req = keys_request(key);
    c->message[0] = '\0';
    if (req == REQ_HELP && c->screen != SCREEN_HELP) {
        c->before_help = c->screen;
        c->screen = SCREEN_HELP;
        c->help_top = 0;
        return UI_REDRAW;
    }
    if (req == REQ_REDRAW)
        return UI_REDRAW | UI_CLEAR;
    return req == REQ_NONE ? 0 : screen_request[c->screen](c, req, key);
}

/* Set by SIGINT (Ctrl-C: the console is in cbreak mode), SIGTERM and SIGHUP (the terminal
 * went away): the console closes as on q, so that a --ui decoder is stopped and its
 * summary printed. ncurses' own handlers end the process, which left the decoder running. */
static volatile sig_atomic_t quit_signal;

static void on_quit_signal(int sig)
{
    quit_signal = sig;
}

static int run(struct console *c)
{
    int flags = UI_REDRAW;
    relayout(c);
    check_model(c, model_reload(c->model));
    count_database(c);
    uidb_changed(c->db);
    c->last_poll_ms = now_ms();
    while (!(flags & UI_QUIT) && !quit_signal) {
        if (flags & UI_CLEAR)
            clear();
        if (flags & UI_REDRAW)
            draw(c);
        timeout(INPUT_TICK_MS);
        int key = getch();
        flags = 0;
        if (key == ERR) {
            if (c->prompting && c->prompt_dirty && search_as_you_type(c)) {   /* paused */
                apply_prompt(c);
                flags |= UI_REDRAW;
            }
            flags |= poll_database(c);
            continue;
        }
        flags = handle_key(c, key);
    }
    return 0;
}

int ui_run(const char *db_path, const struct ui_live *live)
{
    struct console c = { .live = live, .db_path = db_path };
    char err[512];
    int rc = 1;
    setlocale(LC_ALL, "");
    c.utf8 = strcmp(nl_langinfo(CODESET), "UTF-8") == 0;
    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
        fprintf(stderr, "mailtap ui: needs a terminal\n");
        return 2;
    }
    if (!(c.store = store_open(db_path, false, err, sizeof err))) {
        fprintf(stderr, "mailtap ui: %s\n", err);
        return 1;
    }
    if (!(c.db = uidb_open(db_path, err, sizeof err))) {
        fprintf(stderr, "mailtap ui: %s\n", err);
        store_close(c.store);
        return 1;
    }
    struct ui_source source = { &c, src_query, src_count, src_load, src_error, src_trace,
                                src_peers };
    if (!(c.model = model_new(&source))) {
        fprintf(stderr, "mailtap ui: out of memory\n");
        goto end;
    }
    SCREEN *screen = newterm(NULL, stdout, stdin);
    if (!screen) {
        fprintf(stderr, "mailtap ui: cannot use this terminal (TERM=%s)\n",
                getenv("TERM") ? getenv("TERM") : "");
        rc = 2;
        goto end;
    }
    const char *no_color = getenv("NO_COLOR");   /* no-color.org: set and not empty */
    c.color = has_colors() && !(no_color && no_color[0]);
    set_escdelay(50);
    cbreak();
    noecho();
    nonl();
    keypad(stdscr, TRUE);
    mousemask(BUTTON1_CLICKED | BUTTON1_DOUBLE_CLICKED | BUTTON4_PRESSED
#ifdef BUTTON5_PRESSED
              | BUTTON5_PRESSED
#endif
              , NULL);
    draw_init(c.color);
    struct sigaction quit = { .sa_handler = on_quit_signal };
    sigemptyset(&quit.sa_mask);
    sigaction(SIGINT, &quit, NULL);
    sigaction(SIGTERM, &quit, NULL);
    sigaction(SIGHUP, &quit, NULL);
    rc = run(&c);
    endwin();
    delscreen(screen);
end:
    close_trace(&c);
    close_peer(&c);
    detail_free(c.detail);
    model_free(c.model);
    uidb_close(c.db);
    store_close(c.store);
    return rc;
}
