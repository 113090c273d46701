/* draw.c — paints the list, detail, summary and help screens, the tab bar, the filter line,
 * the status bar and the filter form. Reads state only; every string is guarded by
 * safe_fit() in put_run(), the one function that hands text to ncurses. */
#include "draw.h"

#include "cli/output.h"
#include "protocols/explain.h"
#include "ui/keys.h"
#include "ui/safetext.h"

#include <curses.h>
#include <stdio.h>
#include <string.h>

enum pair { P_OK = 1, P_WARN, P_FAIL, P_INFO, P_TAB, P_BAR, P_CLIENT, P_FIND, P_TITLE };

static bool use_color, use_utf8;

void draw_init(bool color)
{
    use_color = color;
    if (!color)
        return;
    start_color();
    use_default_colors();
    init_pair(P_OK, COLOR_GREEN, -1);
    init_pair(P_WARN, COLOR_YELLOW, -1);
    init_pair(P_FAIL, COLOR_RED, -1);
    init_pair(P_INFO, -1, -1);
    init_pair(P_TAB, COLOR_BLACK, COLOR_CYAN);
    init_pair(P_BAR, COLOR_BLACK, COLOR_WHITE);
    init_pair(P_CLIENT, COLOR_CYAN, -1);
    init_pair(P_FIND, COLOR_BLACK, COLOR_YELLOW);
    init_pair(P_TITLE, COLOR_WHITE, COLOR_BLUE);
}

/* Without colour (NO_COLOR, or a terminal without it) attributes carry the meaning. */
static attr_t severity_attr(enum mt_severity sev)
{
    switch (sev) {
    case MT_SEV_OK: return use_color ? COLOR_PAIR(P_OK) : A_NORMAL;
    case MT_SEV_WARN: return use_color ? COLOR_PAIR(P_WARN) : A_UNDERLINE;
    case MT_SEV_FAIL: return use_color ? COLOR_PAIR(P_FAIL) | A_BOLD : A_BOLD;
    case MT_SEV_INFO: return A_DIM;
    }
    return A_NORMAL;
}

static attr_t pair_attr(enum pair pair, attr_t fallback)
{
    return use_color ? COLOR_PAIR(pair) : fallback;
}

/* In a plain (C/POSIX) locale, the console's own typography becomes ASCII instead of '?'. */
static size_t ascii_typography(char *out, size_t cap, const char *s, size_t len)
{
    static const struct { const char *utf8, *ascii; } map[] = {
        { "·", "-" }, { "│", "|" }, { "●", "*" }, { "—", "-" }, { "→", ">" }, { "…", "~" },
        { "✓", "+" },
    };
    size_t o = 0;
    for (size_t i = 0; i < len && o + 1 < cap;) {
        size_t m = 0;
        while (m < sizeof map / sizeof map[0] &&
               (len - i < strlen(map[m].utf8) || memcmp(s + i, map[m].utf8, strlen(map[m].utf8))))
            m++;
        if (m < sizeof map / sizeof map[0]) {
            out[o++] = map[m].ascii[0];
            i += strlen(map[m].utf8);
        } else {
            out[o++] = s[i++];
        }
    }
    return o;
}

/* Prints at most `width` columns of s[0..len), guarded; returns the columns used. */
static int put_run(int y, int x, int width, const char *s, size_t len, attr_t attr,
                   bool ellipsis)
{
    char buf[4096], plain[4096];
    if (width <= 0 || x >= COLS || y < 0 || y >= LINES)
        return 0;
    if (x + width > COLS)
        width = COLS - x;
    if (!use_utf8 && s) {
        len = ascii_typography(plain, sizeof plain, s, len);
        s = plain;
    }
    int used = safe_fit(buf, sizeof buf, s, len, width, use_utf8, ellipsis);
    attrset(attr);
    mvaddstr(y, x, buf);
    attrset(A_NORMAL);
    return used;
}

/* put_run() then spaces up to `width`, in the same attribute. */
static void put_cell(int y, int x, int width, const char *s, attr_t attr)
{
    int used = put_run(y, x, width, s, s ? strlen(s) : 0, attr, true);
    if (x + width > COLS)
        width = COLS - x;
    attrset(attr);
    for (int i = used; i < width; i++)
        mvaddch(y, x + i, ' ');
    attrset(A_NORMAL);
}

static void put_line(int y, const char *s, attr_t attr)
{
    put_cell(y, 0, COLS, s, attr);
}

int draw_list_first_row(void) { return 3; }
int draw_list_rows(void) { return LINES - 5 > 1 ? LINES - 5 : 1; }
int draw_detail_rows(void) { return LINES - 3 > 1 ? LINES - 3 : 1; }
int draw_trace_rows(void) { return LINES - 4 > 1 ? LINES - 4 : 1; }
int draw_summary_columns(void) { return COLS - 10 > 10 ? COLS - 10 : 10; }

/* On a screen too narrow for the tabs' names (about 85 columns), short ones: every tab
 * stays reachable by sight, the Summary one included. */
static const char *const short_labels[] = { "All", "Out", "In", "POP3", "IMAP", "DNS", "Sum" };
_Static_assert(sizeof short_labels / sizeof short_labels[0] == UI_VIEW_COUNT,
               "a short label per tab");

static bool tabs_short(void)
{
    int width = 0;
    for (int v = 0; v < UI_VIEW_COUNT; v++)
        width += (int)strlen(model_view_def((enum ui_view)v)->label) + 5;
    return width + 9 > COLS;   /* 9: the brand at the right */
}

static void tab_label(int view, char *buf, size_t cap)
{
    snprintf(buf, cap, " %d %s ", view + 1, tabs_short() ? short_labels[view]
                                                        : model_view_def((enum ui_view)view)->label);
}

int draw_tab_at(int x)
{
    int pos = 0;
    for (int v = 0; v < UI_VIEW_COUNT; v++) {
        char label[64];
        tab_label(v, label, sizeof label);
        int w = (int)strlen(label);
        if (x >= pos && x < pos + w)
            return v;
        pos += w + 1;
    }
    return -1;
}

static void draw_tabs(const struct draw_state *st)
{
    int x = 0;
    enum ui_view current = model_view(st->model);
    put_line(0, "", A_NORMAL);
    for (int v = 0; v < UI_VIEW_COUNT && x < COLS; v++) {
        char label[64];
        tab_label(v, label, sizeof label);
        attr_t attr = v == (int)current ? pair_attr(P_TAB, A_REVERSE) | A_BOLD : A_NORMAL;
        x += put_run(0, x, COLS - x, label, strlen(label), attr, false) + 1;
    }
    bool live = st->live && !st->live_ended;
    const char *brand = live ? " LIVE " : st->live_failed ? " DONE, ERRORS "
                      : st->live ? " DONE " : " mailtap ";
    int w = (int)strlen(brand);
    if (x + w < COLS)
        put_run(0, COLS - w, w, brand, (size_t)w, live ? severity_attr(MT_SEV_OK) | A_BOLD
                                                       : A_DIM, false);
}

static void draw_filter_line(int y, const struct draw_state *st)
{
    char what[600], line[700];
    model_describe(st->model, what, sizeof what);
    if (model_view(st->model) == UI_VIEW_SUMMARY)
        snprintf(line, sizeof line, "Summary of every session in the time range · %s", what);
    else
        snprintf(line, sizeof line, "Filter: %s · %ld session%s", what,
                 model_total(st->model), model_total(st->model) == 1 ? "" : "s");
    put_line(y, line, A_BOLD);
}

static void draw_status_bar(const struct draw_state *st)
{
    char left[400], right[64] = "";
    const struct ui_sensor *s = st->sensor;
    const char *source = st->live && st->live->label ? st->live->label :
                         s && s->present && s->source[0] ? s->source : st->db_label;
    /* "●" while the source is writing, "✓" once a read has finished, "!" with errors */
    const char *marker = !st->live ? "" : !st->live_ended ? "● " : st->live_failed ? "! " : "✓ ";
    if (s && s->present)
        snprintf(left, sizeof left, " %s%s │ packets %lld │ drops %lld (kernel %lld, if %lld) │ "
                 "sessions %lld │ %.0f pkt/s", marker, source,
                 (long long)s->packets, (long long)(s->kernel_drops + s->interface_drops),
                 (long long)s->kernel_drops, (long long)s->interface_drops,
                 (long long)s->sessions, s->packets_per_s);
    else
        snprintf(left, sizeof left, " %s%s │ %ld sessions", marker, source,
                 st->db_sessions);
    if (st->screen == SCREEN_LIST && model_total(st->model) > 0)
        snprintf(right, sizeof right, " %ld/%ld ", model_selected_index(st->model) + 1,
                 model_total(st->model));
    if (st->screen == SCREEN_TRACE && st->trace)
        snprintf(right, sizeof right, " hop %d/%d ", st->trace->sel + 1, st->trace->count);
    attr_t bar = pair_attr(P_BAR, A_REVERSE);
    int rw = (int)strlen(right);
    put_cell(LINES - 2, 0, COLS - rw, left, bar);
    put_cell(LINES - 2, COLS - rw, rw, right, bar);
}

static void draw_message_line(const struct draw_state *st)
{
    const char *hint = "? help · q quit";
    int y = LINES - 1;
    if (st->prompt) {
        put_line(y, st->prompt, A_NORMAL);
        int w = safe_width(st->prompt, strlen(st->prompt), use_utf8);
        move(y, w < COLS - 1 ? w : COLS - 1);
        return;
    }
    if (!(st->message && st->message[0]) && st->sensor && st->sensor->present &&
        st->sensor->health[0]) {
        /* What the sensor sees may not be the truth: that outranks the key hint. */
        char warning[300];
        snprintf(warning, sizeof warning, "capture health: %s", st->sensor->health);
        put_line(y, warning, pair_attr(P_FAIL, A_BOLD) | A_BOLD);
        return;
    }
    put_line(y, st->message && st->message[0] ? st->message : "", A_NORMAL);
    int hw = safe_width(hint, strlen(hint), use_utf8);
    if (!(st->message && st->message[0]) && hw < COLS)
        put_run(y, COLS - hw - 1, hw, hint, strlen(hint), A_DIM, false);
}

/* ---- list ---------------------------------------------------------------------------- */

static void draw_list(const struct draw_state *st)
{
    struct ui_colpos cols[UI_COLUMNS_MAX];
    enum ui_layout layout = model_view_def(model_view(st->model))->layout;
    int n = columns_layout(layout, COLS, cols);
    int first = draw_list_first_row(), rows = draw_list_rows();
    char text[1024];

    draw_filter_line(1, st);
    put_line(2, "", A_BOLD | A_UNDERLINE);
    for (int c = 0; c < n; c++)
        put_cell(2, cols[c].x, cols[c].width, columns_title(cols[c].col, cols[c].width), A_BOLD | A_UNDERLINE);
    for (int r = 0; r < rows; r++) {
        long index = model_top(st->model) + r;
        const struct mt_session *s = model_row(st->model, index);
        bool selected = index == model_selected_index(st->model);
        attr_t base = selected ? A_REVERSE : A_NORMAL;
        put_line(first + r, "", base);
        if (!s)
            continue;
        for (int c = 0; c < n; c++) {
            attr_t attr = base;
            columns_cell(cols[c].col, s, cols[c].width, text, sizeof text);
            if (cols[c].col == COL_STATUS)
                attr |= severity_attr(explain_status(s->status)->severity);
            put_cell(first + r, cols[c].x, cols[c].width, text, attr);
        }
    }
    if (model_total(st->model) == 0) {
        int status;
        int64_t since, until;
        model_get_filter(st->model, &status, &since, &until);
        bool filtered = model_grep(st->model)[0] || model_failures(st->model) ||
                        model_finding(st->model) || status >= 0 || since || until;
        put_line(first + 1, filtered ? "  No session matches the filter (c clears it)."
                                     : "  No sessions yet.", A_DIM);
    }
}

/* ---- detail -------------------------------------------------------------------------- */

static attr_t line_attr(const struct detail_line *line)
{
    if (line->deciding)
        return A_REVERSE | A_BOLD;
    switch (line->kind) {
    case DL_STATUS: return severity_attr(line->severity) | A_BOLD;
    case DL_SECTION: return A_BOLD | A_UNDERLINE;
    case DL_CLIENT: return pair_attr(P_CLIENT, A_NORMAL);
    case DL_NOTE: return A_DIM;
    case DL_SERVER:
    case DL_FIELD: break;
    }
    return A_NORMAL;
}

/* Draws one row, the parts matching `find` highlighted. */
static void draw_detail_row(int y, const struct ui_detail *d, const struct detail_row *row,
                            const char *find)
{
    const struct detail_line *line = detail_line(d, row->line);
    const char *text = line->text + row->start;
    size_t len = row->len, flen = find ? strlen(find) : 0;
    attr_t attr = line_attr(line), hit = pair_attr(P_FIND, A_REVERSE) | A_BOLD;
    int x = 0;
    put_line(y, "", line->deciding ? attr : A_NORMAL);
    if (row->continuation)
        x = line->indent;
    while (len > 0 && x < COLS) {
        size_t plain = len;
        for (size_t i = 0; flen && i + flen <= len; i++)
            if (strncasecmp(text + i, find, flen) == 0) {
                plain = i;
                break;
            }
        x += put_run(y, x, COLS - x, text, plain, attr, false);
        text += plain;
        len -= plain;
        if (len >= flen && flen) {
            x += put_run(y, x, COLS - x, text, flen, hit, false);
            text += flen;
            len -= flen;
        }
    }
}

static void draw_detail(const struct draw_state *st)
{
    const struct ui_detail *d = st->detail;
    const struct mt_session *s = detail_session(d);
    char title[300];
    int rows = draw_detail_rows();
    snprintf(title, sizeof title, " Session #%lld · %s · %s   (Esc back, / search, d deciding "
             "line, t trace%s)", (long long)s->id, proto_name(s->proto), status_name(s->status),
             detail_peer_count(d) ? ", a also open" : "");
    put_line(0, title, pair_attr(P_TITLE, A_REVERSE) | A_BOLD);
    for (int r = 0; r < rows; r++) {
        const struct detail_row *row = detail_row(d, detail_top(d) + r);
        if (row)
            draw_detail_row(1 + r, d, row, st->find);
        else
            put_line(1 + r, "", A_NORMAL);
    }
}

/* ---- trace --------------------------------------------------------------------------- */

static void draw_trace(const struct draw_state *st)
{
    const struct ui_trace *t = st->trace;
    char title[400], line[1200];
    int rows = draw_trace_rows();
    snprintf(title, sizeof title, " Trace of %s %s · %d hop%s   (Enter opens, Esc back)",
             t->what, t->key, t->count, t->count == 1 ? "" : "s");
    put_line(0, title, pair_attr(P_TITLE, A_REVERSE) | A_BOLD);
    snprintf(line, sizeof line, "  Time (UTC), session, client -> server, status, deciding line"
             " · ● session #%lld", (long long)t->current_id);
    put_line(1, line, A_BOLD | A_UNDERLINE);
    for (int r = 0; r < rows; r++) {
        int i = t->top + r;
        if (i >= t->count) {
            put_line(2 + r, "", A_NORMAL);
            continue;
        }
        const struct mt_session *s = t->hops[i].session;
        bool current = s->id == t->current_id;
        attr_t attr = severity_attr(explain_status(s->status)->severity);
        if (current)
            attr |= A_BOLD;
        if (i == t->sel)
            attr |= A_REVERSE;
        snprintf(line, sizeof line, "%s", current ? "● " : "  ");
        size_t len = strlen(line);
        model_trace_line(&t->hops[i], t->key, line + len, sizeof line - len);
        put_line(2 + r, line, attr);
    }
}

/* ---- summary ------------------------------------------------------------------------- */

struct sink {
    int y, top, bottom;   /* virtual row, first virtual row shown, last screen row + 1 */
    int first_screen_row;
};

/* The screen row of the next virtual row, or -1 when it is scrolled out. */
static int sink_row(struct sink *k)
{
    int screen = k->first_screen_row + (k->y++ - k->top);
    return screen >= k->first_screen_row && screen < k->bottom ? screen : -1;
}

static void sink_text(struct sink *k, const char *text, attr_t attr)
{
    int y = sink_row(k);
    if (y >= 0)
        put_line(y, text, attr);
}

/* A category's label, then its status counts, wrapped under the label where the screen
 * ends (a count cut at the edge read as another number). */
static void draw_status_counts(struct sink *k, const char *label, const long *counts)
{
    int y = sink_row(k), indent = (int)strlen(label), x = indent;
    if (y >= 0) {
        put_line(y, "", A_NORMAL);
        put_run(y, 0, COLS, label, strlen(label), A_BOLD, false);
    }
    for (int s = 0; s < MT_STATUS_COUNT; s++) {
        char item[64];
        if (!counts[s])
            continue;
        int len = snprintf(item, sizeof item, " %s %ld", status_name((enum mt_status)s),
                           counts[s]);
        if (x + len > COLS && x > indent) {
            y = sink_row(k);
            x = indent;
            if (y >= 0)
                put_line(y, "", A_NORMAL);
        }
        if (y >= 0)
            put_run(y, x, COLS - x, item, (size_t)len,
                    severity_attr(explain_status((enum mt_status)s)->severity), false);
        x += len;
    }
}

/* "minute", "15 minutes", "2 hours", "day". */
static void bucket_name(int minutes, char *out, size_t cap)
{
    if (minutes % 1440 == 0)
        snprintf(out, cap, minutes == 1440 ? "day" : "%d days", minutes / 1440);
    else if (minutes % 60 == 0)
        snprintf(out, cap, minutes == 60 ? "hour" : "%d hours", minutes / 60);
    else
        snprintf(out, cap, minutes == 1 ? "minute" : "%d minutes", minutes);
}

static void draw_chart(struct sink *k, const struct ui_summary *sm)
{
    static const char *const bars_utf8[] = { " ", "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█" };
    static const char *const bars_ascii[] = { " ", ".", ".", ":", ":", "+", "+", "#", "#" };
    const char *const *bars = use_utf8 ? bars_utf8 : bars_ascii;
    char from[40], to[40], per[32], line[160];
    long max = 0;
    for (int b = 0; b < sm->buckets; b++)
        if (sm->per_bucket[b] > max)
            max = sm->per_bucket[b];
    output_time(from, sizeof from, sm->first_bucket_us, OUTPUT_TIME_DATE);
    output_time(to, sizeof to, sm->end_us, OUTPUT_TIME_DATE);
    bucket_name(sm->bucket_minutes, per, sizeof per);
    /* the end's date only when it is another day */
    bool same_day = strncmp(from, to, 10) == 0;
    snprintf(line, sizeof line, "Sessions per %s from %.16s to %.*s (peak %ld):", per, from,
             same_day ? 5 : 16, same_day ? to + 11 : to, max);
    sink_text(k, "", A_NORMAL);
    sink_text(k, line, A_BOLD);
    for (int series = 0; series < 2; series++) {
        const long *values = series ? sm->failed_per_bucket : sm->per_bucket;
        int y = sink_row(k);
        if (y < 0)
            continue;
        put_line(y, series ? "  failed " : "  all    ", series ? severity_attr(MT_SEV_FAIL)
                                                              : A_NORMAL);
        for (int b = 0; b < sm->buckets && 9 + b < COLS; b++) {
            int level = values[b] && max ? (int)((values[b] * 8 + max - 1) / max) : 0;
            const char *bar = bars[level > 8 ? 8 : level];
            put_run(y, 9 + b, 1, bar, strlen(bar),
                    series ? severity_attr(MT_SEV_FAIL) : severity_attr(MT_SEV_OK), false);
        }
    }
}

static void draw_top(struct sink *k, const char *title, const struct ui_summary_item *items,
                     int count)
{
    char line[MT_TEXT_MAX + 64];
    sink_text(k, "", A_NORMAL);
    sink_text(k, title, A_BOLD);
    if (!count)
        sink_text(k, "  none", A_DIM);
    for (int i = 0; i < count; i++) {
        if (items[i].status >= 0)
            snprintf(line, sizeof line, "%7ld  %-16s %s", items[i].count,
                     status_name((enum mt_status)items[i].status), items[i].text);
        else
            snprintf(line, sizeof line, "%7ld  %s", items[i].count, items[i].text);
        sink_text(k, line, items[i].status >= 0 ? severity_attr(explain_status(
            (enum mt_status)items[i].status)->severity) : A_NORMAL);
    }
}

/* The summary into k; returns the rows it takes. */
static int summary_layout(struct sink *k, const struct ui_summary *sm)
{
    char line[256];
    snprintf(line, sizeof line, "%ld session%s, %ld failed (%.1f%%); %ld DNS lookup%s, %ld failed",
             sm->total, sm->total == 1 ? "" : "s", sm->failures,
             sm->total ? 100.0 * (double)sm->failures / (double)sm->total : 0.0, sm->dns_total,
             sm->dns_total == 1 ? "" : "s", sm->dns_failures);
    sink_text(k, line, A_BOLD);
    for (int c = 0; c < UI_CAT_COUNT; c++) {
        snprintf(line, sizeof line, "%-9s%7ld ", uidb_category_name((enum ui_category)c),
                 sm->category_total[c]);
        draw_status_counts(k, line, sm->counts[c]);
    }
    /* what is wrong even where the mail went through: the security findings (f filters) */
    size_t len = (size_t)snprintf(line, sizeof line, "Security findings:");
    bool any = false;
    for (unsigned bit = 0; bit < 32 && len < sizeof line; bit++)
        if (sm->findings[bit] > 0 && flag_name(bit)) {
            len += (size_t)snprintf(line + len, sizeof line - len, "%s %s %ld", any ? " ·" : "",
                                    flag_name(bit), sm->findings[bit]);
            any = true;
        }
    sink_text(k, "", A_NORMAL);
    sink_text(k, any ? line : "Security findings: none", any ? A_BOLD : A_DIM);
    draw_top(k, "Top failure reasons (deciding line):", sm->reasons, sm->reason_count);
    draw_top(k, "Users with the most failures:", sm->users, sm->user_count);
    draw_top(k, "IPs with the most failures:", sm->ips, sm->ip_count);
    draw_chart(k, sm);
    return k->y;
}

int draw_summary_height(const struct ui_summary *summary)
{
    struct sink measure = { 0, 0, 0, 0 };   /* shows no row: counts them */
    return summary_layout(&measure, summary);
}

static void draw_summary(const struct draw_state *st)
{
    struct sink k = { 0, st->summary_top, LINES - 2, 2 };
    draw_filter_line(1, st);
    for (int y = 2; y < LINES - 2; y++)
        put_line(y, "", A_NORMAL);
    if (!st->summary)
        sink_text(&k, "  (summary unavailable)", A_DIM);
    else
        summary_layout(&k, st->summary);
}

/* ---- help and form -------------------------------------------------------------------- */

static void draw_help(const struct draw_state *st)
{
    struct sink k = { 0, st->help_top, LINES - 1, 1 };
    char label[64], line[256];
    put_line(0, " mailtap console: keys   (Esc, q or ? closes; j/k scroll)",
             pair_attr(P_TITLE, A_REVERSE) | A_BOLD);
    for (int y = 1; y < LINES; y++)
        put_line(y, "", A_NORMAL);
    for (int i = 0; i < keys_help_count(); i++) {
        keys_help_label(i, label, sizeof label);
        snprintf(line, sizeof line, "  %-22s %s", label, keys_help_text(i));
        sink_text(&k, line, A_NORMAL);
    }
    sink_text(&k, "", A_NORMAL);
    sink_text(&k, "Status colours:", A_BOLD);
    static const char *const sev_text[] = {
        [MT_SEV_OK] = "  success: delivered, login_ok",
        [MT_SEV_INFO] = "  nothing to report: no_mail, encrypted, incomplete, unknown",
        [MT_SEV_WARN] = "  transient or partial: temp_failed, partial, aborted, reset",
        [MT_SEV_FAIL] = "  failure: rcpt_rejected, refused, auth_failed, interrupted, ...",
    };
    for (int s = 0; s < 4; s++)
        sink_text(&k, sev_text[s], severity_attr((enum mt_severity)s));
    sink_text(&k, "", A_NORMAL);
    sink_text(&k, "Times are UTC. Filters apply to every tab; each tab keeps its own position.",
              A_DIM);
}

static void draw_form(const struct ui_form *f)
{
    static const char *const labels[FORM_FIELDS] = { "Status", "Failures only", "Since",
                                                      "Until", "Finding" };
    int w = COLS < 78 ? COLS : 78, h = 13, x0 = (COLS - w) / 2, y0 = (LINES - h) / 2;
    char line[160];
    if (y0 < 0)
        y0 = 0;
    attr_t box = pair_attr(P_BAR, A_REVERSE);
    /* A blank margin around the box: the list behind it must not read as part of a field. */
    for (int y = y0 > 0 ? y0 - 1 : y0; y <= y0 + h - 1 && y < LINES; y++) {
        if (x0 > 0)
            put_cell(y, x0 - 1, 1, "", A_NORMAL);
        if (x0 + w < COLS)
            put_cell(y, x0 + w, 1, "", A_NORMAL);
        if (y == y0 - 1 || y == y0 + h - 1)
            put_cell(y, x0, w, "", A_NORMAL);
    }
    put_cell(y0, x0, w, " Filter (Up/Down field, Left/Right status or finding, Space toggle)",
             box | A_BOLD);
    for (int i = 0; i < FORM_FIELDS; i++) {
        bool text = i == FORM_SINCE || i == FORM_UNTIL || i == FORM_FINDING;
        const char *value = i == FORM_STATUS ? (f->status < 0 ? "any" :
                                                 status_name((enum mt_status)f->status)) :
                            i == FORM_FAILURES ? (f->failures ? "[x]" : "[ ]") :
                            i == FORM_SINCE ? f->since : i == FORM_UNTIL ? f->until : f->finding;
        snprintf(line, sizeof line, " %s %-14s %s%s%s", i == (int)f->field ? ">" : " ",
                 labels[i], i == FORM_STATUS ? "< " : "", value,
                 i == FORM_STATUS ? " >" : text && i == (int)f->field ? "_" : "");
        put_cell(y0 + 1 + i, x0, w, line, i == (int)f->field ? box | A_BOLD : box);
    }
    put_cell(y0 + 6, x0, w, "   times: 2026-01-07 16:54[:15] (UTC), epoch s, -15m -2h -1d", box);
    put_cell(y0 + 7, x0, w, "   empty: no bound", box);
    put_cell(y0 + 8, x0, w, "   finding (Left/Right picks, or type it; empty: any):", box);
    snprintf(line, sizeof line, "  ");
    for (int i = 0; model_finding_word(i); i++)
        snprintf(line + strlen(line), sizeof line - strlen(line), " %s", model_finding_word(i));
    put_cell(y0 + 9, x0, w, line, box);
    put_cell(y0 + 10, x0, w, f->error[0] ? f->error : "", box | A_BOLD);
    put_cell(y0 + 11, x0, w, " Enter apply · Esc cancel · ^U clear field", box);
}

void draw_screen(const struct draw_state *st)
{
    use_utf8 = st->utf8;
    curs_set(st->prompt || st->form ? 1 : 0);
    switch (st->screen) {
    case SCREEN_LIST:
        draw_tabs(st);
        draw_list(st);
        break;
    case SCREEN_DETAIL:
        draw_detail(st);
        break;
    case SCREEN_SUMMARY:
        draw_tabs(st);
        draw_summary(st);
        break;
    case SCREEN_HELP:
        draw_help(st);
        break;
    case SCREEN_TRACE:
        if (st->trace)
            draw_trace(st);
        break;
    }
    if (st->screen != SCREEN_HELP)
        draw_status_bar(st);
    if (st->form)
        draw_form(st->form);
    draw_message_line(st);
    if (st->form)
        curs_set(0);
    refresh();
}
