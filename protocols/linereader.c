/* linereader.c — line / dot-body / counted-block splitter for one stream direction. */
#include "linereader.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* A pending-line buffer larger than this is freed once its line is delivered. */
#define LR_PENDING_KEPT 512

enum dot_state { DOT_AT_LINE_START, DOT_IN_LINE, DOT_SEEN_DOT, DOT_SEEN_DOT_CR };

/* The pending partial line may hold part of a password line: wipe, do not just forget. */
static void pending_wipe(struct line_reader *reader)
{
    if (reader->pending)
        explicit_bzero(reader->pending, reader->pending_cap);
    reader->pending_len = 0;
}

void lr_init(struct line_reader *reader)
{
    memset(reader, 0, sizeof *reader);
    reader->mode = LR_LINES;
}

void lr_free(struct line_reader *reader)
{
    pending_wipe(reader);
    free(reader->pending);
    reader->pending = NULL;
    reader->pending_len = reader->pending_cap = 0;
}

void lr_expect_dot_body(struct line_reader *reader)
{
    reader->mode = LR_DOT_BODY;
    reader->dot_state = DOT_AT_LINE_START;
    reader->body_bytes = 0;
}

void lr_skip(struct line_reader *reader, uint64_t count)
{
    if (count == 0)
        return;
    reader->skip_left = count;
    reader->mode = LR_SKIP;
}

void lr_read_block(struct line_reader *reader, uint64_t count)
{
    if (count == 0)
        return;
    reader->skip_left = count;
    reader->mode = LR_BLOCK;
}

void lr_skip_rest(struct line_reader *reader)
{
    if (reader->mode != LR_BLOCK)
        return;
    pending_wipe(reader);
    reader->overlong_dropped = 0;
    reader->mode = LR_SKIP;   /* feed_block() settles skip_left, and SKIP_DONE at the end */
}

void lr_discard(struct line_reader *reader)
{
    reader->mode = LR_DISCARD;
    pending_wipe(reader);
}

uint64_t lr_cancel_skip(struct line_reader *reader)
{
    if (reader->mode != LR_SKIP && reader->mode != LR_BLOCK)
        return 0;
    pending_wipe(reader);
    reader->overlong_dropped = 0;
    uint64_t left = reader->skip_left;
    reader->skip_left = 0;
    reader->mode = LR_LINES;
    return left;
}

/* Appends to the pending partial line. It keeps one byte more than LR_LINE_MAX, for the
 * CR of a line of exactly LR_LINE_MAX bytes; what does not fit is counted, not kept. */
static void pending_append(struct line_reader *reader, const char *data, size_t len)
{
    size_t room = LR_LINE_MAX + 1 - reader->pending_len;
    size_t keep = len < room ? len : room;
    if (keep > 0 && reader->pending_len + keep > reader->pending_cap) {
        size_t cap = reader->pending_cap ? reader->pending_cap : 256;
        while (cap < reader->pending_len + keep)
            cap *= 2;
        if (cap > LR_LINE_MAX + 1)
            cap = LR_LINE_MAX + 1;
        char *grown = realloc(reader->pending, cap);
        if (!grown) {
            reader->overlong_dropped += len;
            return;
        }
        reader->pending = grown;
        reader->pending_cap = cap;
    }
    if (keep > 0) {
        memcpy(reader->pending + reader->pending_len, data, keep);
        reader->pending_len += keep;
    }
    if (len > keep) {
        reader->overlong_dropped += len - keep;
        reader->dropped_ends_cr = data[len - 1] == '\r';
    }
}

/* The one place where a line is cut to LR_LINE_MAX, whether it came whole in one segment
 * or was assembled from several: both give the same event. */
static void deliver_line(struct line_reader *reader, const char *line, size_t len,
                         bool unterminated, bool block_tail, lr_handler handler, void *ctx)
{
    uint64_t dropped = reader->overlong_dropped;
    bool cr_stripped = false;
    if (dropped > 0 && reader->dropped_ends_cr) {
        dropped--;                       /* the CR ended the line, it was not content */
    } else if (dropped == 0 && len > 0 && line[len - 1] == '\r') {
        len--;
        cr_stripped = true;
    }
    if (len > LR_LINE_MAX) {
        dropped += len - LR_LINE_MAX;
        len = LR_LINE_MAX;
    }
    struct lr_event event = {
        .kind = LR_EVENT_LINE,
        .line = line,
        .len = len,
        .truncated = dropped > 0,
        .dropped = dropped,
        .unterminated = unterminated,
        .block_tail = block_tail,
        .tail_cr = block_tail && cr_stripped,
    };
    if (event.truncated)
        reader->overlong_lines++;
    reader->overlong_dropped = 0;
    reader->dropped_ends_cr = false;
    handler(ctx, &event);
    /* A long line assembled from several segments grew the buffer (up to 8 KiB): give it
     * back instead of holding it for the rest of a connection that may idle for hours. */
    if (line == reader->pending && reader->pending_len == 0 &&
        reader->pending_cap > LR_PENDING_KEPT) {
        explicit_bzero(reader->pending, reader->pending_cap);
        free(reader->pending);
        reader->pending = NULL;
        reader->pending_cap = 0;
    }
}

/* Handles bytes in LR_LINES mode (or LR_BLOCK, given only the block's bytes); returns how
 * many were consumed (stops early when the handler switches mode). */
static size_t feed_lines(struct line_reader *reader, const char *data, size_t len,
                         lr_handler handler, void *ctx)
{
    enum lr_mode mode = reader->mode;
    size_t used = 0;
    while (used < len && reader->mode == mode) {
        const char *start = data + used;
        const char *lf = memchr(start, '\n', len - used);
        if (!lf) {
            pending_append(reader, start, len - used);
            reader->offset += len - used;
            return len;
        }
        size_t piece = (size_t)(lf - start);
        used += piece + 1;
        reader->offset += piece + 1;
        if (reader->pending_len == 0 && reader->overlong_dropped == 0) {
            deliver_line(reader, start, piece, false, false, handler, ctx);
        } else {
            pending_append(reader, start, piece);
            size_t plen = reader->pending_len;
            reader->pending_len = 0;
            deliver_line(reader, reader->pending, plen, false, false, handler, ctx);
        }
    }
    return used;
}

/* A block read as lines: at most skip_left bytes go to the line splitter; a last line
 * without LF ends with the block. */
static size_t feed_block(struct line_reader *reader, const char *data, size_t len,
                         lr_handler handler, void *ctx)
{
    size_t avail = reader->skip_left < len ? (size_t)reader->skip_left : len;
    uint64_t before = reader->offset;
    feed_lines(reader, data, avail, handler, ctx);
    size_t used = (size_t)(reader->offset - before);
    if (reader->mode != LR_BLOCK && reader->mode != LR_SKIP)
        return used;   /* the handler abandoned the block (lr_cancel_skip, lr_discard) */
    reader->skip_left -= used;   /* also after lr_skip_rest(): these bytes were the block's */
    if (reader->skip_left > 0)
        return used;
    if (reader->mode == LR_BLOCK && (reader->pending_len > 0 || reader->overlong_dropped > 0)) {
        size_t plen = reader->pending_len;
        reader->pending_len = 0;
        deliver_line(reader, reader->pending ? reader->pending : "", plen, false, true, handler,
                     ctx);
    }
    if (reader->mode == LR_BLOCK || reader->mode == LR_SKIP) {
        reader->mode = LR_LINES;
        struct lr_event event = { .kind = LR_EVENT_SKIP_DONE };
        handler(ctx, &event);
    }
    return used;
}

/* Offset of the first "\n." in s[0..n), or n when there is none. A body is up to megabytes
 * of 76-byte lines, and only a line that starts with a dot can end it: one pass, 16 bytes
 * at a time (SSE2 is in every x86-64), instead of a memchr() call and a state change per
 * line. Elsewhere, a memchr() per line start. */
static size_t find_lf_dot(const char *s, size_t n)
{
    size_t p = 0;
#if defined(__SSE2__)
    const __m128i lf = _mm_set1_epi8('\n'), dot = _mm_set1_epi8('.');
    for (; p + 17 <= n; p += 16) {
        __m128i here = _mm_loadu_si128((const __m128i *)(const void *)(s + p));
        __m128i next = _mm_loadu_si128((const __m128i *)(const void *)(s + p + 1));
        unsigned hits = (unsigned)_mm_movemask_epi8(
            _mm_and_si128(_mm_cmpeq_epi8(here, lf), _mm_cmpeq_epi8(next, dot)));
        if (hits)
            return p + (size_t)__builtin_ctz(hits);
    }
#endif
    while (p + 1 < n) {
        const char *lf_at = memchr(s + p, '\n', n - 1 - p);
        if (!lf_at)
            break;
        p = (size_t)(lf_at - s);
        if (s[p + 1] == '.')
            return p;
        p++;
    }
    return n;
}

static size_t feed_dot_body(struct line_reader *reader, const char *data, size_t len,
                            lr_handler handler, void *ctx)
{
    size_t i = 0;
    while (i < len) {
        switch (reader->dot_state) {
        case DOT_IN_LINE: {
            /* Straight to the next line that starts with a dot; without one, to the end,
             * where a last "\n" leaves the next segment at a line start. */
            size_t found = find_lf_dot(data + i, len - i);
            size_t step = found < len - i ? found + 1 : len - i;
            reader->body_bytes += step;
            i += step;
            if (data[i - 1] == '\n')
                reader->dot_state = DOT_AT_LINE_START;
            break;
        }
        case DOT_AT_LINE_START:
            if (data[i] == '.') {
                reader->dot_state = DOT_SEEN_DOT;
            } else {
                reader->dot_state = data[i] == '\n' ? DOT_AT_LINE_START : DOT_IN_LINE;
                reader->body_bytes++;
            }
            i++;
            break;
        case DOT_SEEN_DOT:
            if (data[i] == '\r') {
                reader->dot_state = DOT_SEEN_DOT_CR;
                i++;
                break;
            }
            if (data[i] == '\n') {
                i++;
                goto body_end;
            }
            reader->body_bytes++; /* the stuffed dot */
            reader->dot_state = DOT_IN_LINE;
            break;
        case DOT_SEEN_DOT_CR:
            if (data[i] == '\n') {
                i++;
                goto body_end;
            }
            reader->body_bytes += 2; /* ".\r" that was not a terminator */
            reader->dot_state = DOT_IN_LINE;
            break;
        }
    }
    reader->offset += i;
    return i;

body_end:
    reader->offset += i;
    reader->mode = LR_LINES;
    struct lr_event event = { .kind = LR_EVENT_BODY_END, .body_bytes = reader->body_bytes };
    handler(ctx, &event);
    return i;
}

static size_t feed_skip(struct line_reader *reader, size_t len, lr_handler handler, void *ctx)
{
    size_t take = reader->skip_left < len ? (size_t)reader->skip_left : len;
    reader->skip_left -= take;
    reader->offset += take;
    if (reader->skip_left == 0) {
        reader->mode = LR_LINES;
        struct lr_event event = { .kind = LR_EVENT_SKIP_DONE };
        handler(ctx, &event);
    }
    return take;
}

void lr_feed(struct line_reader *reader, const char *data, size_t len,
             lr_handler handler, void *ctx)
{
    size_t used = 0;
    while (used < len) {
        switch (reader->mode) {
        case LR_LINES:
            used += feed_lines(reader, data + used, len - used, handler, ctx);
            break;
        case LR_DOT_BODY:
            used += feed_dot_body(reader, data + used, len - used, handler, ctx);
            break;
        case LR_SKIP:
            used += feed_skip(reader, len - used, handler, ctx);
            break;
        case LR_BLOCK:
            used += feed_block(reader, data + used, len - used, handler, ctx);
            break;
        case LR_DISCARD:
            reader->offset += len - used;
            return;
        }
    }
}

void lr_finish(struct line_reader *reader, lr_handler handler, void *ctx)
{
    if ((reader->mode != LR_LINES && reader->mode != LR_BLOCK) || (reader->pending_len == 0 && reader->overlong_dropped == 0))
        return;
    size_t plen = reader->pending_len;
    reader->pending_len = 0;
    deliver_line(reader, reader->pending ? reader->pending : "", plen, true, false, handler, ctx);
}
