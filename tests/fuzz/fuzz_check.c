/* fuzz_check.c — session invariants and the password rule for the fuzz targets. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE   /* memmem */
#endif
#include "fuzz_check.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fuzz_fail(const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    fputs("fuzz invariant: ", stderr);
    vfprintf(stderr, fmt, args);
    fputc('\n', stderr);
    va_end(args);
    abort();
}

bool fuzz_next_chunk(const uint8_t *data, size_t size, size_t *pos, struct fuzz_chunk *chunk)
{
    size_t p = *pos;
    if (p >= size)
        return false;
    uint8_t h = data[p++];
    size_t len;
    if (h & 2) {
        if (size - p < 2)
            return false;
        len = (size_t)data[p] << 8 | data[p + 1];
        p += 2;
    } else {
        if (size - p < 1)
            return false;
        len = data[p++];
    }
    if (len > size - p)
        len = size - p;
    chunk->side = (h & 1) ? MT_SERVER : MT_CLIENT;
    chunk->bytes = data + p;
    chunk->len = len;
    chunk->delta_us = (int64_t)(h >> 2) * 1000;
    *pos = p + len;
    return true;
}

/* Length of the valid UTF-8 sequence at s (the rules of text_sanitize: no overlong
 * forms, surrogates or C1 controls), 0 when invalid. */
static size_t utf8_length(const unsigned char *s, size_t avail)
{
    unsigned char b = s[0];
    if (b < 0x80)
        return 1;
    size_t need;
    unsigned cp;
    if (b >= 0xc2 && b <= 0xdf) { need = 2; cp = b & 0x1f; }
    else if (b >= 0xe0 && b <= 0xef) { need = 3; cp = b & 0x0f; }
    else if (b >= 0xf0 && b <= 0xf4) { need = 4; cp = b & 0x07; }
    else return 0;
    if (avail < need)
        return 0;
    for (size_t i = 1; i < need; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((need == 3 && cp < 0x800) || (need == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    if ((cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp <= 0x9f))
        return 0;
    return need;
}

/* Sanitized text: no C0 control other than those in `allowed`, no DEL, valid UTF-8. */
static void check_text(const char *what, const char *text, size_t len, const char *allowed)
{
    const unsigned char *s = (const unsigned char *)text;
    for (size_t i = 0; i < len;) {
        if (s[i] == 0)
            fuzz_fail("%s: NUL at %zu of %zu", what, i, len);
        if ((s[i] < 0x20 && !strchr(allowed, s[i])) || s[i] == 0x7f)
            fuzz_fail("%s: control byte 0x%02x at %zu", what, s[i], i);
        size_t n = utf8_length(s + i, len - i);
        if (n == 0)
            fuzz_fail("%s: invalid UTF-8 (0x%02x) at %zu", what, s[i], i);
        i += n;
    }
}

static void check_field(const char *what, const char *array, size_t cap)
{
    const char *nul = memchr(array, '\0', cap);
    if (!nul)
        fuzz_fail("%s: not NUL-terminated within its %zu bytes", what, cap);
    check_text(what, array, (size_t)(nul - array), "");
}

#define CHECK_FIELD(name, array) check_field(name, array, sizeof(array))

/* A heap text member (session.h): NULL, or a non-empty string shorter than its cap. */
static void check_str(const char *what, const char *text, size_t max)
{
    if (!text)
        return;
    size_t len = strlen(text);
    if (len == 0)
        fuzz_fail("%s: an empty string kept instead of NULL", what);
    if (len >= max)
        fuzz_fail("%s: %zu bytes, over its cap of %zu with the NUL", what, len, max);
    check_text(what, text, len, "");
}

void fuzz_check_string(const char *what, const char *array, size_t cap)
{
    check_field(what, array, cap);
}

static void check_transcript(const struct mt_session *s)
{
    if (s->transcript_len > MT_TRANSCRIPT_MAX_BYTES)
        fuzz_fail("transcript: %zu bytes, over the cap", s->transcript_len);
    if (!s->transcript) {
        if (s->transcript_len != 0 || s->transcript_lines != 0)
            fuzz_fail("transcript: NULL with length %zu, %d lines", s->transcript_len,
                      s->transcript_lines);
        return;
    }
    if (s->transcript_len >= s->transcript_cap)
        fuzz_fail("transcript: length %zu, capacity %zu", s->transcript_len, s->transcript_cap);
    if (s->transcript[s->transcript_len] != '\0')
        fuzz_fail("transcript: not NUL-terminated at its length");
    check_text("transcript", s->transcript, s->transcript_len, "\n");
    int lines = 0;
    const char *p = s->transcript, *end = s->transcript + s->transcript_len;
    while (p < end) {
        const char *lf = memchr(p, '\n', (size_t)(end - p));
        if (!lf)
            fuzz_fail("transcript: last line without LF");
        /* "USEC DIR TEXT": digits (maybe negative), space, C|S|I, space. */
        const char *q = p;
        if (q < lf && *q == '-')
            q++;
        const char *digits = q;
        while (q < lf && *q >= '0' && *q <= '9')
            q++;
        if (q == digits || lf - q < 3 || q[0] != ' ' || !strchr("CSI", q[1]) || q[2] != ' ')
            fuzz_fail("transcript: line %d is not \"USEC DIR TEXT\": %.60s", lines, p);
        if (lf - p > MT_TRANSCRIPT_LINE_MAX + 40)
            fuzz_fail("transcript: line %d is %td bytes long", lines, lf - p);
        lines++;
        p = lf + 1;
    }
    if (lines != s->transcript_lines)
        fuzz_fail("transcript: %d lines, transcript_lines says %d", lines, s->transcript_lines);
}

void fuzz_check_session(const struct mt_session *s, enum mt_proto proto)
{
    if (s->proto != proto)
        fuzz_fail("proto changed to %d", (int)s->proto);
    if ((int)s->status < 0 || s->status >= MT_STATUS_COUNT)
        fuzz_fail("status %d out of range", (int)s->status);
    if ((int)s->end < MT_END_CLOSE || s->end > MT_END_UNANSWERED)
        fuzz_fail("end %d out of range", (int)s->end);
    if ((int)s->direction != MT_INBOUND && (int)s->direction != MT_OUTBOUND)
        fuzz_fail("direction %d out of range", (int)s->direction);
    CHECK_FIELD("client_ip", s->client_ip);
    CHECK_FIELD("server_ip", s->server_ip);
    CHECK_FIELD("banner", s->banner);
    CHECK_FIELD("server_name", s->server_name);
    CHECK_FIELD("helo", s->helo);
    CHECK_FIELD("user", s->user);
    CHECK_FIELD("status_line", s->status_line);
    CHECK_FIELD("stats.mailboxes", s->stats.mailboxes);
    const struct mt_tls_info *tls = session_tls(s);
    CHECK_FIELD("tls_info.version", tls->version);
    CHECK_FIELD("tls_info.client_versions", tls->client_versions);
    CHECK_FIELD("tls_info.cipher", tls->cipher);
    CHECK_FIELD("tls_info.sni", tls->sni);
    CHECK_FIELD("tls_info.subject", tls->subject);
    CHECK_FIELD("tls_info.issuer", tls->issuer);
    CHECK_FIELD("tls_info.sans", tls->sans);
    CHECK_FIELD("tls_info.alert", tls->alert);
    CHECK_FIELD("tls_info.outcome", tls->outcome);
    if (s->tls_info && !tls->outcome[0])
        fuzz_fail("tls_info allocated without an outcome");
    const struct mt_dns_info *dns = session_dns(s);
    CHECK_FIELD("dns.qname", dns->qname);
    CHECK_FIELD("dns.qtype", dns->qtype);
    CHECK_FIELD("dns.rcode", dns->rcode);
    CHECK_FIELD("dns.answers", dns->answers);
    if ((s->proto == MT_PROTO_DNS) != (s->dns != NULL))
        fuzz_fail("dns info %s on a %s row", s->dns ? "allocated" : "missing",
                  proto_name(s->proto));
    if (s->auth_attempts < 0 || s->auth_failures < 0)
        fuzz_fail("auth counters negative: %d %d", s->auth_attempts, s->auth_failures);

    check_transcript(s);
    if (s->status_transcript_line < -1 || s->status_transcript_line >= s->transcript_lines)
        fuzz_fail("status_transcript_line %d, transcript has %d lines",
                  s->status_transcript_line, s->transcript_lines);

    if (s->recipient_count > s->recipient_cap || s->recipient_count > MT_RECIPIENTS_MAX)
        fuzz_fail("recipients: count %zu, cap %zu", s->recipient_count, s->recipient_cap);
    if (s->message_count > s->message_cap || s->message_count > MT_MESSAGES_MAX)
        fuzz_fail("messages: count %zu, cap %zu", s->message_count, s->message_cap);
    if ((s->recipient_count && !s->recipients) || (s->message_count && !s->messages))
        fuzz_fail("recipients/messages counted but not allocated");
    for (size_t i = 0; i < s->recipient_count; i++) {
        const struct mt_recipient *r = &s->recipients[i];
        check_str("recipient.addr", r->addr, MT_RCPT_ADDR_MAX);
        check_str("recipient.reply", r->reply, MT_RCPT_REPLY_MAX);
        if (r->message < -1 || (r->message >= 0 && (size_t)r->message >= s->message_count))
            fuzz_fail("recipient %zu: message index %d of %zu", i, r->message, s->message_count);
    }
    for (size_t i = 0; i < s->message_count; i++) {
        const struct mt_message *m = &s->messages[i];
        check_str("message.mail_from", m->mail_from, MT_MSG_MAIL_FROM_MAX);
        check_str("message.header_from", m->header_from, MT_MSG_HEADER_FROM_MAX);
        check_str("message.header_to", m->header_to, MT_MSG_HEADER_TO_MAX);
        check_str("message.subject", m->subject, MT_MSG_SUBJECT_MAX);
        check_str("message.date", m->date, MT_MSG_DATE_MAX);
        check_str("message.message_id", m->message_id, MT_MSG_MESSAGE_ID_MAX);
        check_str("message.reply", m->reply, MT_MSG_REPLY_MAX);
        if ((int)m->status < 0 || m->status >= MT_STATUS_COUNT)
            fuzz_fail("message %zu: status %d out of range", i, (int)m->status);
    }
}

/* ---- the password rule ---------------------------------------------------------------- */

static bool contains(const uint8_t *hay, size_t len, const char *needle)
{
    return memmem(hay, len, needle, strlen(needle)) != NULL;
}

static bool contains_ci(const uint8_t *hay, size_t len, const char *upper)
{
    size_t nl = strlen(upper);
    for (size_t i = 0; i + nl <= len; i++) {
        size_t k = 0;
        while (k < nl && (hay[i + k] & 0xdf) == (uint8_t)upper[k])
            k++;
        if (k == nl)
            return true;
    }
    return false;
}

static bool field_has_secret(const char *array, size_t cap)
{
    return memmem(array, strnlen(array, cap), FUZZ_SECRET, strlen(FUZZ_SECRET)) != NULL;
}

#define FIELD_SECRET(array) field_has_secret(array, sizeof(array))
#define STR_SECRET(text) field_has_secret(mt_str(text), MT_STR_MAX)

void fuzz_check_no_secret(const struct mt_session *s)
{
    const char *where = NULL;
    if (s->transcript && contains((const uint8_t *)s->transcript, s->transcript_len, FUZZ_SECRET))
        where = "transcript";
    else if (FIELD_SECRET(s->banner) || FIELD_SECRET(s->server_name) || FIELD_SECRET(s->helo))
        where = "banner/server_name/helo";
    else if (FIELD_SECRET(s->user))
        where = "user";
    else if (FIELD_SECRET(s->status_line))
        where = "status_line";
    else if (FIELD_SECRET(s->stats.mailboxes))
        where = "stats.mailboxes";
    for (size_t i = 0; !where && i < s->recipient_count; i++)
        if (STR_SECRET(s->recipients[i].addr) || STR_SECRET(s->recipients[i].reply))
            where = "a recipient";
    for (size_t i = 0; !where && i < s->message_count; i++) {
        const struct mt_message *m = &s->messages[i];
        if (STR_SECRET(m->mail_from) || STR_SECRET(m->header_from) ||
            STR_SECRET(m->header_to) || STR_SECRET(m->subject) || STR_SECRET(m->date) ||
            STR_SECRET(m->message_id) || STR_SECRET(m->reply))
            where = "a message";
    }
    if (where)
        fuzz_fail("the password " FUZZ_SECRET " sent only in credential lines shows in %s", where);
}

static bool is_atom_byte(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_' || c == '.' || c == '@';
}

/* Matches `word` + ' ' case-insensitively at line[*pos]; advances past it. */
static bool take_verb(const uint8_t *line, size_t len, size_t *pos, const char *word)
{
    size_t wl = strlen(word);
    if (len - *pos < wl + 1)
        return false;
    for (size_t i = 0; i < wl; i++) {
        uint8_t c = line[*pos + i];
        if (c >= 'a' && c <= 'z')
            c = (uint8_t)(c - 32);
        if (c != (uint8_t)word[i])
            return false;
    }
    if (line[*pos + wl] != ' ')
        return false;
    *pos += wl + 1;
    return true;
}

/* A non-empty atom followed by ' '; advances past both. */
static bool take_atom(const uint8_t *line, size_t len, size_t *pos, bool tag)
{
    size_t p = *pos;
    while (p < len && (tag ? (is_atom_byte(line[p]) && line[p] != '@' && line[p] != '-' &&
                              line[p] != '_')
                           : is_atom_byte(line[p])))
        p++;
    if (p == *pos || p >= len || line[p] != ' ')
        return false;
    *pos = p + 1;
    return true;
}

/* Does this client line carry the marker only in its credential part? */
static bool credential_line(enum mt_proto proto, const uint8_t *line, size_t len)
{
    size_t pos = 0;
    bool ok = false;
    switch (proto) {
    case MT_PROTO_SMTP:
        ok = take_verb(line, len, &pos, "AUTH") && take_atom(line, len, &pos, false);
        break;
    case MT_PROTO_POP3:
        if (take_verb(line, len, &pos, "PASS")) {
            ok = true;
            break;
        }
        pos = 0;
        ok = take_verb(line, len, &pos, "AUTH") && take_atom(line, len, &pos, false);
        break;
    case MT_PROTO_IMAP:
        if (!take_atom(line, len, &pos, true))
            return false;
        size_t after_tag = pos;
        ok = take_verb(line, len, &pos, "LOGIN") && take_atom(line, len, &pos, false);
        if (!ok) {
            pos = after_tag;
            ok = take_verb(line, len, &pos, "AUTHENTICATE") && take_atom(line, len, &pos, false);
        }
        break;
    default:
        return false;
    }
    /* The words before the marker must not hold it themselves. */
    return ok && !contains(line, pos, FUZZ_SECRET) && contains(line + pos, len - pos, FUZZ_SECRET);
}

bool fuzz_secret_expected_hidden(enum mt_proto proto, const uint8_t *client, size_t client_len,
                                 const uint8_t *server, size_t server_len)
{
    if (!contains(client, client_len, FUZZ_SECRET) || contains(server, server_len, FUZZ_SECRET))
        return false;
    /* Counted blocks (BDAT chunks, IMAP literals) may end inside a line: then a line
     * that starts with AUTH or LOGIN on the wire is not a command. Leave them out. */
    if (proto == MT_PROTO_SMTP && contains_ci(client, client_len, "BDAT"))
        return false;
    if (proto == MT_PROTO_IMAP && memchr(client, '{', client_len))
        return false;
    size_t start = 0;
    while (start < client_len) {
        const uint8_t *lf = memchr(client + start, '\n', client_len - start);
        size_t end = lf ? (size_t)(lf - client) : client_len;
        const uint8_t *line = client + start;
        size_t len = end - start;
        if (contains(line, len, FUZZ_SECRET) && !credential_line(proto, line, len))
            return false;
        start = end + 1;
    }
    return true;
}

void fuzz_check_dns_row(const struct mt_session *row)
{
    switch (row->proto) {
    case MT_PROTO_DNS:
        if (row->status != MT_STATUS_RESOLVED && row->status != MT_STATUS_NO_DATA &&
            row->status != MT_STATUS_DNS_ERROR && row->status != MT_STATUS_TIMEOUT &&
            row->status != MT_STATUS_INCOMPLETE)   /* unanswered when the capture ended */
            fuzz_fail("dns row with status %d", (int)row->status);
        if (row->status == MT_STATUS_INCOMPLETE && row->end != MT_END_TIMEOUT)
            fuzz_fail("incomplete dns row that did not end unanswered (end %d)", (int)row->end);
        break;
    case MT_PROTO_SMTP:   /* a failed MX lookup's delivery; incomplete when the end cut it */
        if ((row->status != MT_STATUS_DNS_FAILED && row->status != MT_STATUS_INCOMPLETE) ||
            row->direction != MT_OUTBOUND)
            fuzz_fail("smtp row from dnswatch: status %d, direction %d", (int)row->status,
                      (int)row->direction);
        if (row->status == MT_STATUS_INCOMPLETE &&
            !strstr(row->status_line, "when the capture ended"))
            fuzz_fail("incomplete smtp row from dnswatch not cut by the end: %s",
                      row->status_line);
        break;
    default:
        fuzz_fail("dnswatch row of proto %d", (int)row->proto);
    }
    fuzz_check_session(row, row->proto);
}
