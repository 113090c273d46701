/* bench_search.c — times what the console does on every search keystroke and sort change:
 * count the matching sessions, then read one window (90 rows) of them, on a database made
 * by make_big_db. Prints one line per case: pattern, order, matches, count ms, window ms.
 *
 *   bench_search DB [PATTERN...]    default patterns: a rare user, a common user, an IP
 *                                   prefix, a subject word, a 2-character pattern, ...
 * Build (from the repository root):
 *   cc -std=c11 -D_DEFAULT_SOURCE -D_GNU_SOURCE -O2 -I. -o /tmp/bench_search \
 *      tests/ui_data/bench_search.c store/store.c protocols/session.c protocols/text.c -lsqlite3
 * Add -DBENCH_NO_ORDER to build it against a store without store_filter.order. */
#include "protocols/session.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int drop(void *ctx, struct mt_session *session)
{
    (void)ctx;
    session_free(session);
    return 0;
}

/* Best of three runs (the first warms the page cache). proto: enum mt_proto or -1. */
static void bench(struct mt_store *store, const char *pattern, int order, int proto,
                  const char *label)
{
    struct store_filter f;
    double count_ms = 1e18, window_ms = 1e18;
    long total = 0;
    store_filter_init(&f);
    f.grep = pattern;
    f.proto = proto;
#ifndef BENCH_NO_ORDER
    f.order = (enum store_order)order;
#else
    (void)order;
#endif
    for (int run = 0; run < 3; run++) {
        double t0 = now_ms();
        total = store_count_sessions(store, &f);
        double t1 = now_ms();
        f.limit = 90;
        int n = store_query_sessions(store, &f, drop, NULL);
        double t2 = now_ms();
        f.limit = 0;
        if (total < 0 || n < 0) {
            fprintf(stderr, "bench_search: %s\n", store_error(store));
            exit(1);
        }
        if (t1 - t0 < count_ms)
            count_ms = t1 - t0;
        if (t2 - t1 < window_ms)
            window_ms = t2 - t1;
    }
    printf("%-22s %-13s %9ld %10.1f %10.1f\n", pattern ? pattern : "(none)", label, total,
           count_ms, window_ms);
}

int main(int argc, char **argv)
{
    static const char *const defaults[] = {
        "carol", "user0042", "192.168.3.", "quarterly", "Köln", "100%", "under_sc", "it's",
        "\"quoted\"", "5.7.1", "zzzz-none", "ca", "日本",
    };
    char err[512];
    if (argc < 2) {
        fprintf(stderr, "usage: bench_search DB [PATTERN...]\n");
        return 2;
    }
    struct mt_store *store = store_open(argv[1], false, err, sizeof err);
    if (!store) {
        fprintf(stderr, "bench_search: %s\n", err);
        return 1;
    }
    printf("%-22s %-13s %9s %10s %10s\n", "pattern", "order", "matches", "count ms",
           "window ms");
    bench(store, NULL, 0, -1, "time");
    if (argc > 2) {
        for (int i = 2; i < argc; i++)
            bench(store, argv[i], 0, -1, "time");
    } else {
        for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++)
            bench(store, defaults[i], 0, -1, "time");
    }
    bench(store, "user0042", 0, MT_PROTO_POP3, "time pop3");
#ifndef BENCH_NO_ORDER
    bench(store, NULL, STORE_ORDER_STATUS, -1, "status");
    bench(store, NULL, STORE_ORDER_USER, -1, "user");
    bench(store, NULL, STORE_ORDER_STATUS, MT_PROTO_POP3, "status pop3");
    bench(store, NULL, STORE_ORDER_USER, MT_PROTO_IMAP, "user imap");
    bench(store, "carol", STORE_ORDER_STATUS, -1, "status");
    bench(store, "user0042", STORE_ORDER_USER, -1, "user");
    bench(store, "quarterly", STORE_ORDER_USER, -1, "user");
#endif
    store_close(store);
    return 0;
}
