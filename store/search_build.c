/* search_build.c — a bulk load's search index, built aside (see search_build.h). One lock
 * guards the queue of document chunks and the flags; the thread holds it only to take a
 * chunk, never while it talks to SQLite. */
#include "store/search_build.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Queued documents, one after another: id (8 bytes), length (4 bytes), the text. The
 * thread indexes a chunk at a time. */
struct doc_chunk {
    struct doc_chunk *next;
    size_t len, cap, count;
    unsigned char bytes[];
};

struct search_build {
    sqlite3 *db;                   /* the temporary database: session_text, session_search */
    sqlite3_stmt *add_doc, *index_docs, *clear_docs;
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t lock;          /* guards everything below */
    pthread_cond_t work, room;
    struct doc_chunk *head, *tail; /* queued: the thread takes the head, adds go to the tail */
    size_t queued_bytes;
    struct doc_chunk *spare;       /* an indexed chunk, for the next one */
    bool input_ended;
    bool adder_waiting;            /* search_build_add() waits for room: index, backlog or not */
    bool useless;                  /* failed or abandoned: documents are dropped */
    char error[256];
};

#define DOC_HEADER (sizeof(int64_t) + sizeof(uint32_t))

/* The temporary database's tables: session_text stages each batch's documents (the FTS5
 * external content table it names must exist; it is emptied after every batch). Merges
 * as during any bulk load: only in crisis (see SEARCH_BULK_SQL in store.c). */
static const char schema_sql[] =
    "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
    "CREATE TABLE session_text (id INTEGER PRIMARY KEY, doc TEXT NOT NULL);"
    SEARCH_INDEX_SQL ";"
    "INSERT INTO session_search(session_search, rank) VALUES('automerge', 0);";

static void fail(struct search_build *build, const char *doing)
{
    pthread_mutex_lock(&build->lock);
    if (!build->useless)
        snprintf(build->error, sizeof build->error, "search index aside: %s: %s", doing,
                 sqlite3_errmsg(build->db));
    build->useless = true;
    pthread_cond_broadcast(&build->room);
    pthread_mutex_unlock(&build->lock);
}

static bool step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE;
}

/* Indexes one batch in one transaction: the documents into session_text, all of them into
 * session_search in one statement (FTS5 flushes its pending terms at every statement: a
 * row at a time cost four times as much), session_text emptied again. */
static bool index_batch(struct search_build *build, const struct doc_chunk *batch)
{
    if (sqlite3_exec(build->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        return fail(build, "starting a transaction"), false;
    size_t at = 0;
    for (size_t i = 0; i < batch->count; i++) {
        int64_t id;
        uint32_t len;
        memcpy(&id, batch->bytes + at, sizeof id);
        memcpy(&len, batch->bytes + at + sizeof id, sizeof len);
        at += DOC_HEADER;
        sqlite3_bind_int64(build->add_doc, 1, id);
        sqlite3_bind_text(build->add_doc, 2, (const char *)batch->bytes + at, (int)len,
                          SQLITE_STATIC);
        at += len;
        if (!step_done(build->add_doc))
            return fail(build, "staging a document"), false;
    }
    sqlite3_clear_bindings(build->add_doc);
    if (!step_done(build->index_docs))
        return fail(build, "indexing"), false;
    if (!step_done(build->clear_docs))
        return fail(build, "emptying the staging table"), false;
    if (sqlite3_exec(build->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        return fail(build, "committing"), false;
    return true;
}

/* Indexes nothing while the backlog is under SEARCH_BUILD_BACKLOG and the input goes on:
 * the two other threads have the cores then, and this one's work is best done beside the
 * secondary indexes' build at the end, which has one core to itself. */
static void *build_thread(void *arg)
{
    struct search_build *build = arg;
    pthread_setname_np(pthread_self(), "mailtap-search");
    pthread_mutex_lock(&build->lock);
    for (;;) {
        while (!build->input_ended && !build->adder_waiting &&
               build->queued_bytes < SEARCH_BUILD_BACKLOG)
            pthread_cond_wait(&build->work, &build->lock);
        struct doc_chunk *chunk = build->head;
        if (!chunk)
            break;   /* input ended, everything indexed */
        build->head = chunk->next;
        if (!build->head)
            build->tail = NULL;
        build->queued_bytes -= chunk->len;
        bool useless = build->useless;
        pthread_cond_broadcast(&build->room);
        pthread_mutex_unlock(&build->lock);
        if (!useless)
            index_batch(build, chunk);
        pthread_mutex_lock(&build->lock);
        if (!build->spare && chunk->cap == SEARCH_BUILD_CHUNK) {
            chunk->len = chunk->count = 0;
            chunk->next = NULL;
            build->spare = chunk;
        } else {
            free(chunk);
        }
    }
    pthread_mutex_unlock(&build->lock);
    return NULL;
}

struct search_build *search_build_start(char *err, size_t errlen)
{
    struct search_build *build = calloc(1, sizeof *build);
    if (!build) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&build->lock, NULL);
    pthread_cond_init(&build->work, NULL);
    pthread_cond_init(&build->room, NULL);
    /* "": a private temporary database on disk (SQLite's temporary directory), not in
     * memory: it grows with the capture. */
    if (sqlite3_open_v2("", &build->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL)
            != SQLITE_OK ||
        sqlite3_exec(build->db, schema_sql, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(build->db, "INSERT INTO session_text(id, doc) VALUES(?,?)", -1,
                           &build->add_doc, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(build->db, "INSERT INTO session_search(rowid, doc)"
                           " SELECT id, doc FROM session_text", -1, &build->index_docs,
                           NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(build->db, "DELETE FROM session_text", -1, &build->clear_docs,
                           NULL) != SQLITE_OK) {
        snprintf(err, errlen, "making the search index aside: %s",
                 build->db ? sqlite3_errmsg(build->db) : "out of memory");
        search_build_free(build);
        return NULL;
    }
    if (pthread_create(&build->thread, NULL, build_thread, build) != 0) {
        snprintf(err, errlen, "cannot start the search index thread");
        search_build_free(build);
        return NULL;
    }
    build->thread_started = true;
    return build;
}

/* The chunk the next `need` bytes go to: the tail, or a new one (the spare when it fits).
 * Called with the lock held. NULL when out of memory. */
static struct doc_chunk *chunk_with_room(struct search_build *build, size_t need)
{
    struct doc_chunk *tail = build->tail;
    if (tail && tail->len + need <= tail->cap)
        return tail;
    struct doc_chunk *chunk = build->spare;
    if (chunk && need <= chunk->cap) {
        build->spare = NULL;
    } else {
        size_t cap = need > SEARCH_BUILD_CHUNK ? need : SEARCH_BUILD_CHUNK;
        if (!(chunk = malloc(sizeof *chunk + cap)))
            return NULL;
        chunk->cap = cap;
    }
    chunk->next = NULL;
    chunk->len = chunk->count = 0;
    if (tail)
        tail->next = chunk;
    else
        build->head = chunk;
    build->tail = chunk;
    return chunk;
}

int search_build_add(struct search_build *build, int64_t id, const char *doc, size_t len)
{
    if (len > UINT32_MAX)
        return search_build_abandon(build), -1;
    size_t need = DOC_HEADER + len;
    struct doc_chunk *chunk = NULL;
    pthread_mutex_lock(&build->lock);
    while (!build->useless && build->queued_bytes > 0 &&
           build->queued_bytes + need > SEARCH_BUILD_QUEUE_BYTES) {
        build->adder_waiting = true;
        pthread_cond_signal(&build->work);
        pthread_cond_wait(&build->room, &build->lock);
    }
    build->adder_waiting = false;
    int result = -1;
    if (!build->useless && (chunk = chunk_with_room(build, need))) {
        uint32_t len32 = (uint32_t)len;
        unsigned char *at = chunk->bytes + chunk->len;
        memcpy(at, &id, sizeof id);
        memcpy(at + sizeof id, &len32, sizeof len32);
        memcpy(at + DOC_HEADER, doc, len);
        chunk->len += need;
        chunk->count++;
        build->queued_bytes += need;
        /* A chunk is taken whole: the thread starts when the one before the tail is full. */
        if (build->queued_bytes >= SEARCH_BUILD_BACKLOG && build->head != build->tail)
            pthread_cond_signal(&build->work);
        result = 0;
    } else if (!build->useless) {
        snprintf(build->error, sizeof build->error, "search index aside: out of memory");
        build->useless = true;
    }
    pthread_mutex_unlock(&build->lock);
    return result;
}

void search_build_abandon(struct search_build *build)
{
    pthread_mutex_lock(&build->lock);
    if (!build->useless)
        snprintf(build->error, sizeof build->error, "search index aside: abandoned");
    build->useless = true;
    pthread_cond_broadcast(&build->room);
    pthread_mutex_unlock(&build->lock);
}

void search_build_end_input(struct search_build *build)
{
    pthread_mutex_lock(&build->lock);
    build->input_ended = true;
    pthread_cond_signal(&build->work);
    pthread_mutex_unlock(&build->lock);
}

static void join(struct search_build *build)
{
    search_build_end_input(build);
    if (build->thread_started)
        pthread_join(build->thread, NULL);
    build->thread_started = false;
}

/* The integer a query with one text parameter, bound to text, returns; -1 on failure. */
static int64_t query_int(sqlite3 *db, const char *sql, const char *text)
{
    sqlite3_stmt *st;
    int64_t value = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        value = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return value;
}

/* The store's index still as store_set_bulk_load() left it: made with the same
 * definition, and empty (an empty FTS5 index holds its structure record alone, and maybe
 * its averages). Another writer that added documents meanwhile makes the copy wrong. */
static const char store_index_untouched_sql[] =
    "SELECT (SELECT count(*) FROM store.sqlite_master WHERE name = 'session_search'"
    " AND sql = ?1) = 1"
    " AND (SELECT count(*) FROM store.session_search_idx) = 0"
    " AND (SELECT count(*) FROM store.session_search_data WHERE id NOT IN (1, 10)) = 0";

static const char copy_sql[] =
    "DELETE FROM store.session_search_data;"
    "INSERT INTO store.session_search_data(id, block)"
    " SELECT id, block FROM main.session_search_data;"
    "INSERT INTO store.session_search_idx(segid, term, pgno)"
    " SELECT segid, term, pgno FROM main.session_search_idx;"
    "DELETE FROM store.search_pending;";

int search_build_copy(struct search_build *build, const char *db_path, char *err,
                      size_t errlen)
{
    join(build);
    if (build->useless) {
        snprintf(err, errlen, "%s", build->error);
        return -1;
    }
    sqlite3_stmt *attach = NULL;
    const char *doing = "attaching the database";
    sqlite3_busy_timeout(build->db, 10000);
    int rc = sqlite3_prepare_v2(build->db, "ATTACH DATABASE ? AS store", -1, &attach, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(attach, 1, db_path, -1, SQLITE_STATIC);
        rc = sqlite3_step(attach) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(build->db);
    }
    sqlite3_finalize(attach);
    bool attached = rc == SQLITE_OK;
    if (rc == SQLITE_OK) {
        doing = "starting the copy";
        rc = sqlite3_exec(build->db, "PRAGMA store.synchronous=NORMAL; BEGIN IMMEDIATE",
                          NULL, NULL, NULL);
    }
    bool said = false;   /* doing says why, without SQLite's message */
    if (rc == SQLITE_OK && query_int(build->db, store_index_untouched_sql, SEARCH_INDEX_SQL) != 1) {
        doing = "the database's search index is no longer empty, or defined otherwise";
        said = true;
        rc = SQLITE_ERROR;
    }
    if (rc == SQLITE_OK) {
        doing = "copying";
        rc = sqlite3_exec(build->db, copy_sql, NULL, NULL, NULL);
    }
    if (rc == SQLITE_OK) {
        doing = "committing the copy";
        rc = sqlite3_exec(build->db, "COMMIT", NULL, NULL, NULL);
    }
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "search index aside: %s%s%s", doing, said ? "" : ": ",
                 said ? "" : sqlite3_errmsg(build->db));
        if (!sqlite3_get_autocommit(build->db))
            sqlite3_exec(build->db, "ROLLBACK", NULL, NULL, NULL);
    }
    if (attached)
        sqlite3_exec(build->db, "DETACH DATABASE store", NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : -1;
}

void search_build_free(struct search_build *build)
{
    if (!build)
        return;
    if (build->thread_started) {
        search_build_abandon(build);
        join(build);
    }
    sqlite3_finalize(build->add_doc);
    sqlite3_finalize(build->index_docs);
    sqlite3_finalize(build->clear_docs);
    sqlite3_close(build->db);
    while (build->head) {
        struct doc_chunk *next = build->head->next;
        free(build->head);
        build->head = next;
    }
    free(build->spare);
    pthread_cond_destroy(&build->work);
    pthread_cond_destroy(&build->room);
    pthread_mutex_destroy(&build->lock);
    free(build);
}
