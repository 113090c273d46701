/* store.h — the SQLite store: opens or creates the database, writes decoded sessions in
 * batched transactions, and reads them back (filtered) for the CLI and the console.
 * The schema is documented at the top of store.c. */
#ifndef MAILTAP_STORE_H
#define MAILTAP_STORE_H

#include "protocols/session.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_SCHEMA_VERSION 1
#define STORE_BATCH_SESSIONS 500     /* default: COMMIT after this many sessions ... */
#define STORE_BATCH_MS 1000          /* ... or when the open batch is this old */
#define STORE_BULK_BATCH_SESSIONS 5000   /* store_set_bulk_load() */
#define STORE_BULK_WAL_BYTES (64LL << 20) /* the write-ahead log checkpointed at */
#define STORE_BULK_PAGE_SIZE 16384       /* bytes: store_set_bulk_load() into a new database */
#define STORE_BUSY_TIMEOUT_MS 5000

/* Results: 0 on success, a negative code on failure; store_error() then says why. */
enum store_result {
    STORE_OK = 0,
    STORE_ERROR = -1,     /* SQL error, corrupt database, misuse */
    STORE_FULL = -2,      /* disk full or size limit: the unfinished batch was rolled back */
    STORE_IOERR = -3,     /* I/O error: the unfinished batch was rolled back */
    STORE_BUSY = -4,      /* another process held the lock beyond the busy timeout */
    STORE_READONLY = -5,  /* write on a store opened read-only */
    STORE_NOMEM = -6,
    STORE_NOT_FOUND = -7, /* store_load_session: no such id */
};

struct mt_store;

/* The order store_query_sessions() returns sessions in: by its key, ties broken by start
 * time, then id, all in one direction (see oldest_first). Every order is index-backed. */
enum store_order {
    STORE_ORDER_TIME,     /* start time */
    STORE_ORDER_STATUS,   /* status word (alphabetical: aborted, auth_failed, ...) */
    STORE_ORDER_USER,     /* login name (byte order; sessions without one sort as "") */
    STORE_ORDER_COUNT
};

/* What store_query_sessions() returns. Start from store_filter_init(). */
struct store_filter {
    int proto;             /* enum mt_proto, or -1 for any */
    int direction;         /* enum mt_direction, or -1 for any */
    int status;            /* enum mt_status, or -1 for any */
    bool failed_only;      /* only statuses for which status_is_failure() is true */
    const char *grep;      /* substring (ASCII case-insensitive) of user, helo, IPs, sender,
                              recipients, status line or a subject; NULL or "" for none.
                              3 characters or more: answered by the trigram index */
    int64_t since_us;      /* start_us >= since_us; 0: no lower bound */
    int64_t until_us;      /* start_us <  until_us; 0: no upper bound */
    uint32_t flags_any;    /* only sessions with one of these MT_FLAG_* bits (findings); 0: any */
    long limit;            /* at most this many sessions; 0: no limit */
    long offset;           /* skip this many first (in the chosen order) */
    enum store_order order;   /* default STORE_ORDER_TIME */
    bool oldest_first;     /* ascending: key A-Z, oldest first; default descending (newest
                              first: for status and user orders, Z-A) */
    bool with_transcript;  /* also load each session's transcript */
};

/* Any protocol, direction and status, no bounds, newest first, no transcript. */
void store_filter_init(struct store_filter *filter);

/* Opens (writable: creates, mode 0600) the database at path. WAL journal, synchronous=
 * NORMAL, foreign keys on, busy timeout. Refuses a database that is not mailtap's or has
 * a newer schema. Returns NULL with a message in err (capacity errlen) on failure. */
struct mt_store *store_open(const char *path, bool writable, char *err, size_t errlen);
/* store_open(path, true, ...) for `read` into a new database without --ui or retention (a
 * bulk load that may defer its indexes, store_set_bulk_load()): a file it creates
 * gets STORE_BULK_PAGE_SIZE pages, for good (a page size does not change once there are
 * pages): fewer pages to split, link and write per session, 2.4 -> 2.1 s on the
 * session-heavy benchmark. A sensor's databases keep 4 KiB pages: each of its small
 * commits writes every page it touched (about 30) to the log, 4 times the bytes at 16 KiB;
 * and so do those of a read with --ui or retention (a size limit is kept in pages). */
struct mt_store *store_open_for_load(const char *path, char *err, size_t errlen);

/* A database read as the file is, for a reader that cannot make the -shm file WAL mode
 * needs (no write access to the directory): no locks, no WAL (what a writer still holds
 * in its -wal is not seen). SQLite result code; *db to be closed in any case. For the
 * console's own connection (ui/summary_model.c); store_open() falls back to it alone. */
struct sqlite3;
int store_sqlite_open_immutable(const char *path, struct sqlite3 **db);

/* Commits what is pending, then closes. Returns the commit's result (the store is freed
 * either way, so call store_flush() first to get the message of a failure). NULL is
 * accepted. */
int store_close(struct mt_store *store);

/* Message describing the last failure ("" if none). Valid until the next store call. */
const char *store_error(const struct mt_store *store);

/* Inserts the session with its messages, recipients and transcript, and sets session->id.
 * The row becomes visible to other readers when its batch commits: after
 * STORE_BATCH_SESSIONS sessions, when the batch is STORE_BATCH_MS old (checked here and in
 * store_tick()), on store_flush() and on store_close(). On failure the whole unfinished
 * batch is rolled back (the ids given to its sessions then name nothing) and an error code
 * is returned; the database stays consistent and the store remains usable. */
int store_put_session(struct mt_store *store, struct mt_session *session);
int store_flush(struct mt_store *store);   /* commits the open batch, if any */
int store_tick(struct mt_store *store);    /* commits the open batch if it is old enough;
                                              call it when a live capture is idle */
/* Commits the open batch and copies the whole write-ahead log into the database file,
 * leaving the log empty (PRAGMA wal_checkpoint(TRUNCATE)). Before a close that must leave
 * nothing behind in the -wal file: SQLite does not checkpoint a file that was renamed
 * while open, and the log, named after the path, would be read by the next database
 * created there. */
int store_checkpoint(struct mt_store *store);
/* Batch size and age (ms) before a commit; 1 and 0 commit every session. */
void store_set_batch(struct mt_store *store, int max_sessions, int max_ms);
/* For a one-off load of capture files: batches of STORE_BULK_BATCH_SESSIONS (the age limit
 * stays) and a checkpoint only when the write-ahead log holds STORE_BULK_WAL_BYTES.
 * Every commit writes each page it changed to the log and every checkpoint copies it again;
 * the indexes spread a batch over many pages, so at the defaults a session-heavy file made
 * 11 page writes per database page (443,067 for 40,000 pages) and took 19 s instead of 12.
 * Not for a sensor: its log, outside any --max-db-mb, would reach 64 MiB.
 * defer_indexes, into a database without sessions: the secondary indexes are dropped and
 * made again by store_finish_bulk_load(): sorting 101,021 sessions' keys once took 1.1 s
 * where keeping 11 indexes up to date row by row took 2.1 s. Meanwhile a reader's queries
 * scan the tables (so `read --ui`, and a read with retention, keeps them); a load that is
 * killed leaves them missing until the next writable open makes them.
 * Such a load also writes with a rollback journal instead of the write-ahead log (each
 * page once, not again at a checkpoint) and ends in WAL mode again. With the larger pages
 * of store_open_for_load() it took the session-heavy benchmark from 2.4-2.6 s to 1.9-2.1 s,
 * the 20,000-stream one from 2.6-3.1 s to 2.0-2.4 s. The price while it lasts: a reader waits
 * for each commit (up to STORE_BUSY_TIMEOUT_MS), and a load killed mid-commit leaves a
 * hot journal that the next open with write access rolls back (a read-only open refuses
 * the file until then: store_open()). When a reader has the file open in WAL mode the
 * journal stays WAL and the pages 4 KiB. */
int store_set_bulk_load(struct mt_store *store, bool defer_indexes);
/* True when some of the secondary indexes are missing: a bulk load into the database was
 * killed, or is still going on (queries scan the tables until a writable open makes them). */
bool store_indexes_missing(struct mt_store *store);
/* Process-wide SQLite settings, before any store is opened (a no-op after). */
void store_global_init(void);
/* Sessions (DNS rows included) this handle has committed so far. */
uint64_t store_sessions_committed(const struct mt_store *store);
/* The capture files `read` took in, by identity (cli/readlog.c): 1 with when and whether
 * the read finished, 0 when unknown (also on a database older than the record), -1 on a
 * database error. */
int store_capture_file_state(struct mt_store *store, const char *identity,
                             int64_t *read_at_us, bool *complete);
/* The largest size below `size` recorded for a file read at `path` (its identity into
 * identity[cap]): the same file may have grown since. 0 when there is none. */
int64_t store_capture_file_smaller(struct mt_store *store, const char *path, int64_t size,
                                   char *identity, size_t cap);
/* Records a file (again): STORE_OK or a failure. Outside any batch: its own statement. */
/* Forgets a capture file's record (a read that stored none of its sessions). */
int store_capture_file_forget(struct mt_store *store, const char *identity);
int store_capture_file_mark(struct mt_store *store, const char *identity, const char *path,
                            int64_t size, int64_t read_at_us, bool complete);
/* Commits, and makes the indexes a bulk load deferred (store_close() does it too). */
int store_finish_bulk_load(struct mt_store *store);
/* Caps the database file at about max_bytes (never below its current size): writes past
 * it fail as a full disk does (STORE_FULL). Not persistent; applies to this store only. */
int store_limit_size(struct mt_store *store, int64_t max_bytes);

/* A row of capture statistics (table sensor_stats), for the console's status bar and
 * `mailtap stats`. Written outside the session batches' accounting but inside the open
 * batch, if any. Counters are running totals of one capture run (they restart at 0 with
 * the next run); streams is a gauge. */
struct store_sensor_stats {
    int64_t ts_us;        /* capture time of the sample */
    uint64_t packets, kernel_drops, interface_drops, sessions;
    uint64_t streams;     /* TCP streams tracked at ts_us */
    const char *source;   /* interface or file name */
    const char *health;   /* capture-health warning, "" or NULL when all is well */
    int64_t run;          /* the capture run: set by the store, ignored on write. Every row
                             one store handle writes gets the same value, larger than any
                             earlier run's; 0 for rows of a database older than the column */
};
int store_put_sensor_stats(struct mt_store *store, const struct store_sensor_stats *stats);

/* Called for each row, newest first. `stats->source` is valid during the call only.
 * Return 0 to go on, non-zero to stop. It must not call store functions on the same store. */
typedef int (*store_sensor_stats_fn)(void *ctx, const struct store_sensor_stats *stats);

/* Rows with ts_us >= since_us (0: all), newest first (by ts_us, then most recently
 * written), at most max_rows (<= 0: no limit). Returns how many rows were handed to the
 * callback, or a negative store_result. */
int store_query_sensor_stats(struct mt_store *store, int64_t since_us, int max_rows,
                             store_sensor_stats_fn cb, void *ctx);

/* Sessions stored per minute between two rows, from the running `sessions` count. -1 when
 * the rows cannot be compared: another capture run (or a run of 0, unknown), less than
 * STORE_RATE_MIN_SPAN_US later (a second of a short capture file read as 6,000 a minute),
 * or a count that went back. */
#define STORE_RATE_MIN_SPAN_US (60LL * 1000000)
double store_sensor_sessions_per_minute(const struct store_sensor_stats *newer,
                                        const struct store_sensor_stats *older);

/* Retention, for a capture that runs for weeks. Deletes the oldest sessions (by start
 * time, then id), with their messages, recipients, transcript, search document and index
 * entries, that start before older_than_us (<= 0: no age limit) or that must go to bring
 * the live size ((page_count - freelist_count) * page_size) under max_db_bytes (<= 0: no
 * size limit). Past the size limit it prunes until the live size is at most
 * STORE_PRUNE_TARGET_PCT % of it, over as many calls as that takes (the store remembers
 * it is pruning); the newest session is never deleted for size (the age limit may delete
 * it). Also deletes sensor_stats rows older than older_than_us (and, while pruning for
 * size, older than the oldest session kept).
 * At most max_rows rows (sessions first, then sensor_stats rows) per call, in one short
 * transaction of its own (the open batch is committed first), plus bounded upkeep: up to
 * STORE_PRUNE_MERGE_PAGES of merging in the search index (whose deletions otherwise stay
 * as space for a long time) and up to STORE_PRUNE_VACUUM_PAGES free pages, plus those the
 * call freed, given back to the file system. So a live capture never waits long: call it
 * again (e.g. once a second) until *deleted_out is 0. A database this store created has
 * auto_vacuum = INCREMENTAL and its file shrinks when the WAL is checkpointed
 * (automatically, or at close); an older one keeps its free pages for reuse.
 * *deleted_out = sessions + sensor_stats rows deleted (0 on failure). STORE_READONLY on a
 * read-only store; STORE_ERROR when max_rows < 1. */
#define STORE_PRUNE_TARGET_PCT 90
#define STORE_PRUNE_VACUUM_PAGES 1024
#define STORE_PRUNE_MERGE_PAGES 256
/* The database's live size: its pages not on the freelist, in bytes. Store result. */
int store_live_bytes(struct mt_store *store, int64_t *bytes);

int store_prune(struct mt_store *store, int64_t older_than_us, int64_t max_db_bytes,
                int max_rows, long *deleted_out);

/* Called once per matching session, in order. The callback owns `session` and must
 * session_free() it (or keep it). Return 0 to go on, non-zero to stop. It must not call
 * store functions on the same store. */
typedef int (*store_session_fn)(void *ctx, struct mt_session *session);

/* Runs the filter (NULL: every session, newest first). Every session comes with its
 * recipients and messages (and its transcript if filter->with_transcript). Returns how
 * many sessions were handed to the callback, or a negative store_result. */
int store_query_sessions(struct mt_store *store, const struct store_filter *filter,
                         store_session_fn callback, void *ctx);

/* How many sessions the filter matches, ignoring limit, offset and order (for paging), or
 * a negative store_result. */
long store_count_sessions(struct mt_store *store, const struct store_filter *filter);

/* Loads one session by id, with its transcript, into *out (caller frees with
 * session_free()). STORE_NOT_FOUND when there is no such id; *out is NULL on failure. */
int store_load_session(struct mt_store *store, int64_t id, struct mt_session **out);

/* Another session of the same user with the same server and protocol, open when a session
 * began: whoever held the mailbox lock ("-ERR [IN-USE]") or the connection slots ("[LIMIT]",
 * "Maximum number of connections") a refusal speaks of. */
struct store_peer {
    int64_t id;
    char client_ip[MT_IP_MAX];
    int64_t start_us, end_us;
    enum mt_status status;
};
#define STORE_PEERS_MAX 5
struct store_peers {
    struct store_peer list[STORE_PEERS_MAX];   /* the oldest first */
    size_t count;                              /* in list */
    size_t total;                              /* in all (more than count: not all listed) */
    bool looked;                               /* asked for: none found is worth saying */
};

/* Such sessions of session (none when its user is empty) into *out. Store result. */
int store_peer_sessions(struct mt_store *store, const struct mt_session *session,
                        struct store_peers *out);

/* How a hop was found. A hop without the Message-ID is a guess, said so wherever shown:
 * by size and time (a relay hop whose headers were not read), or by envelope and time (a
 * later attempt from the same sender to one of its recipients that never reached DATA:
 * the next hop refused or deferred it at RCPT, so no Message-ID ever crossed). */
enum store_trace_match {
    STORE_TRACE_KEY,        /* carries the Message-ID, or the address */
    STORE_TRACE_SIZE,
    STORE_TRACE_ENVELOPE,
};

/* The hops of one message across sessions, in time order: by Message-ID (with the
 * guesses above for hops without one), or every session where an address was the sender
 * or a recipient. The callback owns each session. Returns the number of hops, or a
 * negative store_result. */
typedef void (*store_trace_fn)(void *ctx, struct mt_session *session,
                               enum store_trace_match match);
int store_trace(struct mt_store *store, const char *key, store_trace_fn callback, void *ctx);

#endif
