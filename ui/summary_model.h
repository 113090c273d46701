/* summary_model.h — the console's own read-only SQL, for what the store API does not offer:
 * noticing that another process committed,
 * the sensor's statistics row, and the aggregates of the summary view. */
#ifndef MAILTAP_UI_SUMMARY_MODEL_H
#define MAILTAP_UI_SUMMARY_MODEL_H

#include "protocols/session.h"
#include "store/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ui_db;

/* Opens the database read-only (it must exist). NULL with a message in err on failure. */
struct ui_db *uidb_open(const char *path, char *err, size_t errlen);
void uidb_close(struct ui_db *db);
const char *uidb_error(const struct ui_db *db);

/* True when another connection committed since the last call (PRAGMA data_version); the
 * first call returns true. */
bool uidb_changed(struct ui_db *db);

/* The latest row of sensor_stats, written by a live capture. */
struct ui_sensor {
    bool present;               /* false: no such table or no row yet */
    int64_t ts_us, packets, kernel_drops, interface_drops, sessions;
    char source[64];
    char health[256];           /* the capture-health warning in force, "" when all is well */
    double packets_per_s;       /* between the two latest rows; 0 if unknown */
};
void uidb_sensor(struct ui_db *db, struct ui_sensor *out);

enum ui_category { UI_CAT_SMTP_OUT, UI_CAT_SMTP_IN, UI_CAT_POP3, UI_CAT_IMAP, UI_CAT_DNS,
                   UI_CAT_COUNT };
const char *uidb_category_name(enum ui_category category);

#define UI_SUMMARY_TOP 8
#define UI_SUMMARY_BUCKETS_MAX 512

struct ui_summary_item {
    char text[MT_TEXT_MAX];
    int status;                 /* enum mt_status for reasons, -1 otherwise */
    long count;
};

struct ui_summary {
    long counts[UI_CAT_COUNT][MT_STATUS_COUNT];
    long category_total[UI_CAT_COUNT], status_total[MT_STATUS_COUNT];
    long total, failures;            /* mail sessions (DNS lookups have their own) */
    long dns_total, dns_failures;
    struct ui_summary_item reasons[UI_SUMMARY_TOP], users[UI_SUMMARY_TOP], ips[UI_SUMMARY_TOP];
    int reason_count, user_count, ip_count;
    long findings[32];               /* sessions with each MT_FLAG_* finding bit set */
    /* Sessions per bucket of bucket_minutes minutes, from the minute of the oldest session
     * in range to that of the newest (a pcap can be old: "now" would show nothing): the
     * whole range, in at most the columns asked for. */
    int64_t first_bucket_us, end_us;   /* end_us: the end of the newest session's minute */
    int buckets, bucket_minutes;
    long per_bucket[UI_SUMMARY_BUCKETS_MAX], failed_per_bucket[UI_SUMMARY_BUCKETS_MAX];
};

/* Fills out for sessions with since_us <= start < until_us (0: no bound), the chart in at
 * most `columns` buckets. Returns 0, or -1 (uidb_error() says why). */
int uidb_summary(struct ui_db *db, int64_t since_us, int64_t until_us, int columns,
                 struct ui_summary *out);

#endif
