/* output.c — sessions as a connection-track table, as JSON lines, and as a detail view
 * with the transcript. Times are UTC so that output does not depend on the host. Text is
 * sanitized before it is stored, but a database can be edited by hand: every string is
 * escaped again here, so no control byte can reach a terminal and JSON stays valid. */
#include "output.h"

#include "protocols/explain.h"
#include "protocols/text.h"
#include "store/store.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define ELLIPSIS "\xe2\x80\xa6"   /* U+2026, one column wide */

/* Table columns (display widths); the status column ends the line unpadded. */
enum { W_ID = 6, W_DATE = 19, W_TYPE = 4, W_IP = 15, W_WHO = 17, W_WHAT = 17 };

/* ---- text units -------------------------------------------------------------------- */

/* The next unit of s[0..len): a printable character (returns its length, *cp set) or one
 * byte to show escaped (returns 1, *cp = UINT32_MAX): a control, DEL, a C1 control or a
 * byte that is not valid UTF-8. */
static size_t next_unit(const char *s, size_t len, uint32_t *cp)
{
    size_t n = text_utf8_decode((const unsigned char *)s, len, cp);
    if (n == 0 || text_is_unsafe_char(*cp)) {
        *cp = UINT32_MAX;
        return 1;
    }
    return n;
}

/* Columns a character takes: 2 for East Asian wide and fullwidth ranges, else 1. */
static int char_width(uint32_t cp)
{
    return (cp >= 0x1100 && cp <= 0x115f) || (cp >= 0x2e80 && cp <= 0xa4cf) ||
           (cp >= 0xac00 && cp <= 0xd7a3) || (cp >= 0xf900 && cp <= 0xfaff) ||
           (cp >= 0xfe30 && cp <= 0xfe4f) || (cp >= 0xff00 && cp <= 0xff60) ||
           (cp >= 0xffe0 && cp <= 0xffe6) || (cp >= 0x1f300 && cp <= 0x1faff) ||
           (cp >= 0x20000 && cp <= 0x3fffd) ? 2 : 1;
}

/* Prints s[0..len) for a terminal: escaped units become \xNN. */
static void put_text(FILE *out, const char *s, size_t len)
{
    uint32_t cp;
    for (size_t i = 0, n; i < len; i += n) {
        n = next_unit(s + i, len - i, &cp);
        if (cp == UINT32_MAX)
            fprintf(out, "\\x%02x", (unsigned char)s[i]);
        else
            fwrite(s + i, 1, n, out);
    }
}

static void put_str(FILE *out, const char *s)
{
    put_text(out, s, strlen(s));
}

/* Prints text then suffix in exactly `width` columns: cut with an ellipsis when too wide,
 * padded with spaces (unless last). Escaped units show as '?'. */
static void put_cell(FILE *out, const char *text, const char *suffix, int width, bool last)
{
    size_t len = strlen(text), slen = strlen(suffix);
    int total = 0, used = 0, room;
    uint32_t cp;
    for (size_t i = 0, n; i < len; i += n) {
        n = next_unit(text + i, len - i, &cp);
        total += cp == UINT32_MAX ? 1 : char_width(cp);
    }
    room = width - (int)slen;                   /* the suffix is ASCII */
    if (total > room)
        room--;                                  /* keep a column for the ellipsis */
    for (size_t i = 0, n; i < len; i += n) {
        n = next_unit(text + i, len - i, &cp);
        int w = cp == UINT32_MAX ? 1 : char_width(cp);
        if (used + w > room)
            break;
        if (cp == UINT32_MAX)
            fputc('?', out);
        else
            fwrite(text + i, 1, n, out);
        used += w;
    }
    if (total > used) {
        fputs(ELLIPSIS, out);
        used++;
    }
    fputs(suffix, out);
    used += (int)slen;
    if (!last)
        fprintf(out, "%*s", width - used >= 0 ? width - used + 1 : 1, "");
}

/* An address too long for its cell keeps its start and end: "2001:db8…:7334". */
static void put_ip_cell(FILE *out, const char *ip, int width)
{
    size_t len = strlen(ip);
    if (len <= (size_t)width) {
        put_cell(out, ip, "", width, false);
        return;
    }
    int head = (width - 1) / 2, tail = width - 1 - head;
    char cut[64];
    snprintf(cut, sizeof cut, "%.*s" ELLIPSIS "%s", head, ip, ip + len - (size_t)tail);
    put_cell(out, cut, "", width, false);
}

/* ---- shared helpers ------------------------------------------------------------------ */

/* The microseconds of the decimal digits at *p (after a '.'), moving *p past them; digits
 * past the sixth are ignored. */
static int64_t fraction_us(const char **p)
{
    int64_t us = 0, scale = 100000;
    for (; isdigit((unsigned char)**p); (*p)++, scale /= 10)
        us += scale * (**p - '0');
    return us;
}

bool output_parse_time(const char *text, int64_t now_us, int64_t *out_us)
{
    while (*text == ' ')
        text++;
    if (!*text) {
        *out_us = 0;
        return true;
    }
    if (text[0] == '-') {   /* before now: -15m, -2h, -1.5h, -1d, -30s */
        char *end;
        if (!isdigit((unsigned char)text[1]))
            return false;
        double n = strtod(text + 1, &end);
        long unit = *end == 'm' ? 60 : *end == 'h' ? 3600 : *end == 'd' ? 86400 :
                    *end == 's' ? 1 : 0;
        if (end == text + 1 || !unit || end[1] || n > 1e6)
            return false;
        *out_us = now_us - (int64_t)(n * (double)unit * 1e6);
        return true;
    }
    /* epoch seconds, with a fraction as the JSON's start_ts and ts print them */
    size_t digits = strspn(text, "0123456789");
    if (digits > 0 && (!text[digits] || (text[digits] == '.' &&
                                         !text[digits + 1 + strspn(text + digits + 1,
                                                                   "0123456789")]))) {
        const char *fraction = text + digits + (text[digits] == '.');
        *out_us = (int64_t)strtoll(text, NULL, 10) * 1000000 + fraction_us(&fraction);
        return true;
    }
    struct tm tm = { 0 };
    int consumed = 0;
    int64_t fraction = 0;
    if (sscanf(text, "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &consumed) != 3)
        return false;
    const char *rest = text + consumed;
    if (*rest == 'T' || *rest == ' ') {
        int c2 = 0;
        if (sscanf(rest + 1, "%2d:%2d%n", &tm.tm_hour, &tm.tm_min, &c2) != 2)
            return false;
        rest += 1 + c2;
        if (*rest == ':') {
            int c3 = 0;
            if (sscanf(rest + 1, "%2d%n", &tm.tm_sec, &c3) != 1)
                return false;
            rest += 1 + c3;
        }
        /* a fraction, as the JSON prints "start": "2026-11-28T13:20:41.266286Z" */
        if (*rest == '.' && isdigit((unsigned char)rest[1])) {
            rest++;
            fraction = fraction_us(&rest);
        }
        if (*rest == 'Z')
            rest++;
    }
    if (*rest || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
        tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
        return false;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    *out_us = (int64_t)timegm(&tm) * 1000000 + fraction;
    return true;
}

char *output_time(char *buf, size_t cap, int64_t us, enum output_time_style style)
{
    int64_t sec = us / 1000000, frac = us % 1000000;
    struct tm tm;
    if (frac < 0) {
        frac += 1000000;
        sec--;
    }
    time_t t = (time_t)sec;
    if (!gmtime_r(&t, &tm)) {
        snprintf(buf, cap, "?");
        return buf;
    }
    if (style == OUTPUT_TIME_ISO)
        snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)frac);
    else if (style == OUTPUT_TIME_CLOCK)
        snprintf(buf, cap, "%02d:%02d:%02d.%03d", tm.tm_hour, tm.tm_min, tm.tm_sec,
                 (int)(frac / 1000));
    else
        snprintf(buf, cap, "%04d-%02d-%02d %02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return buf;
}

/* 51118 -> "50K", 1234567 -> "1.2M"; plain below 1024. */
static void human_size(char *buf, size_t cap, uint64_t n)
{
    static const char units[] = "KMGTPE";
    double v = (double)n;
    int u = -1;
    if (n < 1024) {
        snprintf(buf, cap, "%" PRIu64, n);
        return;
    }
    while (v >= 1024 && u < 5) {
        v /= 1024;
        u++;
    }
    snprintf(buf, cap, v < 9.95 ? "%.1f%c" : "%.0f%c", v, units[u]);
}

/* Appends " name=count" (or "/size" too) when count is not zero. */
static void counter_add(char *buf, size_t cap, size_t *len, const char *name, uint64_t count,
                        const uint64_t *bytes)
{
    char size[16] = "";
    if (count == 0 || *len >= cap)
        return;
    if (bytes) {
        size[0] = '/';
        human_size(size + 1, sizeof size - 1, *bytes);
    }
    int n = snprintf(buf + *len, cap - *len, "%s%s=%" PRIu64 "%s", *len ? " " : "", name,
                     count, size);
    *len = n < 0 ? cap : *len + (size_t)n;
}

void output_counters(char *buf, size_t cap, const struct mt_session *s)
{
    const struct mt_mailbox_stats *m = &s->stats;
    size_t len = 0;
    buf[0] = '\0';
    if (s->proto == MT_PROTO_POP3) {
        counter_add(buf, cap, &len, "retr", m->retr_count, &m->retr_bytes);
        counter_add(buf, cap, &len, "top", m->top_count, NULL);
        counter_add(buf, cap, &len, "del", m->dele_count, NULL);
        if (len == 0)
            counter_add(buf, cap, &len, "stat", m->stat_messages, &m->stat_bytes);
    } else if (s->proto == MT_PROTO_IMAP) {
        counter_add(buf, cap, &len, "fetch", m->fetch_count, &m->fetch_bytes);
        counter_add(buf, cap, &len, "app", m->append_count, NULL);
        counter_add(buf, cap, &len, "exp", m->expunge_count, NULL);
        counter_add(buf, cap, &len, "del", m->deleted_flagged, NULL);
        if (m->idled && len < cap)
            snprintf(buf + len, cap - len, "%sidle", len ? " " : "");
    }
}

bool output_transcript_next(const struct mt_session *s, size_t *pos, struct output_line *line)
{
    const char *start, *end, *digits, *p;
    if (!s->transcript || *pos >= s->transcript_len)
        return false;
    start = s->transcript + *pos;
    end = memchr(start, '\n', s->transcript_len - *pos);
    if (!end)
        end = s->transcript + s->transcript_len;
    *pos = (size_t)(end - s->transcript) + 1;
    /* "USEC DIR TEXT"; anything else is shown whole, with dir '?' */
    digits = p = start + (start < end && *start == '-');
    line->ts_us = 0;
    while (p < end && *p >= '0' && *p <= '9' && line->ts_us < INT64_MAX / 10 - 9)
        line->ts_us = line->ts_us * 10 + (*p++ - '0');
    if (digits > start)
        line->ts_us = -line->ts_us;
    if (p > digits && end - p >= 2 && p[0] == ' ' &&
        (p[1] == 'C' || p[1] == 'S' || p[1] == 'I') && (end - p == 2 || p[2] == ' ')) {
        line->dir = p[1];
        line->text = p + (end - p == 2 ? 2 : 3);
    } else {
        line->ts_us = 0;
        line->dir = '?';
        line->text = start;
    }
    line->len = (size_t)(end - line->text);
    return true;
}

static const char *type_name(const struct mt_session *s)
{
    if (s->proto == MT_PROTO_SMTP)
        return s->direction == MT_OUTBOUND ? "out" : "in";
    return proto_name(s->proto);
}

static const char *direction_word(const struct mt_session *s)
{
    return s->direction == MT_OUTBOUND ? "outbound" : "inbound";
}

/* The first transaction's sender, "<>" for the null sender, NULL with no transaction. */
static const char *first_sender(const struct mt_session *s)
{
    if (s->message_count == 0 || s->proto != MT_PROTO_SMTP)   /* POP3/IMAP: retrieved mail */
        return NULL;
    const char *from = mt_str(s->messages[0].mail_from);
    return from[0] ? from : "<>";
}

/* ---- table ----------------------------------------------------------------------- */

void output_table_header(FILE *out, enum output_view view)
{
    static const char *const labels[][3] = {
        [OUTPUT_VIEW_MIXED] = { "Type", "Sender/User", "Rcpt/Counters" },
        [OUTPUT_VIEW_SMTP] = { "Dir", "Sender", "Recipient(s)" },
        [OUTPUT_VIEW_MAILBOX] = { "Prot", "User", "Counters" },
        [OUTPUT_VIEW_DNS] = { "Prot", "Query", "Answer" },
    };
    const char *const *l = labels[view <= OUTPUT_VIEW_DNS ? view : OUTPUT_VIEW_MIXED];
    fprintf(out, "%*s ", W_ID, "ID");
    put_cell(out, "Date/Time (UTC)", "", W_DATE, false);
    put_cell(out, l[0], "", W_TYPE, false);
    put_cell(out, "IP", "", W_IP, false);
    put_cell(out, l[1], "", W_WHO, false);
    put_cell(out, l[2], "", W_WHAT, false);
    fputs("Status\n", out);
}

void output_table_row(FILE *out, const struct mt_session *s)
{
    char when[32], counters[96], more[32] = "", question[MT_NAME_MAX + 20];
    const char *who, *what = "";
    output_time(when, sizeof when, s->start_us, OUTPUT_TIME_DATE);
    if (s->proto == MT_PROTO_DNS) {
        const struct mt_dns_info *dns = session_dns(s);
        snprintf(question, sizeof question, "%s %s", dns->qtype, dns->qname);
        who = question;
        what = dns->answers[0] ? dns->answers : dns->rcode;
    } else if (s->proto == MT_PROTO_SMTP) {
        uint64_t others = s->recipient_count + s->recipients_dropped;
        who = first_sender(s);
        if (!who && s->user[0]) {   /* no transaction, a login: whose (as the console) */
            snprintf(question, sizeof question, "user %s", s->user);
            who = question;
        }
        if (s->recipient_count > 0) {
            what = mt_str(s->recipients[0].addr);
            others--;
        }
        if (others > 0)
            snprintf(more, sizeof more, "%s+%" PRIu64, what[0] ? " " : "", others);
    } else {
        who = s->user;
        output_counters(counters, sizeof counters, s);
        what = counters;
    }
    fprintf(out, "%*" PRId64 " ", W_ID, s->id);
    put_cell(out, when, "", W_DATE, false);
    put_cell(out, type_name(s), "", W_TYPE, false);
    /* A dns_failed row has no server: the mail server that looked the domain up. */
    put_ip_cell(out, s->direction == MT_OUTBOUND && s->server_ip[0] ? s->server_ip
                                                                    : s->client_ip, W_IP);
    put_cell(out, who && who[0] ? who : "-", "", W_WHO, false);
    put_cell(out, what[0] || more[0] ? what : "-", more, W_WHAT, false);
    put_str(out, status_name(s->status));
    fputc('\n', out);
}

/* a and b equal as Message-IDs: ASCII case aside, angle brackets optional. */
static bool same_message_id(const char *a, const char *b)
{
    size_t al = strlen(a), bl = strlen(b);
    if (al >= 2 && a[0] == '<' && a[al - 1] == '>')
        a++, al -= 2;
    if (bl >= 2 && b[0] == '<' && b[bl - 1] == '>')
        b++, bl -= 2;
    return al > 0 && al == bl && strncasecmp(a, b, al) == 0;
}

/* The message of a POP3/IMAP session a trace reached it by, or NULL. */
static const struct mt_message *retrieved_message(const struct mt_session *s, const char *key)
{
    if (s->proto == MT_PROTO_SMTP || !key || !key[0])
        return NULL;
    for (size_t i = 0; i < s->message_count; i++)
        if (same_message_id(mt_str(s->messages[i].message_id), key))
            return &s->messages[i];
    return NULL;
}

/* "CODE text" of a message's final reply (its text alone without a code). */
static void message_reply(char *buf, size_t cap, const struct mt_message *m)
{
    if (m->reply_code > 0)
        snprintf(buf, cap, "%d %s", m->reply_code, mt_str(m->reply));
    else
        snprintf(buf, cap, "%s", mt_str(m->reply));
}

/* What an SMTP hop says of the traced message or address: the status and reply of its
 * own transaction or recipient, not of the whole session (a session delivering one
 * message and refused another is rcpt_rejected; the delivered message's hop is not). A
 * recipient refused at RCPT is that refusal (temp_failed for a 4xx); one accepted is its
 * transaction's end; a key matching nothing (a HELO, a user) leaves the session's. The
 * reply goes to buf as "CODE text". */
static bool smtp_hop_outcome(const struct mt_session *s, const char *key,
                             enum mt_status *status, char *buf, size_t cap)
{
    if (s->proto != MT_PROTO_SMTP || !key || !key[0])
        return false;
    const struct mt_message *m = NULL;
    for (size_t i = 0; i < s->message_count && !m; i++)
        if (same_message_id(mt_str(s->messages[i].message_id), key))
            m = &s->messages[i];
    for (size_t i = 0; i < s->recipient_count && !m; i++) {
        const struct mt_recipient *r = &s->recipients[i];
        if (strcasecmp(mt_str(r->addr), key) != 0)
            continue;
        if (!r->accepted && r->code > 0) {   /* refused at RCPT (no code: never answered) */
            *status = r->code >= 400 && r->code < 500 ? MT_STATUS_TEMP_FAILED
                                                       : MT_STATUS_RCPT_REJECTED;
            snprintf(buf, cap, "%d %s", r->code, mt_str(r->reply));
            return true;
        }
        if (r->message < 0 || (size_t)r->message >= s->message_count)
            return false;   /* accepted, its transaction not kept: the session's */
        m = &s->messages[r->message];
        if (m->status == MT_STATUS_PARTIAL) {   /* others refused: this one was delivered */
            *status = MT_STATUS_DELIVERED;
            message_reply(buf, cap, m);
            return true;
        }
    }
    for (size_t i = 0; i < s->message_count && !m; i++)
        if (strcasecmp(mt_str(s->messages[i].mail_from), key) == 0 && s->message_count > 1)
            m = &s->messages[i];
    if (!m || m->status == MT_STATUS_UNKNOWN)
        return false;
    *status = m->status;
    message_reply(buf, cap, m);
    return true;
}

/* What a trace hop says for the key: the traced message's (or recipient's) status and
 * line, else the session's; and the retrieval (POP3/IMAP) it was reached by, or NULL. */
struct hop_outcome {
    enum mt_status status;
    const char *line;
    const struct mt_message *retrieved;
    char own[MT_TEXT_MAX + 16];
};

static void hop_outcome(const struct mt_session *s, const char *key, struct hop_outcome *h)
{
    h->retrieved = retrieved_message(s, key);
    h->status = s->status;
    h->line = smtp_hop_outcome(s, key, &h->status, h->own, sizeof h->own) ? h->own
                                                                           : s->status_line;
}

static const char *const match_marker[] = {
    [STORE_TRACE_KEY] = "",
    [STORE_TRACE_SIZE] = "[by size/time, no Message-ID] ",
    [STORE_TRACE_ENVELOPE] = "[by sender/recipient/time, no Message-ID] ",
};

void output_trace_hop(FILE *out, const struct mt_session *s, enum store_trace_match match,
                      const char *key)
{
    struct hop_outcome hop;
    hop_outcome(s, key, &hop);
    char when[32];
    output_time(when, sizeof when, s->start_us, OUTPUT_TIME_DATE);
    /* A guessed hop says so first: a narrow console cuts the line's end. */
    fprintf(out, "%s  #%" PRId64 " %s%s %-3s ", when, s->id,
            match_marker[match <= STORE_TRACE_ENVELOPE ? match : STORE_TRACE_KEY],
            proto_name(s->proto),
            s->proto == MT_PROTO_SMTP ? type_name(s) : "");
    put_str(out, s->client_ip);
    fputs(" -> ", out);
    put_str(out, s->server_ip[0] ? s->server_ip : "?");
    fprintf(out, ":%u  ", s->server_port);
    put_str(out, status_name(hop.status));
    if (hop.retrieved) {   /* who fetched it, and how: the hop's point */
        fputs("  ", out);
        put_str(out, s->user[0] ? s->user : "?");
        fputs(": ", out);
        put_str(out, mt_str(hop.retrieved->reply));
    } else if (hop.line[0]) {
        fputs("  ", out);
        put_str(out, hop.line);
    }
    fputc('\n', out);
}


/* ---- JSON ------------------------------------------------------------------------ */

static void json_text(FILE *out, const char *s, size_t len)
{
    uint32_t cp;
    fputc('"', out);
    for (size_t i = 0, n; i < len; i += n) {
        size_t valid = text_utf8_decode((const unsigned char *)s + i, len - i, &cp);
        n = valid ? valid : 1;
        if (!valid)
            fputs("\\ufffd", out);            /* not UTF-8: cannot go into JSON as is */
        else if (cp == '"' || cp == '\\')
            fprintf(out, "\\%c", (int)cp);
        else if (cp == '\n')
            fputs("\\n", out);
        else if (cp == '\t')
            fputs("\\t", out);
        else if (cp == '\r')
            fputs("\\r", out);
        else if (text_is_unsafe_char(cp))
            fprintf(out, "\\u%04x", (unsigned)cp);
        else
            fwrite(s + i, 1, n, out);
    }
    fputc('"', out);
}

static void json_str(FILE *out, const char *key, const char *s)
{
    fprintf(out, ",\"%s\":", key);
    json_text(out, s, strlen(s));
}

static void json_u64(FILE *out, const char *key, uint64_t v)
{
    fprintf(out, ",\"%s\":%" PRIu64, key, v);
}

/* A rate, or null where there is none (negative: under a minute of samples, "n/a"). */
static void json_rate(FILE *out, const char *key, double rate)
{
    if (rate < 0)
        fprintf(out, ",\"%s\":null", key);
    else
        fprintf(out, ",\"%s\":%.2f", key, rate);
}

static void json_i64(FILE *out, const char *key, int64_t v)
{
    fprintf(out, ",\"%s\":%" PRId64, key, v);
}

static void json_bool(FILE *out, const char *key, bool v)
{
    fprintf(out, ",\"%s\":%s", key, v ? "true" : "false");
}

/* Microseconds as seconds with 6 decimals: 1767804855.123456 */
static void put_seconds(FILE *out, int64_t us)
{
    uint64_t mag = us < 0 ? 0 - (uint64_t)us : (uint64_t)us;
    fprintf(out, "%s%" PRIu64 ".%06" PRIu64, us < 0 ? "-" : "", mag / 1000000, mag % 1000000);
}

static void json_seconds(FILE *out, const char *key, int64_t us)
{
    fprintf(out, ",\"%s\":", key);
    put_seconds(out, us);
}

static void json_message(FILE *out, const struct mt_session *s, size_t idx)
{
    const struct mt_message *m = &s->messages[idx];
    const char *sep = "";
    const char *mail_from = mt_str(m->mail_from);
    fputs("{\"mail_from\":", out);
    json_text(out, mail_from, strlen(mail_from));
    fputs(",\"rcpt_to\":[", out);
    for (size_t i = 0; i < s->recipient_count; i++) {
        if (s->recipients[i].message != (int)idx)
            continue;
        const char *addr = mt_str(s->recipients[i].addr);
        fputs(sep, out);
        json_text(out, addr, strlen(addr));
        sep = ",";
    }
    fputc(']', out);
    json_u64(out, "size", m->size);
    json_str(out, "subject", mt_str(m->subject));
    json_str(out, "message_id", mt_str(m->message_id));
    json_str(out, "from", mt_str(m->header_from));
    json_str(out, "to", mt_str(m->header_to));
    json_str(out, "date", mt_str(m->date));
    json_i64(out, "reply_code", m->reply_code);
    json_str(out, "reply", mt_str(m->reply));
    json_str(out, "status", status_name(m->status));
    json_seconds(out, "start_ts", m->start_us);
    fputc('}', out);
}

static void json_stats(FILE *out, const struct mt_mailbox_stats *m)
{
    fprintf(out, ",\"stats\":{\"retr_count\":%" PRIu64, m->retr_count);
    json_u64(out, "retr_bytes", m->retr_bytes);
    json_u64(out, "dele_count", m->dele_count);
    json_u64(out, "top_count", m->top_count);
    json_u64(out, "stat_messages", m->stat_messages);
    json_u64(out, "stat_bytes", m->stat_bytes);
    json_u64(out, "fetch_count", m->fetch_count);
    json_u64(out, "fetch_bytes", m->fetch_bytes);
    json_u64(out, "append_count", m->append_count);
    json_u64(out, "append_bytes", m->append_bytes);
    json_u64(out, "expunge_count", m->expunge_count);
    json_u64(out, "deleted_flagged", m->deleted_flagged);
    json_bool(out, "idled", m->idled);
    json_str(out, "mailboxes", m->mailboxes);
    fputc('}', out);
}

/* The object without its closing brace, so that output_show_json can add to it. */
static void json_session(FILE *out, const struct mt_session *s)
{
    char when[40];
    const char *sender = first_sender(s), *sep = "";
    fprintf(out, "{\"id\":%" PRId64, s->id);
    json_str(out, "proto", proto_name(s->proto));
    json_str(out, "direction", s->direction == MT_OUTBOUND ? "out" : "in");
    json_str(out, "client_ip", s->client_ip);
    json_u64(out, "client_port", s->client_port);
    json_str(out, "server_ip", s->server_ip);
    json_u64(out, "server_port", s->server_port);
    json_str(out, "start", output_time(when, sizeof when, s->start_us, OUTPUT_TIME_ISO));
    json_seconds(out, "start_ts", s->start_us);
    json_seconds(out, "end_ts", s->end_us);
    json_seconds(out, "duration", s->end_us - s->start_us);
    json_str(out, "banner", s->banner);
    json_str(out, "server_name", s->server_name);
    json_str(out, "helo", s->helo);
    json_str(out, "user", s->user);
    json_bool(out, "tls", s->tls);
    json_i64(out, "auth_attempts", s->auth_attempts);
    json_i64(out, "auth_failures", s->auth_failures);
    if (sender)
        json_str(out, "mail_from", mt_str(s->messages[0].mail_from));
    else
        fputs(",\"mail_from\":null", out);
    fputs(",\"rcpt_to\":[", out);
    for (size_t i = 0; i < s->recipient_count; i++) {
        const struct mt_recipient *r = &s->recipients[i];
        const char *addr = mt_str(r->addr);
        fprintf(out, "%s{\"addr\":", i ? "," : "");
        json_text(out, addr, strlen(addr));
        json_i64(out, "code", r->code);
        json_bool(out, "accepted", r->accepted);
        json_str(out, "reply", mt_str(r->reply));
        fputc('}', out);
    }
    fputs("],\"messages\":[", out);
    for (size_t i = 0; i < s->message_count; i++) {
        fputs(i ? "," : "", out);
        json_message(out, s, i);
    }
    fputc(']', out);
    json_str(out, "status", status_name(s->status));
    json_str(out, "status_line", s->status_line);
    json_i64(out, "status_transcript_line", s->status_transcript_line);
    json_str(out, "end", end_name(s->end));
    fputs(",\"flags\":[", out);
    for (unsigned bit = 0; bit < 32; bit++) {
        if (!(s->flags & (1u << bit)))
            continue;
        if (flag_name(bit))
            fprintf(out, "%s\"%s\"", sep, flag_name(bit));
        else
            fprintf(out, "%s\"flag_%u\"", sep, bit);
        sep = ",";
    }
    fputc(']', out);
    json_u64(out, "bytes_c2s", s->bytes_c2s);
    json_u64(out, "bytes_s2c", s->bytes_s2c);
    json_u64(out, "recipients_dropped", s->recipients_dropped);
    json_u64(out, "messages_dropped", s->messages_dropped);
    json_i64(out, "transcript_lines", s->transcript_lines);
    json_u64(out, "transcript_dropped", s->transcript_dropped);
    json_stats(out, &s->stats);
}

/* "dns" for DNS rows, "tls_details" when a TLS handshake was read. */
static void json_extras(FILE *out, const struct mt_session *s)
{
    const struct mt_explain *e = explain_decision(s->status, s->status_line);
    const char *reason = explain_reason(s->status, s->status_line);
    fputs(",\"explanation\":{\"meaning\":", out);
    json_text(out, e->meaning, strlen(e->meaning));
    json_str(out, "check", e->check);
    json_str(out, "reason", reason ? reason : "");
    fputc('}', out);
    json_bool(out, "starttls_offered", s->starttls_offered);
    if (s->proto == MT_PROTO_DNS) {
        const struct mt_dns_info *dns = session_dns(s);
        fputs(",\"dns\":{", out);
        fputs("\"qname\":", out);
        json_text(out, dns->qname, strlen(dns->qname));
        json_str(out, "qtype", dns->qtype);
        json_str(out, "rcode", dns->rcode);
        json_str(out, "answers", dns->answers);
        json_i64(out, "response_us", dns->response_us);
        fputc('}', out);
    }
    const struct mt_tls_info *t = session_tls(s);
    if (t->outcome[0]) {
        fputs(",\"tls_details\":{\"outcome\":", out);
        json_text(out, t->outcome, strlen(t->outcome));
        json_str(out, "version", t->version);
        json_str(out, "client_versions", t->client_versions);
        json_str(out, "cipher", t->cipher);
        json_str(out, "sni", t->sni);
        json_str(out, "subject", t->subject);
        json_str(out, "issuer", t->issuer);
        json_str(out, "sans", t->sans);
        json_i64(out, "not_before", t->not_before);
        json_i64(out, "not_after", t->not_after);
        json_str(out, "alert", t->alert);
        fputc('}', out);
    }
}

void output_json(FILE *out, const struct mt_session *s)
{
    json_session(out, s);
    json_extras(out, s);
    fputs("}\n", out);
}

/* One of the session's messages has this Message-ID. */
static bool carries_message_id(const struct mt_session *s, const char *key)
{
    for (size_t i = 0; i < s->message_count; i++)
        if (same_message_id(mt_str(s->messages[i].message_id), key))
            return true;
    return false;
}

void output_json_trace_hop(FILE *out, const struct mt_session *s, enum store_trace_match match,
                           const char *key)
{
    struct hop_outcome hop;
    hop_outcome(s, key, &hop);
    json_session(out, s);
    json_extras(out, s);
    json_str(out, "matched_by", match == STORE_TRACE_SIZE ? "size_time"
                                : match == STORE_TRACE_ENVELOPE ? "envelope_time"
                                : carries_message_id(s, key) ? "message_id" : "address");
    json_str(out, "hop_status", status_name(hop.status));
    json_str(out, "hop_line", hop.retrieved ? mt_str(hop.retrieved->reply) : hop.line);
    fputs("}\n", out);
}

static void json_peers(FILE *out, const struct store_peers *peers)
{
    if (!peers || !peers->looked)
        return;
    fputs(",\"also_open\":[", out);
    for (size_t i = 0; i < peers->count; i++) {
        const struct store_peer *p = &peers->list[i];
        fprintf(out, "%s{\"id\":%" PRId64 ",\"client_ip\":", i ? "," : "", p->id);
        json_text(out, p->client_ip, strlen(p->client_ip));
        fputs(",\"start_ts\":", out);
        put_seconds(out, p->start_us);
        fputs(",\"end_ts\":", out);
        put_seconds(out, p->end_us);
        fprintf(out, ",\"status\":\"%s\"}", status_name(p->status));
    }
    fprintf(out, "],\"also_open_total\":%zu", peers->total);
}

static void show_json(FILE *out, const struct mt_session *s, const struct store_peers *peers)
{
    struct output_line line;
    size_t pos = 0;
    const char *sep = "";
    json_session(out, s);
    json_extras(out, s);
    json_peers(out, peers);
    fputs(",\"transcript\":[", out);
    while (output_transcript_next(s, &pos, &line)) {
        fprintf(out, "%s{\"ts\":", sep);
        put_seconds(out, line.ts_us);
        fprintf(out, ",\"dir\":\"%c\",\"text\":", line.dir);
        json_text(out, line.text, line.len);
        fputc('}', out);
        sep = ",";
    }
    fputs("]}\n", out);
}

void output_show_json(FILE *out, const struct mt_session *s)
{
    show_json(out, s, NULL);
}

/* ---- detail view ------------------------------------------------------------------ */

static void show_label(FILE *out, const char *label)
{
    fprintf(out, "%-11s", label);
}

static void show_field(FILE *out, const char *label, const char *value)
{
    if (!value[0])
        return;
    show_label(out, label);
    put_str(out, value);
    fputc('\n', out);
}

/* never_sent: of a message no server was found for (dns_failed): no refusal, no reply. */
static void show_recipient(FILE *out, const struct mt_recipient *r, const char *label,
                           bool never_sent)
{
    show_label(out, label);
    const char *addr = mt_str(r->addr), *reply = mt_str(r->reply);
    put_str(out, addr[0] ? addr : "<>");
    fputs("  ", out);
    if (reply[0])
        put_str(out, reply);      /* the reply line starts with its code */
    else if (r->code)
        fprintf(out, "%d", r->code);
    else
        fputs("(no reply)", out);
    /* A 4xx: the client tries again later. No reply is no refusal. */
    const char *outcome = r->accepted ? NULL : never_sent ? "never sent"
                          : r->code / 100 == 4 ? "deferred" : r->code ? "rejected" : NULL;
    if (outcome)
        fprintf(out, "  [%s]", outcome);
    fputc('\n', out);
}

static void show_message(FILE *out, const struct mt_session *s, size_t idx)
{
    const struct mt_message *m = &s->messages[idx];
    char label[32], when[32];
    snprintf(label, sizeof label, "Message %zu", idx + 1);
    show_label(out, label);
    if (s->proto == MT_PROTO_SMTP) {
        fputs("from <", out);
        put_str(out, mt_str(m->mail_from));
        fprintf(out, ">, %" PRIu64 " bytes, %s, at %s\n", m->size, status_name(m->status),
                output_time(when, sizeof when, m->start_us, OUTPUT_TIME_CLOCK));
    } else {   /* a message the user retrieved */
        put_str(out, mt_str(m->reply));
        fprintf(out, ", %" PRIu64 " bytes, at %s\n", m->size,
                output_time(when, sizeof when, m->start_us, OUTPUT_TIME_CLOCK));
    }
    for (size_t i = 0; i < s->recipient_count; i++)
        if (s->recipients[i].message == (int)idx)
            show_recipient(out, &s->recipients[i], "  To", m->status == MT_STATUS_DNS_FAILED);
    show_field(out, "  Subject", mt_str(m->subject));
    show_field(out, "  Msg-ID", mt_str(m->message_id));
    show_field(out, "  From", mt_str(m->header_from));
    show_field(out, "  To (hdr)", mt_str(m->header_to));
    show_field(out, "  Date", mt_str(m->date));
    if (s->proto == MT_PROTO_SMTP && (m->reply_code || mt_str(m->reply)[0])) {
        show_label(out, "  Reply");
        put_str(out, mt_str(m->reply));
        fputc('\n', out);
    }
}

/* "ip:port  (name)"; a row that stands for no connection (dns_failed: the mail server
 * that looked the domain up, no server found) has no port, or no address at all. */
static void show_endpoint(FILE *out, const char *label, const char *ip, unsigned port,
                          const char *prefix, const char *name)
{
    bool v6 = strchr(ip, ':') != NULL;   /* [2001:db8::1]:25, as in a URL */
    show_label(out, label);
    if (!ip[0]) {
        fputs("none: no connection was made\n", out);
        return;
    }
    if (v6 && port)
        fputc('[', out);
    put_str(out, ip);
    if (port)
        fprintf(out, "%s:%u", v6 ? "]" : "", port);
    if (name[0]) {
        fprintf(out, "  (%s", prefix);
        put_str(out, name);
        fputc(')', out);
    }
    fputc('\n', out);
}

static void show_mailbox(FILE *out, const struct mt_session *s)
{
    const struct mt_mailbox_stats *m = &s->stats;
    show_label(out, "Counters");
    if (s->proto == MT_PROTO_POP3)
        fprintf(out, "retr=%" PRIu64 "/%" PRIu64 " top=%" PRIu64 " del=%" PRIu64 "\n",
                m->retr_count, m->retr_bytes, m->top_count, m->dele_count);
    else
        fprintf(out, "fetch=%" PRIu64 "/%" PRIu64 " append=%" PRIu64 "/%" PRIu64
                " expunge=%" PRIu64 " deleted=%" PRIu64 "%s\n", m->fetch_count,
                m->fetch_bytes, m->append_count, m->append_bytes, m->expunge_count,
                m->deleted_flagged, m->idled ? " idle" : "");
    if (m->stat_messages || m->stat_bytes) {
        show_label(out, "Mailbox");
        fprintf(out, "%" PRIu64 " messages, %" PRIu64 " bytes (STAT)\n", m->stat_messages,
                m->stat_bytes);
    }
    show_field(out, "Selected", m->mailboxes);
}

const char *output_cert_validity(const struct mt_tls_info *t, int64_t start_us, uint32_t flags)
{
    if (!(flags & MT_FLAG_CERT_EXPIRED))
        return "";
    /* judged at the session's start (protocols/tls.c); a wrong clock or a certificate
     * installed early is another fault than a forgotten renewal */
    if (t->not_before && start_us / 1000000 < t->not_before)
        return "  NOT YET VALID at the time";
    return "  EXPIRED at the time";
}

const char *output_cert_name(char *buf, size_t cap, const struct mt_session *s)
{
    const struct mt_tls_info *t = session_tls(s);
    if (!(s->flags & MT_FLAG_CERT_NAME_MISMATCH))
        return NULL;
    if (t->sni[0])   /* the name the client asked for: what it verifies */
        snprintf(buf, cap, "does not match %s (the name the client asked for)", t->sni);
    else   /* no SNI: the name the server gives itself in its greeting (protocols/tls.c) */
        snprintf(buf, cap, "does not match %s (the server's greeting; the client sent no SNI)",
                 s->server_name[0] ? s->server_name : "?");
    return buf;
}

const char *output_cert_absence(const struct mt_tls_info *t)
{
    if (!t->outcome[0] || t->subject[0] || t->sans[0] || t->issuer[0] || t->not_after)
        return NULL;
    if (strncmp(t->version, "TLSv1.3", 7) == 0)
        return "not visible (TLS 1.3 encrypts it)";
    if (strcmp(t->outcome, "encrypted") == 0 && t->version[0])
        return "not sent (a resumed session, or one without a certificate)";
    return "not seen (the handshake ended before it)";
}

static void show_tls(FILE *out, const struct mt_session *s)
{
    const struct mt_tls_info *t = session_tls(s);
    uint32_t flags = s->flags;
    char name[MT_NAME_MAX + 96];
    char a[32], b[32];
    if (!t->outcome[0])
        return;
    show_field(out, "TLS result", t->outcome);
    show_field(out, "TLS offer", t->client_versions);
    show_field(out, "TLS used", t->version);
    show_field(out, "Cipher", t->cipher);
    show_field(out, "SNI", t->sni);
    show_field(out, "Cert", t->subject);
    const char *absent = output_cert_absence(t);
    if (absent)
        show_field(out, "Cert", absent);
    show_field(out, "Cert SANs", t->sans);
    if (output_cert_name(name, sizeof name, s))
        show_field(out, "Cert name", name);
    if (t->issuer[0] && strcmp(t->issuer, t->subject) == 0) {   /* why unknown_ca, at a glance */
        show_label(out, "Issuer");
        put_str(out, t->issuer);
        fputs(" (self-issued: the certificate names itself as its issuer)\n", out);
    } else {
        show_field(out, "Issuer", t->issuer);
    }
    if (t->not_after) {
        show_label(out, "Valid");
        fprintf(out, "%.10s to %.10s%s\n", output_time(a, sizeof a, t->not_before * 1000000, OUTPUT_TIME_DATE),
                output_time(b, sizeof b, t->not_after * 1000000, OUTPUT_TIME_DATE),
                output_cert_validity(t, s->start_us, flags));
    }
    show_field(out, "TLS alert", t->alert);
}

/* What the status means, the finer reason read from the deciding line, what to check. */
static void show_explanation(FILE *out, const struct mt_session *s)
{
    const struct mt_explain *e = explain_decision(s->status, s->status_line);
    const char *reason = explain_reason(s->status, s->status_line);
    show_field(out, "Meaning", e->meaning);
    if (reason)
        show_field(out, "Reason", reason);
    show_field(out, "Check", e->check);
}

/* "Also open  #3 from 192.168.1.50 since 13:37:33.120 (login_ok, until 13:41:02.004)" */
static void show_peers(FILE *out, const struct mt_session *s, const struct store_peers *peers)
{
    char line[160];
    for (size_t i = 0; i < output_peer_lines(peers); i++) {
        show_label(out, i ? "" : "Also open");
        output_peer_line(line, sizeof line, peers, i, s->start_us);
        put_str(out, line);
        fputc('\n', out);
    }
}

static void show_header(FILE *out, const struct mt_session *s, const struct store_peers *peers)
{
    char a[32], b[32];
    int64_t us = s->end_us - s->start_us;
    uint64_t mag = us < 0 ? 0 - (uint64_t)us : (uint64_t)us;
    fprintf(out, "Session %" PRId64 ", %s %s (times in UTC)\n", s->id,
            proto_name(s->proto), direction_word(s));
    show_label(out, "Time");
    fprintf(out, "%.10s %s", output_time(a, sizeof a, s->start_us, OUTPUT_TIME_DATE),
            output_time(b, sizeof b, s->start_us, OUTPUT_TIME_CLOCK));
    fprintf(out, " to %s (%s%" PRIu64 ".%06u s)\n",
            output_time(b, sizeof b, s->end_us, OUTPUT_TIME_CLOCK), us < 0 ? "-" : "",
            mag / 1000000, (unsigned)(mag % 1000000));
    show_endpoint(out, "Client", s->client_ip, s->client_port, "HELO ", s->helo);
    show_endpoint(out, "Server", s->server_ip, s->server_port, "", s->server_name);
    show_field(out, "Banner", s->banner);
    show_field(out, "User", s->user);
    if (s->auth_attempts) {
        show_label(out, "Auth");
        fprintf(out, "%d attempt(s), %d failed\n", s->auth_attempts, s->auth_failures);
    }
    if (first_sender(s))
        show_field(out, "Sender", first_sender(s));
    for (size_t i = 0; i < s->message_count; i++)
        show_message(out, s, i);
    for (size_t i = 0; i < s->recipient_count; i++)   /* recipients of no transaction */
        if (s->recipients[i].message < 0 || (size_t)s->recipients[i].message >= s->message_count)
            show_recipient(out, &s->recipients[i], "Recipient", false);
    if (s->proto == MT_PROTO_POP3 || s->proto == MT_PROTO_IMAP)
        show_mailbox(out, s);
    if (s->proto == MT_PROTO_DNS) {
        const struct mt_dns_info *dns = session_dns(s);
        show_field(out, "Question", dns->qname);
        show_field(out, "Type", dns->qtype);
        show_field(out, "Answer", dns->rcode[0] ? dns->rcode : "(no response)");
        show_field(out, "Records", dns->answers);
    } else {
        show_field(out, "TLS", s->tls ? "yes" : "no");
    }
    show_tls(out, s);
    show_field(out, "Status", status_name(s->status));
    if (s->status_line[0]) {
        show_label(out, "Decided by");
        put_str(out, s->status_line);
        if (s->status_transcript_line >= 0)
            fprintf(out, "  (transcript line %d, marked >>)", s->status_transcript_line + 1);
        fputc('\n', out);
    }
    show_explanation(out, s);
    show_peers(out, s, peers);
    show_field(out, "End", end_name(s->end));
    if (s->flags) {
        show_label(out, "Flags");
        for (unsigned bit = 0, n = 0; bit < 32; bit++)
            if (s->flags & (1u << bit))
                fprintf(out, n++ ? ", %s" : "%s", flag_name(bit) ? flag_name(bit) : "?");
        fputc('\n', out);
    }
    if (s->recipients_dropped || s->messages_dropped || s->transcript_dropped) {
        show_label(out, "Dropped");
        fprintf(out, "%" PRIu64 " recipients, %" PRIu64 " messages, %" PRIu64
                " transcript lines (over the caps)\n", s->recipients_dropped,
                s->messages_dropped, s->transcript_dropped);
    }
    show_label(out, "Traffic");
    fprintf(out, "%" PRIu64 " bytes from client, %" PRIu64 " from server\n", s->bytes_c2s,
            s->bytes_s2c);
}

static void show_text(FILE *out, const struct mt_session *s, const struct store_peers *peers)
{
    struct output_line line;
    size_t pos = 0;
    char clock[32];
    show_header(out, s, peers);
    fputs("\nTranscript (UTC):\n", out);
    if (!s->transcript_len)
        fputs("   (empty)\n", out);
    for (int i = 0; output_transcript_next(s, &pos, &line); i++) {
        fputs(i == s->status_transcript_line ? ">> " : "   ", out);
        if (line.dir == '?')
            fputs("?            ", out);
        else
            fprintf(out, "%s %s", output_time(clock, sizeof clock, line.ts_us, OUTPUT_TIME_CLOCK),
                    line.dir == 'C' ? "C: " : line.dir == 'S' ? "S: " : "   ");
        put_text(out, line.text, line.len);
        fputc('\n', out);
    }
    if (s->transcript_dropped)
        fprintf(out, "   [%" PRIu64 " more lines not kept: transcript limit reached]\n",
                s->transcript_dropped);
}

void output_show(FILE *out, const struct mt_session *s)
{
    show_text(out, s, NULL);
}

void output_show_peers(FILE *out, const struct mt_session *s, const struct store_peers *peers,
                       bool json)
{
    if (json)
        show_json(out, s, peers);
    else
        show_text(out, s, peers);
}

/* One session of them (output_peer_line()). */
static void peer_text(char *buf, size_t cap, const struct store_peer *p, int64_t day_us)
{
    char since[40], until[40], day[40];
    output_time(day, sizeof day, day_us, OUTPUT_TIME_DATE);
    /* the time alone on the same day, with its date on another */
    const char *a = output_time(since, sizeof since, p->start_us, OUTPUT_TIME_DATE);
    const char *b = output_time(until, sizeof until, p->end_us, OUTPUT_TIME_DATE);
    if (strncmp(since, day, 10) == 0)
        a = output_time(since, sizeof since, p->start_us, OUTPUT_TIME_CLOCK);
    if (strncmp(until, day, 10) == 0)
        b = output_time(until, sizeof until, p->end_us, OUTPUT_TIME_CLOCK);
    snprintf(buf, cap, "#%" PRId64 " from %s since %s (%s, until %s)", p->id, p->client_ip, a,
             status_name(p->status), b);
}

size_t output_peer_lines(const struct store_peers *peers)
{
    if (!peers)
        return 0;
    if (peers->count == 0)
        return peers->looked;   /* "none seen" */
    return peers->count + (peers->total > peers->count);
}

void output_peer_line(char *buf, size_t cap, const struct store_peers *peers, size_t i,
                      int64_t day_us)
{
    if (i < peers->count)
        peer_text(buf, cap, &peers->list[i], day_us);
    else if (peers->count == 0)
        snprintf(buf, cap, "none seen (one open since before the capture began would not show)");
    else
        snprintf(buf, cap, "and %zu more", peers->total - peers->count);
}

/* ---- capture statistics ------------------------------------------------------------- */

static void rate_text(char *buf, size_t cap, double rate)
{
    if (rate < 0)
        snprintf(buf, cap, "n/a");
    else
        snprintf(buf, cap, "%.1f", rate);
}

void output_sensor_stats(FILE *out, const struct store_sensor_stats *s, double recent_rate,
                         double run_rate, int64_t run_since_us, bool json)
{
    char when[40], recent[32], run[32], since[40];
    const char *health = s->health && s->health[0] ? s->health : "ok";
    if (json) {
        output_time(when, sizeof when, s->ts_us, OUTPUT_TIME_ISO);
        fputs("{\"source\":", out);
        json_text(out, s->source, strlen(s->source));
        json_str(out, "time", when);
        fprintf(out, ",\"ts\":%.6f", (double)s->ts_us / 1e6);
        json_u64(out, "packets", s->packets);
        json_u64(out, "kernel_drops", s->kernel_drops);
        json_u64(out, "interface_drops", s->interface_drops);
        json_u64(out, "streams", s->streams);
        json_u64(out, "sessions", s->sessions);
        json_rate(out, "sessions_per_minute", recent_rate);
        json_rate(out, "sessions_per_minute_run", run_rate);
        output_time(since, sizeof since, run_since_us, OUTPUT_TIME_ISO);
        json_str(out, "run_rate_since", since);
        json_str(out, "health", health);
        fputs("}\n", out);
        return;
    }
    output_time(when, sizeof when, s->ts_us, OUTPUT_TIME_DATE);
    rate_text(recent, sizeof recent, recent_rate);
    rate_text(run, sizeof run, run_rate);
    fputs("Source        ", out);
    put_str(out, s->source);
    fprintf(out, "\nLast sample   %s UTC\n", when);
    fprintf(out, "Packets       %" PRIu64 "\n", s->packets);
    fprintf(out, "Dropped       %" PRIu64 " by the kernel, %" PRIu64 " by the interface%s\n",
            s->kernel_drops, s->interface_drops,
            s->kernel_drops + s->interface_drops ? "  (raise -B, or --workers)" : "");
    fprintf(out, "Streams       %" PRIu64 " tracked\n", s->streams);
    output_time(since, sizeof since, run_since_us, OUTPUT_TIME_DATE);
    fprintf(out, "Sessions      %" PRIu64 " decoded; per minute: %s (last 5 min), %s (since %.16s,"
            " the oldest sample kept of this run)\n", s->sessions, recent, run, since);
    fputs("Health        ", out);
    put_str(out, health);
    fputs("\n\n", out);
}
