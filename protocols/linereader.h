/* linereader.h — turns one direction of a TCP byte stream into protocol events:
 * complete lines (never assumed to arrive whole), dot-terminated bodies skipped at
 * memchr speed, counted opaque blocks (BDAT chunks, IMAP literals), or discarded
 * bytes (after TLS starts). Every buffer is capped; nothing from the wire is trusted. */
#ifndef MAILTAP_LINEREADER_H
#define MAILTAP_LINEREADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest line kept; the rest of a longer line is dropped (and counted) up to its LF,
 * as Suricata does: a passive listener resynchronises, it cannot say no. */
#define LR_LINE_MAX 8192

enum lr_mode {
    LR_LINES,    /* deliver each line without its CR LF */
    LR_DOT_BODY, /* skip a body up to a line holding a single ".", then back to lines */
    LR_SKIP,     /* skip exactly lr_skip(n) bytes, then back to lines */
    LR_BLOCK,    /* the next lr_read_block(n) bytes as lines (until lr_skip_rest()), then
                    SKIP_DONE and back to lines */
    LR_DISCARD,  /* drop everything (encrypted or undecodable from here on) */
};

enum lr_event_kind {
    LR_EVENT_LINE,      /* line, len, truncated, dropped, unterminated */
    LR_EVENT_BODY_END,  /* body_bytes: body size, dot-stuffing included, terminator excluded */
    LR_EVENT_SKIP_DONE, /* the counted block announced with lr_skip() or lr_read_block()
                           is over */
};

struct lr_event {
    enum lr_event_kind kind;
    const char *line;    /* valid only during the handler call; not NUL-terminated */
    size_t len;
    bool truncated;      /* the line was longer than LR_LINE_MAX */
    uint64_t dropped;    /* bytes of this line that were dropped */
    bool unterminated;   /* delivered by lr_finish(): the stream ended mid-line */
    bool block_tail;     /* a block's last bytes, after its last LF: the line may go on in
                            the next block (BDAT chunks) */
    bool tail_cr;        /* block_tail, and a CR ending those bytes was taken off */
    uint64_t body_bytes;
};

/* The handler may call lr_expect_dot_body(), lr_skip() or lr_discard() on the same
 * reader; the new mode applies to the very next byte. */
typedef void (*lr_handler)(void *ctx, const struct lr_event *event);

struct line_reader {
    enum lr_mode mode;
    char *pending;          /* start of a line split across segments (heap, <= LR_LINE_MAX) */
    size_t pending_len;
    size_t pending_cap;
    uint64_t overlong_dropped; /* bytes dropped from the current over-long line */
    bool dropped_ends_cr;      /* the last dropped byte was a CR (not content) */
    uint64_t skip_left;
    uint64_t body_bytes;
    int dot_state;
    uint64_t offset;        /* stream offset just past the bytes handled so far */
    uint64_t overlong_lines;
};

void lr_init(struct line_reader *reader);
void lr_free(struct line_reader *reader);

/* Feeds the next bytes of the stream; calls handler for each event found. */
void lr_feed(struct line_reader *reader, const char *data, size_t len,
             lr_handler handler, void *ctx);

/* The stream is over: delivers a pending unterminated line, if any. */
void lr_finish(struct line_reader *reader, lr_handler handler, void *ctx);

/* Mode changes: call them at a line start (from a LINE event handler, or when no partial
 * line is pending), or the pending bytes are glued onto the first line after the block. */
void lr_expect_dot_body(struct line_reader *reader);
/* The next count bytes are opaque; count 0 changes nothing (no SKIP_DONE event). */
void lr_skip(struct line_reader *reader, uint64_t count);
void lr_discard(struct line_reader *reader);
/* The next count bytes are a counted block whose start is read as lines (an IMAP literal
 * holding a message: its header lines): each LINE event ends at a LF or at the block's
 * end, never past it. The handler calls lr_skip_rest() when it has read enough; the
 * block's end gives SKIP_DONE either way. count 0 changes nothing. */
void lr_read_block(struct line_reader *reader, uint64_t count);
/* Inside a block from lr_read_block(): skip what is left of it unread. */
void lr_skip_rest(struct line_reader *reader);
/* Abandons a counted block announced with lr_skip() or lr_read_block() (e.g. a literal the server refused,
 * so it is never sent): back to lines, no SKIP_DONE. Returns the bytes left unskipped. */
uint64_t lr_cancel_skip(struct line_reader *reader);

#endif
