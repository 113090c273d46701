/* attempt_limit.h — a SYN flood (or a scan) must not become a million rows. Per server
 * endpoint and minute of capture time, the first rows_per_minute (default
 * ATTEMPT_ROWS_PER_MINUTE) connection attempts that failed the same way (unanswered, or
 * refused) are stored one by one; the rest are counted and stored as one summary row
 * when the minute ends. */
#ifndef MAILTAP_ATTEMPT_LIMIT_H
#define MAILTAP_ATTEMPT_LIMIT_H

#include "reassembly/reassembly.h"

#include <stdbool.h>
#include <stdint.h>

#define ATTEMPT_ROWS_PER_MINUTE 100
#define ATTEMPT_ENDPOINTS 64        /* server endpoints followed; more share the last two
                                       slots (one for refused, one for the other failures) */
#define ATTEMPT_WINDOW_US (60LL * 1000000)

/* One endpoint's minute beyond the limit. */
struct attempt_summary {
    struct flow flow;               /* the server; client = the last source counted */
    enum stream_end how;            /* STREAM_UNANSWERED, _REFUSED or _NOT_ESTABLISHED */
    int64_t first_us, last_us;      /* the counted attempts' SYN times */
    uint64_t counted;               /* attempts not stored one by one */
    uint32_t sources;               /* distinct client addresses among them (estimate) */
    bool sources_saturated;         /* so many that the estimate is only a lower bound */
    bool pooled;                    /* several server endpoints (the table was full) */
};

struct attempt_window {
    bool used;
    struct flow flow;
    enum stream_end how;
    int64_t start_us;
    uint32_t stored;
    struct attempt_summary over;
    uint8_t seen[512];              /* 4096-bit sketch of client addresses (linear counting) */
};

struct attempt_limit {
    uint32_t rows_per_minute;       /* 0: no limit, every attempt is its own row */
    struct attempt_window windows[ATTEMPT_ENDPOINTS];
};

void attempt_limit_init(struct attempt_limit *limit, uint32_t rows_per_minute);
/* True: store this attempt as its own row. False: it was counted for a summary. */
bool attempt_limit_admit(struct attempt_limit *limit, const struct flow *flow,
                         enum stream_end how, int64_t syn_us);
/* Hands over the summaries of minutes over by now_us (every one when all is true). */
typedef void (*attempt_summary_fn)(void *ctx, const struct attempt_summary *summary);
void attempt_limit_flush(struct attempt_limit *limit, int64_t now_us, bool all,
                         attempt_summary_fn callback, void *ctx);

#endif
