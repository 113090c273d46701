/* headers.c — reading the wanted fields of a message's header section. */
#include "protocols/headers.h"

#include "protocols/encoded_words.h"
#include "protocols/text.h"

#include <string.h>

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

void header_scan_init(struct header_scan *scan)
{
    memset(scan, 0, sizeof *scan);
    scan->field = -1;
}

static void value_append(struct header_scan *scan, const char *s, size_t len)
{
    size_t room = sizeof scan->value - scan->value_len;
    if (len > room) {
        len = room;
        scan->value_cut = true;
    }
    memcpy(scan->value + scan->value_len, s, len);
    scan->value_len += len;
}

void header_scan_flush(struct header_scan *scan, const struct header_field *fields,
                       size_t count, struct mt_message *message)
{
    if (scan->field < 0 || (size_t)scan->field >= count)
        return;
    const struct header_field *f = &fields[scan->field];
    /* Decoded text is mostly shorter than its encoded-words; it can be longer (base64 of a
     * one-byte charset whose letters take three bytes in UTF-8), is cut between characters
     * where it does not fit, and is cut to the field's smaller cap below anyway. */
    char decoded[2 * sizeof scan->value];
    const char *value = scan->value;
    size_t value_len = scan->value_len;
    if (f->encoded_words) {
        value_len = encoded_words_decode(decoded, sizeof decoded, value, value_len);
        value = decoded;
    }
    if (message) {
        char clean[MT_STR_MAX];
        size_t max = f->max < sizeof clean ? f->max : sizeof clean;
        size_t len = text_copy_trimmed(clean, max, value, value_len);
        if (scan->value_cut)
            len = text_mark_cut(clean, max, len);
        session_text_copy((char **)((char *)message + f->offset), max, clean, len);
    }
    if (f->offset == offsetof(struct mt_message, subject)) {
        const char *v = value;
        size_t n = value_len;
        while (n > 0 && is_blank(*v))
            v++, n--;
        while (n > 0 && is_blank(v[n - 1]))
            n--;
        n = text_utf8_cut(v, n, sizeof scan->subject);
        memcpy(scan->subject, v, n);
        scan->subject_len = n;
    }
    scan->fields_seen |= 1u << scan->field;
    scan->field = -1;
    scan->value_len = 0;
    scan->value_cut = false;
}

bool header_scan_line(struct header_scan *scan, const struct header_field *fields,
                      size_t count, struct mt_message *message, const char *line, size_t len)
{
    if (len > 0 && is_blank(line[0])) {   /* folded continuation */
        if (scan->field >= 0) {
            while (len > 0 && is_blank(line[0]))
                line++, len--;
            value_append(scan, " ", 1);
            value_append(scan, line, len);
        }
        return true;
    }
    header_scan_flush(scan, fields, count, message);
    const char *colon = memchr(line, ':', len);
    if (!colon)
        return false;
    size_t name_len = (size_t)(colon - line);
    while (name_len > 0 && is_blank(line[name_len - 1]))
        name_len--;
    for (size_t i = 0; i < count; i++) {
        if (!(scan->fields_seen & (1u << i)) && strlen(fields[i].name) == name_len &&
            text_starts_with_ci(line, name_len, fields[i].name)) {
            scan->field = (int)i;
            value_append(scan, colon + 1, len - (size_t)(colon + 1 - line));
            break;
        }
    }
    return true;
}
