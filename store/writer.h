/* writer.h — puts the database on the second core. The capture thread hands finished
 * sessions to a bounded queue; one thread writes them (store_put_session) and gives them
 * back to be freed by the capture thread at its next put (or frees them itself when the
 * capture thread is quiet), and commits a batch that has grown old while nothing new
 * arrived. Anything else done
 * with the store while the writer runs goes through store_writer_lock(), so SQLite only
 * ever sees one thread at a time. */
#ifndef MAILTAP_STORE_WRITER_H
#define MAILTAP_STORE_WRITER_H

#include "store/store.h"

#include <stddef.h>
#include <stdint.h>

/* Sessions waiting to be written, and their bytes (a transcript alone may be 128 KiB);
 * the capture thread waits when either is reached, so memory stays bounded when the disk
 * is slower than the wire. */
#define STORE_WRITER_QUEUE 4096
#define STORE_WRITER_QUEUE_BYTES (8u << 20)

struct store_writer;

/* Starts the writer thread on an open, writable store (which stays the caller's: close
 * it after store_writer_stop()). NULL with a message in err when no thread can start. */
struct store_writer *store_writer_start(struct mt_store *store, char *err, size_t errlen);

/* Queues session; the writer owns it from here (it is freed once written, or dropped
 * after a write failure). Returns STORE_OK, or the result of the first write that failed
 * so far (store_writer_error() then says why): sessions queued after a failure are
 * counted in store_writer_dropped() and freed unwritten. */
int store_writer_put(struct store_writer *writer, struct mt_session *session);

/* Waits until the writer has finished the batch it is on, then gives the store to the
 * caller alone until store_writer_unlock(). Queued sessions may still be waiting. */
struct mt_store *store_writer_lock(struct store_writer *writer);
void store_writer_unlock(struct store_writer *writer);

/* Waits until everything queued is written, then commits. STORE_OK or the first failure. */
int store_writer_sync(struct store_writer *writer);

/* Writes everything queued, commits, stops the thread and frees the writer. Returns
 * STORE_OK or the first failure (its message is printed by the caller from err). */
int store_writer_stop(struct store_writer *writer, char *err, size_t errlen,
                      uint64_t *dropped);

/* The first failure's message ("" if none), copied into buf. */
void store_writer_error(struct store_writer *writer, char *buf, size_t cap);

#endif
