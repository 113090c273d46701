/* model.c — list state for the console: which tab, which filter, which rows are held, which
 * row is selected. Only a window of a few pages around the screen is ever loaded (limit/
 * offset paging), so a database of a million sessions costs no more than one of a hundred. */
#include "model.h"

#include "cli/output.h"
#include "protocols/explain.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WINDOW_PAGES 3      /* pages held: the one on screen and one either side */
#define WINDOW_MIN 30

struct view_pos {
    long top, sel;
    int64_t sel_id;
};

struct ui_model {
    struct ui_source src;
    enum ui_view view, last_list;
    struct view_pos pos[UI_VIEW_COUNT];
    char grep[UI_GREP_MAX];
    bool failed_only;
    int status;
    int64_t since_us, until_us;
    uint32_t findings;          /* store_filter.flags_any */
    enum store_order order;
    bool ascending;

    struct mt_session **rows;   /* rows[i] is row win_offset + i */
    long win_offset;
    int win_count, win_cap;
    bool win_valid;
    long total;
    long top, sel;
    int64_t sel_id;
    int page;
    long new_above;

    long queries, rows_fetched;
    char error[256];
};

#define VIEW_DEF(id, label_text, proto_id, dir, layout_id) \
    { label_text, proto_id, dir, layout_id },
static const struct ui_view_def view_defs[UI_VIEW_COUNT] = { UI_VIEWS(VIEW_DEF) };

const struct ui_view_def *model_view_def(enum ui_view view)
{
    return &view_defs[(int)view >= 0 && view < UI_VIEW_COUNT ? view : UI_VIEW_ALL];
}

const char *model_sort_name(enum store_order order, bool ascending)
{
    static const char *const names[STORE_ORDER_COUNT][2] = {
        [STORE_ORDER_TIME] = { "newest first", "oldest first" },
        [STORE_ORDER_STATUS] = { "by status Z-A, newest first", "by status A-Z, oldest first" },
        [STORE_ORDER_USER] = { "by user Z-A, newest first", "by user A-Z, oldest first" },
    };
    return names[(unsigned)order < STORE_ORDER_COUNT ? order : STORE_ORDER_TIME][ascending];
}

struct ui_model *model_new(const struct ui_source *source)
{
    struct ui_model *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->src = *source;
    m->status = -1;
    m->page = 20;
    m->view = m->last_list = UI_VIEW_ALL;
    return m;
}

static void window_clear(struct ui_model *m)
{
    for (int i = 0; i < m->win_count; i++)
        session_free(m->rows[i]);
    m->win_count = 0;
    m->win_valid = false;
}

void model_free(struct ui_model *model)
{
    if (!model)
        return;
    window_clear(model);
    free(model->rows);
    free(model);
}

void model_set_page(struct ui_model *model, int rows)
{
    model->page = rows > 1 ? rows : 1;
}

int model_page(const struct ui_model *model) { return model->page; }
enum ui_view model_view(const struct ui_model *model) { return model->view; }
const char *model_grep(const struct ui_model *model) { return model->grep; }
bool model_failures(const struct ui_model *model) { return model->failed_only; }
enum store_order model_sort(const struct ui_model *model) { return model->order; }
bool model_sort_ascending(const struct ui_model *model) { return model->ascending; }
long model_total(const struct ui_model *model) { return model->total; }
long model_top(const struct ui_model *model) { return model->top; }
long model_selected_index(const struct ui_model *model) { return model->sel; }
long model_new_above(const struct ui_model *model) { return model->new_above; }
const char *model_error(const struct ui_model *model) { return model->error; }

void model_stats(const struct ui_model *model, long *queries, long *rows_fetched)
{
    *queries = model->queries;
    *rows_fetched = model->rows_fetched;
}

void model_filter(const struct ui_model *m, struct store_filter *f)
{
    /* The summary has no rows of its own: it is described by the last list's filter. */
    const struct ui_view_def *def = model_view_def(m->view == UI_VIEW_SUMMARY ? m->last_list
                                                                             : m->view);
    store_filter_init(f);
    f->proto = def->proto;
    f->direction = def->direction;
    f->status = m->status;
    f->failed_only = m->failed_only;
    f->grep = m->grep[0] ? m->grep : NULL;
    f->since_us = m->since_us;
    f->until_us = m->until_us;
    f->flags_any = m->findings;
    f->order = m->order;
    f->oldest_first = m->ascending;
}

static int fail(struct ui_model *m, const char *doing)
{
    const char *why = m->src.error ? m->src.error(m->src.ctx) : "";
    snprintf(m->error, sizeof m->error, "%s: %s", doing, why && why[0] ? why : "error");
    return -1;
}

static int window_add(void *ctx, struct mt_session *session)
{
    struct ui_model *m = ctx;
    if (m->win_count == m->win_cap) {
        int cap = m->win_cap ? m->win_cap * 2 : 64;
        struct mt_session **rows = realloc(m->rows, (size_t)cap * sizeof *rows);
        if (!rows) {
            session_free(session);
            return 1;
        }
        m->rows = rows;
        m->win_cap = cap;
    }
    m->rows[m->win_count++] = session;
    return 0;
}

static long window_size(const struct ui_model *m)
{
    long size = (long)m->page * WINDOW_PAGES;
    return size < WINDOW_MIN ? WINDOW_MIN : size;
}

/* Loads the window centred on row `center`. */
static int window_fetch(struct ui_model *m, long center)
{
    struct store_filter f;
    long size = window_size(m);
    long offset = center - size / 2;
    if (m->total >= 0 && offset > m->total - size)
        offset = m->total - size;
    if (offset < 0)
        offset = 0;
    window_clear(m);
    model_filter(m, &f);
    f.limit = size;
    f.offset = offset;
    m->queries++;
    int n = m->src.query(m->src.ctx, &f, window_add, m);
    if (n < 0)
        return fail(m, "reading sessions");
    m->rows_fetched += m->win_count;
    m->win_offset = offset;
    m->win_valid = true;
    return 0;
}

static int count_rows(struct ui_model *m)
{
    struct store_filter f;
    model_filter(m, &f);
    m->queries++;
    long total = m->src.count(m->src.ctx, &f);
    if (total < 0) {
        m->total = 0;
        return fail(m, "counting sessions");
    }
    m->total = total;
    return 0;
}

const struct mt_session *model_row(const struct ui_model *m, long index)
{
    if (!m->win_valid || index < m->win_offset || index >= m->win_offset + m->win_count)
        return NULL;
    return m->rows[index - m->win_offset];
}

const struct mt_session *model_selected(const struct ui_model *m)
{
    return model_row(m, m->sel);
}

/* Keeps sel and top inside the list and the selection on screen. */
static void clamp(struct ui_model *m)
{
    if (m->sel >= m->total)
        m->sel = m->total - 1;
    if (m->sel < 0)
        m->sel = 0;
    if (m->top > m->sel)
        m->top = m->sel;
    if (m->sel >= m->top + m->page)
        m->top = m->sel - m->page + 1;
    if (m->top > m->total - m->page)
        m->top = m->total - m->page;
    if (m->top < 0)
        m->top = 0;
}

static void remember_selection(struct ui_model *m)
{
    const struct mt_session *s = model_selected(m);
    m->sel_id = s ? s->id : 0;
}

int model_sync(struct ui_model *m)
{
    if (model_view_def(m->view)->layout == UI_LAYOUT_NONE)
        return 0;
    clamp(m);
    long end = m->top + m->page < m->total ? m->top + m->page : m->total;
    bool covered = m->win_valid && m->top >= m->win_offset &&
                   end <= m->win_offset + m->win_count;
    if (!covered && m->total > 0 && window_fetch(m, m->top + m->page / 2) < 0)
        return -1;
    remember_selection(m);
    return 0;
}

/* Finds session `id` in the window: its row index, or -1. */
static long window_find(const struct ui_model *m, int64_t id)
{
    for (int i = 0; id && i < m->win_count; i++)
        if (m->rows[i]->id == id)
            return m->win_offset + i;
    return -1;
}

int model_reload(struct ui_model *m)
{
    long old_sel = m->sel;
    if (model_selected(m))
        remember_selection(m);
    m->error[0] = '\0';
    if (model_view_def(m->view)->layout == UI_LAYOUT_NONE)
        return 0;
    if (count_rows(m) < 0)
        return -1;
    clamp(m);
    if (m->total > 0 && window_fetch(m, m->sel) < 0)
        return -1;
    long found = window_find(m, m->sel_id);
    if (found >= 0) {
        m->top += found - old_sel;
        m->sel = found;
    }
    return model_sync(m);
}

/* A new filter starts at the first row. */
static int restart(struct ui_model *m)
{
    m->top = m->sel = 0;
    m->sel_id = 0;
    m->new_above = 0;
    window_clear(m);
    return model_reload(m);
}

int model_refresh(struct ui_model *m)
{
    long old_total = m->total, old_sel = m->sel, old_top = m->top;
    bool follow = m->top == 0 && m->sel == 0;
    m->error[0] = '\0';
    if (model_selected(m))
        remember_selection(m);
    if (model_view_def(m->view)->layout == UI_LAYOUT_NONE)
        return 0;
    if (count_rows(m) < 0)
        return -1;
    if (follow) {
        window_clear(m);
        return model_sync(m);
    }
    /* Sessions are stored when they end, so a new row usually lands above the selection
     * (newest first), but a long session can land anywhere: look the selection up by id
     * around where it most likely moved. */
    long delta = m->total - old_total;
    bool newest_first = m->order == STORE_ORDER_TIME && !m->ascending;
    long guess = old_sel + (newest_first && delta > 0 ? delta : 0);
    if (m->total > 0 && window_fetch(m, guess) < 0)
        return -1;
    long found = window_find(m, m->sel_id);
    if (found >= 0) {
        m->sel = found;
        m->top = old_top + (found - old_sel);
        if (found > old_sel)
            m->new_above += found - old_sel;
    }
    return model_sync(m);
}

static int save_and_switch(struct ui_model *m, enum ui_view view)
{
    struct view_pos *old = &m->pos[m->view];
    if (model_selected(m))
        remember_selection(m);
    old->top = m->top;
    old->sel = m->sel;
    old->sel_id = m->sel_id;
    if (model_view_def(m->view)->layout != UI_LAYOUT_NONE)
        m->last_list = m->view;
    m->view = view;
    if (model_view_def(view)->layout == UI_LAYOUT_NONE)
        return 0;
    struct view_pos *now = &m->pos[view];
    m->top = now->top;
    m->sel = now->sel;
    m->sel_id = now->sel_id;
    m->new_above = 0;
    window_clear(m);
    return model_reload(m);
}

int model_set_view(struct ui_model *model, enum ui_view view)
{
    if ((int)view < 0 || view >= UI_VIEW_COUNT)
        return 0;
    return save_and_switch(model, view);
}

/* The filter is shared by every view, so the views' remembered rows no longer apply. */
static int filter_changed(struct ui_model *m)
{
    memset(m->pos, 0, sizeof m->pos);
    return restart(m);
}

int model_set_grep(struct ui_model *m, const char *text)
{
    if (strcmp(m->grep, text ? text : "") == 0)
        return 0;
    snprintf(m->grep, sizeof m->grep, "%s", text ? text : "");
    return filter_changed(m);
}

int model_toggle_failures(struct ui_model *m)
{
    m->failed_only = !m->failed_only;
    return filter_changed(m);
}

int model_set_filter(struct ui_model *m, int status, int64_t since_us, int64_t until_us)
{
    m->status = status >= 0 && status < MT_STATUS_COUNT ? status : -1;
    m->since_us = since_us;
    m->until_us = until_us;
    return filter_changed(m);
}

void model_get_filter(const struct ui_model *m, int *status, int64_t *since_us,
                      int64_t *until_us)
{
    *status = m->status;
    *since_us = m->since_us;
    *until_us = m->until_us;
}

int model_clear_filters(struct ui_model *m)
{
    m->grep[0] = '\0';
    m->failed_only = false;
    m->status = -1;
    m->since_us = m->until_us = 0;
    m->findings = 0;
    return filter_changed(m);
}

/* The security findings are the flag bits from MT_FLAG_CLEARTEXT_AUTH up. */
#define FINDING_FIRST_BIT 7u
#define FINDING_MASK (MT_FLAG_CLEARTEXT_AUTH | MT_FLAG_STARTTLS_UNUSED | MT_FLAG_WEAK_TLS | \
                      MT_FLAG_CERT_EXPIRED | MT_FLAG_CERT_NAME_MISMATCH | \
                      MT_FLAG_OVERLAP_CONFLICT)

const char *model_finding_word(int index)
{
    unsigned bit = FINDING_FIRST_BIT + (unsigned)(index < 0 ? 32 : index);
    return bit < 32 && (FINDING_MASK & (1u << bit)) ? flag_name(bit) : NULL;
}

bool model_parse_finding(const char *word, uint32_t *flag)
{
    size_t len;
    while (*word == ' ')
        word++;
    len = strlen(word);
    while (len > 0 && word[len - 1] == ' ')
        len--;
    *flag = 0;
    if (len == 0)
        return true;
    for (int i = 0; model_finding_word(i); i++) {
        const char *name = model_finding_word(i);
        if (strlen(name) == len && strncmp(name, word, len) == 0) {
            *flag = 1u << (FINDING_FIRST_BIT + (unsigned)i);
            return true;
        }
    }
    return false;
}

int model_set_finding(struct ui_model *m, uint32_t flags)
{
    flags &= FINDING_MASK;
    if (flags == m->findings)
        return 0;
    m->findings = flags;
    return filter_changed(m);
}

uint32_t model_finding(const struct ui_model *m) { return m->findings; }

int model_cycle_sort(struct ui_model *m)
{
    m->order = (enum store_order)((m->order + 1) % STORE_ORDER_COUNT);
    return filter_changed(m);
}

int model_reverse_sort(struct ui_model *m)
{
    m->ascending = !m->ascending;
    return filter_changed(m);
}

static void format_time(char *buf, size_t cap, int64_t us)
{
    time_t t = (time_t)(us / 1000000);
    struct tm tm;
    if (!gmtime_r(&t, &tm) || !strftime(buf, cap, "%Y-%m-%d %H:%M:%S", &tm))
        snprintf(buf, cap, "%lld", (long long)(us / 1000000));
}

/* Appends to buf (capacity cap, *len used), cutting what does not fit. */
static void appendf(char *buf, size_t cap, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void appendf(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
    va_list args;
    if (*len + 1 >= cap)
        return;
    va_start(args, fmt);
    int n = vsnprintf(buf + *len, cap - *len, fmt, args);
    va_end(args);
    if (n > 0)
        *len = (size_t)n < cap - *len ? *len + (size_t)n : cap - 1;
}

void model_describe(const struct ui_model *m, char *buf, size_t cap)
{
    char when[40];
    size_t len = 0;
    buf[0] = '\0';
    if (m->grep[0])
        appendf(buf, cap, &len, "search \"%s\"", m->grep);
    if (m->failed_only)
        appendf(buf, cap, &len, "%sfailures only", len ? " · " : "");
    if (m->status >= 0)
        appendf(buf, cap, &len, "%sstatus %s", len ? " · " : "",
                status_name((enum mt_status)m->status));
    if (m->since_us) {
        format_time(when, sizeof when, m->since_us);
        appendf(buf, cap, &len, "%ssince %s", len ? " · " : "", when);
    }
    if (m->until_us) {
        format_time(when, sizeof when, m->until_us);
        appendf(buf, cap, &len, "%suntil %s", len ? " · " : "", when);
    }
    if (m->findings) {
        bool first = true;
        appendf(buf, cap, &len, "%sfinding: ", len ? " · " : "");
        for (unsigned bit = 0; bit < 32; bit++)
            if (m->findings & (1u << bit) && flag_name(bit)) {
                appendf(buf, cap, &len, "%s%s", first ? "" : " or ", flag_name(bit));
                first = false;
            }
    }
    if (!len)
        appendf(buf, cap, &len, "no filter");
    appendf(buf, cap, &len, " · %s", model_sort_name(m->order, m->ascending));
}

void model_move(struct ui_model *m, long delta)
{
    m->sel += delta;
    clamp(m);
    if (m->top == 0)
        m->new_above = 0;
}

void model_move_page(struct ui_model *m, long pages)
{
    m->top += pages * m->page;
    m->sel += pages * m->page;
    if (m->top > m->total - m->page)
        m->top = m->total - m->page;
    if (m->top < 0)
        m->top = 0;
    clamp(m);
    if (m->top == 0)
        m->new_above = 0;
}

void model_go(struct ui_model *m, long index)
{
    m->sel = index < 0 ? m->total - 1 : index;
    clamp(m);
    if (m->top == 0)
        m->new_above = 0;
}

bool model_click(struct ui_model *m, int line)
{
    long index = m->top + line;
    if (line < 0 || line >= m->page || index >= m->total)
        return false;
    m->sel = index;
    clamp(m);
    return true;
}

int model_load_selected(struct ui_model *m, struct mt_session **out)
{
    const struct mt_session *s = model_selected(m);
    *out = NULL;
    if (!s)
        return -1;
    if (m->src.load(m->src.ctx, s->id, out) != 0)
        return fail(m, "loading the session");
    return 0;
}

void model_peers(struct ui_model *m, const struct mt_session *session, struct store_peers *out)
{
    *out = (struct store_peers){ .count = 0 };
    if (m->src.peers &&
        explain_blames_other_sessions(session->status_line, strlen(session->status_line)) &&
        m->src.peers(m->src.ctx, session, out) != 0)
        *out = (struct store_peers){ .count = 0 };   /* the detail is shown without them */
}

/* ---- message trace ------------------------------------------------------------------------- */

const char *model_trace_key(const struct mt_session *s, char *buf, size_t cap)
{
    const char *key = NULL, *what = NULL;
    for (size_t i = 0; !key && i < s->message_count; i++)
        if (mt_str(s->messages[i].message_id)[0]) {
            key = s->messages[i].message_id;
            what = "Message-ID";
        }
    for (size_t i = 0; !key && i < s->recipient_count; i++)
        if (mt_str(s->recipients[i].addr)[0]) {
            key = s->recipients[i].addr;
            what = "recipient";
        }
    if (!key && (s->proto == MT_PROTO_POP3 || s->proto == MT_PROTO_IMAP) && s->user[0]) {
        key = s->user;
        what = "user";
    }
    for (size_t i = 0; !key && i < s->message_count; i++)
        if (mt_str(s->messages[i].mail_from)[0]) {
            key = s->messages[i].mail_from;
            what = "sender";
        }
    if (cap)
        snprintf(buf, cap, "%s", key ? key : "");
    return what;
}

const char *model_trace_key_of(const struct mt_session *s, int message, char *buf, size_t cap)
{
    if (message < 0 || (size_t)message >= s->message_count)
        return model_trace_key(s, buf, cap);
    const struct mt_message *m = &s->messages[message];
    const char *key = NULL, *what = NULL;
    if (mt_str(m->message_id)[0]) {
        key = m->message_id;
        what = "Message-ID";
    }
    for (size_t i = 0; !key && i < s->recipient_count; i++)
        if (s->recipients[i].message == message && mt_str(s->recipients[i].addr)[0]) {
            key = s->recipients[i].addr;
            what = "recipient";
        }
    if (!key && mt_str(m->mail_from)[0]) {
        key = m->mail_from;
        what = "sender";
    }
    if (!key)
        return model_trace_key(s, buf, cap);
    if (cap)
        snprintf(buf, cap, "%s", key);
    return what;
}

void model_trace_free(struct ui_trace *t)
{
    if (!t)
        return;
    for (int i = 0; i < t->count; i++)
        session_free(t->hops[i].session);
    free(t->hops);
    free(t);
}

static void trace_add(void *ctx, struct mt_session *session, enum store_trace_match match)
{
    struct ui_trace *t = ctx;
    if (t->count == t->cap) {
        int cap = t->cap ? t->cap * 2 : 8;
        struct ui_trace_hop *hops = realloc(t->hops, (size_t)cap * sizeof *hops);
        if (!hops) {
            session_free(session);
            return;
        }
        t->hops = hops;
        t->cap = cap;
    }
    t->hops[t->count++] = (struct ui_trace_hop){ session, match };
}

int model_trace(struct ui_model *m, const struct mt_session *s, struct ui_trace **out)
{
    return model_trace_message(m, s, -1, out);
}

int model_trace_message(struct ui_model *m, const struct mt_session *s, int message,
                        struct ui_trace **out)
{
    *out = NULL;
    struct ui_trace *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(m->error, sizeof m->error, "tracing the message: out of memory");
        return -1;
    }
    t->what = model_trace_key_of(s, message, t->key, sizeof t->key);
    t->current_id = s->id;
    if (!t->what) {
        free(t);
        return 0;
    }
    if (!m->src.trace) {
        free(t);
        snprintf(m->error, sizeof m->error, "tracing the message: not available here");
        return -1;
    }
    m->queries++;
    int n = m->src.trace(m->src.ctx, t->key, trace_add, t);
    if (n < 0) {
        model_trace_free(t);
        return fail(m, "tracing the message");
    }
    if (t->count == 0) {
        model_trace_free(t);
        return 0;
    }
    for (int i = 0; i < t->count; i++)
        if (t->hops[i].session->id == s->id)
            t->sel = i;   /* start on the session traced from */
    *out = t;
    return t->count;
}

void model_trace_move(struct ui_trace *t, int delta, int page)
{
    if (page < 1)
        page = 1;
    t->sel += delta;
    if (t->sel >= t->count)
        t->sel = t->count - 1;
    if (t->sel < 0)
        t->sel = 0;
    if (t->top > t->sel)
        t->top = t->sel;
    if (t->sel >= t->top + page)
        t->top = t->sel - page + 1;
    if (t->top < 0)
        t->top = 0;
}

void model_trace_line(const struct ui_trace_hop *hop, const char *key, char *buf, size_t cap)
{
    size_t len = 0;
    if (!cap)
        return;
    buf[0] = '\0';
    /* The CLI's `mailtap trace` line, so both read the same. */
    FILE *f = fmemopen(buf, cap, "w");
    if (f) {
        setvbuf(f, NULL, _IONBF, 0);
        output_trace_hop(f, hop->session, hop->match, key);
        fclose(f);
    }
    buf[cap - 1] = '\0';
    len = strlen(buf);
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
        buf[--len] = '\0';
}

int model_load(struct ui_model *m, int64_t id, struct mt_session **out)
{
    *out = NULL;
    if (m->src.load(m->src.ctx, id, out) != 0)
        return fail(m, "loading the session");
    return 0;
}
