/* fuzz_linereader.c — libFuzzer target for protocols/linereader.c.
 *
 * Each input is used twice:
 *  1. As a script of operations (random feeds of random sizes, lr_skip, lr_expect_dot_body,
 *     lr_cancel_skip, lr_discard, lr_finish between feeds), checking the reader's own
 *     invariants after every step and every event.
 *  2. As a stream (input[2..]) fed whole, split once at a position taken from input[0..1],
 *     and byte by byte. The handler switches modes from line contents only ('#' line: dot
 *     body; "{N": skip N; "~N": skip N then cancel; "[N": read N as a block of lines, in
 *     which ']' skips the rest; '!': discard), so all three feeds must
 *     give the same event log (kind, length, bytes, flags, stream offset at each event).
 */
#include "protocols/linereader.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail(const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    fputs("fuzz invariant: ", stderr);
    vfprintf(stderr, fmt, args);
    fputc('\n', stderr);
    va_end(args);
    abort();
}

/* An append-only event log. */
struct event_log {
    uint8_t *bytes;
    size_t len, cap;
};

static void log_add(struct event_log *log, const void *bytes, size_t len)
{
    if (log->len + len > log->cap) {
        size_t cap = log->cap ? log->cap : 4096;
        while (cap < log->len + len)
            cap *= 2;
        uint8_t *grown = realloc(log->bytes, cap);
        if (!grown)
            abort();
        log->bytes = grown;
        log->cap = cap;
    }
    memcpy(log->bytes + log->len, bytes, len);
    log->len += len;
}

struct harness {
    struct line_reader *reader;
    uint64_t block_end;   /* stream offset where the block of lines ends, 0: none */
    struct event_log log;
    uint64_t events;
};

static uint64_t parse_count(const char *s, size_t len)
{
    uint64_t n = 0;
    for (size_t i = 0; i < len && i < 12 && s[i] >= '0' && s[i] <= '9'; i++)
        n = n * 10 + (uint64_t)(s[i] - '0');
    return n;
}

static void check_event(const struct harness *h, const struct lr_event *e)
{
    switch (e->kind) {
    case LR_EVENT_LINE:
        if (e->len > LR_LINE_MAX)
            fail("line of %zu bytes, over LR_LINE_MAX", e->len);
        if (e->len > 0 && !e->line)
            fail("line of %zu bytes with a NULL pointer", e->len);
        if (e->len > 0 && memchr(e->line, '\n', e->len))
            fail("LF inside a delivered line");
        if (e->truncated != (e->dropped > 0))
            fail("truncated %d but dropped %llu", e->truncated, (unsigned long long)e->dropped);
        break;
    case LR_EVENT_BODY_END:
    case LR_EVENT_SKIP_DONE:
        break;
    default:
        fail("unknown event kind %d", (int)e->kind);
    }
    if (h->reader->pending_len > LR_LINE_MAX + 1)
        fail("pending %zu bytes", h->reader->pending_len);
}

/* Logs the event, then acts on line contents (the same way whatever the segmentation). */
static void on_event(void *ctx, const struct lr_event *e)
{
    struct harness *h = ctx;
    check_event(h, e);
    h->events++;
    uint8_t kind = (uint8_t)e->kind, flags = (uint8_t)(e->truncated | e->unterminated << 1);
    uint64_t fields[4] = { e->len, e->dropped, e->body_bytes, h->reader->offset };
    log_add(&h->log, &kind, 1);
    log_add(&h->log, &flags, 1);
    log_add(&h->log, fields, sizeof fields);
    if (e->kind != LR_EVENT_LINE || e->len == 0)
        return;
    log_add(&h->log, e->line, e->len);
    if (h->reader->mode == LR_BLOCK && h->block_end && h->reader->offset > h->block_end)
        fail("a line of a block ran past its end (%llu > %llu)",
             (unsigned long long)h->reader->offset, (unsigned long long)h->block_end);
    if (h->reader->mode == LR_BLOCK) {
        if (e->line[0] == ']')
            lr_skip_rest(h->reader);
        return;
    }
    switch (e->line[0]) {
    case '#':
        lr_expect_dot_body(h->reader);
        break;
    case '{':
        lr_skip(h->reader, parse_count(e->line + 1, e->len - 1));
        break;
    case '~': {
        uint64_t n = parse_count(e->line + 1, e->len - 1);
        lr_skip(h->reader, n);
        uint64_t left = lr_cancel_skip(h->reader);
        if (left != n || h->reader->mode != LR_LINES)
            fail("lr_cancel_skip after lr_skip(%llu) gave %llu, mode %d",
                 (unsigned long long)n, (unsigned long long)left, (int)h->reader->mode);
        break;
    }
    case '[': {
        uint64_t n = parse_count(e->line + 1, e->len - 1);
        lr_read_block(h->reader, n);
        h->block_end = n ? h->reader->offset + n : 0;
        break;
    }
    case '!':
        lr_discard(h->reader);
        break;
    default:
        break;
    }
}

static void check_reader(const struct line_reader *r, uint64_t fed)
{
    if (r->offset != fed)
        fail("offset %llu after feeding %llu bytes", (unsigned long long)r->offset,
             (unsigned long long)fed);
    if (r->pending_len > LR_LINE_MAX + 1 || r->pending_len > r->pending_cap)
        fail("pending %zu bytes, capacity %zu", r->pending_len, r->pending_cap);
    if ((int)r->mode < LR_LINES || r->mode > LR_DISCARD)
        fail("mode %d", (int)r->mode);
    if ((r->mode == LR_SKIP || r->mode == LR_BLOCK) && r->skip_left == 0)
        fail("counted mode %d with nothing left", (int)r->mode);
}

/* Part 1: the input as a script of operations. */
static void run_script(const uint8_t *data, size_t size)
{
    struct line_reader reader;
    struct harness h = { .reader = &reader };
    lr_init(&reader);
    uint64_t fed = 0;
    size_t pos = 0;
    while (pos < size) {
        uint8_t op = data[pos++];
        size_t len = 0;
        switch (op % 8) {
        case 0: case 1: case 2:   /* a feed of 1..256 bytes */
            if (pos < size)
                len = (size_t)data[pos++] + 1;
            goto feed;
        case 3:                   /* a feed of up to 64 KiB */
            if (size - pos >= 2)
                len = (size_t)data[pos] << 8 | data[pos + 1], pos += 2;
        feed:
            if (len > size - pos)
                len = size - pos;
            lr_feed(&reader, (const char *)data + pos, len, on_event, &h);
            pos += len;
            fed += len;
            break;
        case 4:   /* a counted block, skipped or (high bit) read as lines */
            if (size - pos >= 2) {
                uint64_t n = (uint64_t)(data[pos] & 0x7f) << 8 | data[pos + 1];
                if (data[pos] & 0x80) {
                    lr_read_block(&reader, n);
                    h.block_end = n ? reader.offset + n : h.block_end;
                } else {
                    lr_skip(&reader, n);
                }
                pos += 2;
            }
            break;
        case 5:
            lr_expect_dot_body(&reader);
            break;
        case 6: {
            enum lr_mode before = reader.mode;
            uint64_t skip_left = reader.skip_left;
            uint64_t left = lr_cancel_skip(&reader);
            bool counted = before == LR_SKIP || before == LR_BLOCK;
            if (counted ? left != skip_left || reader.mode != LR_LINES : left != 0)
                fail("lr_cancel_skip returned %llu (mode was %d, %llu left)",
                     (unsigned long long)left, (int)before, (unsigned long long)skip_left);
            break;
        }
        case 7:
            if (op >> 3 == 0x1f)
                lr_discard(&reader);
            else
                lr_finish(&reader, on_event, &h);
            break;
        }
        check_reader(&reader, fed);
    }
    lr_finish(&reader, on_event, &h);
    check_reader(&reader, fed);
    lr_free(&reader);
    free(h.log.bytes);
}

/* Feeds stream in pieces of `piece` bytes (0: whole, then the second half from `split`). */
static struct event_log run_stream(const uint8_t *stream, size_t len, size_t split, size_t piece)
{
    struct line_reader reader;
    struct harness h = { .reader = &reader };
    lr_init(&reader);
    if (piece == 0) {
        lr_feed(&reader, (const char *)stream, split, on_event, &h);
        lr_feed(&reader, (const char *)stream + split, len - split, on_event, &h);
    } else {
        for (size_t i = 0; i < len; i += piece)
            lr_feed(&reader, (const char *)stream + i, len - i < piece ? len - i : piece,
                    on_event, &h);
    }
    check_reader(&reader, len);
    lr_finish(&reader, on_event, &h);
    lr_free(&reader);
    return h.log;
}

static void compare_logs(const struct event_log *a, const struct event_log *b, const char *how)
{
    if (a->len != b->len || (a->len && memcmp(a->bytes, b->bytes, a->len) != 0)) {
        size_t at = 0;
        while (at < a->len && at < b->len && a->bytes[at] == b->bytes[at])
            at++;
        fail("feeding %s gives other events than feeding whole: logs of %zu and %zu bytes "
             "differ at byte %zu", how, b->len, a->len, at);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    run_script(data, size);
    if (size < 2)
        return 0;
    const uint8_t *stream = data + 2;
    size_t len = size - 2;
    size_t split = ((size_t)data[0] << 8 | data[1]) % (len + 1);
    struct event_log whole = run_stream(stream, len, len, 0);
    struct event_log split_once = run_stream(stream, len, split, 0);
    compare_logs(&whole, &split_once, "split once");
    struct event_log bytewise = run_stream(stream, len, 0, 1);
    compare_logs(&whole, &bytewise, "byte by byte");
    free(whole.bytes);
    free(split_once.bytes);
    free(bytewise.bytes);
    return 0;
}
