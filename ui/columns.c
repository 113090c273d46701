/* columns.c — column widths per layout and the text of each cell. Widths are computed from
 * a small table so a new layout (a DNS tab, say) is one list of columns. */
#include "columns.h"

#include "cli/output.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define ROOMY 20   /* spare columns after the preferred widths that count as a wide screen */
/* Columns of this priority or above are extras (the port, the reply): shown only where
 * every other column has its preferred width and EXTRA_SLACK columns are left over, so a
 * narrower screen keeps its room for addresses. */
#define EXTRA_PRIO 7
#define EXTRA_SLACK 10

struct column_def {
    const char *title, *short_title;
    int min, pref, max;   /* max 0: no limit */
    int weight;           /* share of the extra width on wide screens */
    int prio;             /* grows first / hides last when lower */
};

static const struct column_def defs[COL_COUNT] = {
    /* At least the day and the minute: on a narrow screen rows of different days must not
     * look alike (the seconds go first, then the year). */
    [COL_TIME] = { "Date/Time (UTC)", "Time (UTC)", 11, 14, 19, 0, 1 },
    [COL_TYPE] = { "Type", "Type", 4, 4, 4, 0, 6 },
    [COL_IP] = { "IP", "IP", 9, 15, 39, 1, 2 },
    [COL_SENDER] = { "Sender", "Sender", 9, 12, 0, 3, 3 },
    [COL_RCPTS] = { "Recipient(s)", "Rcpt(s)", 9, 12, 0, 3, 4 },
    [COL_USER] = { "User", "User", 9, 12, 0, 2, 3 },
    [COL_COUNTERS] = { "Counters", "Counters", 9, 12, 0, 3, 4 },
    [COL_WHO] = { "Sender/User", "Sender/User", 9, 12, 0, 3, 3 },
    [COL_WHAT] = { "Recipient(s)/Counters", "Rcpt/Counts", 9, 12, 0, 3, 4 },
    [COL_QUESTION] = { "Question", "Question", 10, 20, 0, 3, 3 },
    [COL_ANSWER] = { "Answer", "Answer", 10, 16, 0, 3, 4 },
    [COL_STATUS] = { "Status", "Status", 13, 16, 16, 0, 0 },
    [COL_PORT] = { "Port", "Port", 4, 5, 5, 0, 7 },
    /* Last to show and first to go: the detail view has it whole, the list saves an Enter
     * per row on a wide screen ("NO [OVERQUOTA]", "-ERR [IN-USE]"). */
    [COL_REPLY] = { "Reply", "Reply", 10, 24, 0, 5, 8 },
};

static const enum ui_column layout_mixed[] = {
    COL_TIME, COL_TYPE, COL_IP, COL_PORT, COL_WHO, COL_WHAT, COL_STATUS, COL_REPLY, COL_COUNT
};
static const enum ui_column layout_smtp[] = {
    COL_TIME, COL_IP, COL_PORT, COL_SENDER, COL_RCPTS, COL_STATUS, COL_REPLY, COL_COUNT
};
static const enum ui_column layout_mailbox[] = {
    COL_TIME, COL_USER, COL_IP, COL_PORT, COL_COUNTERS, COL_STATUS, COL_REPLY, COL_COUNT
};

static const enum ui_column layout_dns[] = {
    COL_TIME, COL_IP, COL_QUESTION, COL_ANSWER, COL_STATUS, COL_COUNT
};

static const enum ui_column *layout_columns(enum ui_layout layout)
{
    switch (layout) {
    case UI_LAYOUT_DNS: return layout_dns;
    case UI_LAYOUT_MIXED: return layout_mixed;
    case UI_LAYOUT_SMTP: return layout_smtp;
    case UI_LAYOUT_MAILBOX: return layout_mailbox;
    case UI_LAYOUT_NONE: break;
    }
    return NULL;
}

static int total_width(const int *w, const bool *shown, int n)
{
    int sum = 0, count = 0;
    for (int i = 0; i < n; i++)
        if (shown[i]) {
            sum += w[i];
            count++;
        }
    return count ? sum + count - 1 : 0;
}

int columns_layout(enum ui_layout layout, int width, struct ui_colpos out[UI_COLUMNS_MAX])
{
    const enum ui_column *cols = layout_columns(layout);
    int n = 0, w[UI_COLUMNS_MAX];
    bool shown[UI_COLUMNS_MAX];
    if (!cols)
        return 0;
    for (; cols[n] != COL_COUNT && n < UI_COLUMNS_MAX; n++) {
        w[n] = defs[cols[n]].min;
        shown[n] = true;
    }
    /* Too narrow even at minimum widths: hide from the least useful. */
    for (int prio = 9; prio > 0 && total_width(w, shown, n) > width; prio--)
        for (int i = 0; i < n; i++)
            if (defs[cols[i]].prio == prio)
                shown[i] = false;
    /* The extras, if the others can all have their preferred widths and some to spare. */
    int base = 0, others = 0;
    for (int i = 0; i < n; i++)
        if (shown[i] && defs[cols[i]].prio < EXTRA_PRIO) {
            base += defs[cols[i]].pref;
            others++;
        }
    base += others - 1;
    for (int prio = EXTRA_PRIO; prio <= 9; prio++)
        for (int i = 0; i < n; i++) {
            if (!shown[i] || defs[cols[i]].prio != prio)
                continue;
            shown[i] = base + 1 + defs[cols[i]].pref + EXTRA_SLACK <= width;
            if (shown[i])
                base += 1 + defs[cols[i]].pref;
        }
    /* Grow toward the preferred widths, most useful first. */
    for (int prio = 0; prio <= 9; prio++)
        for (int i = 0; i < n; i++) {
            if (!shown[i] || defs[cols[i]].prio != prio)
                continue;
            int room = width - total_width(w, shown, n);
            int want = defs[cols[i]].pref - w[i];
            if (room > 0 && want > 0)
                w[i] += want < room ? want : room;
        }
    /* A roomy screen also gets the fixed columns' full width (the year in the date). */
    if (width - total_width(w, shown, n) >= ROOMY)
        for (int i = 0; i < n; i++)
            if (shown[i] && !defs[cols[i]].weight && defs[cols[i]].max > w[i])
                w[i] = defs[cols[i]].max;
    /* The rest goes to the columns with a weight, in proportion, up to their max. */
    for (int pass = 0; pass < 4; pass++) {
        int room = width - total_width(w, shown, n), weights = 0;
        if (room <= 0)
            break;
        for (int i = 0; i < n; i++)
            if (shown[i] && (!defs[cols[i]].max || w[i] < defs[cols[i]].max))
                weights += defs[cols[i]].weight;
        if (!weights)
            break;
        int given = 0;
        for (int i = 0; i < n; i++) {
            const struct column_def *d = &defs[cols[i]];
            if (!shown[i] || !d->weight || (d->max && w[i] >= d->max))
                continue;
            int add = room * d->weight / weights;
            if (add == 0)
                add = 1;
            if (add > room - given)
                add = room - given;
            if (d->max && w[i] + add > d->max)
                add = d->max - w[i];
            w[i] += add;
            given += add;
        }
        if (!given)
            break;
    }
    int count = 0, x = 0;
    for (int i = 0; i < n; i++) {
        if (!shown[i])
            continue;
        out[count].col = cols[i];
        out[count].x = x;
        out[count].width = w[i];
        x += w[i] + 1;
        count++;
    }
    return count;
}

const char *columns_title(enum ui_column col, int width)
{
    if (col < 0 || col >= COL_COUNT)
        return "";
    return (int)strlen(defs[col].title) <= width ? defs[col].title : defs[col].short_title;
}

/* The address a row is about: the client's for inbound sessions, the server's for
 * outbound ones, the asking mail server's for a dns_failed row, which has no server (the
 * same rule as `mailtap list`). */
static const char *row_ip(const struct mt_session *s)
{
    return s->direction == MT_OUTBOUND && s->server_ip[0] ? s->server_ip : s->client_ip;
}

/* The first sender, "<>" for the null sender (a bounce: blank read as unknown); a session
 * that never got to MAIL FROM shows its login instead, which is what an admin looks for on
 * a failed submission. */
static void cell_sender(const struct mt_session *s, char *buf, size_t cap)
{
    for (size_t i = 0; i < s->message_count; i++)
        if (mt_str(s->messages[i].mail_from)[0]) {
            snprintf(buf, cap, "%s", s->messages[i].mail_from);
            return;
        }
    if (s->message_count > 0 && s->proto == MT_PROTO_SMTP)
        snprintf(buf, cap, "<>");
    else if (s->user[0])
        snprintf(buf, cap, "user %s", s->user);
}

static void cell_recipients(const struct mt_session *s, char *buf, size_t cap)
{
    size_t len = 0;
    size_t shown = 0;
    for (size_t i = 0; i < s->recipient_count && len + 1 < cap; i++) {
        int n = snprintf(buf + len, cap - len, "%s%s", i ? ", " : "",
                         mt_str(s->recipients[i].addr));
        if (n < 0 || (size_t)n >= cap - len)
            break;
        len += (size_t)n;
        shown++;
    }
    uint64_t more = s->recipient_count - shown + s->recipients_dropped;
    if (more && len + 24 < cap)
        snprintf(buf + len, cap - len, " +%llu", (unsigned long long)more);
}

const char *columns_reply_text(const char *line)
{
    const char *space = strchr(line, ' ');
    if (space && space > line && line[0] != '*' && line[0] != '(' && line[0] != '[' &&
        (strncmp(space, " OK ", 4) == 0 || strncmp(space, " NO ", 4) == 0 ||
         strncmp(space, " BAD ", 5) == 0))
        return space + 1;
    return line;
}

void columns_cell(enum ui_column col, const struct mt_session *s, int width, char *buf,
                  size_t cap)
{
    char when[40];
    const struct mt_dns_info *dns = session_dns(s);
    buf[0] = '\0';
    if (col == COL_WHO)
        col = s->proto == MT_PROTO_SMTP ? COL_SENDER : s->proto == MT_PROTO_DNS ? COL_QUESTION
                                                                               : COL_USER;
    if (col == COL_WHAT)
        col = s->proto == MT_PROTO_SMTP ? COL_RCPTS : s->proto == MT_PROTO_DNS ? COL_ANSWER
                                                                              : COL_COUNTERS;
    switch (col) {
    case COL_TIME:
        output_time(when, sizeof when, s->start_us, OUTPUT_TIME_DATE);
        /* "2026-01-07 16:54:15": drop the year, then the seconds, as the column narrows */
        if (strlen(when) >= 19 && width < 19 && width >= 14)
            snprintf(buf, cap, "%s", when + 5);
        else if (strlen(when) >= 19 && width < 14)
            snprintf(buf, cap, "%.11s", when + 5);
        else
            snprintf(buf, cap, "%s", when);
        break;
    case COL_TYPE:
        snprintf(buf, cap, "%s", s->proto == MT_PROTO_SMTP ?
                 (s->direction == MT_OUTBOUND ? "out" : "in") : proto_name(s->proto));
        break;
    case COL_IP: snprintf(buf, cap, "%s", row_ip(s)); break;
    case COL_SENDER: cell_sender(s, buf, cap); break;
    case COL_RCPTS: cell_recipients(s, buf, cap); break;
    case COL_USER: snprintf(buf, cap, "%s", s->user); break;
    case COL_COUNTERS: output_counters(buf, cap, s); break;
    case COL_QUESTION: snprintf(buf, cap, "%s %s", dns->qtype, dns->qname); break;
    case COL_ANSWER:
        snprintf(buf, cap, "%s", dns->answers[0] ? dns->answers : dns->rcode);
        break;
    case COL_STATUS: snprintf(buf, cap, "%s", status_name(s->status)); break;
    case COL_PORT:
        if (s->server_port)
            snprintf(buf, cap, "%u", (unsigned)s->server_port);
        break;
    case COL_REPLY: snprintf(buf, cap, "%s", columns_reply_text(s->status_line)); break;
    case COL_WHO:
    case COL_WHAT:
    case COL_COUNT:
        break;
    }
}
