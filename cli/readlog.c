/* readlog.c — which capture files a database has taken in (see readlog.h). */
#include "cli/readlog.h"

#include "store/store.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* "SIZE-DIGEST" of a regular file; false when it cannot be read (the read itself will
 * say why) or is not a regular file (a pipe cannot be read twice the same way). */
static bool file_identity(const char *path, struct readlog_entry *entry)
{
    unsigned char *head = malloc(HEAD_BYTES);
    int fd = head ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    struct stat st;
    ssize_t got = 0, n = -1;
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        while (got < HEAD_BYTES && (n = read(fd, head + got, (size_t)(HEAD_BYTES - got))) > 0)
            got += n;
    }
    if (fd >= 0)
        close(fd);
    uint64_t digest = 0xcbf29ce484222325ULL;   /* FNV-1a */
    for (ssize_t i = 0; n >= 0 && i < got; i++)
        digest = (digest ^ head[i]) * 0x100000001b3ULL;
    free(head);
    if (n < 0)
        return false;
    entry->path = path;
    entry->size = (int64_t)st.st_size;
    snprintf(entry->identity, sizeof entry->identity, "%lld-%016llx", (long long)st.st_size,
             (unsigned long long)digest);
    return true;
}

static void format_time(int64_t us, char *out, size_t cap)
{
    time_t t = (time_t)(us / 1000000);
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(out, cap, "%Y-%m-%d %H:%M UTC", &tm) == 0)
        snprintf(out, cap, "an unknown time");
}

bool readlog_begin(struct readlog *log, const char *db_path, const char **files, int *count,
                   bool again, bool quiet)
{
    char err[512];
    *log = (struct readlog){ .started_us = now_us() };
    log->entries = calloc((size_t)*count + 1, sizeof *log->entries);
    struct mt_store *store = log->entries ? store_open(db_path, true, err, sizeof err) : NULL;
    if (!store) {
        fprintf(stderr, "mailtap: %s\n", log->entries ? err : "out of memory");
        free(log->entries);
        log->entries = NULL;
        return false;
    }
    int kept = 0;
    bool ok = true;
    for (int i = 0; i < *count && ok; i++) {
        struct readlog_entry entry;
        files[kept++] = files[i];
        if (strcmp(files[i], "-") == 0 || !file_identity(files[i], &entry))
            continue;
        int64_t read_at = 0;
        bool complete = false;
        int known = store_capture_file_state(store, entry.identity, &read_at, &complete);
        ok = known >= 0;
        char when[64];
        format_time(read_at, when, sizeof when);
        if (known == 1 && complete && !again) {
            kept--;
            if (!quiet)
                fprintf(stderr, "mailtap: %s: read into %s already (%s): skipped (--again"
                        " reads it anyway)\n", files[i], db_path, when);
            continue;
        }
        if (known == 1 && !complete)
            fprintf(stderr, "mailtap: note: %s was partly read into %s before (%s, interrupted):"
                    " the sessions stored then are there twice now\n", files[i], db_path, when);
        else if (known == 1 && !quiet)
            fprintf(stderr, "mailtap: note: %s was read into %s before (%s): --again stores its"
                    " sessions twice\n", files[i], db_path, when);
        ok = ok && store_capture_file_mark(store, entry.identity, entry.path, entry.size,
                                           log->started_us, false) == STORE_OK;
        log->entries[log->count++] = entry;
    }
    if (!ok)
        fprintf(stderr, "mailtap: %s\n", store_error(store));
    if (store_close(store) != STORE_OK && ok) {
        fprintf(stderr, "mailtap: %s: the database could not be closed\n", db_path);
        ok = false;
    }
    if (!ok) {
        free(log->entries);
        *log = (struct readlog){ 0 };
        return false;
    }
    *count = kept;
    return true;
}

void readlog_finish(struct readlog *log, const char *db_path, bool complete)
{
    char err[512];
    struct mt_store *store = complete && log->count > 0 ? store_open(db_path, true, err, sizeof err)
                                                       : NULL;
    if (complete && log->count > 0 && !store)
        fprintf(stderr, "mailtap: %s (the files read are not recorded as complete)\n", err);
    for (int i = 0; store && i < log->count; i++) {
        const struct readlog_entry *e = &log->entries[i];
        if (store_capture_file_mark(store, e->identity, e->path, e->size, log->started_us,
                                    true) != STORE_OK) {
            fprintf(stderr, "mailtap: %s\n", store_error(store));
            break;
        }
    }
    if (store)
        store_close(store);
    free(log->entries);
    *log = (struct readlog){ 0 };
}
