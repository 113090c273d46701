/* detail.c — turns one session into the lines of the detail view: who talked to whom, what
 * was sent, how it ended and what that means (explain.c), then the transcript with the
 * deciding line marked. Wrapping is done here so scrolling and search work in rows. */
#include "detail.h"

#include "cli/output.h"
#include "protocols/text.h"
#include "ui/safetext.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LABEL_WIDTH 10
#define CLOCK_WIDTH 16   /* "16:54:15.123 C: " */

struct ui_detail {
    struct mt_session *session;
    struct detail_line *lines;
    int line_count, line_cap;
    struct detail_row *rows;
    int row_count, row_cap;
    int top;
    bool failed;         /* out of memory while building: the view is shorter */
    int building_message;   /* the message whose block add_line() is adding to, or -1 */
    int64_t peer_ids[STORE_PEERS_MAX];   /* the sessions "Also open" names */
    size_t peer_count, peer_total;
};

static struct detail_line *add_line(struct ui_detail *d, enum detail_kind kind, int indent,
                                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static struct detail_line *add_line(struct ui_detail *d, enum detail_kind kind, int indent,
                                    const char *fmt, ...)
{
    char buf[2048];
    va_list args;
    va_start(args, fmt);
    vsnprintf(buf, sizeof buf, fmt, args);
    va_end(args);
    if (d->line_count == d->line_cap) {
        int cap = d->line_cap ? d->line_cap * 2 : 64;
        struct detail_line *lines = realloc(d->lines, (size_t)cap * sizeof *lines);
        if (!lines) {
            d->failed = true;
            return NULL;
        }
        d->lines = lines;
        d->line_cap = cap;
    }
    char *text = strdup(buf);
    if (!text) {
        d->failed = true;
        return NULL;
    }
    struct detail_line *line = &d->lines[d->line_count++];
    memset(line, 0, sizeof *line);
    line->kind = kind;
    line->indent = indent;
    line->message = d->building_message;
    line->text = text;
    return line;
}

#define FIELD(d, fmt, ...) add_line(d, DL_FIELD, LABEL_WIDTH, "%-*s" fmt, LABEL_WIDTH, __VA_ARGS__)

/* What the TLS handshake showed, when it was read. */
static void add_tls(struct ui_detail *d, const struct mt_session *s)
{
    const struct mt_tls_info *t = session_tls(s);
    char from[40], until[40], name[MT_NAME_MAX + 96];
    if (!t->outcome[0])
        return;
    FIELD(d, "%s%s%s%s%s", "Handshake", t->outcome, t->version[0] ? ", " : "", t->version,
          t->alert[0] ? ", alert " : "", t->alert);
    if (t->client_versions[0])   /* with a protocol_version alert, what to compare */
        FIELD(d, "%s", "Offered", t->client_versions);
    if (t->cipher[0])
        FIELD(d, "%s", "Cipher", t->cipher);
    if (t->sni[0])
        FIELD(d, "%s", "SNI", t->sni);
    const char *absent = output_cert_absence(t);
    if (t->subject[0] || t->issuer[0])   /* a certificate without a CN still has an issuer */
        FIELD(d, "%s  issued by %s", "Cert", t->subject[0] ? t->subject : "(no CN)",
              strcmp(t->issuer, t->subject) == 0 ? "itself (self-issued)"
              : t->issuer[0] ? t->issuer : "?");
    else if (absent)
        FIELD(d, "%s", "Cert", absent);
    if (t->sans[0])   /* the names a mismatch is judged on (RFC 6125: the CN only without them) */
        FIELD(d, "%s", "Names", t->sans);
    if (output_cert_name(name, sizeof name, s))
        FIELD(d, "%s", "Name", name);
    if (t->not_after) {
        output_time(from, sizeof from, t->not_before * 1000000, OUTPUT_TIME_DATE);
        output_time(until, sizeof until, t->not_after * 1000000, OUTPUT_TIME_DATE);
        FIELD(d, "%.10s to %.10s%s", "Valid", from, until,
              output_cert_validity(t, s->start_us, s->flags));
    }
}

/* "ip port N  name"; a row that stands for no connection (dns_failed) has no port, or no
 * address at all. */
static void add_endpoint(struct ui_detail *d, const char *label, const char *ip,
                         unsigned port, const char *prefix, const char *name)
{
    if (!ip[0])
        FIELD(d, "%s", label, "none: no connection was made");
    else if (!port)
        FIELD(d, "%s%s%s", label, ip, prefix, name);
    else
        FIELD(d, "%s port %u%s%s", label, ip, port, prefix, name);
}

static void add_endpoints(struct ui_detail *d, const struct mt_session *s)
{
    char when[40], until[40];
    double duration = s->end_us > s->start_us ? (double)(s->end_us - s->start_us) / 1e6 : 0;
    output_time(when, sizeof when, s->start_us, OUTPUT_TIME_DATE);
    output_time(until, sizeof until, s->end_us, OUTPUT_TIME_CLOCK);
    add_line(d, DL_FIELD, LABEL_WIDTH, "%-*s%s %s  #%lld", LABEL_WIDTH, "Session",
             proto_name(s->proto) , s->proto == MT_PROTO_SMTP ?
             (s->direction == MT_OUTBOUND ? "outbound" : "inbound")
             : s->proto == MT_PROTO_DNS ? "lookup" : "mailbox access",
             (long long)s->id);
    FIELD(d, "%s UTC, %.3f s (until %s), ended: %s", "Time", when, duration, until,
          end_name(s->end));
    add_endpoint(d, "Client", s->client_ip, s->client_port, s->helo[0] ? "  HELO/EHLO " : "",
                 s->helo);
    add_endpoint(d, "Server", s->server_ip, s->server_port, s->server_name[0] ? "  " : "",
                 s->server_name);
    if (s->banner[0])
        FIELD(d, "%s", "Banner", s->banner);
    if (s->auth_attempts)
        FIELD(d, "%s  (%d login attempt%s, %d failed)", "User", s->user[0] ? s->user : "-",
              s->auth_attempts, s->auth_attempts == 1 ? "" : "s", s->auth_failures);
    else if (s->user[0])
        FIELD(d, "%s", "User", s->user);
    if (s->proto == MT_PROTO_DNS) {
        const struct mt_dns_info *dns = session_dns(s);
        FIELD(d, "%s %s", "Question", dns->qtype, dns->qname);
        FIELD(d, "%s%s%s", "Answer", dns->rcode[0] ? dns->rcode : "(no response)",
              dns->answers[0] ? "  " : "", dns->answers);
        return;
    }
    FIELD(d, "%s", "TLS", !s->tls ? "no"
                          : s->status == MT_STATUS_TLS_FAILED ? "attempted: the handshake failed"
                          : s->flags & MT_FLAG_DECRYPTED ? "yes (decrypted capture)"
                          : "yes: the rest of the session is encrypted");
    add_tls(d, s);
}

/* The recipients of message `message`, or (-1) those of no message kept; the label on
 * the first only. */
static void add_recipients(struct ui_detail *d, const struct mt_session *s, int message,
                           const char *label)
{
    bool first = true;
    for (size_t r = 0; r < s->recipient_count; r++) {
        const struct mt_recipient *rc = &s->recipients[r];
        bool kept = rc->message >= 0 && (size_t)rc->message < s->message_count;
        if (message >= 0 ? rc->message != message : kept)
            continue;
        const char *outcome = rc->accepted ? "accepted"
                              : rc->code / 100 == 4 ? "deferred"   /* tried again later */
                              : rc->code ? "REJECTED" : "no reply";
        FIELD(d, "<%s>  %s  %s", first ? label : "", mt_str(rc->addr), outcome,
              mt_str(rc->reply));
        first = false;
    }
}

static void add_mail(struct ui_detail *d, const struct mt_session *s)
{
    if (s->proto == MT_PROTO_DNS)   /* its question and answer are all there is */
        return;
    for (size_t m = 0; m < s->message_count; m++) {
        d->building_message = (int)m;
        const struct mt_message *msg = &s->messages[m];
        const char *subject = mt_str(msg->subject), *header_from = mt_str(msg->header_from);
        const char *header_to = mt_str(msg->header_to), *id = mt_str(msg->message_id);
        const char *reply = mt_str(msg->reply);
        const char *noun = s->proto == MT_PROTO_SMTP ? "Mail" : "Message";
        char label[32];
        if (s->message_count > 1)
            snprintf(label, sizeof label, "%s %zu", noun, m + 1);
        else
            snprintf(label, sizeof label, "%s", noun);
        if (s->proto != MT_PROTO_SMTP) {   /* retrieved, not sent: "retrieved by RETR 7" */
            add_line(d, DL_FIELD, LABEL_WIDTH, "%-*s%s, %llu bytes", LABEL_WIDTH, label,
                     reply[0] ? reply : "retrieved", (unsigned long long)msg->size);
            if (subject[0])
                FIELD(d, "%s", "  Subject", subject);
            if (header_from[0] || header_to[0])
                FIELD(d, "From: %s  To: %s", "  Header", header_from, header_to);
            if (id[0])
                FIELD(d, "%s", "  Msg-Id", id);
            continue;
        }
        add_line(d, DL_FIELD, LABEL_WIDTH, "%-*sfrom <%s>  %s", LABEL_WIDTH, label,
                 mt_str(msg->mail_from), status_name(msg->status));
        if (subject[0])
            FIELD(d, "%s", "  Subject", subject);
        if (header_from[0] || header_to[0])
            FIELD(d, "From: %s  To: %s", "  Header", header_from, header_to);
        if (id[0] || msg->size)
            FIELD(d, "%s  %llu bytes", "  Msg-Id", id[0] ? id : "-",
                  (unsigned long long)msg->size);
        if (msg->reply_code || reply[0])
            FIELD(d, "%s", "  Reply", reply);
        add_recipients(d, s, (int)m, "  Rcpt");   /* under their mail: which was refused */
    }
    d->building_message = -1;
    add_recipients(d, s, -1, "Rcpt");   /* of no message kept (over the cap) */
    if (s->recipients_dropped)
        FIELD(d, "%llu more recipients not kept", "", (unsigned long long)s->recipients_dropped);
    if (s->proto != MT_PROTO_SMTP) {
        char counters[256];
        output_counters(counters, sizeof counters, s);
        FIELD(d, "%s%s%s", "Counters", counters[0] ? counters : "nothing fetched or deleted",
              s->stats.mailboxes[0] ? "  mailboxes: " : "",
              s->stats.mailboxes);
    }
    FIELD(d, "client→server %llu bytes, server→client %llu bytes", "Traffic",
          (unsigned long long)s->bytes_c2s, (unsigned long long)s->bytes_s2c);
}

static void add_status(struct ui_detail *d, const struct mt_session *s)
{
    const struct mt_explain *e = explain_decision(s->status, s->status_line);
    const char *reason = explain_reason(s->status, s->status_line);
    struct detail_line *line = add_line(d, DL_STATUS, LABEL_WIDTH, "%-*s%s — %s",
                                        LABEL_WIDTH, "Status", status_name(s->status), e->meaning);
    if (line)
        line->severity = e->severity;
    if (reason)
        FIELD(d, "%s", "Reason", reason);
    FIELD(d, "%s", "Check", e->check);
    if (s->status_line[0])
        FIELD(d, "%s", "Decided", s->status_line);
    if (s->flags) {   /* every flag by its stored name, "cert_expired" as "cert expired" */
        char buf[320] = "";
        size_t len = 0;
        for (unsigned bit = 0; bit < 32; bit++) {
            const char *name = flag_name(bit);
            if (!(s->flags & (1u << bit)) || !name || len >= sizeof buf)
                continue;
            size_t start = len + (len ? 2 : 0);
            len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s", len ? ", " : "", name);
            for (size_t i = start; i < len && i < sizeof buf; i++)
                if (buf[i] == '_')
                    buf[i] = ' ';
        }
        FIELD(d, "%s", "Flags", buf);
    }
}

static void add_transcript(struct ui_detail *d, const struct mt_session *s)
{
    struct output_line tl;
    size_t pos = 0;
    int index = 0;
    add_line(d, DL_SECTION, 0, "Transcript (%d line%s%s)", s->transcript_lines,
             s->transcript_lines == 1 ? "" : "s", s->transcript_dropped ? ", some dropped" : "");
    while (s->transcript && output_transcript_next(s, &pos, &tl)) {
        char clock[40];
        if (tl.dir == '?') {   /* not "USEC DIR TEXT": shown whole, as a note */
            add_line(d, DL_NOTE, 0, "%.*s", tl.len > 1500 ? 1500 : (int)tl.len, tl.text);
            index++;
            continue;
        }
        enum detail_kind kind = tl.dir == 'C' ? DL_CLIENT : tl.dir == 'S' ? DL_SERVER : DL_NOTE;
        int len = tl.len > 1500 ? 1500 : (int)tl.len;
        output_time(clock, sizeof clock, tl.ts_us, OUTPUT_TIME_CLOCK);
        struct detail_line *line = add_line(d, kind, CLOCK_WIDTH, "%s %c: %.*s", clock,
                                            tl.dir, len, tl.text);
        if (line)
            line->deciding = index == s->status_transcript_line;
        index++;
    }
    if (s->transcript_dropped)
        add_line(d, DL_NOTE, 0, "[%llu transcript lines dropped: the 128 KiB cap]",
                 (unsigned long long)s->transcript_dropped);
}

/* "Also open  #3 from 192.168.1.50 since 13:37:33.291 (login_ok, until 13:38:18.319)" */
static void add_peers(struct ui_detail *d, const struct store_peers *peers)
{
    char line[160];
    for (size_t i = 0; peers && i < peers->count && i < STORE_PEERS_MAX; i++)
        d->peer_ids[d->peer_count++] = peers->list[i].id;
    d->peer_total = peers && peers->total > d->peer_count ? peers->total : d->peer_count;
    for (size_t i = 0; i < output_peer_lines(peers); i++) {
        output_peer_line(line, sizeof line, peers, i, d->session->start_us);
        FIELD(d, "%s", i ? "" : "Also open", line);
    }
}

struct ui_detail *detail_new(struct mt_session *session)
{
    return detail_new_with_peers(session, NULL);
}

struct ui_detail *detail_new_with_peers(struct mt_session *session,
                                        const struct store_peers *peers)
{
    struct ui_detail *d = calloc(1, sizeof *d);
    if (!d) {
        session_free(session);
        return NULL;
    }
    d->session = session;
    d->building_message = -1;
    add_endpoints(d, session);
    add_mail(d, session);
    add_status(d, session);
    add_peers(d, peers);
    add_transcript(d, session);
    detail_layout(d, 80, false);
    return d;
}

size_t detail_peer_count(const struct ui_detail *d)
{
    return d->peer_count;
}

size_t detail_peer_total(const struct ui_detail *d)
{
    return d->peer_total;
}

int64_t detail_peer_id(const struct ui_detail *d, size_t i)
{
    return i < d->peer_count ? d->peer_ids[i] : 0;
}

void detail_free(struct ui_detail *d)
{
    if (!d)
        return;
    for (int i = 0; i < d->line_count; i++)
        free(d->lines[i].text);
    free(d->lines);
    free(d->rows);
    session_free(d->session);
    free(d);
}

const struct mt_session *detail_session(const struct ui_detail *d) { return d->session; }
int detail_line_count(const struct ui_detail *d) { return d->line_count; }
int detail_row_count(const struct ui_detail *d) { return d->row_count; }
int detail_top(const struct ui_detail *d) { return d->top; }

const struct detail_line *detail_line(const struct ui_detail *d, int index)
{
    return index >= 0 && index < d->line_count ? &d->lines[index] : NULL;
}

const struct detail_row *detail_row(const struct ui_detail *d, int index)
{
    return index >= 0 && index < d->row_count ? &d->rows[index] : NULL;
}

static bool add_row(struct ui_detail *d, int line, size_t start, size_t len, bool cont)
{
    if (d->row_count == d->row_cap) {
        int cap = d->row_cap ? d->row_cap * 2 : 128;
        struct detail_row *rows = realloc(d->rows, (size_t)cap * sizeof *rows);
        if (!rows)
            return false;
        d->rows = rows;
        d->row_cap = cap;
    }
    d->rows[d->row_count++] = (struct detail_row){ line, start, len, cont };
    return true;
}

void detail_layout(struct ui_detail *d, int width, bool utf8)
{
    int top_line = d->top < d->row_count ? d->rows[d->top].line : 0;
    d->row_count = 0;
    if (width < 20)
        width = 20;
    for (int i = 0; i < d->line_count; i++) {
        const char *text = d->lines[i].text;
        size_t len = strlen(text), start = 0;
        bool cont = false;
        do {
            int room = cont ? width - d->lines[i].indent : width;
            size_t n = safe_cut(text + start, len - start, room, utf8);
            if (n == 0 && start < len)
                n = 1;   /* a character wider than the room: never loop forever */
            /* Break after a space when one is in the second half of the row. */
            if (start + n < len && text[start + n] != ' ') {
                size_t space = n;
                while (space > n / 2 && text[start + space - 1] != ' ')
                    space--;
                if (space > n / 2)
                    n = space;
            }
            if (!add_row(d, i, start, n, cont))
                return;
            start += n;
            cont = true;
        } while (start < len);
    }
    d->top = 0;
    for (int r = 0; r < d->row_count; r++)
        if (d->rows[r].line == top_line && !d->rows[r].continuation) {
            d->top = r;
            break;
        }
}

int detail_deciding_row(const struct ui_detail *d)
{
    for (int r = 0; r < d->row_count; r++)
        if (d->lines[d->rows[r].line].deciding)
            return r;
    return -1;
}

void detail_scroll_to(struct ui_detail *d, int top, int page)
{
    if (top > d->row_count - page)
        top = d->row_count - page;
    d->top = top < 0 ? 0 : top;
}

/* The row holding byte `offset` of line `line`. */
static int row_of(const struct ui_detail *d, int line, size_t offset)
{
    int found = -1;
    for (int r = 0; r < d->row_count; r++) {
        if (d->rows[r].line != line)
            continue;
        if (found < 0 || d->rows[r].start <= offset)
            found = r;
    }
    return found;
}

int detail_find(const struct ui_detail *d, const char *needle, int from, int dir)
{
    if (!needle || !needle[0] || d->row_count == 0)
        return -1;
    dir = dir < 0 ? -1 : 1;
    if (from < 0)
        from = dir > 0 ? -1 : d->row_count;
    for (int step = 1; step <= d->row_count; step++) {
        int r = ((from + dir * step) % d->row_count + d->row_count) % d->row_count;
        const struct detail_row *row = &d->rows[r];
        const char *text = d->lines[row->line].text;
        /* A match belongs to the row where it starts. */
        size_t len = strlen(text);
        long at = text_find_ci(text + row->start, len - row->start, needle);
        if (at >= 0 && row_of(d, row->line, row->start + (size_t)at) == r)
            return r;
    }
    return -1;
}

int detail_message_in_view(const struct ui_detail *d, int page)
{
    /* Scrolled: the first block on screen, the one brought to the top. */
    for (int r = d->top; d->top > 0 && r < d->row_count && r < d->top + (page > 0 ? page : 1);
         r++)
        if (d->lines[d->rows[r].line].message >= 0)
            return d->lines[d->rows[r].line].message;
    const struct mt_session *s = d->session;
    for (size_t m = 0; m < s->message_count; m++)
        if (s->messages[m].status == s->status)
            return (int)m;
    return s->message_count > 0 ? 0 : -1;
}
