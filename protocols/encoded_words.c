/* encoded_words.c — RFC 2047 encoded-words to UTF-8 (see encoded_words.h). Charsets other
 * than UTF-8 and US-ASCII go through iconv, whose converters ship with the C library. */
#include "protocols/encoded_words.h"

#include "protocols/text.h"

#include <iconv.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

/* A word's encoded text longer than this is not decoded (RFC 2047 caps a whole word at 75
 * characters; the fields we keep are 512 bytes). */
#define WORD_TEXT_MAX 1024
/* UTF-8 needs at most 3 bytes for a character any charset encodes in one byte, and at most
 * 4 for one it encodes in two or more. */
#define CONVERTED_MAX (4 * WORD_TEXT_MAX)

struct encoded_word {
    char charset[ENCODED_WORD_CHARSET_MAX + 1];
    char encoding;              /* 'B' or 'Q' */
    const char *text;           /* the encoded text, between "?B?" and "?=" */
    size_t text_len;
    size_t size;                /* the whole word, "=?" to "?=" */
};

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* "=?charset?E?text?=" at the start of in[0..len): true with *w filled in. */
static bool parse_word(const char *in, size_t len, struct encoded_word *w)
{
    size_t i = 2, n = 0;
    if (len < 8 || in[0] != '=' || in[1] != '?')
        return false;
    for (; i < len && in[i] != '?'; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c <= ' ' || c >= 0x7f || n == ENCODED_WORD_CHARSET_MAX)
            return false;
        w->charset[n++] = (char)c;
    }
    w->charset[n] = '\0';
    char *language = strchr(w->charset, '*');   /* RFC 2231: "utf-8*en" */
    if (language)
        *language = '\0';
    if (!w->charset[0] || i + 3 >= len || in[i + 2] != '?')
        return false;
    w->encoding = (char)(in[i + 1] & ~0x20);   /* ASCII upper case */
    if (w->encoding != 'B' && w->encoding != 'Q')
        return false;
    size_t start = i + 3, end = start;
    for (; end + 1 < len && !(in[end] == '?' && in[end + 1] == '='); end++) {
        unsigned char c = (unsigned char)in[end];
        if (c <= ' ' || c >= 0x7f || end - start >= WORD_TEXT_MAX)
            return false;
    }
    if (end + 1 >= len)
        return false;
    w->text = in + start;
    w->text_len = end - start;
    w->size = end + 2;
    return true;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c & ~0x20);
    return c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* The word's bytes in its charset into raw (WORD_TEXT_MAX); -1 if the text is malformed. */
static long word_bytes(const struct encoded_word *w, unsigned char *raw)
{
    if (w->encoding == 'B')
        return text_base64_decode(raw, WORD_TEXT_MAX, w->text, w->text_len);
    size_t n = 0;
    for (size_t i = 0; i < w->text_len; i++) {
        char c = w->text[i];
        if (c == '=') {
            int high = i + 2 < w->text_len ? hex_value(w->text[i + 1]) : -1;
            int low = high >= 0 ? hex_value(w->text[i + 2]) : -1;
            if (low < 0)
                return -1;
            raw[n++] = (unsigned char)(high << 4 | low);
            i += 2;
        } else {
            raw[n++] = c == '_' ? ' ' : (unsigned char)c;
        }
    }
    return (long)n;
}

/* The output is full: a last character still waiting for its continuation bytes goes.
 * An encoded-word's last byte may begin a character the raw text after it continues
 * (both 8-bit): cut between the two pieces, the character would be split. */
static void drop_unfinished_character(const char *out, size_t *n)
{
    size_t start = *n;
    while (start > 0 && ((unsigned char)out[start - 1] & 0xc0) == 0x80)
        start--;
    if (start == 0)
        return;
    unsigned char lead = (unsigned char)out[start - 1];
    size_t need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
    if (*n - (start - 1) < need)
        *n = start - 1;
}

/* Appends src[0..len) to out, as much as fits before the NUL, cut between characters.
 * False when it did not all fit: the output is full. */
static bool append(char *out, size_t cap, size_t *n, const char *src, size_t len)
{
    size_t room = cap - 1 - *n, fits = len > room ? text_utf8_cut(src, len, room) : len;
    memcpy(out + *n, src, fits);
    *n += fits;
    if (fits < len)
        drop_unfinished_character(out, n);
    return fits == len;
}

/* The word's text in UTF-8 into converted (CONVERTED_MAX); -1 when the charset is unknown
 * or the bytes are not valid in it. */
static long word_utf8(const struct encoded_word *w, const unsigned char *raw, size_t raw_len,
                      char *converted)
{
    if (strcasecmp(w->charset, "utf-8") == 0 || strcasecmp(w->charset, "us-ascii") == 0) {
        memcpy(converted, raw, raw_len);   /* invalid UTF-8 is escaped by the sanitizer */
        return (long)raw_len;
    }
    iconv_t cd = iconv_open("UTF-8", w->charset);
    if (cd == (iconv_t)-1)
        return -1;
    char *in = (char *)raw, *out = converted;
    size_t in_left = raw_len, out_left = CONVERTED_MAX;
    size_t done = iconv(cd, &in, &in_left, &out, &out_left);
    if (done != (size_t)-1)   /* back to the initial shift state (ISO-2022-JP) */
        done = iconv(cd, NULL, NULL, &out, &out_left);
    iconv_close(cd);
    return done == (size_t)-1 ? -1 : (long)(CONVERTED_MAX - out_left);
}

/* Decodes the word at in[0..len) onto out: false (nothing written) when there is none or it
 * cannot be decoded, so that the caller copies it as it is. *size: its length in in;
 * *full: its text did not all fit. */
static bool decode_word(const char *in, size_t len, char *out, size_t cap, size_t *n,
                        size_t *size, bool *full)
{
    struct encoded_word w;
    unsigned char raw[WORD_TEXT_MAX];
    char converted[CONVERTED_MAX];
    if (!parse_word(in, len, &w))
        return false;
    long raw_len = word_bytes(&w, raw);
    long utf8_len = raw_len < 0 ? -1 : word_utf8(&w, raw, (size_t)raw_len, converted);
    if (utf8_len < 0)
        return false;
    *full = !append(out, cap, n, converted, (size_t)utf8_len);
    *size = w.size;
    return true;
}

size_t encoded_words_decode(char *out, size_t cap, const char *in, size_t len)
{
    size_t n = 0, i = 0, size;
    bool after_word = false, full = false;
    if (cap == 0)
        return 0;
    while (i < len && !full) {
        if (after_word && is_blank(in[i])) {
            size_t next = i;
            while (next < len && is_blank(in[next]))
                next++;
            if (decode_word(in + next, len - next, out, cap, &n, &size, &full)) {
                i = next + size;   /* blanks between two encoded-words are not text */
                continue;
            }
        }
        if (decode_word(in + i, len - i, out, cap, &n, &size, &full)) {
            i += size;
            after_word = true;
            continue;
        }
        /* Plain text up to the next place a word could start (or a blank before one). */
        size_t end = i + 1;
        while (end < len && in[end] != '=' && !is_blank(in[end]))
            end++;
        full = !append(out, cap, &n, in + i, end - i);
        i = end;
        after_word = false;
    }
    out[n] = '\0';
    return n;
}
