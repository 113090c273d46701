/* safetext.c — the last line of defence before the terminal. Decoders already escape what
 * they store, but a database can be written by anything (an older version, a hand-edited
 * row), so nothing reaches ncurses without passing through here. */
#ifndef _XOPEN_SOURCE
#define _XOPEN_SOURCE 700
#endif
#include "safetext.h"

#include "protocols/text.h"

#include <stdint.h>
#include <string.h>
#include <wchar.h>

/* One character of input: its bytes, and what it becomes on screen. */
struct glyph {
    size_t bytes;    /* consumed from the input */
    bool replace;    /* print '?' instead */
    int width;       /* columns of what is printed */
};

static struct glyph next_glyph(const char *s, size_t len, bool utf8, bool at_start)
{
    const unsigned char *u = (const unsigned char *)s;
    struct glyph g = { 1, false, 1 };
    uint32_t cp;
    if (u[0] < 0x80) {
        g.replace = u[0] < 0x20 || u[0] == 0x7f;
        return g;
    }
    size_t n = text_utf8_decode(u, len, &cp);
    if (n == 0) {            /* a stray byte, raw C1 included: one '?' per byte */
        g.replace = true;
        return g;
    }
    g.bytes = n;
    if (!utf8 || text_is_unsafe_char(cp)) {   /* a C1 or bidi control: multi-byte here */
        g.replace = true;
        return g;
    }
    int w = wcwidth((wchar_t)cp);
    /* A combining mark needs a base character to sit on. */
    if (w < 0 || (w == 0 && at_start))
        g.replace = true;
    else
        g.width = w;
    return g;
}

int safe_fit(char *out, size_t cap, const char *s, size_t len, int cols, bool utf8,
             bool ellipsis)
{
    const char *mark = utf8 ? "\xe2\x80\xa6" : "~";
    size_t mark_len = strlen(mark), o = 0, i = 0;
    int used = 0;
    if (cap == 0)
        return 0;
    if (!s)
        len = 0;
    if (cols < 0)
        cols = 0;
    bool cut = safe_width(s, len, utf8) > cols;
    int room = cut && ellipsis && cols > 0 ? cols - 1 : cols;
    size_t reserve = cut && ellipsis ? mark_len : 0;
    while (i < len) {
        struct glyph g = next_glyph(s + i, len - i, utf8, i == 0);
        size_t out_bytes = g.replace ? 1 : g.bytes;
        if (used + g.width > room || o + out_bytes + reserve + 1 > cap)
            break;
        if (g.replace)
            out[o] = '?';
        else
            memcpy(out + o, s + i, g.bytes);
        o += out_bytes;
        used += g.width;
        i += g.bytes;
    }
    if (cut && ellipsis && cols > 0 && o + mark_len < cap) {
        memcpy(out + o, mark, mark_len);
        o += mark_len;
        used++;
    }
    out[o] = '\0';
    return used;
}

int safe_width(const char *s, size_t len, bool utf8)
{
    int width = 0;
    for (size_t i = 0; s && i < len;) {
        struct glyph g = next_glyph(s + i, len - i, utf8, i == 0);
        width += g.width;
        i += g.bytes;
    }
    return width;
}

size_t safe_cut(const char *s, size_t len, int cols, bool utf8)
{
    int used = 0;
    size_t i = 0;
    while (s && i < len) {
        struct glyph g = next_glyph(s + i, len - i, utf8, i == 0);
        if (used + g.width > cols)
            break;
        used += g.width;
        i += g.bytes;
    }
    return i;
}
