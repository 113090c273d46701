/* readlog.h — the capture files a database has taken in, so that reading one again (a
 * daily `read` of a capture directory, a command run twice) does not store its sessions
 * twice.
 * A file is known by its size and a digest of its first 64 KiB: a copy elsewhere is the
 * same file, a file that grew is another one. Standard input is never recorded. */
#ifndef MAILTAP_READLOG_H
#define MAILTAP_READLOG_H

#include <stdbool.h>
#include <stdint.h>

struct readlog_entry {
    const char *path;                /* as given (messages) */
    char *recorded;                  /* the absolute path recorded (owned): a file growing
                                        in place is found again from any directory */
    char identity[40];
    int64_t size;
    bool new_record;                 /* not in the database before this read */
};

struct readlog {
    struct readlog_entry *entries;   /* the files being read, recorded as not complete */
    int count;
    int64_t started_us;
};

/* One read into a database at a time: waits, saying so (even with -q: a command that
 * hangs silently is worse), while another `mailtap read` writes into db_path (an hourly
 * cron job whose last run is not done: it went on into SQLite's "database is locked").
 * A `capture` into it is not waited for. The lock lasts as long as the process. */
void readlog_lock_database(const char *db_path);

/* Drops from files[0..*count) the ones read completely into db_path before (said on
 * stderr unless quiet), warns of those read only partly (an interrupted read: their
 * sessions stored then will be there twice), and records the others as being read.
 * again: none is dropped. load_pages: a database this creates gets a bulk load's pages
 * (store_open_for_load()). False on a database or memory error (message printed); *log is
 * then empty and nothing was recorded. */
bool readlog_begin(struct readlog *log, const char *db_path, const char **files, int *count,
                   bool again, bool quiet, bool load_pages);

/* The read of the recorded files ended: complete (not interrupted, and the database took
 * its sessions), or not; a read that stored nothing at all (a full disk from the start)
 * forgets the files it recorded, so that the next read gives no false "there twice". A
 * database error is printed; the sessions are stored anyway. Frees what log holds. */
void readlog_finish(struct readlog *log, const char *db_path, bool complete,
                    bool stored_nothing);

#endif
