/* summary_model.c — read-only SQL of the console, kept out of the drawing code and out of the
 * store: change detection for live refresh, the sensor_stats row, and the
 * summary's aggregates. Every statement is prepared once; only fixed SQL text is compiled,
 * every value is bound. */
#include "summary_model.h"

#include "columns.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum uidb_stmt {
    Q_DATA_VERSION, Q_SENSOR_TABLE, Q_SENSOR, Q_COUNTS, Q_REASONS, Q_USERS, Q_IPS, Q_SPAN,
    Q_PER_BUCKET, Q_FINDINGS, Q_COUNT_STMTS
};

struct ui_db {
    sqlite3 *db;
    sqlite3_stmt *stmt[Q_COUNT_STMTS];
    int64_t data_version;
    bool seen_version;
    char error[256];
};

#define RANGE " start_us >= ?1 AND (?2 = 0 OR start_us < ?2) "
/* The IP a row is about: the client's inbound, the server's outbound (as in the list). */
#define ROW_IP "CASE direction WHEN 'out' THEN server_ip ELSE client_ip END"

/* MT_FLAG_CLEARTEXT_AUTH .. MT_FLAG_OVERLAP_CONFLICT (protocols/session.h), checked below */
#define FINDINGS_SQL_MASK "8064"
_Static_assert((MT_FLAG_CLEARTEXT_AUTH | MT_FLAG_STARTTLS_UNUSED | MT_FLAG_WEAK_TLS |
                MT_FLAG_CERT_EXPIRED | MT_FLAG_CERT_NAME_MISMATCH | MT_FLAG_OVERLAP_CONFLICT) ==
               8064, "FINDINGS_SQL_MASK is the findings' bits");

static const char *const stmt_sql[Q_COUNT_STMTS] = {
    [Q_DATA_VERSION] = "PRAGMA data_version",
    [Q_SENSOR_TABLE] = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sensor_stats'",
    [Q_SENSOR] = NULL,   /* prepared once the table exists */
    [Q_COUNTS] = "SELECT proto, direction, status, count(*) FROM sessions WHERE" RANGE
                 "GROUP BY 1, 2, 3",
    /* The top lists are of mail sessions: failed lookups have the DNS line (a name that
     * does not exist filled the reasons with its A, AAAA and MX lookups). */
    [Q_REASONS] = "SELECT status, mt_reason(status_line), count(*) AS n FROM sessions WHERE"
                  RANGE "AND status IN (%s) AND proto <> 'dns' GROUP BY 1, 2 ORDER BY n DESC"
                  " LIMIT 8",
    [Q_USERS] = "SELECT user, count(*) AS n FROM sessions WHERE" RANGE
                "AND status IN (%s) AND user <> '' AND proto <> 'dns' GROUP BY 1 ORDER BY n DESC"
                " LIMIT 8",
    /* A dns_failed row made no connection: it has no IP (its reason is listed). */
    [Q_IPS] = "SELECT " ROW_IP " AS ip, count(*) AS n FROM sessions WHERE" RANGE
              "AND status IN (%s) AND ip <> '' AND proto <> 'dns' GROUP BY 1 ORDER BY n DESC"
              " LIMIT 8",
    [Q_SPAN] = "SELECT min(start_us), max(start_us) FROM sessions WHERE" RANGE,
    /* ?3: the first minute, ?4: minutes per bucket */
    [Q_PER_BUCKET] = "SELECT (start_us / 60000000 - ?3) / ?4, count(*), sum(status IN (%s))"
                     " FROM sessions WHERE" RANGE "GROUP BY 1",
    /* The security findings: few combinations of bits, counted per bit in C. */
    [Q_FINDINGS] = "SELECT flags & " FINDINGS_SQL_MASK ", count(*) FROM sessions WHERE" RANGE
                   "AND flags & " FINDINGS_SQL_MASK " <> 0 GROUP BY 1",
};

static const char *const category_names[UI_CAT_COUNT] = {
    [UI_CAT_SMTP_OUT] = "SMTP out", [UI_CAT_SMTP_IN] = "SMTP in",
    [UI_CAT_POP3] = "POP3", [UI_CAT_IMAP] = "IMAP", [UI_CAT_DNS] = "DNS",
};

const char *uidb_category_name(enum ui_category category)
{
    return category >= 0 && category < UI_CAT_COUNT ? category_names[category] : "?";
}

const char *uidb_error(const struct ui_db *db) { return db->error; }

static int db_fail(struct ui_db *db, const char *doing)
{
    snprintf(db->error, sizeof db->error, "%s: %s", doing, sqlite3_errmsg(db->db));
    return -1;
}

/* "'partial','aborted',...": the failure statuses, from the one definition in session.c. */
static void failure_list(char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int s = 0; s < MT_STATUS_COUNT && len < cap; s++)
        if (status_is_failure((enum mt_status)s))
            len += (size_t)snprintf(buf + len, cap - len, "%s'%s'", len ? "," : "",
                                    status_name((enum mt_status)s));
}

static sqlite3_stmt *prepare(struct ui_db *db, const char *sql_format)
{
    char failures[512], sql[4096];
    sqlite3_stmt *st = NULL;
    failure_list(failures, sizeof failures);
    snprintf(sql, sizeof sql, sql_format, failures);
    if (sqlite3_prepare_v3(db->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
        db_fail(db, "preparing a query");
        return NULL;
    }
    return st;
}

/* A failure line as one reason: without an IMAP command's tag ("a7 NO [OVERQUOTA] ..." and
 * "b2 NO [OVERQUOTA] ..." are one reason), without the timing Dovecot appends to its
 * replies ("(0.001 + 0.000 secs)"), and, in mailtap's own lines ("[...]" for POP3 and
 * IMAP, SMTP's begin with a small letter where a server's reply begins with its code), with
 * every number as N ("the message cut after N of N bytes"): else every line would be a
 * reason of its own; SMTP's in brackets too, so that one event is one reason in all
 * three protocols ("[no reply from the server]"). */
static void reason_key(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    const char *text = (const char *)sqlite3_value_text(argv[0]);
    if (!text) {
        sqlite3_result_null(ctx);
        return;
    }
    text = columns_reply_text(text);
    size_t len = strlen(text);
    char *out = sqlite3_malloc64(len + 3);
    if (!out) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    bool bare = len > 0 && text[0] >= 'a' && text[0] <= 'z';
    bool own = len > 0 && (text[0] == '[' || text[0] == '(' || bare);
    size_t n = 0;
    if (bare)
        out[n++] = '[';
    for (size_t i = 0; i < len;) {
        const char *close = text[i] == '(' ? memchr(text + i, ')', len - i) : NULL;
        bool timing = close && close - (text + i) > 6 && memcmp(close - 5, " secs", 5) == 0;
        for (const char *c = text + i + 1; timing && c < close - 5; c++)
            timing = (*c >= '0' && *c <= '9') || *c == '.' || *c == '+' || *c == ' ';
        if (timing) {   /* "(0.001 + 0.000 secs)" and the blank before it */
            while (n > 0 && out[n - 1] == ' ')
                n--;
            i = (size_t)(close + 1 - text);
        } else if (own && text[i] >= '0' && text[i] <= '9') {
            out[n++] = 'N';
            while (i < len && text[i] >= '0' && text[i] <= '9')
                i++;
        } else {
            out[n++] = text[i++];
        }
    }
    if (bare)
        out[n++] = ']';
    sqlite3_result_text(ctx, out, (int)n, sqlite3_free);
}

/* Every statement; false at the first that fails (db->error says why). */
static bool prepare_all(struct ui_db *db)
{
    sqlite3_create_function(db->db, "mt_reason", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
                            reason_key, NULL, NULL);
    for (int i = 0; i < Q_COUNT_STMTS; i++)
        if (stmt_sql[i] && !(db->stmt[i] = prepare(db, stmt_sql[i])))
            return false;
    return true;
}

static void finalize_all(struct ui_db *db)
{
    for (int i = 0; i < Q_COUNT_STMTS; i++) {
        sqlite3_finalize(db->stmt[i]);
        db->stmt[i] = NULL;
    }
}

struct ui_db *uidb_open(const char *path, char *err, size_t errlen)
{
    struct ui_db *db = calloc(1, sizeof *db);
    if (!db) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (sqlite3_open_v2(path, &db->db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", path, db->db ? sqlite3_errmsg(db->db) : "cannot open");
        uidb_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db->db, STORE_BUSY_TIMEOUT_MS);
    bool prepared = prepare_all(db);
    if (!prepared && (sqlite3_errcode(db->db) & 0xff) == SQLITE_READONLY) {
        /* no -shm can be made beside it (a read-only copy, share or mount): read the file
         * as it is, as store_open() does for the lists */
        finalize_all(db);
        sqlite3_close(db->db);
        db->db = NULL;
        prepared = store_sqlite_open_immutable(path, &db->db) == SQLITE_OK && prepare_all(db);
    }
    if (!prepared) {
        snprintf(err, errlen, "%s: %s", path, db->error);
        uidb_close(db);
        return NULL;
    }
    return db;
}

void uidb_close(struct ui_db *db)
{
    if (!db)
        return;
    finalize_all(db);
    sqlite3_close(db->db);
    free(db);
}

bool uidb_changed(struct ui_db *db)
{
    sqlite3_stmt *st = db->stmt[Q_DATA_VERSION];
    bool changed = false;
    if (sqlite3_step(st) == SQLITE_ROW) {
        int64_t v = sqlite3_column_int64(st, 0);
        changed = !db->seen_version || v != db->data_version;
        db->data_version = v;
        db->seen_version = true;
    }
    sqlite3_reset(st);
    return changed;
}

void uidb_sensor(struct ui_db *db, struct ui_sensor *out)
{
    memset(out, 0, sizeof *out);
    if (!db->stmt[Q_SENSOR]) {
        /* The capture may create the table after the console started. */
        sqlite3_stmt *probe = db->stmt[Q_SENSOR_TABLE];
        bool exists = sqlite3_step(probe) == SQLITE_ROW;
        sqlite3_reset(probe);
        if (!exists)
            return;
        /* The run written last, not the latest capture time: a capture file read into
         * a sensor's database is older than the sensor's rows. health came later in
         * schema 1: a database without it (and its run) still shows the rest. */
        if (sqlite3_prepare_v2(db->db,
                "SELECT ts_us, packets, kernel_drops, interface_drops, sessions, source, health"
                " FROM sensor_stats WHERE run IS (SELECT run FROM sensor_stats"
                " ORDER BY rowid DESC LIMIT 1) ORDER BY rowid DESC LIMIT 2", -1,
                &db->stmt[Q_SENSOR], NULL) != SQLITE_OK &&
            sqlite3_prepare_v2(db->db,
                "SELECT ts_us, packets, kernel_drops, interface_drops, sessions, source"
                " FROM sensor_stats ORDER BY ts_us DESC LIMIT 2", -1,
                &db->stmt[Q_SENSOR], NULL) != SQLITE_OK)
            return;
    }
    sqlite3_stmt *st = db->stmt[Q_SENSOR];
    if (sqlite3_step(st) == SQLITE_ROW) {
        const char *source = (const char *)sqlite3_column_text(st, 5);
        out->present = true;
        out->ts_us = sqlite3_column_int64(st, 0);
        out->packets = sqlite3_column_int64(st, 1);
        out->kernel_drops = sqlite3_column_int64(st, 2);
        out->interface_drops = sqlite3_column_int64(st, 3);
        out->sessions = sqlite3_column_int64(st, 4);
        snprintf(out->source, sizeof out->source, "%s", source ? source : "");
        const char *health = sqlite3_column_count(st) > 6 ? (const char *)sqlite3_column_text(st, 6) : NULL;
        snprintf(out->health, sizeof out->health, "%s", health ? health : "");
        if (sqlite3_step(st) == SQLITE_ROW) {
            int64_t dt = out->ts_us - sqlite3_column_int64(st, 0);
            int64_t dp = out->packets - sqlite3_column_int64(st, 1);
            if (dt > 0 && dp >= 0)
                out->packets_per_s = (double)dp * 1e6 / (double)dt;
        }
    }
    sqlite3_reset(st);
}

static sqlite3_stmt *ranged(struct ui_db *db, enum uidb_stmt which, int64_t since, int64_t until)
{
    sqlite3_stmt *st = db->stmt[which];
    sqlite3_bind_int64(st, 1, since);
    sqlite3_bind_int64(st, 2, until);
    return st;
}

static int top_list(struct ui_db *db, enum uidb_stmt which, int64_t since, int64_t until,
                    struct ui_summary_item *items, int *count)
{
    sqlite3_stmt *st = ranged(db, which, since, until);
    int rc, text_col = which == Q_REASONS ? 1 : 0, count_col = which == Q_REASONS ? 2 : 1;
    *count = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && *count < UI_SUMMARY_TOP) {
        struct ui_summary_item *item = &items[(*count)++];
        const char *text = (const char *)sqlite3_column_text(st, text_col);
        snprintf(item->text, sizeof item->text, "%s", text ? text : "");
        item->status = which == Q_REASONS ?
            (int)status_from_name((const char *)sqlite3_column_text(st, 0) ?
                                  (const char *)sqlite3_column_text(st, 0) : "") : -1;
        item->count = (long)sqlite3_column_int64(st, count_col);
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : db_fail(db, "summarising");
}

static int category_of(const char *proto, const char *direction)
{
    if (strcmp(proto, "smtp") == 0)
        return strcmp(direction, "out") == 0 ? UI_CAT_SMTP_OUT : UI_CAT_SMTP_IN;
    if (strcmp(proto, "pop3") == 0)
        return UI_CAT_POP3;
    if (strcmp(proto, "imap") == 0)
        return UI_CAT_IMAP;
    if (strcmp(proto, "dns") == 0)
        return UI_CAT_DNS;
    return -1;
}

int uidb_summary(struct ui_db *db, int64_t since, int64_t until, int columns,
                 struct ui_summary *out)
{
    sqlite3_stmt *st;
    int rc;
    memset(out, 0, sizeof *out);
    if (columns > UI_SUMMARY_BUCKETS_MAX)
        columns = UI_SUMMARY_BUCKETS_MAX;
    if (columns < 1)
        columns = 1;
    st = ranged(db, Q_COUNTS, since, until);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *proto = (const char *)sqlite3_column_text(st, 0);
        const char *dir = (const char *)sqlite3_column_text(st, 1);
        const char *word = (const char *)sqlite3_column_text(st, 2);
        long n = (long)sqlite3_column_int64(st, 3);
        int cat = category_of(proto ? proto : "", dir ? dir : "");
        enum mt_status status = status_from_name(word ? word : "");
        bool lookup = cat == UI_CAT_DNS;
        *(lookup ? &out->dns_total : &out->total) += n;
        out->status_total[status] += n;
        if (status_is_failure(status))
            *(lookup ? &out->dns_failures : &out->failures) += n;
        if (cat >= 0) {
            out->counts[cat][status] += n;
            out->category_total[cat] += n;
        }
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return db_fail(db, "summarising");
    if (top_list(db, Q_REASONS, since, until, out->reasons, &out->reason_count) < 0 ||
        top_list(db, Q_USERS, since, until, out->users, &out->user_count) < 0 ||
        top_list(db, Q_IPS, since, until, out->ips, &out->ip_count) < 0)
        return -1;

    st = ranged(db, Q_FINDINGS, since, until);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        uint32_t bits = (uint32_t)sqlite3_column_int64(st, 0);
        long n = (long)sqlite3_column_int64(st, 1);
        for (unsigned bit = 0; bit < 32; bit++)
            if (bits & (1u << bit))
                out->findings[bit] += n;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return db_fail(db, "counting the findings");

    st = ranged(db, Q_SPAN, since, until);
    bool any = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL;
    int64_t first_minute = any ? sqlite3_column_int64(st, 0) / 60000000 : 0;
    int64_t last_minute = any ? sqlite3_column_int64(st, 1) / 60000000 : 0;
    sqlite3_reset(st);
    int64_t span = last_minute - first_minute + 1;   /* minutes, >= 1 */
    int64_t per = (span + columns - 1) / columns;
    /* A width a reader can use: "per 15 minutes", "per 6 hours", "per 9 days". */
    static const int64_t ladder[] = { 1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440 };
    size_t step = 0;
    while (step < sizeof ladder / sizeof ladder[0] && ladder[step] < per)
        step++;
    per = step < sizeof ladder / sizeof ladder[0] ? ladder[step] : (per + 1439) / 1440 * 1440;
    out->bucket_minutes = per > INT32_MAX / 2 ? INT32_MAX / 2 / 1440 * 1440 : (int)per;
    out->buckets = (int)((span + out->bucket_minutes - 1) / out->bucket_minutes);
    out->first_bucket_us = first_minute * 60000000;
    out->end_us = (last_minute + 1) * 60000000;
    if (!any)
        return 0;
    st = ranged(db, Q_PER_BUCKET, since, until);
    sqlite3_bind_int64(st, 3, first_minute);
    sqlite3_bind_int64(st, 4, out->bucket_minutes);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t bucket = sqlite3_column_int64(st, 0);
        if (bucket >= 0 && bucket < out->buckets) {
            out->per_bucket[bucket] = (long)sqlite3_column_int64(st, 1);
            out->failed_per_bucket[bucket] = (long)sqlite3_column_int64(st, 2);
        }
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : db_fail(db, "summarising");
}
