/* session.c — session record lifetime, transcript, recipients/messages, status names. */
#include "session.h"

#include "text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const status_names[MT_STATUS_COUNT] = {
    [MT_STATUS_UNKNOWN] = "unknown",
    [MT_STATUS_DELIVERED] = "delivered",
    [MT_STATUS_LOGIN_OK] = "login_ok",
    [MT_STATUS_NO_MAIL] = "no_mail",
    [MT_STATUS_ENCRYPTED] = "encrypted",
    [MT_STATUS_PARTIAL] = "partial",
    [MT_STATUS_INCOMPLETE] = "incomplete",
    [MT_STATUS_ABORTED] = "aborted",
    [MT_STATUS_RESET] = "reset",
    [MT_STATUS_INTERRUPTED] = "interrupted",
    [MT_STATUS_MAILBOX_FAILED] = "mailbox_failed",
    [MT_STATUS_TEMP_FAILED] = "temp_failed",
    [MT_STATUS_RCPT_REJECTED] = "rcpt_rejected",
    [MT_STATUS_RELAY_DENIED] = "relay_denied",
    [MT_STATUS_SENDER_REJECTED] = "sender_rejected",
    [MT_STATUS_TOO_BIG] = "too_big",
    [MT_STATUS_CONTENT_REJECTED] = "content_rejected",
    [MT_STATUS_AUTH_FAILED] = "auth_failed",
    [MT_STATUS_LOGIN_DISABLED] = "login_disabled",
    [MT_STATUS_SERVER_REJECTED] = "server_rejected",
    [MT_STATUS_NO_RESPONSE] = "no_response",
    [MT_STATUS_REFUSED] = "refused",
    [MT_STATUS_TLS_FAILED] = "tls_failed",
    [MT_STATUS_DNS_FAILED] = "dns_failed",
    [MT_STATUS_RESOLVED] = "resolved",
    [MT_STATUS_NO_DATA] = "no_data",
    [MT_STATUS_DNS_ERROR] = "dns_error",
    [MT_STATUS_TIMEOUT] = "timeout",
};

static const char *const proto_names[MT_PROTO_COUNT] = {
    [MT_PROTO_SMTP] = "smtp",
    [MT_PROTO_POP3] = "pop3",
    [MT_PROTO_IMAP] = "imap",
    [MT_PROTO_DNS] = "dns",
};

struct mt_session *session_new(enum mt_proto proto)
{
    struct mt_session *session = calloc(1, sizeof *session);
    if (!session)
        return NULL;
    session->proto = proto;
    session->status_transcript_line = -1;
    session->end = MT_END_EOF;
    session->reset_by = -1;
    session->closed_by = -1;
    return session;
}

static void recipient_free_text(struct mt_recipient *r)
{
    free(r->addr);
    free(r->reply);
}

static void message_free_text(struct mt_message *m)
{
    free(m->mail_from);
    free(m->header_from);
    free(m->header_to);
    free(m->subject);
    free(m->date);
    free(m->message_id);
    free(m->reply);
}

void session_free(struct mt_session *session)
{
    if (!session)
        return;
    for (size_t i = 0; i < session->recipient_count; i++)
        recipient_free_text(&session->recipients[i]);
    for (size_t i = 0; i < session->message_count; i++)
        message_free_text(&session->messages[i]);
    free(session->recipients);
    free(session->messages);
    free(session->tls_info);
    free(session->dns);
    free(session->transcript);
    free(session);
}

static const struct mt_tls_info no_tls;
static const struct mt_dns_info no_dns;

const struct mt_tls_info *session_tls(const struct mt_session *session)
{
    return session->tls_info ? session->tls_info : &no_tls;
}

const struct mt_dns_info *session_dns(const struct mt_session *session)
{
    return session->dns ? session->dns : &no_dns;
}

struct mt_tls_info *session_tls_alloc(struct mt_session *session)
{
    if (!session->tls_info)
        session->tls_info = calloc(1, sizeof *session->tls_info);
    return session->tls_info;
}

struct mt_dns_info *session_dns_alloc(struct mt_session *session)
{
    if (!session->dns)
        session->dns = calloc(1, sizeof *session->dns);
    return session->dns;
}

/* Room for `more` bytes plus the terminating NUL. */
static bool transcript_reserve(struct mt_session *session, size_t more)
{
    size_t need = session->transcript_len + more + 1;
    if (need > MT_TRANSCRIPT_MAX_BYTES)
        return false;
    if (need <= session->transcript_cap)
        return true;
    /* Grows by half (a doubled buffer is a quarter empty on average, for the life of the
     * connection), in 256-byte steps. */
    size_t cap = session->transcript_cap ? session->transcript_cap : 512;
    while (cap < need)
        cap += cap / 2;
    cap = (cap + 255) & ~(size_t)255;
    if (cap > MT_TRANSCRIPT_MAX_BYTES)
        cap = MT_TRANSCRIPT_MAX_BYTES;
    char *grown = realloc(session->transcript, cap);
    if (!grown)
        return false;
    session->transcript = grown;
    session->transcript_cap = cap;
    return true;
}

/* "USEC DIR " into out (40 bytes); its length. snprintf's cost showed in every line. */
static size_t transcript_prefix(char *out, int64_t ts_us, char dir)
{
    char digits[24];
    size_t n = 0, len = 0;
    uint64_t v = ts_us < 0 ? (uint64_t)0 - (uint64_t)ts_us : (uint64_t)ts_us;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    if (ts_us < 0)
        out[len++] = '-';
    while (n)
        out[len++] = digits[--n];
    out[len++] = ' ';
    out[len++] = dir;
    out[len++] = ' ';
    return len;
}

int session_transcript_add(struct mt_session *session, int64_t ts_us, char dir,
                           const char *text, size_t len)
{
    /* Sanitize into a little more room than a line may keep: whatever does not fit in
     * MT_TRANSCRIPT_LINE_MAX - 4 is cut and the line ends in "...", so a cut shows. */
    char clean[MT_TRANSCRIPT_LINE_MAX + 8];
    char prefix[40];
    size_t clean_len = text_sanitize(clean, sizeof clean, text, len);
    if (clean_len > MT_TRANSCRIPT_LINE_MAX - 4) {
        size_t keep = MT_TRANSCRIPT_LINE_MAX - 4;
        while (keep > 0 && ((unsigned char)clean[keep] & 0xc0) == 0x80)
            keep--;   /* do not split a UTF-8 character */
        memcpy(clean + keep, "...", 4);
        clean_len = keep + 3;
    }
    size_t prefix_len = transcript_prefix(prefix, ts_us, dir);
    size_t total = prefix_len + clean_len + 1;
    if (!transcript_reserve(session, total)) {
        session->transcript_dropped++;
        session->flags |= MT_FLAG_TRANSCRIPT_CAPPED;
        return -1;
    }
    char *out = session->transcript + session->transcript_len;
    memcpy(out, prefix, prefix_len);
    memcpy(out + prefix_len, clean, clean_len);
    out[prefix_len + clean_len] = '\n';
    session->transcript_len += total;
    session->transcript[session->transcript_len] = '\0';
    return session->transcript_lines++;
}

int session_transcript_addf(struct mt_session *session, int64_t ts_us, char dir,
                            const char *fmt, ...)
{
    char line[MT_TRANSCRIPT_LINE_MAX];
    va_list args;
    va_start(args, fmt);
    int n = vsnprintf(line, sizeof line, fmt, args);
    va_end(args);
    if (n < 0)
        return -1;
    size_t len = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    return session_transcript_add(session, ts_us, dir, line, len);
}

/* Grows an array of elements of `size` bytes to hold one more, up to `max`. */
static void *array_grow(void *items, size_t *count, size_t *cap, size_t size, size_t max)
{
    if (*count >= max)
        return NULL;
    if (*count == *cap) {
        /* One at a time while small (most sessions hold one message and a few recipients,
         * and every slot is kilobytes held for the life of the connection), doubling after. */
        size_t next = *cap < 8 ? *cap + 1 : *cap * 2;
        if (next > max)
            next = max;
        void *grown = realloc(items, next * size);
        if (!grown)
            return NULL;
        items = grown;
        *cap = next;
    }
    return items;
}

struct mt_recipient *session_add_recipient(struct mt_session *session)
{
    void *items = array_grow(session->recipients, &session->recipient_count,
                             &session->recipient_cap, sizeof *session->recipients,
                             MT_RECIPIENTS_MAX);
    if (!items) {
        session->recipients_dropped++;
        session->flags |= MT_FLAG_RECIPIENTS_CAPPED;
        return NULL;
    }
    session->recipients = items;
    struct mt_recipient *recipient = &session->recipients[session->recipient_count++];
    memset(recipient, 0, sizeof *recipient);
    recipient->message = -1;
    return recipient;
}

struct mt_message *session_add_message(struct mt_session *session)
{
    void *items = array_grow(session->messages, &session->message_count,
                             &session->message_cap, sizeof *session->messages,
                             MT_MESSAGES_MAX);
    if (!items) {
        session->messages_dropped++;
        session->flags |= MT_FLAG_MESSAGES_CAPPED;
        return NULL;
    }
    session->messages = items;
    struct mt_message *message = &session->messages[session->message_count++];
    memset(message, 0, sizeof *message);
    return message;
}

bool session_text_copy(char **field, size_t max, const char *text, size_t len)
{
    len = max ? text_utf8_cut(text, len, max - 1) : 0;
    char *copy = NULL;
    if (len > 0) {
        copy = malloc(len + 1);
        if (copy) {
            memcpy(copy, text, len);
            copy[len] = '\0';
        }
    }
    free(*field);
    *field = copy;
    return copy || len == 0;
}

bool session_text_set(char **field, size_t max, const char *raw, size_t len)
{
    char clean[MT_STR_MAX];
    size_t clean_len = text_sanitize(clean, max < sizeof clean ? max : sizeof clean, raw, len);
    return session_text_copy(field, max, clean, clean_len);
}

bool session_text_setf(char **field, size_t max, const char *fmt, ...)
{
    char text[MT_STR_MAX];
    size_t cap = max < sizeof text ? max : sizeof text;
    if (cap == 0)
        return session_text_copy(field, max, "", 0);
    va_list args;
    va_start(args, fmt);
    int n = vsnprintf(text, cap, fmt, args);
    va_end(args);
    size_t len = n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
    return session_text_copy(field, max, text, len);
}

void session_decide(struct mt_session *session, enum mt_status status,
                    const char *line, size_t len, int transcript_line)
{
    session->status = status;
    text_sanitize(session->status_line, sizeof session->status_line, line, len);
    session->status_transcript_line = transcript_line;
}

_Static_assert(MT_TEXT_MAX <= UINT16_MAX, "struct mt_line_buf counts in uint16_t");

void line_buf_set(struct mt_line_buf *b, const char *text, size_t len)
{
    if (len > MT_TEXT_MAX)
        len = MT_TEXT_MAX;
    if (b->cap == 0)
        b->text = NULL;   /* a borrowed view (cap 0) is never reallocated */
    if (len > b->cap) {
        size_t cap = (len + MT_LINE_BUF_ROUND - 1) / MT_LINE_BUF_ROUND * MT_LINE_BUF_ROUND;
        if (cap > MT_TEXT_MAX)
            cap = MT_TEXT_MAX;
        char *grown = realloc(b->text, cap);
        if (grown) {
            b->text = grown;
            b->cap = (uint16_t)cap;
        } else {
            len = b->cap;
        }
    }
    b->len = (uint16_t)len;
    if (len > 0)
        memcpy(b->text, text, len);
}

void line_buf_copy(struct mt_line_buf *to, const struct mt_line_buf *from)
{
    if (to != from)
        line_buf_set(to, from->text, from->len);
}

void line_buf_free(struct mt_line_buf *b)
{
    if (b->cap > 0)   /* else no buffer, or a borrowed view */
        free(b->text);
    *b = (struct mt_line_buf){ 0 };
}

bool session_status_is_inconclusive(const struct mt_session *session)
{
    switch (session->status) {
    case MT_STATUS_UNKNOWN:
    case MT_STATUS_NO_MAIL:
    case MT_STATUS_ABORTED:
    case MT_STATUS_RESET:
    case MT_STATUS_INTERRUPTED:   /* lost packets could be the reply it did not see */
    case MT_STATUS_NO_RESPONSE:
    case MT_STATUS_INCOMPLETE:
        return true;
    case MT_STATUS_TLS_FAILED:   /* an alert is a fact; a handshake cut short is not */
        return session_tls(session)->alert[0] == '\0';
    default:
        return false;
    }
}

void session_capture_lost(struct mt_session *session, int64_t ts_us, const char *why)
{
    if (session->flags & MT_FLAG_CAPTURE_GAP)
        return;   /* noted once */
    session->flags |= MT_FLAG_CAPTURE_GAP;
    char line[MT_TEXT_MAX];
    int len = snprintf(line, sizeof line, "[capture lost packets of this connection: %s; "
                       "what followed could not be decoded]", why);
    size_t n = len < 0 ? 0 : (size_t)len < sizeof line ? (size_t)len : sizeof line - 1;
    int index = session_transcript_add(session, ts_us, 'I', line, n);
    if (session_status_is_inconclusive(session))
        session_decide(session, MT_STATUS_INCOMPLETE, line, n, index);
}

const char *status_name(enum mt_status status)
{
    if ((int)status < 0 || status >= MT_STATUS_COUNT)
        return "unknown";
    return status_names[status];
}

enum mt_status status_from_name(const char *name)
{
    for (int i = 0; i < MT_STATUS_COUNT; i++)
        if (strcmp(status_names[i], name) == 0)
            return (enum mt_status)i;
    return MT_STATUS_UNKNOWN;
}

const char *proto_name(enum mt_proto proto)
{
    if ((int)proto < 0 || proto >= MT_PROTO_COUNT)
        return "unknown";
    return proto_names[proto];
}

int proto_from_name(const char *name)
{
    for (int i = 0; i < MT_PROTO_COUNT; i++)
        if (strcmp(proto_names[i], name) == 0)
            return i;
    return -1;
}

const char *end_name(enum mt_end end)
{
    switch (end) {
    case MT_END_CLOSE: return "close";
    case MT_END_RESET: return "reset";
    case MT_END_TIMEOUT: return "timeout";
    case MT_END_EVICTED: return "evicted";
    case MT_END_EOF: return "eof";
    case MT_END_REFUSED: return "refused";
    case MT_END_UNANSWERED: return "unanswered";
    }
    return "unknown";
}

enum mt_end end_from_name(const char *name)
{
    for (int end = MT_END_CLOSE; end <= MT_END_UNANSWERED; end++)
        if (strcmp(end_name((enum mt_end)end), name) == 0)
            return (enum mt_end)end;
    return MT_END_EOF;
}

const char *direction_name(enum mt_direction direction)
{
    return direction == MT_OUTBOUND ? "out" : "in";
}

const char *flag_name(unsigned bit)
{
    static const char *const names[] = {
        "line_truncated", "transcript_capped", "recipients_capped", "messages_capped",
        "protocol_error", "decrypted", "capture_gap", "cleartext_auth", "starttls_unused",
        "weak_tls", "cert_expired", "cert_name_mismatch", "overlap_conflict",
    };
    return bit < sizeof names / sizeof names[0] ? names[bit] : NULL;
}

const char *session_end_words(const struct mt_session *session)
{
    if (session->end != MT_END_RESET)
        return session->closed_by == MT_CLIENT ? "connection closed by the client"
               : session->closed_by == MT_SERVER ? "connection closed by the server"
                                                 : "connection closed";
    return session->reset_by == MT_CLIENT ? "connection reset by the client"
           : session->reset_by == MT_SERVER ? "connection reset by the server"
                                            : "connection reset";
}

bool session_goodbye_for_inactivity(const char *line, size_t len)
{
    /* Dovecot's and Courier's words; "Session expired" is Gmail's when the login's token
     * runs out, "Connection is closed. 13" Exchange's idle timeout */
    static const char *const idle[] = { "inactiv", "idle", "timeout", "timed out", "autologout",
                                        "expired", "connection is closed" };
    for (size_t i = 0; i < sizeof idle / sizeof idle[0]; i++)
        if (text_find_ci(line, len, idle[i]) >= 0)
            return true;
    return false;
}

/* Where a silence from since_us was seen to end: after a jump between files, where the
 * earlier file did; else at the end of the input. */
static int64_t silence_seen_until(const struct mt_session *session, int64_t since_us)
{
    return session->input_gap_us >= since_us ? session->input_gap_us : session->input_end_us;
}

int64_t session_end_at_silence(struct mt_session *session, int64_t since_us)
{
    int64_t until = silence_seen_until(session, since_us);
    if (until > session->end_us)
        session->end_us = until;
    return until;
}

const char *session_silence_end_words(const struct mt_session *session)
{
    return session->end == MT_END_TIMEOUT ? "when the idle connection was let go"
                                          : "when the capture ended";
}

void session_after_last_bytes(char *out, size_t cap, const struct mt_session *session,
                              int64_t last_us)
{
    long long after_s = (session->input_end_us - last_us) / 1000000;
    if (cap > 0)
        out[0] = '\0';
    if (after_s > 0)
        snprintf(out, cap, ", %lld s after the last bytes", after_s);
}

int64_t session_silent_at_end_s(const struct mt_session *session, int64_t since_us)
{
    int64_t seen_until = silence_seen_until(session, since_us);
    if ((session->end != MT_END_EOF && session->end != MT_END_TIMEOUT) ||
        session->input_end_us <= 0 || since_us <= 0 ||
        seen_until - since_us < MT_REPLY_WAIT_US)
        return 0;
    return (seen_until - since_us) / 1000000;
}

bool status_is_failure(enum mt_status status)
{
    switch (status) {
    case MT_STATUS_UNKNOWN:
    case MT_STATUS_DELIVERED:
    case MT_STATUS_LOGIN_OK:
    case MT_STATUS_NO_MAIL:
    case MT_STATUS_ENCRYPTED:
    case MT_STATUS_INCOMPLETE:
    case MT_STATUS_RESOLVED:
    case MT_STATUS_NO_DATA:
    case MT_STATUS_COUNT:
        return false;
    default:
        return true;
    }
}

enum mt_status status_worse(enum mt_status a, enum mt_status b)
{
    return a > b ? a : b;
}
