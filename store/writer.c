/* writer.c — the database writer thread (see writer.h). Two locks: queue_lock guards the
 * queue and the failure state and is held only for pointer moves; store_lock is held by
 * whoever talks to SQLite (the thread while it writes a handful of sessions, the capture
 * thread for a statistics row or a prune). Never take queue_lock while holding store_lock
 * for long work, and never the other way round: the thread releases one before the other. */
#include "store/writer.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* How often an idle writer checks the open batch's age (store_tick): batches are committed
 * on time even when no session arrives (a quiet link, a console waiting for rows). */
#define IDLE_CHECK_MS 25
/* Sessions written per hold of the store: enough to amortise the locking, few enough that
 * a statistics row or a prune never waits long. */
#define TAKE_MAX 64

struct store_writer {
    struct mt_store *store;
    pthread_t thread;
    pthread_mutex_t store_lock;
    pthread_mutex_t queue_lock;     /* guards everything below */
    pthread_cond_t not_empty, not_full, idle;
    struct mt_session *queue[STORE_WRITER_QUEUE];
    size_t head, count;
    size_t bytes;                   /* queued sessions' size (session_bytes()) */
    /* Written sessions given back to be freed by the capture thread, whose malloc arena
     * they came from: freed here, each free waited for that arena's lock while the capture
     * thread allocated (7% of the writer, and a futex wake-up system call on the capture
     * thread's side, 4% of it, on the session-heavy benchmark). The capture thread takes
     * up to TAKE_MAX of them at every store_writer_put(); the writer frees what is left
     * when it has nothing to write for IDLE_CHECK_MS, or when the ring is full. */
    struct mt_session *written[STORE_WRITER_QUEUE];
    size_t written_head, written_count;
    bool busy;                      /* the thread holds sessions taken off the queue */
    bool stopping;
    int failure;                    /* STORE_OK, or the first failed write's result */
    char error[512];
    uint64_t dropped;               /* sessions freed unwritten after the failure */
};

/* What a queued session holds, near enough: the record, its transcript and children. */
static size_t session_bytes(const struct mt_session *session)
{
    return sizeof *session + session->transcript_cap +
           session->message_count * (sizeof *session->messages + 256) +
           session->recipient_count * (sizeof *session->recipients + 64);
}

static struct timespec deadline_after_ms(long ms)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_nsec += ms * 1000000L;
    t.tv_sec += t.tv_nsec / 1000000000L;
    t.tv_nsec %= 1000000000L;
    return t;
}

/* Called with queue_lock held. */
static void note_failure(struct store_writer *writer, int result, const char *message)
{
    if (writer->failure != STORE_OK)
        return;
    writer->failure = result;
    snprintf(writer->error, sizeof writer->error, "%s", message);
}

/* A commit (store_tick or store_flush) under the store lock; a failure is recorded.
 * Called without queue_lock. */
static int commit(struct store_writer *writer, int (*how)(struct mt_store *))
{
    pthread_mutex_lock(&writer->store_lock);
    int result = how(writer->store);
    char message[512] = "";
    if (result != STORE_OK)
        snprintf(message, sizeof message, "%s", store_error(writer->store));
    pthread_mutex_unlock(&writer->store_lock);
    if (result != STORE_OK) {
        pthread_mutex_lock(&writer->queue_lock);
        note_failure(writer, result, message);
        pthread_mutex_unlock(&writer->queue_lock);
    }
    return result;
}

/* The idle check: commits an old batch. Called and returns with queue_lock held. */
static void idle_tick(struct store_writer *writer)
{
    pthread_mutex_unlock(&writer->queue_lock);
    commit(writer, store_tick);
    pthread_mutex_lock(&writer->queue_lock);
}

/* Moves up to max written sessions out of the ring into out. Called with queue_lock held. */
static size_t take_written(struct store_writer *writer, struct mt_session **out, size_t max)
{
    size_t n = 0;
    while (n < max && writer->written_count > 0) {
        out[n++] = writer->written[writer->written_head];
        writer->written_head = (writer->written_head + 1) % STORE_WRITER_QUEUE;
        writer->written_count--;
    }
    return n;
}

/* Frees every session in the ring, TAKE_MAX at a time without queue_lock. Called and
 * returns with queue_lock held. */
static void free_written(struct store_writer *writer)
{
    struct mt_session *batch[TAKE_MAX];
    size_t n;
    while ((n = take_written(writer, batch, TAKE_MAX)) > 0) {
        pthread_mutex_unlock(&writer->queue_lock);
        for (size_t i = 0; i < n; i++)
            session_free(batch[i]);
        pthread_mutex_lock(&writer->queue_lock);
    }
}

/* Puts sessions [0, n) of taken in the ring; returns how many fit (the caller frees the
 * rest). Called with queue_lock held. */
static size_t give_back(struct store_writer *writer, struct mt_session **taken, size_t n)
{
    size_t given = 0;
    for (; given < n && writer->written_count < STORE_WRITER_QUEUE; given++) {
        size_t slot = (writer->written_head + writer->written_count) % STORE_WRITER_QUEUE;
        writer->written[slot] = taken[given];
        writer->written_count++;
    }
    return given;
}

static void writer_free(struct store_writer *writer)
{
    pthread_cond_destroy(&writer->idle);
    pthread_cond_destroy(&writer->not_full);
    pthread_cond_destroy(&writer->not_empty);
    pthread_mutex_destroy(&writer->queue_lock);
    pthread_mutex_destroy(&writer->store_lock);
    free(writer);
}

static void *writer_main(void *arg)
{
    struct store_writer *writer = arg;
    struct mt_session *taken[TAKE_MAX];
    /* Named for `top -H` and perf: which of the two threads is busy is the first question
     * when a capture is read slower than expected. */
    pthread_setname_np(pthread_self(), "mailtap-writer");
    pthread_mutex_lock(&writer->queue_lock);
    for (;;) {
        while (writer->count == 0 && !writer->stopping) {
            struct timespec deadline = deadline_after_ms(IDLE_CHECK_MS);
            if (pthread_cond_timedwait(&writer->not_empty, &writer->queue_lock, &deadline) ==
                    ETIMEDOUT) {
                if (writer->failure == STORE_OK)
                    idle_tick(writer);
                free_written(writer);   /* the capture thread is not putting: quiet */
            }
        }
        if (writer->count == 0)
            break;   /* stopping, and everything is written */
        size_t n = 0;
        while (n < TAKE_MAX && writer->count > 0) {
            taken[n] = writer->queue[writer->head];
            writer->bytes -= session_bytes(taken[n++]);
            writer->head = (writer->head + 1) % STORE_WRITER_QUEUE;
            writer->count--;
        }
        bool failed = writer->failure != STORE_OK;
        writer->busy = true;
        pthread_cond_broadcast(&writer->not_full);
        pthread_mutex_unlock(&writer->queue_lock);

        int result = STORE_OK;
        char message[512] = "";
        uint64_t dropped = 0;
        pthread_mutex_lock(&writer->store_lock);
        for (size_t i = 0; i < n; i++) {
            if (!failed && result == STORE_OK) {
                result = store_put_session(writer->store, taken[i]);
                if (result != STORE_OK)
                    snprintf(message, sizeof message, "%s", store_error(writer->store));
            } else {
                dropped++;
            }
        }
        pthread_mutex_unlock(&writer->store_lock);

        pthread_mutex_lock(&writer->queue_lock);
        if (result != STORE_OK)
            note_failure(writer, result, message);
        writer->dropped += dropped;
        size_t given = give_back(writer, taken, n);
        writer->busy = false;
        if (writer->count == 0)
            pthread_cond_broadcast(&writer->idle);
        if (given < n) {
            pthread_mutex_unlock(&writer->queue_lock);
            for (size_t i = given; i < n; i++)
                session_free(taken[i]);
            pthread_mutex_lock(&writer->queue_lock);
        }
    }
    pthread_mutex_unlock(&writer->queue_lock);
    return NULL;
}

struct store_writer *store_writer_start(struct mt_store *store, char *err, size_t errlen)
{
    struct store_writer *writer = calloc(1, sizeof *writer);
    if (!writer) {
        snprintf(err, errlen, "cannot start the database writer: out of memory");
        return NULL;
    }
    writer->store = store;
    pthread_condattr_t monotonic;
    pthread_condattr_init(&monotonic);
    pthread_condattr_setclock(&monotonic, CLOCK_MONOTONIC);
    pthread_mutex_init(&writer->store_lock, NULL);
    pthread_mutex_init(&writer->queue_lock, NULL);
    pthread_cond_init(&writer->not_empty, &monotonic);
    pthread_cond_init(&writer->not_full, NULL);
    pthread_cond_init(&writer->idle, NULL);
    pthread_condattr_destroy(&monotonic);
    /* Signals (SIGTERM, SIGHUP) belong to the capture thread, whose poll() they should
     * wake: the writer starts with every signal blocked (a new thread inherits the mask). */
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    int rc = pthread_create(&writer->thread, NULL, writer_main, writer);
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the database writer thread: %s", strerror(rc));
        writer_free(writer);
        return NULL;
    }
    return writer;
}

int store_writer_put(struct store_writer *writer, struct mt_session *session)
{
    struct mt_session *written[TAKE_MAX];
    pthread_mutex_lock(&writer->queue_lock);
    size_t size = session_bytes(session);
    /* Full by count, or by bytes unless empty (one huge session always gets in). */
    while ((writer->count == STORE_WRITER_QUEUE ||
            (writer->count > 0 && writer->bytes + size > STORE_WRITER_QUEUE_BYTES)) &&
           writer->failure == STORE_OK)
        pthread_cond_wait(&writer->not_full, &writer->queue_lock);
    int failure = writer->failure;
    if (failure == STORE_OK) {
        writer->queue[(writer->head + writer->count) % STORE_WRITER_QUEUE] = session;
        writer->count++;
        writer->bytes += size;
        /* A waiting writer looks at the queue every IDLE_CHECK_MS anyway: waking it for
         * each session cost a system call and two context switches per session (6% of
         * the capture thread with 20,000 streams open). A full take is worth waking for. */
        if (writer->count >= TAKE_MAX || writer->bytes >= STORE_WRITER_QUEUE_BYTES / 2)
            pthread_cond_signal(&writer->not_empty);
    } else {
        writer->dropped++;
    }
    size_t reclaimed = take_written(writer, written, TAKE_MAX);
    pthread_mutex_unlock(&writer->queue_lock);
    for (size_t i = 0; i < reclaimed; i++)
        session_free(written[i]);
    if (failure != STORE_OK)
        session_free(session);
    return failure;
}

struct mt_store *store_writer_lock(struct store_writer *writer)
{
    pthread_mutex_lock(&writer->store_lock);
    return writer->store;
}

void store_writer_unlock(struct store_writer *writer)
{
    pthread_mutex_unlock(&writer->store_lock);
}

int store_writer_sync(struct store_writer *writer)
{
    pthread_mutex_lock(&writer->queue_lock);
    pthread_cond_signal(&writer->not_empty);
    while ((writer->count > 0 || writer->busy) && writer->failure == STORE_OK)
        pthread_cond_wait(&writer->idle, &writer->queue_lock);
    int failure = writer->failure;
    free_written(writer);
    pthread_mutex_unlock(&writer->queue_lock);
    if (failure != STORE_OK)
        return failure;
    return commit(writer, store_flush);
}

void store_writer_error(struct store_writer *writer, char *buf, size_t cap)
{
    pthread_mutex_lock(&writer->queue_lock);
    snprintf(buf, cap, "%s", writer->error);
    pthread_mutex_unlock(&writer->queue_lock);
}

int store_writer_stop(struct store_writer *writer, char *err, size_t errlen, uint64_t *dropped)
{
    pthread_mutex_lock(&writer->queue_lock);
    writer->stopping = true;
    pthread_cond_signal(&writer->not_empty);
    pthread_mutex_unlock(&writer->queue_lock);
    pthread_join(writer->thread, NULL);
    /* The thread is gone: no lock is needed from here (free_written() takes it anyway). */
    pthread_mutex_lock(&writer->queue_lock);
    free_written(writer);
    pthread_mutex_unlock(&writer->queue_lock);
    int flushed = writer->failure == STORE_OK ? store_flush(writer->store) : STORE_OK;
    if (flushed != STORE_OK)
        note_failure(writer, flushed, store_error(writer->store));
    int result = writer->failure;
    snprintf(err, errlen, "%s", writer->error);
    if (dropped)
        *dropped = writer->dropped;
    writer_free(writer);
    return result;
}
