/* search_build.h — a bulk load's search index, built aside on a thread of its own.
 *
 * Why: the trigram index (session_search) was 45% of the writer's work on the
 * session-heavy benchmark, and it kept the writer busy after the capture thread was done,
 * while at the very end one core built the secondary indexes and the other idled. During
 * a bulk load into an empty database (store_set_bulk_load()) the writer hands each search
 * document to this builder instead, which indexes it into a private temporary database
 * (its own connection: SQLite's `""` file, deleted when closed) with the same FTS5
 * definition; when the load ends it finishes beside the secondary indexes' build, and the
 * finished index's two tables (session_search_data, session_search_idx) are copied into
 * the store's empty ones in one transaction. An index is its tables, so the copy is the
 * index; the test suite checks it with FTS5's integrity-check against the documents.
 *
 * The store owns the builder. The writer thread calls search_build_add(); the thread that
 * ends the load calls the rest. */
#ifndef MAILTAP_STORE_SEARCH_BUILD_H
#define MAILTAP_STORE_SEARCH_BUILD_H

#include <stddef.h>
#include <stdint.h>

/* session_search's definition: the copy is only valid between two tables made with it. */
#define SEARCH_INDEX_ARGS "doc, content = 'session_text', content_rowid = 'id'," \
    " tokenize = 'trigram case_sensitive 1', columnsize = 0, detail = none"
#define SEARCH_INDEX_SQL "CREATE VIRTUAL TABLE session_search USING fts5(" SEARCH_INDEX_ARGS ")"

/* Documents are queued in chunks of SEARCH_BUILD_CHUNK bytes; the thread starts indexing
 * them, a chunk per transaction, when SEARCH_BUILD_BACKLOG bytes wait (about 75,000
 * sessions' documents) or the input ends, and search_build_add() waits when
 * SEARCH_BUILD_QUEUE_BYTES wait. */
#define SEARCH_BUILD_CHUNK (512u << 10)
#define SEARCH_BUILD_BACKLOG (8u << 20)
#define SEARCH_BUILD_QUEUE_BYTES (SEARCH_BUILD_BACKLOG + 4 * SEARCH_BUILD_CHUNK)

struct search_build;

/* Makes the temporary database and starts the thread. NULL with a message in err. */
struct search_build *search_build_start(char *err, size_t errlen);

/* Queues document doc (len bytes) of session id; ids must grow. 0, or -1 once the builder
 * has failed or was abandoned: the caller then rebuilds the index from the documents. */
int search_build_add(struct search_build *build, int64_t id, const char *doc, size_t len);

/* Marks the builder as useless (the store rolled back documents it was given): it stops
 * indexing, and search_build_copy() refuses. */
void search_build_abandon(struct search_build *build);

/* No more documents: the thread indexes what is queued and stops. Does not wait. */
void search_build_end_input(struct search_build *build);

/* Waits for the thread, then copies the index into session_search of the database at
 * db_path, whose index must still be empty (as store_set_bulk_load() left it), and
 * deletes the search_pending row in the same transaction. 0 when copied; -1 with a
 * message in err otherwise (nothing changed: the caller rebuilds). */
int search_build_copy(struct search_build *build, const char *db_path, char *err,
                      size_t errlen);

/* Stops the thread if it runs (abandoning its work) and frees everything. NULL is fine. */
void search_build_free(struct search_build *build);

#endif
