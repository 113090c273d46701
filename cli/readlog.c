/* readlog.c — which capture files a database has taken in (see readlog.h). */
#include "cli/readlog.h"

#include "cli/output.h"
#include "store/store.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define HEAD_BYTES 65536

static int64_t now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

/* FNV-1a of the first n bytes of path (n <= HEAD_BYTES) into *digest, and the file's size;
 * false when it cannot be read or is not a regular file (a pipe cannot be read twice the
 * same way; the read itself will say what is wrong). */
static bool head_digest(const char *path, int64_t n, uint64_t *digest, int64_t *size)
{
    struct stat st;
    /* Not a regular file (a FIFO, a device): never re-read, so never recorded; and not
     * opened here, which would block on a FIFO and take its writer's first bytes. */
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return false;
    unsigned char *head = malloc(HEAD_BYTES);
    int fd = head ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    ssize_t got = 0, r = -1;
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        r = 0;
        while (got < n && (r = read(fd, head + got, (size_t)(n - got))) > 0)
            got += r;
    }
    if (fd >= 0)
        close(fd);
    *digest = 0xcbf29ce484222325ULL;
    for (ssize_t i = 0; r >= 0 && i < got; i++)
        *digest = (*digest ^ head[i]) * 0x100000001b3ULL;
    free(head);
    if (r < 0)
        return false;
    *size = (int64_t)st.st_size;
    return true;
}

/* "SIZE-DIGEST": the size and the digest of the first 64 KiB. */
static bool file_identity(const char *path, struct readlog_entry *entry)
{
    uint64_t digest;
    if (!head_digest(path, HEAD_BYTES, &digest, &entry->size))
        return false;
    entry->path = path;
    entry->recorded = NULL;
    snprintf(entry->identity, sizeof entry->identity, "%lld-%016llx", (long long)entry->size,
             (unsigned long long)digest);
    return true;
}

/* The size this path had when it was read, if it has grown since: what it was then is
 * still its beginning (the digest of that many bytes, up to 64 KiB, matches). 0: not so. */
static int64_t grown_from(struct mt_store *store, const struct readlog_entry *entry)
{
    char then[40], now[40];
    int64_t before = store_capture_file_smaller(store, entry->recorded, entry->size, then,
                                                sizeof then);
    uint64_t digest;
    int64_t size;
    if (before <= 0 || !head_digest(entry->path, before < HEAD_BYTES ? before : HEAD_BYTES,
                                    &digest, &size))
        return 0;
    snprintf(now, sizeof now, "%lld-%016llx", (long long)before, (unsigned long long)digest);
    return strcmp(then, now) == 0 ? before : 0;
}

static void free_entries(struct readlog *log)
{
    for (int i = 0; log->entries && i < log->count; i++)
        free(log->entries[i].recorded);
    free(log->entries);
    *log = (struct readlog){ 0 };
}

/* Files skipped as read before that are named one by one; the rest are counted (a daily
 * read of a capture directory skips most of it). */
#define SKIPPED_NAMED 3

void readlog_lock_database(const char *db_path)
{
    /* flock on the database file: SQLite's locks on it are fcntl locks, which flock never
     * meets on Linux; a sensor locks DB.lock, not this. Never closed: closing any
     * descriptor of the file would drop the fcntl locks SQLite holds on it. */
    int fd = open(db_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return;   /* store_open() says why */
    if (flock(fd, LOCK_EX | LOCK_NB) == 0 || errno != EWOULDBLOCK)
        return;
    fprintf(stderr, "mailtap: another `mailtap read` is writing into %s: waiting for it to"
            " finish (Ctrl-C gives up)\n", db_path);
    while (flock(fd, LOCK_EX) != 0 && errno == EINTR)
        ;
}

bool readlog_begin(struct readlog *log, const char *db_path, const char **files, int *count,
                   bool again, bool quiet, bool load_pages)
{
    char err[512];
    *log = (struct readlog){ .started_us = now_us() };
    log->entries = calloc((size_t)*count + 1, sizeof *log->entries);
    /* the first to open the database for `read`: a new one may get a load's pages */
    struct mt_store *store = !log->entries ? NULL
                             : load_pages ? store_open_for_load(db_path, err, sizeof err)
                                          : store_open(db_path, true, err, sizeof err);
    if (!store) {
        fprintf(stderr, "mailtap: %s\n", log->entries ? err : "out of memory");
        free(log->entries);
        log->entries = NULL;
        return false;
    }
    int kept = 0, skipped = 0;
    bool ok = true;
    for (int i = 0; i < *count && ok; i++) {
        struct readlog_entry entry;
        files[kept++] = files[i];
        if (strcmp(files[i], "-") == 0 || !file_identity(files[i], &entry))
            continue;
        const struct readlog_entry *twin = NULL;
        for (int j = 0; j < log->count && !twin; j++)
            if (strcmp(log->entries[j].identity, entry.identity) == 0)
                twin = &log->entries[j];
        if (twin) {   /* the same file twice, or a copy, in one command: read once */
            kept--;
            if (!quiet)
                fprintf(stderr, "mailtap: %s: the same capture as %s: read once\n", files[i],
                        twin->path);
            continue;
        }
        entry.recorded = realpath(files[i], NULL);
        if (!entry.recorded && !(entry.recorded = strdup(files[i]))) {
            ok = false;
            break;
        }
        int64_t read_at = 0;
        bool complete = false;
        int known = store_capture_file_state(store, entry.identity, &read_at, &complete);
        ok = known >= 0;
        char stamp[32], when[40];
        snprintf(when, sizeof when, "%.16s UTC",   /* to the minute */
                 output_time(stamp, sizeof stamp, read_at, OUTPUT_TIME_DATE));
        if (known == 1 && complete && !again) {
            free(entry.recorded);
            kept--;
            if (!quiet && ++skipped <= SKIPPED_NAMED)
                fprintf(stderr, "mailtap: %s: read into %s already (%s): skipped (--again"
                        " reads it anyway)\n", files[i], db_path, when);
            continue;
        }
        int64_t before = known == 0 ? grown_from(store, &entry) : 0;
        if (before > 0)
            fprintf(stderr, "mailtap: warning: %s grew since it was read into %s (%lld bytes then,"
                    " %lld now): it is read again whole, so the sessions of its first part are"
                    " there twice\n", files[i], db_path, (long long)before,
                    (long long)entry.size);
        if (known == 1 && !complete)
            fprintf(stderr, "mailtap: warning: %s was partly read into %s before (%s, interrupted):"
                    " the sessions stored then are there twice now\n", files[i], db_path, when);
        else if (known == 1 && !quiet)
            fprintf(stderr, "mailtap: note: %s was read into %s before (%s): --again stores its"
                    " sessions twice\n", files[i], db_path, when);
        ok = ok && store_capture_file_mark(store, entry.identity, entry.recorded, entry.size,
                                           log->started_us, false) == STORE_OK;
        entry.new_record = known == 0;
        log->entries[log->count++] = entry;   /* owns entry.recorded from here */
        entry.recorded = NULL;
    }
    if (!quiet && skipped > SKIPPED_NAMED)
        fprintf(stderr, "mailtap: and %d more file%s read into %s already: skipped\n",
                skipped - SKIPPED_NAMED, skipped - SKIPPED_NAMED == 1 ? "" : "s", db_path);
    if (!ok)
        fprintf(stderr, "mailtap: %s\n", store_error(store));
    if (store_close(store) != STORE_OK && ok) {
        fprintf(stderr, "mailtap: %s: the database could not be closed\n", db_path);
        ok = false;
    }
    if (!ok) {
        free_entries(log);
        return false;
    }
    *count = kept;
    return true;
}

void readlog_finish(struct readlog *log, const char *db_path, bool complete,
                    bool stored_nothing)
{
    char err[512];
    bool forget = !complete && stored_nothing;
    struct mt_store *store = (complete || forget) && log->count > 0
                                 ? store_open(db_path, true, err, sizeof err) : NULL;
    if (complete && log->count > 0 && !store)
        fprintf(stderr, "mailtap: %s (the files read are not recorded as complete)\n", err);
    for (int i = 0; store && i < log->count; i++) {
        const struct readlog_entry *e = &log->entries[i];
        if (forget && !e->new_record)
            continue;   /* an earlier partial read's record stays: its sessions are there */
        if (forget ? store_capture_file_forget(store, e->identity) != STORE_OK
                   : store_capture_file_mark(store, e->identity, e->recorded, e->size,
                                             log->started_us, true) != STORE_OK) {
            fprintf(stderr, "mailtap: %s\n", store_error(store));
            break;
        }
    }
    if (store)
        store_close(store);
    free_entries(log);
}
